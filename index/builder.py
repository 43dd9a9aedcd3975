"""Building and updating an index from files: incremental, resumable, bad input skipped.

    report = build(Path(".pagerag"), [Path("scans/")], BuildOptions(ocr="auto"))

Plan: walk the inputs; a file whose size+mtime (or else sha256) matches its indexed
version is left alone; a changed one is removed and read again; an interrupted one
resumes at the pages it lacks. A page that cannot be read (corrupt data, over
`page_timeout`, or it kills its reader) is recorded as failed and its document indexed
without it ("partly indexed"); it is not read again until the file changes or
`retry_failed` asks, so a page that hangs for minutes costs one build, not every build. Pages are read (text layer or OCR) in worker
processes, then chunked, embedded and committed in batches: one SQLite transaction
per batch, so a kill at any moment loses at most the batch in flight.
"""
from __future__ import annotations

import errno
import hashlib
import os
import signal
import stat
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from .chunking import chunk_words
from .embed import (DEFAULT_MODEL, Embedder, OnnxEmbedder, check_model_available, embed_backend, int8_wanted,
                    load_embedder)
from .errors import BadArgument, BadInput, DiskFull, UnsupportedFile
from .lock import WriteLock
from .ocr import resolve_engine, resolve_lang
from .orient import upright
from .pages import PageResult, PageTask, ReadOptions, init_worker, read_page
from .sources import Limits, check_size, db_path, fs_path, is_under, kind_of, presence, probe, read_image, shown, walk
from .store import Index, NewChunk, NewPage
from .structure import page_facts
from .words import page_text

CHECKPOINT_SECONDS = 60  # how often the FAISS file is rewritten during a long build
# pages submitted to the reading workers ahead of the commits, per worker. Text-layer pages are read far
# faster than embedded, so a commit takes the ~half of them read meanwhile: 8 a worker makes commits of
# ~8 pages (~30 passages), which keep both embedding threads busy to the end (3 a worker: ~3 pages, one
# thread idle for part of each commit) in fewer transactions. OCR'd pages still commit as they come.
READ_AHEAD = 8


class Captioner(Protocol):
    """Anything that describes a page image in words; `key` names the model and prompt (the cache key)."""

    key: str

    def __call__(self, image) -> str: ...


@dataclass
class BuildOptions:
    ocr: str = "auto"
    lang: str = "eng"  # OCR languages, Tesseract style ('deu+eng'); recorded per page
    dpi: int = 200
    force_ocr: bool = False
    prune: bool = False
    embed_model: str | None = None
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    captioner: Captioner | None = None
    # seconds a page may take to read before its worker is killed and the page recorded as failed; None: no
    # limit (and with jobs=1, pages are read in the build's own process)
    page_timeout: float | None = None
    retry_failed: bool = False  # read again the pages that failed in earlier builds of unchanged files


@dataclass
class FailedPage:
    page: int
    reason: str  # names the page: 'page 17 took longer than 300 s to read (...)'


@dataclass
class PartialDocument:
    """A file indexed without some of its pages (the others are searchable)."""

    path: str
    pages: int  # in the file
    failed: list[FailedPage]
    earlier: bool = False  # they failed in an earlier build and were not read again (`retry_failed` reads them)

    @property
    def indexed(self) -> int:
        return self.pages - len(self.failed)


@dataclass
class Skip:
    path: str
    reason: str
    is_error: bool


