"""Building and updating an index from files: incremental, resumable, bad input skipped.

    report = build(Path(".pagerag"), [Path("scans/")], BuildOptions(ocr="auto"))

Planning (which files and pages to read; index/build_plan.py) leaves alone a file whose size+mtime (or
else sha256) matches its indexed version. Pages are read (text layer or OCR) in worker processes, then
chunked, embedded and committed in batches (here): one SQLite transaction per batch, so a kill at any
moment loses at most the batch in flight. A page that cannot be read (corrupt data, over `page_timeout`,
or it kills its reader) is recorded as failed and its document indexed without it ("partly indexed").
The options and the report are in index/build_report.py; stopping on a signal in index/build_stops.py.
"""
from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path
from typing import Callable

from .build_plan import Planner, file_sha256  # noqa: F401 (file_sha256 re-exported)
from .build_report import (BuildOptions, BuildReport, Captioner, FailedPage, PartialDocument,  # noqa: F401
                           Skip)  # (all re-exported)
from .build_stops import _STOPS, BuildInterrupted, _sigterm_interrupts
from .chunking import chunk_words
from .embed import (DEFAULT_MODEL, Embedder, OnnxEmbedder, check_model_available, embed_backend, int8_wanted,
                    load_embedder)
from .errors import BadArgument, BadInput, DiskFull, IndexGone
from .lock import WriteLock
from .ocr import resolve_engine, resolve_lang
from .orient import upright
from .pages import PageResult, PageTask, ReadOptions, init_worker, read_page
from .sources import read_image
from .stored_paths import db_path, fs_path, shown, valid_text
from .store import Index, NewChunk, NewPage
from .structure import page_facts
from .words import page_text

CHECKPOINT_SECONDS = 60  # how often the FAISS file is rewritten during a long build
# pages submitted to the reading workers ahead of the commits, per worker. Text-layer pages are read far
# faster than embedded, so a commit takes the ~half of them read meanwhile: 8 a worker makes commits of
# ~8 pages (~30 passages), which keep both embedding threads busy to the end (3 a worker: ~3 pages, one
# thread idle for part of each commit) in fewer transactions. OCR'd pages still commit as they come.
READ_AHEAD = 8


class _Builder(Planner):
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
        self.paths: dict[int, str] = {}  # doc id -> path as stored (stored_paths.db_path)
        self.files: dict[int, tuple] = {}  # doc id -> (path on disk, size, mtime_ns, sha256) when planned
        self.failed: set[int] = set()  # documents that failed whole (skipped, removed)
        self.earlier_failures: dict[int, list[tuple[int, str]]] = {}  # doc id -> [(page_no, reason)] at planning
        self.copies: list[PageResult] = []  # pages of moved or copied files, taken from their indexed twin
        self._n_pages: dict[int, int] = {}  # doc id -> its page count (page structure facts)
        self.last_save = time.monotonic()

    def n_pages(self, doc_id: int) -> int:
        if doc_id not in self._n_pages:
            row = self.idx.db.execute("SELECT n_pages FROM documents WHERE id = ?", (doc_id,)).fetchone()
            self._n_pages[doc_id] = row[0] if row else 1
        return self._n_pages[doc_id]

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
        if any(r.no_space for r in results):  # every page would fail alike, each file blamed for it
            raise DiskFull(_temp_full())
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
        reason = valid_text(reason)  # a file name's odd bytes as \xNN, as `index status` gives them
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
            if e.errno == errno.ENOENT and not os.path.isdir(idx.folder):  # its files live on, unnamed, till closed
                raise IndexGone(f"the index folder {idx.folder} was deleted or moved while this build wrote to it; "
                                "run the build again to make it anew there") from None
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


def _none_read(failures: list[tuple[int, str]]) -> str:
    """Why a file none of whose pages could be read was skipped: its one page's reason, or the first few."""
    if len(failures) == 1:
        return failures[0][1]
    listed = "; ".join(r for _, r in failures[:3])
    return f"none of its {len(failures)} pages could be read: {listed}" + ("; ..." if len(failures) > 3 else "")


def _temp_full() -> str:
    import tempfile

    return (f"the disk holding the temporary folder {tempfile.gettempdir()} is full (pages are written there for "
            "OCR): free some space there, or point TMPDIR at a folder with room, and run the same command again; "
            "the pages committed before are kept")


def _disk_full(folder: Path) -> str:
    return (f"the disk holding the index {folder} is full: the pages committed before are kept and "
            "searchable; free some space and run the same command again to go on")
