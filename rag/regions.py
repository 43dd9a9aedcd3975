"""Regions: words of a page that support a text, merged into a box around them all and one per line.

Boxes are page fractions (DPI-independent); `Region.pixels(width, height)` gives page pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from index.words import Word

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass
class Region:
    """Words that support a text, merged: `box` around them all, `lines` one box per line."""

    box: Box  # page fractions
    lines: list[Box]
    text: str
    score: float
    words: list[int] = field(default_factory=list)  # indexes into the page's words
    how: str = "terms"  # 'span': the text read as a run of words; 'terms': its words found one by one;
    # 'field': the value beside the label of the field a question asks for; 'cell': a table's cell, in the
    # column headed `label` and the row named `row` (rag.tables)
    fit: float | None = None  # for an answer's span: its similarity plus its place beside the field's label
    label: str | None = None  # for a field: its label as read on the page; for a cell: its column's header
    row: str | None = None  # for a cell: the words of its row that the question named

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        return scale(self.box, width, height)


def scale(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Page fractions -> pixels of a width x height page: (0.5, 0.5, 1, 1), 100, 200 -> (50, 100, 100, 200)."""
    x0, y0, x1, y1 = box
    return (math.floor(x0 * width), math.floor(y0 * height), math.ceil(x1 * width), math.ceil(y1 * height))


def union(words: list[Word]) -> Box:
    return (min(w.x0 for w in words), min(w.y0 for w in words), max(w.x1 for w in words), max(w.y1 for w in words))


def region(words: list[Word], indexes: list[int], score: float) -> Region:
    """A Region for some of the page's words: a box per line, one around them all, their text in order."""
    indexes = sorted(indexes)
    by_line: dict[int, list[Word]] = {}
    for i in indexes:
        by_line.setdefault(words[i].line, []).append(words[i])
    lines = sorted((union(ws) for ws in by_line.values()), key=lambda b: (b[1], b[0]))
    return Region(box=union([words[i] for i in indexes]), lines=lines,
                  text=" ".join(words[i].text for i in indexes), score=round(score, 4), words=indexes)
