"""Images over the pixel limit: a JPEG is read reduced (libjpeg's 1/2, 1/4, 1/8 decoding) to fit it, its words
boxed on the page as read and shown; a decompression bomb, and other formats, are still refused.

Real JPEGs and PNGs generated in tmp_path; real Pillow/libjpeg, Tesseract and SQLite.
"""
from pathlib import Path

import pytest
from fault_kit import FONT, jpeg_bomb

from index.builder import BuildOptions, build
from index.errors import BadInput
from index.sources import Limits, probe, read_image
from index.store import Index


def _poster_jpeg(path: Path, size: tuple[int, int], word_at: tuple[int, int], font_px: int) -> tuple:
    """A white JPEG of `size` with one line of text at `word_at`; returns the text's box as page fractions."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, font_px)
    draw.text(word_at, "GRANARY LEDGER 1897", fill=0, font=font)
    x0, y0, x1, y1 = draw.textbbox(word_at, "GRANARY LEDGER 1897", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=90)
    return x0 / size[0], y0 / size[1], x1 / size[0], y1 / size[1]


def test_a_jpeg_over_the_pixel_limit_is_read_reduced_with_its_boxes_in_place(tmp_path):
    """A JPEG over the pixel limit was refused; it is decoded at 1/2 (here: 3000x2000 px against a 2 MP limit),
    its size and words recorded for the page as read and shown, so a word's box lands on the word."""
    box = _poster_jpeg(tmp_path / "c" / "poster.jpg", (3000, 2000), (1700, 1300), 90)
    limits = Limits(max_pixels=2_000_000)
    report = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", jobs=1, limits=limits))
    assert report.skipped == [] and report.pages_reduced == 1
    idx = Index.open(tmp_path / "idx")
    try:
        [(page_id, width, height)] = idx.db.execute("SELECT id, width, height FROM pages").fetchall()
        words = idx.page_words(page_id)
    finally:
        idx.close()
    assert (width, height) == (1500, 1000)
    granary = next(w for w in words if w.text == "GRANARY")
    assert abs(granary.x0 - box[0]) < 0.01 and abs(granary.y0 - box[1]) < 0.01, (granary, box)
    ledger = next(w for w in words if w.text == "1897")
    assert abs(ledger.x1 - box[2]) < 0.01 and abs(ledger.y1 - box[3]) < 0.02, (ledger, box)
    image = read_image(tmp_path / "c" / "poster.jpg", "image", 1, 200, limits)  # what the viewer shows
    assert image.size == (1500, 1000) and image.info["reduced"] == 2


def test_a_jpeg_claiming_gigapixels_in_a_few_bytes_is_refused_before_decoding(tmp_path):
    """Reducing must not open a door to bombs: a 700-byte JPEG whose header claims 60000x60000 px is refused
    from its header (Pillow's own limit is stepped over for JPEGs, so ours must hold), as are other formats
    over the limit (no cheap reduction there)."""
    from PIL import Image

    jpeg_bomb(tmp_path / "bomb.jpg")
    with pytest.raises(BadInput, match="too large to open safely: it claims 60000×60000 px in"):
        probe(tmp_path / "bomb.jpg", tmp_path)
    with pytest.raises(BadInput, match="decompression bomb"):
        read_image(tmp_path / "bomb.jpg", "image", 1, 200)
    Image.new("L", (3000, 2000), 255).save(tmp_path / "big.png")
    with pytest.raises(BadInput, match="image is 3000×2000 px, over the 2,000,000-pixel limit"):
        probe(tmp_path / "big.png", tmp_path, Limits(max_pixels=2_000_000))


@pytest.mark.slow
def test_a_poster_scan_over_the_default_limit_is_read(tmp_path):
    """A 200-megapixel JPEG (a 600 dpi poster scan) with the default 180 MP limit: decoded at 1/2, not refused."""
    box = _poster_jpeg(tmp_path / "poster.jpg", (16000, 12500), (9000, 7000), 400)
    info = probe(tmp_path / "poster.jpg", tmp_path)
    assert info.n_pages == 1
    image = read_image(tmp_path / "poster.jpg", "image", 1, 200)
    assert image.size == (8000, 6250) and image.info["reduced"] == 2
    x0, y0 = round(box[0] * 8000), round(box[1] * 6250)
    assert image.crop((x0 - 5, y0 - 5, x0 + 60, y0 + 60)).convert("L").getextrema()[0] < 100  # ink where drawn
