"""Index throughput: pages/s of `pagerag index build` against its floor, measured in the same run.

    import throughput
    report = throughput.run(["tesseract"], pages=40)   # -> ThroughputReport
    report.results[0].ratio                            # build pages/s / OCR-alone pages/s

Scanned pages (harness.py): the OCR-only files of corpora/sample (or real scans with `eval_dir`),
copied into a temp dir with a one-pixel mark per copy so every file has its own hash.
The floor is the same OCR engine class (index/ocr.py) in the same number of spawn
workers, each reading its page from disk with `index.sources.read_image` as the
builder does. Text-layer pages: a synthetic PDF, against PyMuPDF extracting its words.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import (REPO, BenchError, Page, Span, Synth, eval_scan_set, log, measure, pages_of, run_cli,
                     sample_scan_set, scanned_files, write_text_pdf)


# -- the floor: OCR alone ---------------------------------------------------------------
_engine = None


def _init_ocr_worker(engine: str) -> None:
    """As index.pages.init_worker: single-threaded OCR, one engine per process."""
    global _engine
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    from index.ocr import load_engine

    _engine = load_engine(engine)


def _ocr_page(page: Page, dpi: int) -> tuple[int, int, float, float]:
    """(process id, words, wall-clock start, seconds) of reading one page from disk and recognising it."""
    from index.sources import read_image

    start, t0 = time.time(), time.perf_counter()
    image = read_image(Path(page.path), page.kind, page.page_no, dpi)
    words = _engine.recognize(image)
    return os.getpid(), len(words), start, time.perf_counter() - t0


@dataclass
class Floor:
    """The floor a build is compared with: the unavoidable work on the same pages."""

    what: str
    pages: int
    span: Span
    busy: float = 0.0  # seconds spent inside the per-page work, summed over pages
    startup: float = 0.0  # pool created -> every worker has started its first page
    words: int = 0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.span.wall


def ocr_alone(pages: list[Page], engine: str, jobs: int, dpi: int = 200) -> Floor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    with measure() as span:
        t0 = time.time()
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_ocr_worker, initargs=(engine,)) as pool:
            results = list(pool.map(partial(_ocr_page, dpi=dpi), pages))
    first: dict[int, float] = {}  # worker pid -> when it started its first page
    for pid, _, start, _ in results:
        first[pid] = min(first.get(pid, start), start)
    return Floor(f"{engine} alone, {jobs} spawn procs", len(pages), span, busy=sum(r[3] for r in results),
                 startup=max(first.values()) - t0, words=sum(r[1] for r in results))


def text_layer_alone(pdf: Path) -> Floor:
    """PyMuPDF reading every page's words (as index.sources.read_text_layer), one process."""
    import pymupdf

    n = 0
    with measure() as span, pymupdf.open(pdf) as doc:
        for page in doc:
            page.get_text("words", sort=True)
            n += 1
    return Floor("PyMuPDF words, 1 proc", n, span, busy=span.wall)


# -- the build, and where its time goes -------------------------------------------------
@dataclass
class Build:
    pages: int  # pages read by this build
    pages_ocr: int
    chunks: int
    builder_seconds: float  # BuildReport.seconds: inside build(), after the CLI has started
    span: Span  # the whole `pagerag index build` process
    skipped: int = 0

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.span.wall


def cli_build(inputs: list[Path], index: Path, ocr: str, jobs: int | None, env: dict[str, str] | None = None) -> Build:
    args = ["index", "build", *map(str, inputs), "--index", str(index), "--ocr", ocr]
    report, span = run_cli(*args, *(["-j", str(jobs)] if jobs else []), env=env)
    return Build(report["pages_read"], report["pages_ocr"], report["chunks_added"], report["seconds"], span,
                 len(report["skipped"]))


def passages(index: Path) -> list[list[str]]:
    """The texts the builder embedded, grouped by page: 'title\\npassage' as _Builder.commit makes them."""
    from index.store import Index

    idx = Index.open(index)
    try:
        rows = idx.db.execute("SELECT c.page_id, d.title, c.text FROM chunks c JOIN pages p ON p.id = c.page_id"
                              " JOIN documents d ON d.id = p.doc_id ORDER BY c.id").fetchall()
    finally:
        idx.close()
    pages: dict[int, list[str]] = {}
    for page_id, title, text in rows:
        pages.setdefault(page_id, []).append(f"{title}\n{text}")
    return list(pages.values())


