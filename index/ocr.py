"""OCR engines behind one interface: an upright RGB page image in, words with boxes out.

    engine = load_engine(resolve_engine("auto"), lang=resolve_lang("tesseract", "deu+eng"))
    words = engine.recognize(image)   # list[Word], boxes as page fractions

(index/orient.py turns sideways pages upright around `recognize`.)

`auto` prefers Tesseract (about 4x faster on dense pages and better retrieval on
receipts, see README "OCR engines"), falling back to RapidOCR, whose models ship
inside its wheel and need no system package.
"""
from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod

from .errors import OcrUnavailable
from .page_pixels import COLUMNS_SHARE, DARK_SHARE, column_share, dark_share, erase_rules
from .words import Word

AUTO_ORDER = ("tesseract", "rapidocr")
DEFAULT_LANG = "eng"
# OCR works on images no larger than this on their long side: beyond ~300 dpi for a
# letter page there is nothing more to read and the engines slow down sharply.
MAX_OCR_SIDE = 3400
# Tesseract reads images no smaller than this on their long side (a letter page at ~130 dpi):
# smaller scans are enlarged (at most MAX_UPSCALE) first. Below it, small print and faint
# receipts are lost; enlarging further (to 2000 px) read the forms a little better (FUNSD R@1
# 0.908 vs 0.905) but cost dense pages up to a third more (dev sets: README "Faint and small print").
MIN_TESSERACT_SIDE = 1400
MAX_UPSCALE = 1.5
# Noise words dropped from Tesseract's reading (`drop_noise`): unsure short tokens in unsure lines.
NOISE_WORD_CONF = 0.3
NOISE_LINE_CONF = 0.4
NOISE_SHORT = 4


class OcrEngine(ABC):
    name: str
    lang: str  # what the index records as the page's OCR language

    @abstractmethod
    def recognize(self, image) -> list[Word]:
        """Words of an RGB PIL image, in reading order."""

    def drop_noise(self, words: list[Word]) -> list[Word]:
        """The words without what the engine read out of logos, stamps and specks (after
        `recognize`, once the page's orientation is settled: index/orient.py judges a reading by
        its share of good words, noise included)."""
        return words


class Tesseract(OcrEngine):
    name = "tesseract"

    def __init__(self, lang: str = DEFAULT_LANG, threads: int | None = None, psm: int | None = None,
                 extra: str = "", min_side: int = MIN_TESSERACT_SIDE, rules: bool = True,
                 invert: bool | None = None):
        import pytesseract

        self._tess = pytesseract
        self.lang = lang
        # page segmentation mode: 3 automatic, 4 one column, 6 one block, 11 sparse; None: 6 or 3 by
        # the page's columns (`column_share`)
        self.psm = psm
        self.extra = extra  # more command-line options (bench/ablations)
        self.min_side = min_side
        self.rules = rules  # erase ruled lines before reading (`erase_rules`)
        # Tesseract's second try of unsure lines inverted (light on dark): always, never, or None:
        # on pages with dark areas (`dark_share`)
        self.invert = invert
        if threads:  # read by the tesseract binary each call pytesseract makes
            os.environ["OMP_THREAD_LIMIT"] = str(threads)

    @staticmethod
    def available() -> bool:
        try:
            import pytesseract  # noqa: F401
        except ImportError:
            return False
        return shutil.which("tesseract") is not None

    def recognize(self, image) -> list[Word]:
        """Tesseract's words. Its automatic layout (--psm 3) drops lines or whole pages of faint and
        dot-matrix receipts and of ruled forms, which it reads as one block (--psm 6); one block runs
        the columns of a multi-column page together, so pages with columns keep --psm 3."""
        gray = image.convert("L")
        psm = self.psm
        if psm is None:
            psm = 3 if column_share(gray) >= COLUMNS_SHARE else 6
        invert = self.invert
        if invert is None:
            invert = dark_share(gray) >= DARK_SHARE
        if self.rules:
            gray = erase_rules(gray)
        gray, _ = _fit(gray, self.min_side)
        w, h = gray.size
        # pytesseract hands the image over in a file: uncompressed PGM, not PNG (whose compression
        # took ~25 ms of a ~0.7 s page; the pixels, so the words, are the same)
        gray.format = "PPM"
        config = f"--psm {psm} {self.extra}" + ("" if invert else " -c tessedit_do_invert=0")
        d = self._tess.image_to_data(gray, lang=self.lang, config=config,
                                     output_type=self._tess.Output.DICT)
        words, line_ids = [], {}
        for i, text in enumerate(d["text"]):
            text = text.strip()
            conf = float(d["conf"][i])
            if not text or conf < 0:
                continue
            key = (d["block_num"][i], d["par_num"][i], d["line_num"][i])
            lid = line_ids.setdefault(key, len(line_ids))
            x, y, bw, bh = d["left"][i], d["top"][i], d["width"][i], d["height"][i]
            words.append(Word(text, x / w, y / h, (x + bw) / w, (y + bh) / h, conf / 100, lid))
        return words

    def drop_noise(self, words: list[Word]) -> list[Word]:
        return drop_noise(words)


