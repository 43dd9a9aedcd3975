"""Reading one page to words: the text layer when usable, else OCR. Runs in worker processes."""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput
from .sources import MIN_TEXT_LAYER_CHARS, Limits, page_label, read_image, read_text_layer
from .words import Word


@dataclass(frozen=True)
class PageTask:
    doc_id: int
    path: str
    kind: str
    page_no: int


@dataclass(frozen=True)
class ReadOptions:
    ocr: str | None  # engine name, or None for no OCR
    dpi: int = 200
    force_ocr: bool = False
    limits: Limits = field(default_factory=Limits)
    lang: str = "eng"  # Tesseract language list, e.g. 'deu+eng'
    orient: bool = True  # detect and undo 90/180/270 degree turns


@dataclass
class PageResult:
    task: PageTask
    words: list[Word] = field(default_factory=list)
    width: int = 0  # pixels at the reading DPI (PDF) or of the image
    height: int = 0
    source: str = "none"  # 'text-layer', an OCR engine's name, or 'none'
    rotation: int = 0  # degrees clockwise that turned the image upright (width/height are after it)
    lang: str | None = None  # OCR language; None for text layers
    error: str | None = None
    seconds: float = 0.0
    label: str = ""  # the PDF's page label ('iv', 'A-3'), '' when it has none
    copied: bool = False  # taken from an indexed file with the same bytes (a moved or copied file), not read
    reduced: int = 1  # a JPEG over the pixel limit, read at 1/reduced of its size (width, height: as read)
    no_space: bool = False  # the error was a full disk under the temporary files (TMPDIR): not the file's fault


_engine = None
_options: ReadOptions | None = None


def init_worker(options: ReadOptions) -> None:
    """Pool initializer: one OCR engine per process, single-threaded so processes don't fight."""
    global _engine, _options
    _options = options
    if options.ocr:
        from .ocr import load_engine

        _engine = load_engine(options.ocr, threads=1, lang=options.lang)


_started = None  # in a pool worker: where it says which page it starts (index/readers.py)


def init_pool_worker(options: ReadOptions, started=None, temp_root: str | None = None) -> None:
    """init_worker for a pool process: it dies with the build, and leaves Ctrl-C to the build. Its temporary
    files (pytesseract's images and outputs, those of anything it runs) go to a folder of its own under
    `temp_root`, which the build removes with the pool: a killed worker cleans up nothing itself."""
    import signal

    from .lifeline import die_with_parent

    global _started
    _started = started
    die_with_parent()
    if temp_root is not None:
        import os
        import tempfile

        own = tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=temp_root)
        os.environ["TMPDIR"] = own  # for the processes it starts (tesseract)
        tempfile.tempdir = own  # gettempdir() has read TMPDIR already, at the mkdtemp above
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool; it waits for this page
    init_worker(options)


def _letters(words: list[Word]) -> int:
    return sum(ch.isalnum() for w in words for ch in w.text)


def _from_layer(result: PageResult, layer, dpi: int) -> PageResult:
    """The page read from its PDF text layer (words, and its size at the reading DPI)."""
    words, (w_pt, h_pt) = layer
    result.words, result.source = words, "text-layer"
    result.width, result.height = round(w_pt * dpi / 72), round(h_pt * dpi / 72)
    return result


def read_page(task: PageTask) -> PageResult:
    """Never raises for bad input: the error goes into the result."""
    import time

    t0 = time.perf_counter()
    opts = _options
    result = PageResult(task)
    try:
        path = Path(task.path)
        if task.kind == "pdf":
            result.label = page_label(path, task.page_no)
        short = None  # a text layer too short to trust over OCR, kept in case OCR reads even less
        if task.kind == "pdf" and not opts.force_ocr:
            layer = read_text_layer(path, task.page_no, min_chars=1)
            if layer is not None and (_letters(layer[0]) >= MIN_TEXT_LAYER_CHARS or _engine is None):
                return _from_layer(result, layer, opts.dpi)
            short = layer
        image = read_image(path, task.kind, task.page_no, opts.dpi, opts.limits)
        result.width, result.height = image.size
        result.reduced = image.info.get("reduced", 1)
        if _engine is not None:
            from .orient import read_upright

            if opts.orient:
                result.words, result.rotation = read_upright(_engine, image)
            else:
                result.words = _engine.drop_noise(_engine.recognize(image))
            if result.rotation % 180:
                result.width, result.height = result.height, result.width
            result.source, result.lang = _engine.name, _engine.lang
            if short is not None and _letters(result.words) < _letters(short[0]):
                # a few words of text layer beat an OCR reading of less (a huge page scaled down to the
                # pixel limit, a label over a blank page): never drop text the file holds
                result.rotation, result.lang = 0, None
                return _from_layer(result, short, opts.dpi)
    except BadInput as e:
        result.error = str(e)
    except MemoryError:
        result.error = f"page {task.page_no}: out of memory while reading it"
    except OSError as e:
        result.error = f"page {task.page_no}: {type(e).__name__}: {e}"
        result.no_space = e.errno == errno.ENOSPC  # reading writes only temporary files (images for Tesseract)
    except Exception as e:  # a corrupt file can make any library raise anything
        result.error = f"page {task.page_no}: {type(e).__name__}: {e}"
    finally:
        result.seconds = time.perf_counter() - t0
    return result