def embed_alone(embedders: dict, by_page: list[list[str]]) -> dict[str, tuple[Span, Span]]:
    """Embedding the passages alone with each encoder ('onnx', 'torch'), interleaved: one page per
    call, as the builder does when OCR'd pages arrive one by one, and all in one call."""
    out: dict[str, list[Span]] = {name: [] for name in embedders}
    for name, embedder in embedders.items():
        with measure() as per_page:
            for texts in by_page:
                embedder.encode(texts)
        out[name].append(per_page)
    for name, embedder in embedders.items():
        with measure() as batched:
            embedder.encode([t for texts in by_page for t in texts])
        out[name].append(batched)
    return {name: (a, b) for name, (a, b) in out.items()}


@dataclass
class ModelLoad:
    """Loading the embedding model in a fresh process, as every build does once."""

    span: Span  # whole process: interpreter, imports, load, one encode, exit
    imports: float  # seconds to import the encoder's libraries
    load: float  # seconds to load the model and encode one text


_MODEL_LOAD = """
import json, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "torch":
    import sentence_transformers
else:
    import onnxruntime, tokenizers
t1 = time.perf_counter()
from index.embed import DEFAULT_MODEL, Embedder, load_embedder
e = Embedder() if sys.argv[1] == "torch" else load_embedder(DEFAULT_MODEL)
e.encode(["warm up"])
print(json.dumps({"imports": t1 - t0, "load": time.perf_counter() - t1}))
"""