class RapidOcr(OcrEngine):
    name = "rapidocr"
    lang = "eng"  # the models in its wheel read Latin letters (English) and Chinese

    def __init__(self, lang: str = DEFAULT_LANG, threads: int | None = None):
        import logging

        from rapidocr_onnxruntime import RapidOCR

        # one ONNX thread per worker process: with a thread per core in every worker they
        # contend (bench: +27% pages/s with 1 thread in each of 2 workers)
        limits = {"intra_op_num_threads": threads, "inter_op_num_threads": threads} if threads else {}
        self._engine = RapidOCR(**limits)
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)

    @staticmethod
    def available() -> bool:
        import importlib.util

        return importlib.util.find_spec("rapidocr_onnxruntime") is not None

    def recognize(self, image) -> list[Word]:
        import numpy as np

        image, _ = _fit(image)
        w, h = image.size
        if min(w, h) < 32:  # RapidOCR cannot resize a sliver (1x10000); white margins change nothing
            from PIL import Image

            canvas = Image.new("RGB", (max(w, 32), max(h, 32)), "white")
            canvas.paste(image, (0, 0))
            image = canvas
        result, _ = self._engine(np.asarray(image))
        words: list[Word] = []
        # result: [[4 corner points], text, score] per detected line, top to bottom
        for lid, (box, text, score) in enumerate(_reading_order(result or [])):
            xs = [p[0] for p in box]
            ys = [p[1] for p in box]
            x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
            tokens = text.split()
            n_chars = max(1, sum(len(t) for t in tokens) + len(tokens) - 1)
            pos = 0
            for tok in tokens:  # split the line box in proportion to characters
                a = x0 + (x1 - x0) * pos / n_chars
                pos += len(tok)
                b = x0 + (x1 - x0) * pos / n_chars
                pos += 1
                words.append(Word(tok, a / w, y0 / h, b / w, y1 / h, float(score), lid))
        return words


def drop_noise(words: list[Word], word_conf: float | None = None, line_conf: float | None = None,
               short: int | None = None) -> list[Word]:
    """Tesseract's words without the noise it reads in logos, rules, stamps and specks.

    Read as one block, such marks come out as marks and short unsure tokens ("Gee orale Shank ua
    te re ee", "\\ ~ ="), alone on a line or beside real text. What goes:
    - a mark with no letter or digit ("|", "—", "~", "©") unless it stands between two words of
      its line ("2019 - 2020", "B & W");
    - a token of at most NOISE_SHORT letters and no digit that Tesseract is unsure of (confidence
      under NOISE_WORD_CONF) and that does not sit among text: its line is unsure (mean
      confidence under NOISE_LINE_CONF), or it is twice as tall as the page's sure words (a logo
      beside a letterhead's name).
    Numbers stay however faint (the totals and dates on thermal receipts), and so do longer words
    (faint and handwritten form entries) and unsure short words in lines of sure text.
    Thresholds: README "Faint and small print".
    """
    word_conf = NOISE_WORD_CONF if word_conf is None else word_conf
    line_conf = NOISE_LINE_CONF if line_conf is None else line_conf
    short = NOISE_SHORT if short is None else short
    total: dict[int, list[float]] = {}
    for w in words:
        acc = total.setdefault(w.line, [0.0, 0])
        acc[0] += w.conf
        acc[1] += 1
    heights = sorted(w.y1 - w.y0 for w in words if w.conf >= 0.9)
    tall = 2 * heights[len(heights) // 2] if heights else float("inf")
    keep = []
    for w in words:
        core = [ch for ch in w.text if ch.isalnum()]
        s, n = total[w.line]
        keep.append(bool(core) and not (
            w.conf < word_conf and len(core) <= short and not any(ch.isdigit() for ch in core)
            and (s < line_conf * n or w.y1 - w.y0 >= tall)))
    kept = []
    for i, w in enumerate(words):
        if keep[i] or (not any(ch.isalnum() for ch in w.text) and 0 < i < len(words) - 1
                       and keep[i - 1] and keep[i + 1] and words[i - 1].line == w.line == words[i + 1].line):
            kept.append(w)
    return kept


def _reading_order(lines):
    """Sort detected line boxes top-to-bottom, then left-to-right within a visual row."""
    def key(item):
        box = item[0]
        return (min(p[1] for p in box), min(p[0] for p in box))

    lines = sorted(lines, key=key)
    rows, out = [], []
    for item in lines:
        y_top = min(p[1] for p in item[0])
        height = max(p[1] for p in item[0]) - y_top
        if rows and y_top - rows[-1][0] < 0.5 * max(height, 1):
            rows[-1][1].append(item)
        else:
            rows.append((y_top, [item]))
    for _, row in rows:
        out.extend(sorted(row, key=lambda it: min(p[0] for p in it[0])))
    return out


def _fit(image, min_side: int = 0):
    """The image scaled to a long side within [min_side (enlarging at most MAX_UPSCALE x), MAX_OCR_SIDE]."""
    long_side = max(image.size)
    if long_side > MAX_OCR_SIDE:
        scale = MAX_OCR_SIDE / long_side
    elif long_side < min_side:
        scale = min(MAX_UPSCALE, min_side / long_side)
    else:
        return image, 1.0
    from PIL import Image

    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS), scale


