"""OCR engine settings: the size Tesseract reads at, language lists."""
import pytest

from index.errors import OcrUnavailable
from index.ocr import MAX_OCR_SIDE, MIN_TESSERACT_SIDE, _fit, resolve_lang


@pytest.mark.parametrize("size, min_side, expected", [
    ((1400, 1800), MIN_TESSERACT_SIDE, (1556, 2000)),     # enlarged to the nominal size
    ((400, 500), MIN_TESSERACT_SIDE, (600, 750)),         # enlarged at most 1.5x
    ((1700, 2200), MIN_TESSERACT_SIDE, (1700, 2200)),     # a letter page at 200 dpi: as is
    ((6800, 4000), MIN_TESSERACT_SIDE, (MAX_OCR_SIDE, 2000)),  # too large: reduced
    ((762, 1000), 0, (762, 1000)),                        # RapidOCR: never enlarged
])
def test_fit(size, min_side, expected):
    from PIL import Image

    image, scale = _fit(Image.new("RGB", size, "white"), min_side)
    assert image.size == expected
    assert scale == pytest.approx(expected[0] / size[0], rel=1e-3)


def test_rapidocr_reads_english_only():
    assert resolve_lang("rapidocr", "eng") == "eng"
    with pytest.raises(OcrUnavailable, match="tesseract-ocr-deu"):
        resolve_lang("rapidocr", "deu+eng")


LOREM = ("the quarterly report shows that revenue grew in every region while costs stayed flat and "
         "the board approved a new plan for the coming year with more staff in the northern offices").split()


def _page(columns: int, rows: int = 30, font_size: int = 22, right=None):
    """A white page of running text in `columns` columns (or, with `right`, a left text column and a
    short right-aligned value on each row, like a receipt's items and prices)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1400, 1800), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", font_size)
    width = (1400 - 100 - 60 * (columns - 1)) // columns
    for c in range(columns):
        for r in range(rows):
            words, line = LOREM[(r * 5 + c * 11) % 20:], ""
            for word in words:
                if draw.textlength(line + " " + word, font=font) > width:
                    break
                line = (line + " " + word).strip()
            if right:
                line = " ".join(line.split()[:3])
                draw.text((1300 - draw.textlength(right, font=font), 60 + r * 50), right, fill="black", font=font)
            draw.text((50 + c * (width + 60), 60 + r * 50), line, fill="black", font=font)
    return img


def test_column_share_tells_columns_of_text_from_one_column_and_receipts():
    from index.ocr import COLUMNS_SHARE, column_share

    assert column_share(_page(2).convert("L")) >= 0.5
    assert column_share(_page(1).convert("L")) < COLUMNS_SHARE
    assert column_share(_page(1, right="12.50").convert("L")) < COLUMNS_SHARE  # items and prices
    from PIL import Image

    assert column_share(Image.new("L", (800, 1000), 255)) == 0.0  # blank: no rows of text


@pytest.mark.slow
def test_a_two_column_page_is_read_column_by_column():
    """Real Tesseract: one block (--psm 6) would read across the gutter; a page with columns gets the
    automatic layout, so the left column's lines all come before the right column's."""
    from index.ocr import Tesseract

    words = Tesseract(threads=1).recognize(_page(2, rows=12))
    lines: dict[int, list] = {}
    for w in words:
        lines.setdefault(w.line, []).append(w)
    sides = [max(w.x1 for w in ws) < 0.5 or min(w.x0 for w in ws) > 0.5 for ws in lines.values()]
    assert len(lines) >= 20 and all(sides)  # no line crosses the gutter
    order = [min(w.x0 for w in ws) > 0.5 for ws in lines.values()]
    assert order == sorted(order)  # left column first
