"""`pagerag index build|status|remove|verify`."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from . import model_options as mo
from .common import (EXIT_INTERRUPTED, EXIT_SKIPPED, GivenPath, friendly_errors, human_bytes, index_option, shown,
                     open_index)
from .main import WholeHelpGroup


@click.group("index", cls=WholeHelpGroup)
def index_group():
    """Build, update and inspect the index."""


LIST_NOTES_UP_TO = 20  # skips that are not errors (unsupported types...) listed one by one in a build's summary
LIST_ERRORS_UP_TO = 100  # files skipped for an error, likewise (`index status` lists every one)


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="page", desc="indexing", dynamic_ncols=True, disable=None)


@index_group.command("build")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@click.option("--ocr", type=click.Choice(["auto", "tesseract", "rapidocr", "none"], case_sensitive=False),
              default="auto", show_default=True, envvar="PAGERAG_OCR", show_envvar=True,
              help="OCR engine for pages without a text layer.")
@click.option("--lang", default="eng", show_default=True, envvar="PAGERAG_OCR_LANG", show_envvar=True,
              help="OCR languages (Tesseract codes joined by '+', e.g. deu+eng), recorded with each page read.")
@click.option("--dpi", type=click.IntRange(50, 600), default=200, show_default=True,
              help="Resolution at which PDF pages are rendered for OCR.")
@click.option("--force-ocr", is_flag=True, help="OCR PDF pages even when they have a text layer.")
@click.option("--prune", is_flag=True, help="Drop indexed files under PATHS that are gone (deleted, or now a folder).")
@click.option("--embed-model", envvar="PAGERAG_EMBED_MODEL", show_envvar=True,
              help="sentence-transformers model name or folder (default: the index's, else all-MiniLM-L6-v2).")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
              help="Worker processes reading pages; no more start than the CPUs or the pages to read "
                   "[default: number of CPUs].")
@click.option("--page-timeout", type=click.FloatRange(min=0), default=300, show_default=True, metavar="SECONDS",
              help="A page that takes longer to read is given up: its file is indexed without it (0: no limit).")
@click.option("--retry-failed", is_flag=True,
              help="Read again the pages that failed in earlier builds (else only when their file changes).")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option("--captions", is_flag=True,
              help="Describe each page with the vision-language model (-m, --backend) and index the description.")
@mo.apply(mo.MODEL_OPTIONS)
@friendly_errors
def build_cmd(paths, index_dir, ocr, lang, dpi, force_ocr, prune, embed_model, jobs, page_timeout, retry_failed,
              as_json, captions, **kw):
    """Index PATHS (files or folders, recursively); only new or changed files are read."""
    from index.builder import BuildInterrupted, BuildOptions, build

    paths = _check_build_paths(paths, prune, index_dir)
    if page_timeout != page_timeout:  # nan passes FloatRange's comparisons
        raise click.BadParameter("is not a number", param_hint="'--page-timeout'")
    options = BuildOptions(ocr=ocr, lang=lang, dpi=dpi, force_ocr=force_ocr, prune=prune, embed_model=embed_model,
                           page_timeout=page_timeout or None, retry_failed=retry_failed)
    if jobs:
        options.jobs = jobs
        _note_jobs(jobs)
    if captions:
        options.captioner = _captioner(mo.model_settings(kw))
    try:
        report = build(index_dir, list(paths), options, progress=_progress)
    except BuildInterrupted as e:
        _print_report(e.report, as_json)
        click.echo("Interrupted: finished pages are saved; run the same command again to resume.", err=True)
        raise SystemExit(EXIT_INTERRUPTED)
    _print_report(report, as_json)
    if report.errors:
        raise SystemExit(EXIT_SKIPPED)


def _note_jobs(jobs: int) -> None:
    from index.readers import usable_cpus

    cpus = usable_cpus()
    if jobs > cpus:  # not an error: the build caps the workers (readers.worker_count)
        click.echo(f"Note: -j {jobs} is more than the {cpus} CPU(s) here; at most {cpus} worker(s) read pages.",
                   err=True)


def _check_build_paths(paths, prune: bool, index_dir) -> list:
    """The paths as the file system spells them (a name given NFD, as macOS writes it, where the disk has it NFC);
    every one must exist (a usage error, exit 2). A gone folder's documents are dropped with `index remove`,
    which --prune, reading only what is still there, cannot do: said when the index holds something there."""
    import os

    from index.given_paths import on_disk

    found = []
    for path in paths:
        spelled = path if os.path.exists(path) else on_disk(str(path))
        if spelled is None or not os.path.exists(spelled):  # as click's own check: a dangling link does not exist
            hint = ""
            if prune:
                hint = (f"; to drop what the index holds under it, run `pagerag index remove {shown(path)}`"
                        if _indexed_under(index_dir, path) is not False else "; nothing is indexed under it either")
            raise click.BadParameter(f"Path {shown(path)!r} does not exist{hint}.", param_hint="'PATHS...'")
        found.append(Path(spelled))
    return found


def _indexed_under(index_dir, path) -> bool | None:
    """Whether the index holds documents at or under a path; None when there is no index to tell."""
    from index.errors import NotIndexed, PageragError
    from index.store import DB_NAME

    if not (Path(index_dir) / DB_NAME).is_file():
        return None
    try:
        idx = open_index(index_dir)
    except PageragError:
        return None
    try:
        return bool(idx.documents_under([path]))
    except NotIndexed:
        return False
    finally:
        idx.close()


def _captioner(settings):
    """The model as a captioner, or None (with the reason) when it cannot be loaded: the build goes on."""
    from rag.backends import ModelUnavailable
    from rag.captions import BackendCaptioner
    from rag.settings import create_backend

    try:
        backend = create_backend(settings)
        backend.load()
    except ModelUnavailable as e:
        click.echo(f"Captions skipped (the build goes on without them): {e}", err=True)
        return None
    return BackendCaptioner(backend)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        data = asdict(report)
        for s in data["skipped"] + data["partial"]:
            s["path"] = shown(s["path"])
        data.update(index=shown(report.index), errors=report.errors,
                    pages_per_second=round(report.pages_per_second, 3))
        click.echo(json.dumps(data, indent=2))
        return
    echo = lambda s="": click.echo(s, err=True)  # noqa: E731
    retried = f"{report.retried} retried, " if report.retried else ""
    echo(f"Index {shown(report.index)}: {report.new} new, {report.changed} changed, {report.resumed} resumed, "
         f"{retried}{report.unchanged} unchanged, {report.pruned} pruned file(s).")
    if report.pages_read:
        echo(f"Read {report.pages_read} page(s), {report.pages_ocr} by OCR ({report.ocr_engine or 'off'}), "
             f"{report.chunks_added} passage(s) embedded in {report.seconds:.1f}s "
             f"({report.pages_per_second:.2f} pages/s).")
    elif report.chunks_added:  # pages taken from indexed twins, embedded under their new title
        echo(f"Read no page; {report.chunks_added} passage(s) embedded in {report.seconds:.1f}s.")
    elif report.new or report.changed or report.resumed or report.retried:  # something to read, no page finished
        why = ("the build was interrupted" if report.interrupted
               else "the pages retried could not be read again (see below)"
               if not (report.new or report.changed or report.resumed)  # --retry-failed alone: the rest is indexed
               else "every page of it was skipped (see below)")
        echo(f"No page was finished ({report.seconds:.1f}s): {why}.")
    elif report.interrupted:  # stopped while still looking for files: nothing is known about what is there
        echo(f"Stopped while looking for files ({report.seconds:.1f}s): nothing was read.")
    else:  # a rebuild with nothing new: 'Read 0 page(s), 0 by OCR (tesseract), 0 passage(s)' said it in noise
        echo(f"Nothing new to read ({report.seconds:.1f}s).")
    if report.pages_reduced:
        echo(f"Read {report.pages_reduced} JPEG page(s) over the pixel limit at a reduced size (1/2, 1/4 or 1/8) "
             "that fits it.")
    if report.pages_copied:
        echo(f"Took {report.pages_copied} page(s) of moved or copied files from their indexed twins (not read again).")
    if report.captions_made or report.captions_cached:
        echo(f"Captioned {report.captions_made + report.captions_cached} page(s) "
             f"({report.captions_cached} from the cache).")
    if report.caption_error:
        echo(f"Captioning stopped: {report.caption_error}")
    if not (report.new or report.changed or report.resumed or report.retried or report.unchanged or report.pruned
            or report.interrupted or any(s.is_error for s in report.skipped)):
        from index.sources import KINDS

        echo("No file to index was found there: pagerag reads " + ", ".join(sorted(KINDS)) + " files.")
    _print_partial(report.partial, echo)
    if report.skipped:
        echo(f"Skipped {len(report.skipped)} file(s):")
        notes = [s for s in report.skipped if not s.is_error]
        many = len(notes) > LIST_NOTES_UP_TO  # a home folder's thousands of .txt files: counted, not listed
        errors = 0
        for s in report.skipped:
            if s.is_error:
                errors += 1
                if errors <= LIST_ERRORS_UP_TO:
                    echo(f"  ERROR {shown(s.path)}: {s.reason}")
            elif not many:
                echo(f"  {shown(s.path)}: {s.reason}")
        if errors > LIST_ERRORS_UP_TO:
            echo(f"  and {errors - LIST_ERRORS_UP_TO} more error(s); `pagerag index status` lists them all")
        if many:
            from collections import Counter

            kinds = Counter(s.reason for s in notes).most_common()
            shown_kinds = "; ".join(f"{reason}: {n}" for reason, n in kinds[:8]) + ("; ..." if len(kinds) > 8 else "")
            echo(f"  and {len(notes)} file(s) not read ({shown_kinds}); `pagerag index status` lists them")


LIST_FAILED_PAGES_UP_TO = 5  # a partly indexed file's failed pages listed in a build's summary


def _print_partial(partial, echo) -> None:
    """'Partly indexed 1 file(s) ...' and a line per file: 'indexed 299 of 300 pages; page 17: ...'."""
    if not partial:
        return
    echo(f"Partly indexed {len(partial)} file(s): the pages named could not be read; the others are searchable.")
    for p in partial[:LIST_ERRORS_UP_TO]:
        failed = [f.reason for f in p.failed[:LIST_FAILED_PAGES_UP_TO]]
        more = len(p.failed) - len(failed)
        echo(f"  ERROR {shown(p.path)}: indexed {p.indexed} of {p.pages} pages; " + "; ".join(failed)
             + (f"; and {more} more page(s) (`pagerag index status` lists them)" if more else ""))
    if len(partial) > LIST_ERRORS_UP_TO:
        echo(f"  and {len(partial) - LIST_ERRORS_UP_TO} more file(s); `pagerag index status` lists them all")
    if any(p.earlier for p in partial):
        echo("  (pages that failed in an earlier build are not read again until their file changes; "
             "`--retry-failed` reads them again)")


@index_group.command("status")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@friendly_errors
def status_cmd(index_dir, as_json):
    """What the index holds: documents, pages, passages, model, partly indexed and skipped files, size."""
    idx = open_index(index_dir, check="if-small")  # a large index: `index verify` checks it all
    data = index_status(idx)
    counts = idx.counts()
    skipped = [(shown(p), r, e) for p, r, e in idx.skipped()]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Index:      {shown(data['index'])} (format {data['format_version']}, {human_bytes(data['size_bytes'])})"
               + (", read-only" if idx.readonly else ""))
    writer = data["writer"]
    todo = (f"a build is reading them now: {writer}" if writer else "run `pagerag index build` to resume")
    click.echo(f"Documents:  {counts['documents']}" + (f" (+{counts['incomplete']} incomplete: {todo})"
                                                       if counts["incomplete"] else ""))
    click.echo(f"Pages:      {counts['pages']} ({counts['ocr_pages']} read by OCR)")
    if data["ocr_languages"]:
        click.echo("Languages:  " + ", ".join(f"{lang} ({n} page{'s' * (n != 1)})"
                                              for lang, n in data["ocr_languages"].items()))
    click.echo(f"Passages:   {counts['chunks']}")
    click.echo(f"Embeddings: {data['embed_model'] or '-'}" + (f" ({data['embed_dim']}-d)" if data["embed_dim"] else ""))
    if data["partial"]:
        click.echo(f"Partial:    {len(data['partial'])} file(s) indexed without some pages (`pagerag index build "
                   "--retry-failed PATH` reads them again)")
        for p in data["partial"]:
            failed = "; ".join(f["reason"] for f in p["failed"])
            click.echo(f"  ERROR {p['path']}: indexed {p['indexed']} of {p['pages']} pages; {failed}")
    if skipped:
        click.echo(f"Skipped:    {len(skipped)} file(s)")
        for p, r, e in skipped:
            click.echo(f"  {'ERROR ' if e else ''}{p}: {r}")


def index_status(idx) -> dict:
    """What `index status --json` prints (also the web app's status page)."""
    from index.lock import writer_of

    meta, counts = idx.meta, idx.counts()
    return {"index": shown(str(idx.folder)), **counts, "embed_model": meta.get("embed_model"),
            "embed_dim": int(meta["embed_dim"]) if "embed_dim" in meta else None,
            "format_version": int(meta["format_version"]), "size_bytes": idx.size_on_disk(),
            "ocr_languages": idx.ocr_languages(), "writer": writer_of(idx.folder),  # a build now: who, else None
            "skipped": [{"path": shown(p), "reason": r, "error": e} for p, r, e in idx.skipped()],
            "partial": [{"path": shown(p), "pages": n, "indexed": n - len(failed),
                         "failed": [{"page": page, "reason": r} for page, r in failed]}
                        for p, n, failed in idx.partial_documents()]}


@index_group.command("remove")
@click.argument("paths", nargs=-1, required=True, type=GivenPath())
@index_option
@friendly_errors
def remove_cmd(paths, index_dir):
    """Remove documents (files, or every indexed file under a folder) from the index.

    Every PATH must match something indexed, or nothing is removed.
    """
    from index.maintenance import remove_paths
    for removed in remove_paths(index_dir, list(paths)):
        for path, pages in removed.documents:
            click.echo(f"Removed {shown(path)} ({pages} page(s)).")
        if removed.is_folder:
            pages = sum(n for _, n in removed.documents)
            click.echo(f"Removed {len(removed.documents)} document(s) ({pages} page(s)) under {shown(removed.target)}.")


@index_group.command("verify")
@index_option
@click.option("--repair", is_flag=True, help="Rebuild what is derivable (full-text rows, FAISS) from the pages.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@friendly_errors
def verify_cmd(index_dir, repair, as_json):
    """Check the index: SQLite sound; full-text rows, passages and FAISS agree in ids and content.

    Exit 0 when consistent, 1 when a check fails.
    """
    from index.maintenance import verify

    report = verify(index_dir, repair=repair)
    if as_json:
        click.echo(json.dumps({**asdict(report), "index": shown(report.index), "ok": report.ok}, indent=2))
    else:
        for line in report.repaired:
            click.echo(f"Repaired: {line}.")
        for c in report.checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        for note in report.notes:
            click.echo(f"note {note}")
        click.echo(f"Index {shown(report.index)} is " + ("consistent." if report.ok else
                   "NOT consistent: see FAIL above; `pagerag index verify --repair` fixes what is derivable."))
    if not report.ok:
        raise SystemExit(1)
