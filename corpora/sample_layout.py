"""Shared constants and PyMuPDF page-layout helpers for the sample corpus generator
(corpora/make_sample.py): text lines, word wrap, flowing paragraphs, tables,
money formatting and deterministic PDF saving.
"""

from __future__ import annotations

from decimal import Decimal, ROUND_HALF_UP
from pathlib import Path

import pymupdf


HERE = Path(__file__).resolve().parent
OUT = HERE / "sample"
QUESTIONS = HERE / "sample-questions.jsonl"

DPI = 150
LETTER = (612, 792)           # points
SLIDE = (960, 540)            # 16:9 points
BLACK = (0, 0, 0)
GREY = (0.35, 0.35, 0.35)
FIXED_DATE = "D:20240601120000Z"

HELV, HELV_B, HELV_I = "helv", "hebo", "heit"
TIMES, TIMES_B = "tiro", "tibo"
COUR, COUR_B = "cour", "cobo"

# relpath -> in-memory source document (the layout before any scanning)
SOURCES: dict[str, pymupdf.Document] = {}


def text_len(s: str, font: str, size: float) -> float:
    return pymupdf.get_text_length(s, fontname=font, fontsize=size)


def text(page, x, y, s, size=11, font=HELV, color=BLACK, align="left"):
    """Single line at baseline y. align: left / right / center (x is the anchor)."""
    if align != "left":
        w = text_len(s, font, size)
        x = x - w if align == "right" else x - w / 2
    page.insert_text((x, y), s, fontsize=size, fontname=font, color=color)


def wrap(s: str, width: float, font: str, size: float) -> list[str]:
    """Greedy word wrap; '~' is a non-breaking space (keeps answers on one line)."""
    lines, cur = [], ""
    for word in s.split():
        cand = word if not cur else cur + " " + word
        if cur and text_len(cand.replace("~", " "), font, size) > width:
            lines.append(cur)
            cur = word
        else:
            cur = cand
    if cur:
        lines.append(cur)
    return [ln.replace("~", " ") for ln in lines]


class Flow:
    """Top-to-bottom text flow inside [x0, x1] starting at y."""

    def __init__(self, page, x0, x1, y, size=11, font=HELV, leading=1.38):
        self.page, self.x0, self.x1, self.y = page, x0, x1, y
        self.size, self.font, self.leading = size, font, leading

    def space(self, h):
        self.y += h

    def para(self, s, size=None, font=None, color=BLACK, indent=0, gap=7):
        size = size or self.size
        font = font or self.font
        for ln in wrap(s, self.x1 - self.x0 - indent, font, size):
            self.y += size * self.leading
            text(self.page, self.x0 + indent, self.y, ln, size, font, color)
        self.y += gap
        if self.y > self.page.rect.height - 40:
            raise ValueError(f"page overflow at: {s[:50]!r}")

    def heading(self, s, size=14, font=HELV_B, gap=4, rule=False):
        self.y += 6
        self.para(s, size=size, font=font, gap=gap)
        if rule:
            self.page.draw_line((self.x0, self.y), (self.x1, self.y), color=GREY, width=0.6)
            self.y += 4

    def bullets(self, items, size=None, font=None, gap=3, bullet_r=2.0):
        size = size or self.size
        font = font or self.font
        for it in items:
            lines = wrap(it, self.x1 - self.x0 - 16, font, size)
            for i, ln in enumerate(lines):
                self.y += size * self.leading
                if i == 0:
                    self.page.draw_circle((self.x0 + 5, self.y - size * 0.33), bullet_r,
                                          color=BLACK, fill=BLACK)
                text(self.page, self.x0 + 16, self.y, ln, size, font)
            self.y += gap
        self.y += 4


def table(page, x, y, widths, rows, size=10.5, font=HELV, head_font=HELV_B,
          aligns=None, row_h=None, header=True, grid=True, shade_header=True):
    """Simple ruled table; returns the y below it."""
    row_h = row_h or size * 1.9
    aligns = aligns or ["left"] * len(widths)
    total_w = sum(widths)
    for r, row in enumerate(rows):
        top = y + r * row_h
        if header and r == 0 and shade_header:
            page.draw_rect(pymupdf.Rect(x, top, x + total_w, top + row_h),
                           color=None, fill=(0.88, 0.88, 0.88))
        cx = x
        for c, cell in enumerate(row):
            f = head_font if (header and r == 0) else font
            base = top + row_h * 0.5 + size * 0.35
            if aligns[c] == "right":
                text(page, cx + widths[c] - 5, base, cell, size, f, align="right")
            elif aligns[c] == "center":
                text(page, cx + widths[c] / 2, base, cell, size, f, align="center")
            else:
                text(page, cx + 5, base, cell, size, f)
            cx += widths[c]
    bottom = y + len(rows) * row_h
    if grid:
        for r in range(len(rows) + 1):
            yy = y + r * row_h
            page.draw_line((x, yy), (x + total_w, yy), color=GREY, width=0.5)
        cx = x
        for w in [0] + widths:
            cx += w
            page.draw_line((cx, y), (cx, bottom), color=GREY, width=0.5)
    return bottom


def new_doc() -> pymupdf.Document:
    return pymupdf.open()


def money(d: Decimal) -> str:
    return f"${d:,.2f}"


def cents(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def save_pdf(doc: pymupdf.Document, path: Path, title: str, author: str = "",
             subject: str = "", keywords: str = ""):
    doc.set_metadata({
        "title": title, "author": author, "subject": subject, "keywords": keywords,
        "creator": "pagerag corpora/make_sample.py", "producer": "PyMuPDF",
        "creationDate": FIXED_DATE, "modDate": FIXED_DATE,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, garbage=4, deflate=True, no_new_id=True)
