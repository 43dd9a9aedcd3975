"""OCR engine settings: the size Tesseract reads at, language lists."""
import pytest

from index.errors import OcrUnavailable
from index.ocr import MAX_OCR_SIDE, MIN_TESSERACT_SIDE, _fit, resolve_lang


@pytest.mark.parametrize("size, min_side, expected", [
    ((900, 1200), MIN_TESSERACT_SIDE, (1050, 1400)),      # enlarged to the nominal size
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
    from index.page_pixels import COLUMNS_SHARE, column_share

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


def _form(logo: bool = True):
    """A generated form: a letterhead with a logo (arcs and blots) beside the company's name, a rule
    across the page, an underlined title, and fields in a ruled box (what psm 6 garbles or drops)."""
    import random

    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1400, 1000), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 26)
    bold = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 30)
    rng = random.Random(3)
    if logo:
        for r in range(10, 70, 7):
            d.arc((150 - r, 100 - r, 150 + r, 100 + r), rng.randrange(0, 180), rng.randrange(200, 360), fill="black", width=3)
        for _ in range(40):
            x, y = rng.randrange(240, 560), rng.randrange(50, 150)
            d.ellipse((x, y, x + rng.randrange(3, 12), y + rng.randrange(3, 12)), fill="black")
    d.text((700, 70), "Harbor Supply Company", fill="black", font=bold)
    d.line((60, 190, 1340, 193), fill=(90, 90, 90), width=3)     # a grey rule, a little off straight
    d.text((400, 230), "PURCHASE ORDER REQUEST", fill="black", font=bold)
    d.line((395, 266, 1000, 266), fill="black", width=3)         # the title's underline, touching it
    d.rectangle((60, 320, 1340, 900), outline="black", width=3)
    d.line((380, 320, 380, 900), fill="black", width=2)
    for i, (key, value) in enumerate(FIELDS):
        y = 360 + i * 100
        d.text((100, y), key, fill="black", font=font)
        d.text((420, y), value, fill="black", font=font)
        d.line((410, y + 40, 1300, y + 40), fill="black", width=2)  # the line the value is written on
        d.line((60, y + 80, 1340, y + 80), fill="black", width=2)
    return img


FIELDS = [("Vendor", "Lakeside Paper Mills"), ("Ordered by", "Dana Whitfield"), ("Date", "March 14, 2024"),
          ("Amount", "1,284.50"), ("Account", "Facilities maintenance")]


def test_erase_rules_paints_rules_white_and_keeps_text_and_dark_areas():
    import numpy as np
    from PIL import ImageDraw, ImageFont

    from index.page_pixels import erase_rules

    page = _form(logo=False)
    d = ImageDraw.Draw(page)
    d.rectangle((420, 930, 1300, 990), fill="black")  # a dark banner with light text: not a rule
    d.text((440, 940), "light on dark", fill="white", font=ImageFont.truetype(
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 30))
    before = np.asarray(page.convert("L"))
    after = np.asarray(erase_rules(page.convert("L")))
    ink = lambda a, box: int((a[box[1]:box[3], box[0]:box[2]] < 128).sum())  # noqa: E731
    for box in [(100, 186, 1300, 198),     # the grey, slanted rule
                (70, 318, 1330, 324),      # the box's top edge
                (378, 500, 384, 880),      # its column rule
                (930, 262, 1000, 270),     # the underline past the title's end
                (700, 398, 1290, 404)]:    # a field's line beyond its value
        assert ink(before, box) > 0 and ink(after, box) == 0, box
    for box in [(100, 360, 370, 396),      # a field's name and its value, above its line
                (400, 360, 1000, 396),
                (400, 228, 900, 262),      # the underlined title
                (700, 60, 1200, 110),      # the company's name
                (420, 930, 1300, 990)]:    # the banner
        assert ink(after, box) >= 0.97 * ink(before, box), box


