"""Tables: the cell a question asks for, in the column its field heads and the row its other words name.

    table_cell(words, box_of("Price"), "What is the price of the walnut barrel?")
    # -> Region(how='cell', text='215.50', label='Price', row='Walnut barrel', ...)
    table_cell(words, box_of("Price"), "What is the price?")   # -> None (no row named: the caller's field value)

Rows and columns are read from where the words sit, ruled or not: a row is the words whose
centres stand at one height; a row splits into cells at gaps wider than CELL_GAP line heights;
a cell of a lower row belongs to the header cell it overlaps most across (values are left-,
right- or centre-aligned under their header). A header row has at least two cells, none longer than
HEAD_WORDS words (a line of prose in two columns is no header); a form's label (ending in a
colon) heads no column, names no row and is no value. The table's rows (`_body`) follow one
another down from the header, every cell under a header cell.
"""
from __future__ import annotations

from index.words import Word

from .fuzzy import norm
from .regions import Box, Region
from .spans import piece_region, split_words
from .terms import query_terms, term_matches

CELL_GAP = 1.0  # in line heights: a wider gap between words on a row separates cells (a word space is ~0.3)
HEAD_WORDS = 4  # the most words a header cell holds
ROW_GAP = 3.0  # in line heights: the most a table's row stands below the one above it
TITLE_LINES = 2  # lines above a header row read as its table's title (which of two like tables a question names)


def table_cell(words: list[Word], header: Box, question: str, field: str | None = None) -> Region | None:
    """`TableQuestion(words, question).cell(header, field)`: for one header; build a TableQuestion for several."""
    return TableQuestion(words, question).cell(header, field)


class TableQuestion:
    """A question about a page's words, read as asking for a table's cell; the page's words are split
    (`split_words`) and matched to the question's terms once, for every header tried."""

    def __init__(self, words: list[Word], question: str):
        self.pieces, self.origin = split_words(words)
        self.keep = [i for i, w in enumerate(self.pieces) if norm(w.text)]
        self.asked = query_terms(question)  # [(term, its digits)]
        self._bodies: dict[tuple[int, ...], list] = {}  # a header row -> its table's rows (`_body`)
        self.blank = False  # a row the question names was found under a header tried, its cell there empty
        self.reads = {}  # word -> indexes of the terms it reads as (OCR errors allowed)
        for i in self.keep:
            found = {t for t, (key, key_digits) in enumerate(self.asked)
                     if term_matches(key, key_digits, self.pieces[i].text)}
            if found:
                self.reads[i] = found

    def cell(self, header: Box, field: str | None = None) -> Region | None:
        """The cell under the header cell at `header`, on the row below it that holds the most of the question's
        other words (the highest such), not those of the header or of the field's name (`field`, whose label
        `header` is; without one, `header` is one word of the header cell). None when the header is not a
        table's (see the module's note), its cell is not mostly the question's words (or, for a field, more
        than the label), no row below it names at least half the question's other words in cells mostly of
        them, under other headers (a question about a row names little else), or the cell itself is mostly
        the question's words (a value asked for is not in the question); also when the row named has no cell
        in that column (an empty cell) and it holds all the question's other words (a FUNSD question's long
        'on the form where "…" is "…"' names a row by chance), which sets `blank`: the caller boxes no value."""
        pieces, keep = self.pieces, self.keep
        band = tuple(_band(pieces, keep, header))
        heads = _cells(pieces, list(band))
        col = next((c for c, cell in enumerate(heads) if _gap(_span(pieces, cell), (header[0], header[2])) <= 0),
                   None)
        if col is None or len(heads) < 2 or any(len(cell) > HEAD_WORDS for cell in heads) \
                or _is_label(pieces, heads[col]):
            return None
        everything = set(range(len(self.asked)))
        (x0, x1), h = _span(pieces, heads[col]), max(header[3] - header[1], 1e-3)
        if not self._mostly(heads[col], everything) or (field is not None and (x0 < header[0] - h or x1 > header[2] + h)):
            return None
        skip = {norm(t) for t in [*(pieces[i].text for i in heads[col]), *(field or "").split()]}
        wanted = {t for t in everything if self.asked[t][0] not in skip}  # the question's other words
        head_bottom = max(pieces[i].y1 for cell in heads for i in cell)
        head_spans = [_span(pieces, cell) for cell in heads]
        if band not in self._bodies:
            self._bodies[band] = _body(pieces, [i for i in keep if (pieces[i].y0 + pieces[i].y1) / 2 > head_bottom],
                                       head_bottom, head_spans)
        body = self._bodies[band]
        rows = {row: set().union(*(self.reads.get(i, set()) & wanted for i in row)) for row in body}
        for row in sorted((r for r in rows if rows[r]), key=lambda r: (-len(rows[r]), min(pieces[i].y0 for i in r))):
            cells = _cells(pieces, list(row))
            columns = [_nearest(_span(pieces, cell), head_spans) for cell in cells]
            target = [cell for cell, c in zip(cells, columns) if c == col]
            named = [cell for cell, c in zip(cells, columns)
                     if c is not None and c != col and self._mostly(cell, wanted) and not _is_label(pieces, cell)]
            held = set().union(*(self.reads.get(i, set()) & wanted for cell in named for i in cell))
            if not target and held and held == wanted:
                self.blank = True  # the row is named by all the other words, its cell here empty: no value to box
                return None
            if target and 2 * len(held) >= len(wanted) \
                    and not any(self._mostly(cell, everything) or _is_label(pieces, cell) for cell in target):
                r = piece_region(pieces, self.origin, [i for cell in target for i in cell], 1.0)
                r.how, r.label = "cell", " ".join(pieces[i].text for i in heads[col])
                r.row = " ".join(pieces[i].text for cell in named for i in cell)
                return r
        return None

    def title_terms(self, header: Box) -> set[int]:
        """The question's terms read on the table's title: the TITLE_LINES lines just above its header row at `header`,
        each at most ROW_GAP line heights above the next ('Prices 2024' over the second of two like tables)."""
        pieces, found = self.pieces, set()
        top = header[1]
        for _ in range(TITLE_LINES):
            h = max(header[3] - header[1], 1e-3)
            above = [i for i in self.keep if pieces[i].y1 <= top and top - pieces[i].y1 <= ROW_GAP * h]
            if not above:
                break
            low = max(above, key=lambda i: pieces[i].y1)
            line = _band(pieces, self.keep, (pieces[low].x0, pieces[low].y0, pieces[low].x1, pieces[low].y1))
            found |= set().union(*(self.reads.get(i, set()) for i in line))
            top = min(pieces[i].y0 for i in line)
        return found

    def _mostly(self, cell: list[int], terms: set[int]) -> bool:
        """Whether at least half the content words of a cell read as some of the terms."""
        content = [i for i in cell if query_terms(self.pieces[i].text)]
        held = sum(bool(self.reads.get(i, set()) & terms) for i in content)
        return bool(content) and 2 * held >= len(content)


