"""Reading sideways and upside-down pages: find the rotation that makes a page upright.

    words, rotation = read_upright(engine, image)   # rotation: 0, 90, 180 or 270 (clockwise)
    upright(image, rotation)                        # the page as the words' boxes describe it

Scans without a usable EXIF orientation often come in turned by 90/180/270 degrees, and
OCR of a turned page is garbage. Checking every page would double the OCR bill, so the
first reading decides: an upright page yields mostly confident, word-like, horizontal
tokens (on the dev sets' real receipts and forms, 98% of pages have at least a fifth), a
turned one almost none (under a tenth). Only a page that reads poorly is looked at again:
Tesseract's orientation detector (OSD, `osd.traineddata`) proposes a rotation and OCR
confirms it, because OSD alone is wrong on about a quarter of real pages (bench/ocr_eval.py).
"""
from __future__ import annotations

from .words import Word

ROTATIONS = (0, 90, 180, 270)
# an upright reading has at least this share of good tokens (see `quality`)
UPRIGHT_SHARE = 0.2
# a rotation is taken only if its reading has this many times the good tokens of the first
# (and a few more): a poor upright page must not be turned on noise
BETTER = 1.5
MIN_GAIN = 3


def upright(image, rotation: int):
    """`image` turned `rotation` degrees clockwise (PIL's rotate() turns counter-clockwise)."""
    return image.rotate(-rotation, expand=True) if rotation % 360 else image


def quality(words: list[Word], size: tuple[int, int]) -> tuple[int, int]:
    """(good tokens, tokens): good = confident (≥ 0.7), ≥ 3 characters, mostly letters or
    digits, and wider than tall (Tesseract reads some sideways lines as vertical text, with
    tall boxes: the words are right but the page is still turned).

    A receipt read upright: (52, 89); the same receipt turned 90°: (3, 86).
    """
    width, height = size
    good = 0
    for w in words:
        text = w.text
        if w.conf < 0.7 or len(text) < 3 or sum(ch.isalnum() for ch in text) < 0.6 * len(text):
            continue
        if (w.y1 - w.y0) * height > (w.x1 - w.x0) * width:
            continue
        good += 1
    return good, len(words)


def looks_upright(words: list[Word], size: tuple[int, int]) -> bool:
    good, n = quality(words, size)
    return good >= UPRIGHT_SHARE * n


def osd_rotation(image) -> int | None:
    """Tesseract OSD's proposed clockwise rotation, or None (no OSD data, too little text)."""
    try:
        import pytesseract

        out = pytesseract.image_to_osd(image.convert("L"), config="--psm 0",
                                       output_type=pytesseract.Output.DICT)
    except Exception:  # TesseractError: too few characters, no osd.traineddata, ...
        return None
    return int(out["rotate"]) % 360


def candidates(image, use_osd: bool = True) -> list[int]:
    """Rotations to try on a page that read poorly, most likely first.

    OSD mostly errs between a rotation and its opposite (90 for 270, 0 for 180: 1 in 8
    upside-down receipts in bench/ocr_eval.py), so the opposite is tried too.
    """
    proposed = osd_rotation(image) if use_osd else None
    if proposed is None:
        return [90, 270, 180]
    return [r for r in (proposed, (proposed + 180) % 360) if r]


def read_upright(engine, image, use_osd: bool = True) -> tuple[list[Word], int]:
    """OCR `image`; if the reading looks like a turned page, find the rotation that reads best.

    Returns the words (boxes in the upright page's fractions), without the engine's noise words,
    and that rotation.
    """
    words = engine.recognize(image)
    if looks_upright(words, image.size):
        return engine.drop_noise(words), 0
    best, best_rotation = words, 0
    best_good = quality(words, image.size)[0]
    for rotation in candidates(image, use_osd):
        turned = upright(image, rotation)
        trial = engine.recognize(turned)
        good = quality(trial, turned.size)[0]
        if good >= BETTER * best_good + MIN_GAIN:
            best, best_rotation, best_good = trial, rotation, good
            if looks_upright(trial, turned.size):
                break
    return engine.drop_noise(best), best_rotation
