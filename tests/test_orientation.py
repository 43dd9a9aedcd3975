"""Pages scanned sideways or upside down: detected, turned upright, recorded; boxes in upright coordinates."""
from pathlib import Path

import pytest

from index.orient import quality, upright
from index.words import Word

LINES = ["Quarterly maintenance report for the pumping station",
         "The north intake valve was replaced in March",
         "Budget remaining after repairs: 12,450 dollars",
         "Next inspection is scheduled for the autumn"]


@pytest.mark.parametrize("rotation, corner", [(0, (0, 0)), (90, (1, 0)), (180, (1, 1)), (270, (0, 1))])
def test_upright_turns_clockwise(rotation, corner):
    from PIL import Image

    img = Image.new("L", (40, 20), 255)
    img.putpixel((0, 0), 0)  # the top-left corner ends up at `corner` (as fractions) after turning
    out = upright(img, rotation)
    assert out.size == ((40, 20) if rotation % 180 == 0 else (20, 40))
    x, y = corner[0] * (out.width - 1), corner[1] * (out.height - 1)
    assert out.getpixel((x, y)) == 0


def test_quality_counts_confident_horizontal_words():
    words = [Word("invoice", 0.1, 0.1, 0.3, 0.12, 0.95, 0),   # good
             Word("ta", 0.4, 0.1, 0.45, 0.12, 0.99, 0),       # too short
             Word("~;-'", 0.5, 0.1, 0.6, 0.12, 0.9, 0),       # not letters
             Word("total", 0.1, 0.2, 0.3, 0.22, 0.4, 1),      # not confident
             Word("amount", 0.1, 0.3, 0.12, 0.5, 0.96, 2)]    # a vertical reading: taller than wide
    assert quality(words, (1000, 1000)) == (1, 5)


@pytest.fixture
def turned_page(tmp_path, font_path):
    """A text page saved turned by `rotation` degrees counter-clockwise, without EXIF orientation."""
    from PIL import Image, ImageDraw, ImageFont

    def make(rotation: int) -> Path:
        img = Image.new("RGB", (1100, 1400), "white")
        draw = ImageDraw.Draw(img)
        font = ImageFont.truetype(font_path, 30)
        for i, line in enumerate(LINES):
            draw.text((60, 80 + i * 55), line, fill="black", font=font)
        path = tmp_path / f"turned-{rotation}.png"
        img.rotate(rotation, expand=True).save(path)
        return path

    return make


@pytest.mark.slow
@pytest.mark.parametrize("turned_by", [90, 180, 270])
def test_turned_page_is_read_upright_and_recorded(tmp_path, turned_page, turned_by):
    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.evidence import page_image
    from rag.retrieve import Retriever

    path = turned_page(turned_by)
    folder = tmp_path / "index"
    build(folder, [path], BuildOptions(ocr="tesseract", jobs=1))
    idx = Index.open(folder)
    row = idx.page(str(path), 1)
    assert row["rotation"] == turned_by  # clockwise turn that undoes a counter-clockwise one
    assert (row["width"], row["height"]) == (1100, 1400)
    assert "pumping station" in row["text"] and "12,450 dollars" in row["text"]
    words = {w.text: w[1:5] for w in idx.page_words(row["id"])}
    x0, y0, x1, y1 = words["Quarterly"]  # first word of the first line: top left of the upright page
    assert x0 < 0.1 and y0 < 0.1 and x1 < 0.3
    assert page_image(idx, str(path), 1).size == (1100, 1400)
    hits = Retriever(idx).search("intake valve replaced", k=1, mode="lexical")
    assert hits[0].path == str(path)


@pytest.mark.slow
def test_upright_page_is_not_turned(turned_page):
    from index.ocr import load_engine
    from index.orient import read_upright
    from index.sources import read_image

    path = turned_page(0)
    words, rotation = read_upright(load_engine("tesseract"), read_image(path, "image", 1, 200))
    assert rotation == 0
    assert " ".join(w.text for w in words).startswith(LINES[0])