def model_load(backend: str) -> ModelLoad:
    """`backend`: 'onnx' (what builds and searches use) or 'torch' (sentence-transformers)."""
    with measure() as span:
        out = subprocess.run([sys.executable, "-c", _MODEL_LOAD, backend], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise BenchError(f"loading the embedding model failed:\n{out.stderr[-2000:]}")
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return ModelLoad(span, times["imports"], times["load"])


@dataclass
class Throughput:
    name: str  # 'scans (sample x5) / tesseract'
    build: Build
    floor: Floor
    embed: dict[str, tuple[Span, Span]] | None = None  # encoder -> this build's passages embedded alone
    # in this process (one call per page, as the builder), and in one call
    what_if: Build | None = None  # the same build with `what_if_env` set in its environment
    what_if_env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.build.pages_per_second / self.floor.pages_per_second

    @property
    def cpu_ratio(self) -> float:
        """CPU per page of the floor / of the build: the ratio without other people's load in it."""
        return (self.floor.span.cpu / self.floor.pages) / (self.build.span.cpu / self.build.pages)


def _check(result: Throughput, expect_ocr: bool) -> Throughput:
    b = result.build
    if b.pages != result.floor.pages:
        raise BenchError(f"{result.name}: the build read {b.pages} pages, the floor {result.floor.pages}; "
                         "is the temp dir on a disk that keeps mtimes? (see the build's skipped files)")
    if expect_ocr and b.pages_ocr != b.pages:
        result.notes.append(f"only {b.pages_ocr} of {b.pages} pages went through OCR")
    return result


def warm_up(engine: str, page: Page) -> None:
    """OCR one page here first, so that neither run pays for a cold disk cache of the engine's models."""
    from index.ocr import load_engine
    from index.sources import read_image

    load_engine(engine).recognize(read_image(Path(page.path), page.kind, page.page_no, 200))


# torch in the builder's main process is the third party on cores the OCR workers fill
WHAT_IF = {"OMP_NUM_THREADS": "1"}


def scan_throughput(files: list[Path], engine: str, jobs: int, label: str, embedder=None,
                    what_if: bool = False) -> Throughput:
    """OCR alone, then `pagerag index build --ocr ENGINE` on the same files; the floor runs first."""
    pages = pages_of(files)
    warm_up(engine, pages[0])
    log(f"{label} / {engine}: {engine} alone on {len(pages)} pages in {jobs} workers")
    floor = ocr_alone(pages, engine, jobs)
    default_jobs = None if jobs == (os.cpu_count() or 1) else jobs
    with tempfile.TemporaryDirectory(prefix="pagerag-bench-") as tmp:
        log(f"{label} / {engine}: pagerag index build")
        build = cli_build(files, Path(tmp) / "index", engine, default_jobs)
        result = Throughput(f"{label} / {engine}", build, floor)
        if embedder is not None:
            result.embed = embed_alone(embedder, passages(Path(tmp) / "index"))
        if what_if:
            log(f"{label} / {engine}: pagerag index build with {WHAT_IF}")
            result.what_if = cli_build(files, Path(tmp) / "what-if", engine, default_jobs, env=WHAT_IF)
            result.what_if_env = WHAT_IF
    return _check(result, expect_ocr=True)


FP32 = {"PAGERAG_EMBED_INT8": "0"}  # builds embed passages with the int8 graph unless told not to


def text_throughput(n_pages: int, jobs: int, embedder=None, seed: int = 0, what_if: bool = False) -> Throughput:
    """A synthetic `n_pages`-page text PDF (150-350 words a page): PyMuPDF words alone, then the build."""
    with tempfile.TemporaryDirectory(prefix="pagerag-bench-") as tmp:
        pdf = Path(tmp) / "docs" / "synthetic-report.pdf"
        pdf.parent.mkdir()
        write_text_pdf(pdf, Synth(seed, words=(150, 350)), range(n_pages))
        log(f"text-layer PDF: PyMuPDF alone, then pagerag index build ({n_pages} pages)")
        floor = text_layer_alone(pdf)
        default_jobs = None if jobs == (os.cpu_count() or 1) else jobs
        build = cli_build([pdf], Path(tmp) / "index", "none", default_jobs)
        result = Throughput(f"text-layer PDF ({n_pages} p.)", build, floor)
        if embedder is not None:
            result.embed = embed_alone(embedder, passages(Path(tmp) / "index"))
        if what_if:  # the same build embedding its passages in fp32, as before the int8 graph
            log(f"text-layer PDF: pagerag index build with {FP32}")
            result.what_if = cli_build([pdf], Path(tmp) / "fp32", "none", default_jobs, env=FP32)
            result.what_if_env = FP32
    return _check(result, expect_ocr=False)


def available_engines() -> list[str]:
    from index.ocr import ENGINES

    return [name for name, engine in ENGINES.items() if engine.available()]


@dataclass
class ThroughputReport:
    jobs: int
    page_set: str
    results: list[Throughput]
    model_load: dict[str, ModelLoad] | None = None  # 'onnx', 'torch'


def run(engines: list[str], pages: int = 40, text_pages: int = 200, jobs: int | None = None,
        eval_dir: Path | None = None, breakdown: bool = True, what_if: bool = True) -> ThroughputReport:
    """Every throughput figure of bench/run.py; `breakdown` adds model load and embedding alone,
    `what_if` the first engine's build again with WHAT_IF in its environment."""
    jobs = jobs or os.cpu_count() or 1
    missing = sorted(set(engines) - set(available_engines()))
    if missing:
        raise BenchError(f"OCR engine(s) not installed: {', '.join(missing)}; pass --engines "
                         f"{' '.join(available_engines()) or 'with an installed engine'}")
    embedder = None
    if breakdown:
        from index.embed import DEFAULT_MODEL, Embedder, load_embedder

        embedder = {"onnx": load_embedder(DEFAULT_MODEL), "onnx int8": load_embedder(DEFAULT_MODEL, passages=True),
                    "torch": Embedder()}
        for e in embedder.values():
            e.encode(["warm up"])
    results = []
    with tempfile.TemporaryDirectory(prefix="pagerag-bench-scans-") as tmp:
        if eval_dir is not None:
            files = eval_scan_set(eval_dir, pages)
            label = f"{eval_dir.parent.name}/{eval_dir.name} scans"
        else:
            files = sample_scan_set(Path(tmp), pages)
            label = f"sample scans x{len(files) // len(scanned_files())}"  # copies of the sample's scanned files
        for i, engine in enumerate(engines if pages else []):
            results.append(scan_throughput(files, engine, jobs, label, embedder, what_if and i == 0))
    if text_pages:
        results.append(text_throughput(text_pages, jobs, embedder, what_if=what_if))
    report = ThroughputReport(jobs, label, results)
    if breakdown:
        log("embedding model load in a fresh process: ONNX, then torch")
        report.model_load = {backend: model_load(backend) for backend in ("onnx", "torch")}
    return report


if __name__ == "__main__":
    sys.exit("run the benchmarks with `python bench/run.py --only throughput`")
