#!/usr/bin/env python3
"""Generate the pagerag sample corpus (corpora/sample/) and its question set.

Everything here is invented: companies, people, addresses and figures are
fictional.  The script is deterministic (fixed seeds, fixed PDF metadata, no
network) and only needs pymupdf, pillow and numpy:

    .venv/bin/python corpora/make_sample.py

It deletes and rewrites corpora/sample/ and rewrites
corpora/sample-questions.jsonl.  Every answer string in the question file is
checked against the text laid out on its page before that page is rasterised;
`corpora/check_sample.py` additionally OCRs the scanned files with tesseract.

Modules (all in corpora/): sample_layout (constants, PyMuPDF layout helpers),
sample_scan (scanner / phone-photo effects, JPEG + EXIF), and the documents
themselves in sample_invoices, sample_paperwork and sample_reports.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pymupdf
from PIL import Image

from sample_layout import HERE, OUT, QUESTIONS, SOURCES
from sample_invoices import make_invoices
from sample_paperwork import make_form, make_letter, make_warranty
from sample_reports import make_minutes, make_report, make_slide


def norm(s: str) -> str:
    return " ".join(s.split())


def page_count(path: Path) -> int:
    if path.suffix.lower() == ".pdf":
        with pymupdf.open(path) as d:
            return d.page_count
    with Image.open(path) as im:
        return getattr(im, "n_frames", 1)


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    questions: list[dict] = []
    make_invoices(questions)
    make_letter(questions)
    make_form(questions)
    make_slide(questions)
    make_report(questions)
    make_minutes(questions)
    make_warranty(questions)

    # every answer must be on its page (in the laid-out source) and on no other
    # page of the corpus, so each question has a single right page
    for q in questions:
        hits = [(rel, i + 1) for rel, src in SOURCES.items() for i in range(src.page_count)
                if q["answer"] in norm(src[i].get_text())]
        if hits != [(q["path"], q["page"])]:
            raise SystemExit(f"answer {q['answer']!r} found on {hits}, "
                             f"expected only {q['path']} page {q['page']}")
    with open(QUESTIONS, "w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q, ensure_ascii=False) + "\n")

    files = sorted(p for p in OUT.rglob("*") if p.is_file())
    total_pages = total_bytes = 0
    print(f"{'file':58} {'pages':>5} {'KiB':>8}")
    for p in files:
        n, size = page_count(p), p.stat().st_size
        total_pages += n
        total_bytes += size
        print(f"{str(p.relative_to(OUT)):58} {n:5d} {size / 1024:8.1f}")
    print(f"{'TOTAL (' + str(len(files)) + ' files)':58} {total_pages:5d} {total_bytes / 1024:8.1f}")
    print(f"wrote {len(questions)} questions to {QUESTIONS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
