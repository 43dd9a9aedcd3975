"""Tables: the cell a question asks for, in the column its field heads and the row its other words name.

    table_cell(words, box_of("Price"), "What is the price of the walnut barrel?")
    # -> Region(how='cell', text='215.50', label='Price', row='Walnut barrel', ...)
    table_cell(words, box_of("Price"), "What is the price?")   # -> None (no row named: the caller's field value)

Rows and columns are read from where the words sit, ruled or not: a row is the words whose
centres stand at one height; a row splits into cells at gaps wider than CELL_GAP line heights;
a cell of a lower row belongs to the header cell nearest it across (values are left-, right-
or centre-aligned under their header). A header row has at least two cells, none longer than
HEAD_WORDS words (a line of prose in two columns is no header); a form's label (ending in a
colon) heads no column.
"""
from __future__ import annotations

from index.words import Word

from .fuzzy import norm
from .regions import Box, Region
from .spans import piece_region, split_words
from .terms import query_terms, term_matches

CELL_GAP = 1.0  # in line heights: a wider gap between words on a row separates cells (a word space is ~0.3)
HEAD_WORDS = 4  # the most words a header cell holds


def table_cell(words: list[Word], header: Box, question: str) -> Region | None:
    """The cell under the header cell at `header`, on the row below it that holds the most of the question's
    words (the highest such), some of them outside that column; the header's own words do not count.
    None when the header is not a table's (see the module's note) or no row below it is named."""
    pieces, origin = split_words(words)
    keep = [i for i, w in enumerate(pieces) if norm(w.text)]
    heads = _cells(pieces, _band(pieces, keep, header))
    col = next((c for c, cell in enumerate(heads) if _gap(_span(pieces, cell), (header[0], header[2])) <= 0), None)
    if col is None or len(heads) < 2 or any(len(cell) > HEAD_WORDS for cell in heads) \
            or pieces[heads[col][-1]].text.rstrip().endswith(":"):
        return None
    wanted = query_terms(question, exclude=" ".join(pieces[i].text for i in heads[col]))
    hits: dict[int, set[int]] = {}  # word -> the question's terms it reads as, for words below the header row
    head_bottom = max(pieces[i].y1 for cell in heads for i in cell)
    for i in keep:
        if (pieces[i].y0 + pieces[i].y1) / 2 > head_bottom:
            found = {t for t, (key, key_digits) in enumerate(wanted) if term_matches(key, key_digits, pieces[i].text)}
            if found:
                hits[i] = found
    rows: dict[tuple[int, ...], set[int]] = {}  # a row below the header -> the terms its words read as
    for i in hits:
        row = tuple(_band(pieces, keep, (pieces[i].x0, pieces[i].y0, pieces[i].x1, pieces[i].y1)))
        rows.setdefault(row, set()).update(hits[i])
    for row in sorted(rows, key=lambda r: (-len(rows[r]), min(pieces[i].y0 for i in r))):
        cells = _cells(pieces, list(row))
        columns = [_nearest(pieces, cell, heads) for cell in cells]
        target = [cell for cell, c in zip(cells, columns) if c == col]
        named = [cell for cell, c in zip(cells, columns) if c != col and any(i in hits for i in cell)]
        if target and named:
            r = piece_region(pieces, origin, [i for cell in target for i in cell], 1.0)
            r.how, r.label = "cell", " ".join(pieces[i].text for i in heads[col])
            r.row = " ".join(pieces[i].text for cell in named for i in cell)
            return r
    return None


def _band(pieces: list[Word], keep: list[int], box: Box) -> list[int]:
    """The words on the row of a box (their centres within half a line height of its centre), left to right."""
    h = max(box[3] - box[1], 1e-3)
    centre = (box[1] + box[3]) / 2
    return sorted((i for i in keep if abs((pieces[i].y0 + pieces[i].y1) / 2 - centre) < 0.5 * h),
                  key=lambda i: pieces[i].x0)


def _cells(pieces: list[Word], row: list[int]) -> list[list[int]]:
    """A row's words (left to right) cut into cells where the gap between two is wider than CELL_GAP line heights."""
    cells: list[list[int]] = []
    for i in row:
        if cells:
            last = pieces[cells[-1][-1]]
            h = max(last.y1 - last.y0, pieces[i].y1 - pieces[i].y0, 1e-3)
            if pieces[i].x0 - last.x1 <= CELL_GAP * h:
                cells[-1].append(i)
                continue
        cells.append([i])
    return cells


def _span(pieces: list[Word], cell: list[int]) -> tuple[float, float]:
    return min(pieces[i].x0 for i in cell), max(pieces[i].x1 for i in cell)


def _gap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """How far apart two spans across the page are; when they overlap, minus how much: (0, 2), (3, 4) -> 1."""
    return max(a[0], b[0]) - min(a[1], b[1])


def _nearest(pieces: list[Word], cell: list[int], heads: list[list[int]]) -> int:
    """The header cell a cell stands under: the one overlapping it most across, else the nearest."""
    span = _span(pieces, cell)
    return min(range(len(heads)), key=lambda c: _gap(span, _span(pieces, heads[c])))
