"""What the OCR settings look at in a page's pixels (grayscale, before Tesseract reads it): whether
it is set in text columns (`column_share`, picks the page segmentation), whether it has dark areas
(`dark_share`, gates the inverted retry), and its ruled lines (`erase_rules`, painted white).

    psm = 3 if column_share(gray) >= COLUMNS_SHARE else 6
    gray = erase_rules(gray)

All numpy, O(pixels) with running sums; index/ocr.py's Tesseract calls them.
"""
from __future__ import annotations

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
