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
# Tesseract's page segmentation: one block of text (--psm 6) unless the page shows text columns
# (automatic layout, --psm 3): a gutter with running text on both sides in at least this share
# of the text rows (`column_share`). The smallest share that leaves 98% of the real receipts and
# forms on --psm 6 (148 of 150, 197 of 199); two-column papers and brochures score 0.26-0.63
# (5 of 24 drawn MMLongBench-Doc pages; README "Faint and small print").
COLUMNS_SHARE = 0.25
# Ruled lines erased before Tesseract reads (`erase_rules`): dark runs at least this share of the
# page's long side long and at most this share thick.
RULE_LENGTH = 1 / 30
RULE_THICKNESS = 1 / 300
RULE_CROSSED = 0.12
# Tesseract retries unsure lines inverted (light text on dark) only on pages with dark areas:
# at least DARK_SHARE of the page in squares of DARK_SIDE of its long side (`dark_share`). The
# retry costs ~11% of a form's reading and reads nothing on black-on-white pages; slides and
# brochures print light on dark, receipts and forms almost never (README "Faint and small print").
DARK_SHARE = 0.01
DARK_SIDE = 0.012
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


def column_share(gray) -> float:
    """How much a grayscale page looks like columns of text: the largest share of its text rows
    that hold running text on both sides of one blank vertical band in the middle half of the page.

    Measured on the page reduced to about 500 px (~15 ms): dark pixels (Otsu), smeared along rows
    so words join into bands; a row is text if bands fill a fifth of it; a side is running text if
    bands fill half of the 30% of the width next to the gutter. A two-column paper: 0.3-0.7;
    a receipt's item/price columns or a form's label/value pairs: mostly under 0.2.
    """
    import numpy as np

    factor = max(1, round(max(gray.size) / 500))
    a = np.asarray(gray.reduce(factor) if factor > 1 else gray, dtype=np.uint8)
    dark = a <= _otsu(a)
    h, w = dark.shape
    reach = max(1, w // 100)
    ink = np.concatenate([np.zeros((h, 1), int), np.cumsum(dark, axis=1)], axis=1)
    cols = np.arange(w)
    bands = (ink[:, np.minimum(cols + reach + 1, w)] - ink[:, np.maximum(cols - reach, 0)]) > 0
    bands = bands[bands.sum(axis=1) > 0.2 * w]
    if len(bands) < 10:
        return 0.0
    filled = np.concatenate([np.zeros((len(bands), 1), int), np.cumsum(bands, axis=1)], axis=1)
    span, best = int(0.3 * w), 0.0
    for x in range(w // 4, 3 * w // 4):
        left = filled[:, x] - filled[:, max(0, x - span)] >= 0.5 * min(span, x)
        right = filled[:, min(w, x + 1 + span)] - filled[:, x + 1] >= 0.5 * min(span, w - x - 1)
        best = max(best, float((~bands[:, x] & left & right).mean()))
    return best


def dark_share(gray) -> float:
    """The share of a grayscale page covered by solid dark areas (banners, dark slides, photos), on
    the page reduced to about 500 px: dark pixels (Otsu) that fill a square of DARK_SIDE of its long
    side. Strokes of text are thinner: a page of black text on white scores 0."""
    import numpy as np

    factor = max(1, round(max(gray.size) / 500))
    a = np.asarray(gray.reduce(factor) if factor > 1 else gray, dtype=np.uint8)
    side = max(3, round(max(a.shape) * DARK_SIDE))
    solid = _runs(a <= _otsu(a), side)
    solid = _runs(np.ascontiguousarray(solid.T), side)
    return float(solid.mean())


def erase_rules(gray):
    """The grayscale page with its ruled lines (form boxes, underlines, table rules) painted white.

    A rule is a run of dark pixels (Otsu) at least RULE_LENGTH of the long side long and at most
    RULE_THICKNESS thick, horizontal or vertical, that crosses little ink thicker than itself
    (`_rules`). Solid dark areas (banners, light-on-dark text) are thicker and stay; so do the pixels
    of a rule that a letter's stroke crosses or stands on (descenders through an underline). Read as one block, Tesseract otherwise takes a rule
    touching a line of text for part of it and garbles or drops the line (underlined form headers,
    boxed fields), and reads rules alone as noise words ("|", "—", "~~").
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(gray, dtype=np.uint8)
    small = a[::2, ::2] if a.size > 250_000 else a  # the threshold from every 4th pixel: the same histogram
    dark = a <= _otsu(small)
    long_side = max(a.shape)
    length = max(20, int(long_side * RULE_LENGTH))
    thick = max(3, int(long_side * RULE_THICKNESS))
    hor = _rules(dark, length, thick)
    ver = _rules(np.ascontiguousarray(dark.T), length, thick).T
    if not (hor.any() or ver.any()):
        return gray
    # where a stroke crosses a rule (a descender through an underline, a letter standing on a box's
    # edge) the rule's pixels are the letter's too: a dark run across the rule longer than the rule
    # is thick marks them, and they stay, or "July" underlined reads "Tulv"
    # only the rule's own pixels (dark, in a long run along it) and their anti-aliased edge: a
    # descender's loop just below an underline is not part of the rule
    hor = _grow(hor & _runs(dark, max(8, length // 4)), 1, 0)
    ver = _grow(ver & _runs(np.ascontiguousarray(dark.T), max(8, length // 4)).T, 1, 1)
    out = a.copy()
    text = dark & ~(hor | ver)  # ink that is no rule (a rule meeting another is no letter crossing it)
    out[(hor & ~_crossed(text, hor, thick, 0)) | (ver & ~_crossed(text, ver, thick, 1))] = 255
    return Image.fromarray(out)


def _crossed(text, rules, thick: int, axis: int):
    """The pixels of `rules` (rules running across `axis`) near `text` ink that touches them: where a
    letter's stroke meets or crosses the rule."""
    touch = text & (_shift(rules, 1, axis) | _shift(rules, -1, axis))
    # across the rule: its thickness; along it: a letter's width, so a descender's loop whose bottom
    # lies on the rule (g, y, j) keeps it between the strokes that meet the rule
    return rules & _grow(_grow(touch, thick + 2, axis), 2 * thick, 1 - axis)


def _shift(mask, d: int, axis: int):
    """A boolean mask moved by `d` pixels along `axis` (pixels moved in from the edge are unset)."""
    import numpy as np

    out = np.zeros_like(mask)
    if axis == 0:
        out[max(d, 0):mask.shape[0] + min(d, 0)] = mask[max(-d, 0):mask.shape[0] - max(d, 0)]
    else:
        out[:, max(d, 0):mask.shape[1] + min(d, 0)] = mask[:, max(-d, 0):mask.shape[1] - max(d, 0)]
    return out


def _rules(dark, length: int, thick: int):
    """The horizontal rules in a mask of dark pixels: runs at least `length` long (each pixel joined
    with its neighbours above and below, so a rule a pixel off straight stays one run), at most
    `thick` (+ the join) thick, and crossing little ink thicker than a rule: letters that touch one
    another make long runs too, but their strokes cross them all along."""
    import numpy as np

    runs = _runs(_grow(dark, 1, 0), length)
    if not runs.any():
        return runs
    runs &= ~_runs(np.ascontiguousarray(runs.T), thick + 3).T  # solid areas: banners, dark backgrounds
    ink = runs & dark
    stems = ink & _runs(np.ascontiguousarray(dark.T), thick + 1).T  # ink in strokes thicker than a rule
    return runs & (_window(stems, length) <= RULE_CROSSED * _window(ink, length))


def _window(mask, n: int):
    """Per pixel, how many pixels of `mask` lie in the `n` pixels of its row centred on it."""
    import numpy as np

    h, w = mask.shape
    c = np.zeros((h, w + n + 1), np.int32)
    np.cumsum(mask, axis=1, out=c[:, n // 2 + 1:w + n // 2 + 1])
    c[:, w + n // 2 + 1:] = c[:, w + n // 2:w + n // 2 + 1]
    # c[:, k] = ink in row pixels [0, k - n//2); the window of pixel j is [j - n//2, j + n - n//2)
    return c[:, n:n + w] - c[:, :w]


def _otsu(a) -> int:
    """Otsu's threshold of a uint8 array: the grey level that best splits ink from paper."""
    import numpy as np

    hist = np.bincount(a.ravel(), minlength=256).astype(float)
    below, mass = np.cumsum(hist), np.cumsum(hist * np.arange(256))
    above = below[-1] - below
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num((mass[-1] * below / below[-1] - mass) ** 2 / (below * above))
    return int(np.argmax(between))


def _runs(mask, length: int):
    """The pixels of a boolean mask inside a run of at least `length` set pixels along its rows:
    a morphological opening by a line, in O(pixels) with running sums."""
    import numpy as np

    h, w = mask.shape
    if length > w:
        return np.zeros_like(mask)
    c = np.zeros((h, w + 1), np.int32)
    np.cumsum(mask, axis=1, out=c[:, 1:])
    full = (c[:, length:] - c[:, :-length]) == length  # the run of `length` starting here is all set
    starts = np.zeros((h, w + length), np.int32)  # running count of full starts, shifted by `length`
    np.cumsum(full, axis=1, out=starts[:, length:w + 1])
    starts[:, w + 1:] = starts[:, w:w + 1]
    return starts[:, length:] > starts[:, :w]  # a full run starts within the `length` pixels up to here


def _grow(mask, pad: int, axis: int):
    """A boolean mask dilated by `pad` pixels both ways along `axis`."""
    out = mask.copy()
    for d in range(1, pad + 1):
        if axis == 0:
            out[d:] |= mask[:-d]
            out[:-d] |= mask[d:]
        else:
            out[:, d:] |= mask[:, :-d]
            out[:, :-d] |= mask[:, d:]
    return out


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
