"""Generated files for the tests and the benchmarks: text PDFs, page images, TIFFs with garbled frames, a JPEG
bomb; `cli` runs this checkout's command line in a subprocess, `indexed_texts` reads an index's texts back.
The awkward corpus of bench/faults.py and test_faults.py is in bad_corpus.py. Nothing here mocks pagerag:
the files are real bytes on disk.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def text_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    import pymupdf as fitz

    doc = fitz.open()
    for text in pages:
        page = doc.new_page()
        y = 72
        for line in text.split("\n"):
            page.insert_text((72, y), line, fontsize=11)
            y += 16
    if title:
        doc.set_metadata({"title": title})
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def page_image(lines: list[str], size=(600, 300), mode="RGB"):
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 28) if Path(FONT).exists() else ImageFont.load_default(size=28)
    for i, line in enumerate(lines):
        draw.text((20, 20 + i * 40), line, fill="black", font=font)
    return img.convert(mode) if mode != "RGB" else img


def save_image(img, path: Path, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)


def put_bytes(path: Path, data: bytes) -> None:
    """`data` written at `path`, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def multi_tiff_garbled(path: Path, lines: list[str], *garbled: int) -> None:
    """A TIFF of one frame per line, all of which open; the pages numbered in `garbled` have garbage for
    compressed data (they fail only when read)."""
    from PIL import Image

    frames = [page_image([line]) for line in lines]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    img = Image.open(io.BytesIO(bytes(data)))
    for page in garbled:
        img.seek(page - 1)
        start, length = img.tag_v2[273][0], img.tag_v2[279][0]
        data[start:start + length] = bytes(range(256)) * (length // 256) + bytes(length % 256)
    put_bytes(path, bytes(data))


def jpeg_bomb(path: Path) -> None:
    """A JPEG of ~700 bytes whose header claims 60000 x 60000 pixels."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (16, 16), 255).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2  # height, width
    put_bytes(path, bytes(data))


def cli(*args, env=None, **kw):
    """`python -m cli ARGS` in a subprocess on this checkout's code (offline), its output captured as text."""
    import subprocess
    import sys

    base = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=300, **kw)


def indexed_texts(index: Path) -> dict[str, str]:
    """{file name: its pages' text} of the index at `index`."""
    from index.store import Index

    idx = Index.open(index)
    try:
        return {Path(p).name: t for p, t in idx.db.execute(
            "SELECT d.path, group_concat(p.text, ' ') FROM pages p JOIN documents d ON d.id = p.doc_id GROUP BY d.id")}
    finally:
        idx.close()