@dataclass
class BuildReport:
    index: str
    ocr_engine: str | None = None
    embed_model: str | None = None
    new: int = 0
    changed: int = 0
    resumed: int = 0
    retried: int = 0  # unchanged files whose failed pages were read again (`retry_failed`)
    unchanged: int = 0
    pruned: int = 0
    pages_read: int = 0
    pages_ocr: int = 0
    pages_copied: int = 0  # from an indexed file with the same bytes (moved, renamed, copied): not read again
    pages_reduced: int = 0  # JPEGs over the pixel limit, read at 1/2, 1/4 or 1/8 of their size to fit it
    chunks_added: int = 0
    captions_made: int = 0
    captions_cached: int = 0
    caption_error: str | None = None  # why captioning stopped, if it did
    seconds: float = 0.0
    interrupted: bool = False
    skipped: list[Skip] = field(default_factory=list)
    partial: list[PartialDocument] = field(default_factory=list)  # files under the paths lacking failed pages

    @property
    def errors(self) -> int:
        """Files skipped for an error, and files indexed without some pages (a partly indexed file is a
        problem too: `index build` exits 3)."""
        return sum(s.is_error for s in self.skipped) + len(self.partial)

    @property
    def pages_per_second(self) -> float:
        return self.pages_read / self.seconds if self.seconds else 0.0


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Builder:
    def __init__(self, idx: Index, options: BuildOptions, report: BuildReport, progress):
        self.idx = idx
        self.options = options
        self.report = report
        self.progress = progress
        self.embedder: Embedder | OnnxEmbedder | None = None
        self.encoder_loading = None  # a Future of the encoder, loaded in a thread while workers read
        self.pool = None  # index/readers.Readers: reading workers, started while planning (start_workers)
        self.read_options: ReadOptions | None = None
        self.embed_threads: int | None = None  # None: the encoder's default (all cores)
        self.titles: dict[int, str] = {}
        self.remaining: dict[int, int] = {}  # doc id -> pages still to read
        self.paths: dict[int, str] = {}  # doc id -> path as stored (sources.db_path)
        self.files: dict[int, tuple] = {}  # doc id -> (path on disk, size, mtime_ns, sha256) when planned
        self.failed: set[int] = set()  # documents that failed whole (skipped, removed)
        self.earlier_failures: dict[int, list[tuple[int, str]]] = {}  # doc id -> [(page_no, reason)] at planning
        self.copies: list[PageResult] = []  # pages of moved or copied files, taken from their indexed twin
        self._n_pages: dict[int, int] = {}  # doc id -> its page count (page structure facts)
        self.last_save = time.monotonic()

    # -- planning -------------------------------------------------------------------
    def plan(self, paths: list[Path]) -> list[PageTask]:
        tasks: list[PageTask] = []
        unreadable: set[str] = set()
        self.earlier_failures = self.idx.failed_pages()

        def folder_error(path, e: OSError):
            unreadable.add(db_path(path))
            self.skip(db_path(path), f"cannot read this folder ({e.strerror}); its files were not indexed", True)

        def link_skip(path, reason):
            self.skip(db_path(path), reason, is_error=False)

        for file, root in walk(paths, on_error=folder_error, on_skip=link_skip, exclude=self.idx.folder):
            key = db_path(file)
            try:
                kind = kind_of(file)
            except UnsupportedFile as e:
                self.skip(key, str(e), is_error=False)
                continue
            try:
                tasks.extend(self.plan_file(file, root, kind))
            except (BadInput, OSError) as e:
                self.skip(key, str(e) if isinstance(e, BadInput) else f"cannot read: {e.strerror}", is_error=True)
            self.start_workers(len(tasks), planning=True)
        roots = [db_path(p.resolve()) for p in paths]
        for path, reason, _ in self.idx.skipped():
            if not any(is_under(path, r) for r in roots):
                continue
            if reason.startswith("cannot read this folder"):  # a folder readable again: forget its old skip
                if path not in unreadable:
                    self.idx.clear_skip(path)
            elif _is_folder(fs_path(path)):  # a file now a folder, walked as one: its file's skip is stale
                self.idx.clear_skip(path)
        return tasks

    def plan_file(self, file: Path, root: Path, kind: str) -> list[PageTask]:
        key, st = db_path(file), file.stat()
        if not stat.S_ISREG(st.st_mode):  # reading a pipe would wait forever
            raise BadInput("not a regular file (a pipe, device or socket)")
        doc = self.idx.document(key)
        if doc and doc["status"] == "done" and doc["size"] == st.st_size and doc["mtime_ns"] == st.st_mtime_ns:
            return self.unchanged(doc, file, kind, (str(file), st.st_size, st.st_mtime_ns, doc["sha256"]))
        check_size(st.st_size, self.options.limits)  # before hashing: a 20 GB file is refused at once
        sha = file_sha256(file)
        planned = (str(file), st.st_size, st.st_mtime_ns, sha)
        if doc and doc["sha256"] == sha:
            self.files[doc["id"]] = planned
            self.idx.touch_document(doc["id"], st.st_mtime_ns)
            if doc["status"] == "done":
                self.idx.clear_skip(key)
                return self.unchanged(doc, file, kind, planned)
            self.report.resumed += 1
            done = self.idx.done_pages(doc["id"])
            if not self.options.retry_failed:  # pages that failed before this build was interrupted
                done |= {n for n, _ in self.earlier_failures.get(doc["id"], [])}
            todo = [n for n in range(1, doc["n_pages"] + 1) if n not in done]
            twin = self.idx.twin(sha, doc["n_pages"])
            if twin is not None:  # a copy from a twin was interrupted: copy the rest
                return self.copy_twin(twin, doc["id"], str(file), kind, doc["title"], set(todo))
            return self.schedule(doc["id"], str(file), kind, doc["title"], todo)
        info = probe(file, root, self.options.limits)  # a broken new version leaves the indexed one in place
        if doc:
            self.idx.remove_document(doc["id"])
            self.report.changed += 1
        else:
            self.report.new += 1
        twin = self.idx.twin(sha, info.n_pages)
        doc_id = self.idx.add_document(key, sha, st.st_size, st.st_mtime_ns, kind, info.title, info.n_pages)
        self.files[doc_id] = planned
        if twin is not None:  # the same bytes are indexed elsewhere: their words, re-chunked and embedded here
            return self.copy_twin(twin, doc_id, str(file), kind, info.title)
        return self.schedule(doc_id, str(file), kind, info.title, range(1, info.n_pages + 1))

    def unchanged(self, doc, file: Path, kind: str, planned: tuple) -> list[PageTask]:
        """A finished document whose file is as indexed: nothing to read, unless it lacks pages that failed
        and `retry_failed` asks for them."""
        self.report.unchanged += 1
        failures = self.earlier_failures.get(doc["id"])
        if not failures:
            return []
        if not self.options.retry_failed:  # said again (exit 3), not read again: a page may take minutes to fail
            self.report.partial.append(PartialDocument(doc["path"], doc["n_pages"],
                                                       [FailedPage(n, r) for n, r in failures], earlier=True))
            return []
        self.report.unchanged -= 1
        self.report.retried += 1
        self.files[doc["id"]] = planned
        return self.schedule(doc["id"], str(file), kind, doc["title"], [n for n, _ in failures])

    def copy_twin(self, twin, doc_id: int, file: str, kind: str, title: str,
                  only: set[int] | None = None) -> list[PageTask]:
        """Plan a moved or copied file as copies of its twin's pages: OCR is not run again. Chunks are
        embedded anew (a passage's vector includes its document's title, made from the path), page
        facts and labels are taken from the new path. The twin's failed pages are failed here too (read
        with `retry_failed`)."""
        from .sources import page_label

        wanted = set(range(1, twin["n_pages"] + 1)) if only is None else only
        failed = {n: r for n, r in self.earlier_failures.get(twin["id"], []) if n in wanted}
        stored = [r for r in self.idx.stored_pages(twin["id"]) if r["page_no"] in wanted]
        if {r["page_no"] for r in stored} != wanted - failed.keys():  # the twin lacks a page: read this file
            return self.schedule(doc_id, file, kind, title, sorted(wanted))
        tasks = [PageTask(doc_id, file, kind, n) for n in sorted(failed)] if self.options.retry_failed else []
        for n, reason in failed.items() if not tasks else ():
            self.idx.record_failed_page(doc_id, n, reason)
        self.titles[doc_id], self.paths[doc_id] = title, db_path(file)
        self.remaining[doc_id] = len(stored) + len(tasks)
        for row in stored:
            task = PageTask(doc_id, file, kind, row["page_no"])
            self.copies.append(PageResult(
                task, words=row["words"], width=row["width"], height=row["height"], source=row["source"],
                rotation=row["rotation"], lang=row["lang"], copied=True,
                label=page_label(Path(file), row["page_no"]) if kind == "pdf" else ""))
        if not stored and not tasks:
            self.finish(doc_id)
        return tasks

    def n_pages(self, doc_id: int) -> int:
        if doc_id not in self._n_pages:
            row = self.idx.db.execute("SELECT n_pages FROM documents WHERE id = ?", (doc_id,)).fetchone()
            self._n_pages[doc_id] = row[0] if row else 1
        return self._n_pages[doc_id]

    def schedule(self, doc_id: int, file: str, kind: str, title: str, page_nos) -> list[PageTask]:
        tasks = [PageTask(doc_id, file, kind, n) for n in page_nos]
        self.titles[doc_id], self.paths[doc_id] = title, db_path(file)
        self.remaining[doc_id] = len(tasks)
        if not tasks:
            self.finish(doc_id)
        return tasks

    def prune(self, paths: list[Path]) -> None:
        """Drop the documents under `paths` whose file is gone; a file that cannot be checked (a folder
        on its way unreadable) is kept. Documents elsewhere (another folder, an unmounted disk) stay."""
        roots = [db_path(p.resolve()) for p in paths]
        for doc in self.idx.documents():
            if any(is_under(doc["path"], r) for r in roots) and presence(fs_path(doc["path"])) is False:
                self.idx.remove_document(doc["id"])
                self.report.pruned += 1
        for path, _, _ in self.idx.skipped():
            if any(is_under(path, r) for r in roots) and not os.path.lexists(fs_path(path)):
                self.idx.clear_skip(path)

    # -- reading --------------------------------------------------------------------
    def start_workers(self, pages: int, planning: bool = False) -> None:
        """Spawn the reading workers for `pages` pages to read: no more than those pages, nor the CPUs
        (readers.worker_count). Planning calls this as it finds pages (`planning`): the workers start as
        soon as there are pages for all of them, so that they start Python and load their OCR engine while
        this process goes on planning (hashes and probes files) and loads the encoder. A build with fewer
        pages starts as many workers as it has pages once planned; one with none to read starts none."""
        if self.pool is not None or not pages or self.read_options is None or (
                self.options.jobs <= 1 and not self.options.page_timeout):
            return  # started already, nothing to read, or read here, in this process
        from .readers import Readers, worker_count

        if planning and pages < worker_count(self.options.jobs):
            return
        self.pool = Readers(worker_count(self.options.jobs, pages), self.read_options, self.options.page_timeout,
                            read_ahead=READ_AHEAD)

    def stop_workers(self, kill: bool = False) -> None:
        if self.pool is not None:
            self.pool.stop(kill=kill)
            self.pool = None

    def load_encoder(self, ocr: bool) -> None:
        """Load the encoder (a first build exports it to ONNX) in a thread, while the workers read."""
        from concurrent.futures import ThreadPoolExecutor

        def load():
            embedder = load_embedder(self.report.embed_model, self.idx.folder, passages=True)
            embedder.encode(["warm up"], threads=1 if ocr and self.pool is not None else None)  # makes the int8 graph
            return embedder

        loader = ThreadPoolExecutor(1, thread_name_prefix="encoder")
        self.encoder_loading = loader.submit(load)
        loader.shutdown(wait=False)

    def run(self, tasks: list[PageTask], read_options: ReadOptions) -> None:
        while self.copies:  # no reading: only chunking and embedding, in batches
            batch, self.copies = self.copies[:32], self.copies[32:]
            self.commit(batch)
        if not tasks:
            self.stop_workers()
            return
        pool = self.pool
        if pool is None:
            init_worker(read_options)
            for task in tasks:
                self.commit([read_page(task)])
            return
        finished = False
        try:
            for results in pool.read(tasks, skip_doc=self.failed.__contains__):
                self.commit(results)
            finished = True
        finally:
            self.stop_workers(kill=not finished)  # interrupted: a page that takes hours is not waited for

    def commit(self, results: list[PageResult]) -> None:
        with _STOPS.holding():  # a stop signal waits for the batch: its pages and 'done' marks go together
            self._commit(results)

    def _commit(self, results: list[PageResult]) -> None:
        pages, texts, copied = [], [], []
        for r in results:  # failures first: a failed document's other pages in this batch must not be added
            if r.error and r.task.doc_id not in self.failed:
                changed = self.changed_since_planned(r.task.doc_id)
                if changed:  # pages from two versions of a file are never kept
                    self.fail(r.task.doc_id, changed)
                else:
                    self.page_failed(r.task, r.error)
        for r in results:
            doc_id = r.task.doc_id
            if doc_id in self.failed or r.error:
                continue
            title = self.titles[doc_id]
            chunks = chunk_words(r.words)
            text = page_text(r.words)
            confs = [w.conf for w in r.words]
            page = NewPage(doc_id, r.task.page_no, r.width, r.height, r.source, text, r.words,
                           sum(confs) / len(confs) if confs and r.source != "text-layer" else None, [],
                           rotation=r.rotation, lang=r.lang,
                           facts=page_facts(r.words, r.task.page_no, self.n_pages(doc_id), r.task.path,
                                            (r.width, r.height), r.label))
            for c in chunks or [None]:  # a page without text stays findable by its document's name
                body = c.text if c else ""
                page.chunks.append(NewChunk(body, c.start if c else 0, c.end if c else 0, c.box if c else None, b""))
                texts.append(f"{title}\n{body}")
            pages.append(page)
            copied.append(r.copied)
            self.report.pages_reduced += r.reduced > 1
        if not pages:
            return
        # While OCR workers fill the cores, the encoder runs on one thread: its threads would
        # take turns away from them (bench, torch: ~17 CPU-s less per 45 pages). Text-layer
        # pages leave the workers idle, so their passages get every core.
        ocr = self.pool is not None and any(p.source not in ("text-layer", "none") and not c
                                            for p, c in zip(pages, copied))
        self.embed_threads = 1 if ocr else None
        vectors = self.embed(texts)
        i = 0
        for page in pages:
            for c in page.chunks:
                c.vector = vectors[i].tobytes()
                i += 1
        chunk_ids = self.idx.add_pages(pages, self.titles)  # FAISS gets them too
        self.report.chunks_added += len(chunk_ids)
        for page, was_copied in zip(pages, copied):
            if was_copied:
                self.report.pages_copied += 1
            else:
                self.report.pages_read += 1
                self.report.pages_ocr += page.source not in ("text-layer", "none")
            self.remaining[page.doc_id] -= 1
            if self.remaining[page.doc_id] == 0:
                self.finish(page.doc_id)
        if self.progress is not None:
            self.progress.update(len(pages))
        if time.monotonic() - self.last_save > CHECKPOINT_SECONDS:
            self.idx.save_vectors()
            self.last_save = time.monotonic()

    # -- captions -------------------------------------------------------------------
    def caption_pages(self, captioner: Captioner) -> None:
        """Caption every finished page that has no caption yet: new pages, and older ones on a first --captions.

        Captions are cached by the page image's pixels (with the model and prompt), so a
        file re-read after a change gets its unchanged pages' captions back for free.
        """
        for row in self.idx.pages_without_caption():
            try:
                image = upright(read_image(Path(fs_path(row["path"])), row["kind"], row["page_no"], self.options.dpi,
                                           self.options.limits), row["rotation"])
            except (BadInput, OSError):
                continue  # the file changed or vanished since; the next build deals with it
            key = hashlib.sha256(f"{captioner.key}|{image.size}|".encode() + image.tobytes()).hexdigest()
            caption = self.idx.cached_caption(key)
            if caption is None:
                try:
                    caption = " ".join(captioner(image).split())
                except Exception as e:  # a model failing is not a reason to lose the build
                    self.report.caption_error = f"{type(e).__name__}: {e}"
                    return
                self.report.captions_made += 1
            else:
                self.report.captions_cached += 1
            chunk = None
            if caption:
                vector = self.embed([f"{row['title']}\n{caption}"])[0]
                chunk = NewChunk(caption, 0, 0, None, vector.tobytes(), kind="caption")
            if self.idx.set_caption(row["id"], key, caption, chunk) is not None:  # FAISS gets it too
                self.report.chunks_added += 1

    def embed(self, texts: list[str]):
        if self.embedder is None:
            name = self.report.embed_model
            if self.encoder_loading is not None:
                self.embedder = self.encoder_loading.result()
            else:
                self.embedder = load_embedder(name, self.idx.folder, passages=True)
            meta = self.idx.meta
            if "embed_model" not in meta:
                self.idx.set_meta(embed_model=name, embed_dim=self.embedder.dim)
            self.idx.vectors  # noqa: B018 - load and reconcile now, before this build adds chunks
        return self.embedder.encode(texts, threads=self.embed_threads)

    def page_failed(self, task: PageTask, reason: str) -> None:
        """One page could not be read: recorded (not read again unless asked), the document goes on."""
        if not reason.startswith(f"page {task.page_no}"):
            reason = f"page {task.page_no}: {reason}"
        self.idx.record_failed_page(task.doc_id, task.page_no, reason)
        if self.progress is not None:
            self.progress.update(1)
        self.remaining[task.doc_id] -= 1
        if self.remaining[task.doc_id] == 0:
            self.finish(task.doc_id)

    def finish(self, doc_id: int) -> None:
        changed = self.changed_since_planned(doc_id)
        if changed:
            self.fail(doc_id, changed)
            return
        failures = self.idx.failed_pages(doc_id).get(doc_id, [])
        if failures and not self.idx.done_pages(doc_id):  # no page could be read: the file is skipped
            self.fail(doc_id, _none_read(failures))
            return
        self.idx.finish_document(doc_id)
        self.idx.clear_skip(self.paths[doc_id])
        if failures:
            self.report.partial.append(PartialDocument(self.paths[doc_id], self.n_pages(doc_id),
                                                       [FailedPage(n, r) for n, r in failures]))

    def changed_since_planned(self, doc_id: int) -> str | None:
        """Why the file is not as planned (size, mtime, content), or None: pages from two versions of a
        file are never kept, and a page that failed because the file changed says so."""
        file, size, mtime_ns, sha = self.files[doc_id]
        try:
            st = os.stat(file)
            if (st.st_size, st.st_mtime_ns) == (size, mtime_ns) and file_sha256(Path(file)) == sha:
                return None
        except FileNotFoundError:
            return "the file was deleted while it was being read"
        except OSError as e:
            return f"the file became unreadable while it was being read ({e.strerror})"
        return "the file changed while it was being read; run the build again to index its new version"

    def fail(self, doc_id: int, reason: str) -> None:
        self.failed.add(doc_id)
        self.idx.remove_document(doc_id)
        self.skip(self.paths[doc_id], reason, is_error=True)
        if self.progress is not None:
            self.progress.update(self.remaining.get(doc_id, 0))

    def skip(self, path: str, reason: str, is_error: bool) -> None:
        self.idx.record_skip(path, reason, is_error)
        self.report.skipped.append(Skip(path, reason, is_error))