ENGINES: dict[str, type[OcrEngine]] = {"tesseract": Tesseract, "rapidocr": RapidOcr}


def resolve_engine(name: str) -> str | None:
    """'auto' -> the first available engine; 'none' -> None; otherwise check it is available."""
    if name == "none":
        return None
    if name == "auto":
        for candidate in AUTO_ORDER:
            if ENGINES[candidate].available():
                return candidate
        raise OcrUnavailable(
            "no OCR engine is installed: install Tesseract (`apt-get install tesseract-ocr`) "
            "or `pip install rapidocr-onnxruntime`, or pass --ocr none to index text-layer PDFs only")
    if name not in ENGINES:
        raise OcrUnavailable(f"unknown OCR engine '{name}'; choose one of auto, {', '.join(ENGINES)}, none")
    if not ENGINES[name].available():
        hint = ("apt-get install tesseract-ocr && pip install pytesseract" if name == "tesseract"
                else "pip install rapidocr-onnxruntime")
        raise OcrUnavailable(f"OCR engine '{name}' is not installed: {hint} (or use --ocr auto)")
    return name


def resolve_lang(engine: str | None, lang: str) -> str:
    """Check that `engine` can read the Tesseract-style language list `lang` ('deu+eng').

    A missing Tesseract pack is an error that names its Debian package (tesseract-ocr-deu).
    """
    codes = lang.split("+")
    if not lang or not all(re.fullmatch(r"[A-Za-z_]+", c) for c in codes):
        raise OcrUnavailable(f"'{lang}' is not a language list: use Tesseract codes joined by '+', e.g. deu+eng")
    if engine == "tesseract":
        import pytesseract

        installed = set(pytesseract.get_languages(config=""))
        missing = [c for c in codes if c not in installed]
        if missing:
            packages = " ".join("tesseract-ocr-" + c.lower().replace("_", "-") for c in missing)
            prefix = os.environ.get("TESSDATA_PREFIX")
            where = (f"; TESSDATA_PREFIX is set to {prefix!r}: Tesseract looks for packs only there, so point it "
                     "at the folder holding the .traineddata files, or unset it" if prefix else "")
            raise OcrUnavailable(
                f"Tesseract has no language pack for {', '.join(missing)}: install it with "
                f"`apt-get install {packages}` (installed: {', '.join(sorted(installed - {'osd'})) or 'none'}){where}")
    elif engine == "rapidocr" and set(codes) != {"eng"}:
        raise OcrUnavailable(
            f"RapidOCR's bundled models read English only, not '{lang}': install Tesseract and the packs "
            f"(`apt-get install tesseract-ocr " + " ".join("tesseract-ocr-" + c.lower().replace("_", "-")
                                                              for c in codes if c != "eng") + "`)")
    return lang


def load_engine(name: str, threads: int | None = None, lang: str = DEFAULT_LANG) -> OcrEngine:
    """An engine instance; `threads` caps its threads (worker processes use 1 each)."""
    return ENGINES[name](lang=lang, threads=threads)
