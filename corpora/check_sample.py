#!/usr/bin/env python3
"""Check that every answer in corpora/sample-questions.jsonl can be read on its page.

Text-layer PDF pages are checked with PyMuPDF's get_text(); scanned pages
(JPEG/PNG/TIFF frames, image-only PDF pages) are OCR'd with the `tesseract`
binary (needs it on PATH; no Python OCR package required):

    .venv/bin/python corpora/check_sample.py

Exit status 1 if any answer is not found.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pymupdf
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample"
QUESTIONS = HERE / "sample-questions.jsonl"


def norm(s: str) -> str:
    return " ".join(s.split())


def ocr(img: Image.Image) -> str:
    with tempfile.TemporaryDirectory() as td:
        p = Path(td) / "page.png"
        img.save(p)
        out = subprocess.run(["tesseract", str(p), "stdout", "-l", "eng"],
                             capture_output=True, text=True, check=True)
        return out.stdout


def page_text(path: Path, page: int) -> tuple[str, str]:
    """(method, text) for a 1-based page of a sample file."""
    if path.suffix.lower() == ".pdf":
        with pymupdf.open(path) as doc:
            pg = doc[page - 1]
            t = pg.get_text()
            if t.strip():
                return "text-layer", t
            pix = pg.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
            img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
            return "ocr(pdf image)", ocr(img)
    with Image.open(path) as im:
        im.seek(page - 1)
        frame = im.copy()
        if page == 1:
            frame = ImageOps.exif_transpose(frame)
        return "ocr", ocr(frame.convert("L"))


def main() -> int:
    if not shutil.which("tesseract"):
        print("tesseract not found on PATH; scanned pages cannot be checked", file=sys.stderr)
        return 2
    questions = [json.loads(ln) for ln in QUESTIONS.read_text().splitlines() if ln.strip()]
    bad = 0
    print(f"{'file':52} {'pg':>2} {'method':15} {'answer':32} ok")
    for q in questions:
        method, t = page_text(SAMPLE / q["path"], q["page"])
        ok = q["answer"] in norm(t)
        loose = q["answer"].lower().replace(" ", "") in norm(t).lower().replace(" ", "")
        flag = "yes" if ok else ("~ (case/space)" if loose else "NO")
        bad += not loose
        print(f"{q['path']:52} {q['page']:2d} {method:15} {q['answer']:32} {flag}")
        if not ok:
            words = q["answer"].split()[0]
            ctx = [ln for ln in t.splitlines() if words.lower()[:4] in ln.lower()]
            print(f"    OCR lines near answer: {ctx[:3]}")
    print(f"{len(questions) - bad}/{len(questions)} answers found")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