def _is_label(pieces: list[Word], cell: list[int]) -> bool:
    """Whether a cell is a form's label (a word of it ends in a colon: 'Date:', 'Brand: Eclipse')."""
    return any(pieces[i].text.rstrip().endswith(":") for i in cell)


def _body(pieces: list[Word], below: list[int], top: float, heads: list[tuple[float, float]]) -> list[tuple[int, ...]]:
    """The rows of a table under its header row (bottom at `top`), top down, each its words left to right: rows
    follow one another at most ROW_GAP line heights apart and have every cell under a header cell; the
    table ends at the first that does not."""
    rows: list[list[int]] = []
    for i in sorted(below, key=lambda i: (pieces[i].y0 + pieces[i].y1) / 2):
        h = max(pieces[i].y1 - pieces[i].y0, 1e-3)
        if rows and (pieces[i].y0 + pieces[i].y1) / 2 - max(pieces[j].y0 + pieces[j].y1 for j in rows[-1]) / 2 < 0.5 * h:
            rows[-1].append(i)
        else:
            rows.append([i])
    body, bottom = [], top
    for row in rows:
        h = max(max(pieces[i].y1 - pieces[i].y0 for i in row), 1e-3)
        cells = _cells(pieces, sorted(row, key=lambda i: pieces[i].x0))
        if min(pieces[i].y0 for i in row) - bottom > ROW_GAP * h \
                or any(_nearest(_span(pieces, cell), heads) is None for cell in cells):
            break
        body.append(tuple(i for cell in cells for i in cell))
        bottom = max(pieces[i].y1 for i in row)
    return body


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


def _nearest(span: tuple[float, float], heads: list[tuple[float, float]]) -> int | None:
    """The header cell a cell stands under: the one its span overlaps most across; None when it overlaps none."""
    c = min(range(len(heads)), key=lambda c: _gap(span, heads[c]))
    return c if _gap(span, heads[c]) < 0 else None