def build(folder: Path, paths: list[Path], options: BuildOptions | None = None,
          progress: Callable[[int], object] | None = None) -> BuildReport:
    """Index `paths` into `folder`. `progress(total_pages)` may return a tqdm-like object (update, close).

    Ctrl-C or SIGTERM stops it cleanly (BuildInterrupted; the next build resumes); a full
    disk raises DiskFull. Either way what was committed before stays intact.
    """
    import sqlite3

    options = options or BuildOptions()
    t0 = time.perf_counter()
    where = Path(folder).expanduser().resolve()
    inside = [p.resolve() for p in paths if p.resolve() == where or where in p.resolve().parents]
    if inside:  # said before anything is created there
        raise BadArgument(f"{shown(db_path(inside[0]))} is the index folder or lies inside it: it holds no "
                          "documents. Name the folder of your files, and keep the index elsewhere (--index DIR) "
                          "or inside that folder")
    with WriteLock(folder), _sigterm_interrupts():
        idx = Index.open(folder, create=True, check=True)
        report = BuildReport(index=str(idx.folder))
        bar = None
        builder = None
        try:
            report.embed_model = idx.check_model(options.embed_model) or DEFAULT_MODEL
            embed_backend(), int8_wanted()  # a bad setting is an error now, not after the first pages are read
            check_model_available(report.embed_model)  # likewise a model that is missing or not a model
            report.ocr_engine = resolve_engine(options.ocr)
            resolve_lang(report.ocr_engine, options.lang)
            builder = _Builder(idx, options, report, None)
            try:
                read_options = ReadOptions(report.ocr_engine, options.dpi, options.force_ocr, options.limits,
                                           lang=options.lang)
                builder.read_options = read_options
                idx.db.execute("CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256)")  # older v2 files
                tasks = builder.plan(paths)
                if options.prune:  # after planning: a moved file's pages are taken from its old place first
                    builder.prune(paths)
                builder.start_workers(len(tasks))  # a build with fewer pages than workers: now, that many
                todo = len(tasks) + len(builder.copies)
                if todo:
                    builder.load_encoder(ocr=bool(read_options.ocr))
                bar = progress(todo) if progress and todo else None
                builder.progress = bar
                builder.run(tasks, read_options)
                if tasks:
                    idx.fill_printed_numbers(sorted(builder.titles))
                if options.captioner is not None:
                    builder.caption_pages(options.captioner)
            except KeyboardInterrupt:
                report.interrupted = True
            finally:
                if bar is not None:
                    bar.close()
            idx.save_vectors()
        except sqlite3.OperationalError as e:
            if "full" not in str(e):
                raise
            raise DiskFull(_disk_full(idx.folder)) from None
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise DiskFull(_disk_full(idx.folder)) from None
        finally:
            if builder is not None:
                builder.stop_workers()
            idx.close()
    report.seconds = time.perf_counter() - t0
    if report.interrupted:
        raise BuildInterrupted(report)
    return report