def test_drop_noise_drops_unsure_marks_and_short_tokens_out_of_text_but_keeps_numbers():
    from index.ocr import drop_noise
    from index.words import Word

    def line(n, *tokens, y=0.1, h=0.02):
        return [Word(t, 0.1 * i, y, 0.1 * i + 0.08, y + h, c, n) for i, (t, c) in enumerate(tokens)]

    noise = line(0, ("Gee", 0.2), ("orale", 0.04), ("ua", 0.14), ("te", 0.27), ("—", 0.3), ("7.40", 0.1))
    text = line(1, ("Total", 0.96), ("-", 0.9), ("amount", 0.95), ("of", 0.3), ("RM", 0.2), ("12.50", 0.2), ("|", 0.9),
                y=0.2)
    letterhead = (line(2, ("ae", 0.2), ("Harbor", 0.96), ("Supply", 0.95), y=0.3)
                  + [Word("oS", 0.05, 0.28, 0.09, 0.36, 0.2, 2)])  # a logo's mark, four times as tall
    kept = [w.text for w in drop_noise(noise + text + letterhead)]
    # the unsure line keeps its faint number and its longer word; the sure line all but its stray
    # mark; the letterhead loses the tall logo mark but not the unsure short word of its own size
    assert kept == ["orale", "7.40", "Total", "-", "amount", "of", "RM", "12.50", "ae", "Harbor", "Supply"]


@pytest.mark.slow
def test_a_form_with_a_logo_and_rules_reads_its_text_without_the_noise():
    """Real Tesseract, as the index reads a page: the ruled box's fields, the underlined title and the
    company's name are read (one block without the rules erased loses the boxed fields); the rules
    leave no marks, and what Tesseract read out of the logo loses its unsure letters."""
    from index.ocr import NOISE_WORD_CONF, Tesseract
    from index.orient import read_upright

    engine = Tesseract(threads=1)
    words, rotation = read_upright(engine, _form())
    assert rotation == 0
    text = " ".join(w.text for w in words)
    for key, value in FIELDS:
        assert f"{key} {value}" in text
    assert "PURCHASE ORDER REQUEST" in text and "Harbor Supply Company" in text
    in_logo = lambda w: w.x1 < 0.45 and w.y1 < 0.17  # noqa: E731
    assert all(any(ch.isalnum() for ch in w.text) for w in words if not in_logo(w))  # no rule read as a mark
    raw = [w for w in engine.recognize(_form()) if in_logo(w)]
    kept = [w for w in words if in_logo(w)]
    dropped = {w.text for w in raw} - {w.text for w in kept}
    assert any(ch.isalpha() for t in dropped for ch in t), (raw, kept)  # the noise had letters, now gone
    # what stays of the logo: digits (numbers stay, however unsure), tokens read with some confidence,
    # marks between them
    assert all(w.conf >= NOISE_WORD_CONF or any(ch.isdigit() for ch in w.text)
               for w in kept if any(ch.isalnum() for ch in w.text)), kept


@pytest.mark.slow
@pytest.mark.parametrize("size", [16, 34])
def test_underlined_words_keep_their_descenders(size):
    """An underline runs through g, j, p, q, y: erasing it must leave the letters whole (with the whole
    rule painted white, 'July' read as 'Tulv' and 'typography jig' as 'tvpoaraphy iid')."""
    from PIL import Image, ImageDraw, ImageFont

    from index.ocr import Tesseract
    from index.orient import read_upright

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", size)
    page = Image.new("RGB", (1700, 2200), "white")
    d = ImageDraw.Draw(page)
    lines = ["Subject: Emergency plumbing repair in Apt. 3G", "Please reply by Monday, July 15",
             "typography jig quietly"]
    for i, line in enumerate(lines):
        y = 200 + i * size * 3
        base = y + font.getmetrics()[0]
        d.text((150, y), line, font=font, fill="black")
        d.line([150, base + 4, 150 + d.textlength(line, font=font), base + 4], fill="black", width=3)
    words, _ = read_upright(Tesseract(threads=1), page)
    text = " ".join(w.text for w in words)
    for line in lines:
        assert line in text