def _is_folder(path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _none_read(failures: list[tuple[int, str]]) -> str:
    """Why a file none of whose pages could be read was skipped: its one page's reason, or the first few."""
    if len(failures) == 1:
        return failures[0][1]
    listed = "; ".join(r for _, r in failures[:3])
    return f"none of its {len(failures)} pages could be read: {listed}" + ("; ..." if len(failures) > 3 else "")


def _disk_full(folder: Path) -> str:
    return (f"the disk holding the index {folder} is full: the pages committed before are kept and "
            "searchable; free some space and run the same command again to go on")


@contextmanager
def _sigterm_interrupts():
    """SIGTERM (a service stop, `kill`) and SIGHUP (the terminal closed) stop a build the way Ctrl-C
    does: cleanly, resumable. Any of them arriving while a batch is committed takes effect after it
    (`_STOPS.holding`): a document's last page and its 'done' mark are never split by a stop."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stops = [signal.SIGTERM, signal.SIGHUP]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        stops.append(signal.SIGINT)
    before = {s: signal.signal(s, _STOPS) for s in stops}
    try:
        yield
    finally:
        _STOPS.pending = False  # a stop that came with another error: the build is over either way
        for s, handler in before.items():
            signal.signal(s, handler)


class _DeferredStop:
    """A stop signal's handler: KeyboardInterrupt now, or, inside `holding()`, when it ends."""

    def __init__(self):
        self.depth = 0
        self.pending = False

    def __call__(self, signum, frame):
        if self.depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def holding(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending:
            self.pending = False
            raise KeyboardInterrupt


_STOPS = _DeferredStop()


class BuildInterrupted(KeyboardInterrupt):
    """Ctrl-C during a build: what was committed stays; the next build resumes from there."""

    def __init__(self, report: BuildReport):
        super().__init__("interrupted")
        self.report = report
