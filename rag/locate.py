"""Finding the words on a page that support a text, as boxes: for a search hit, an answer, a cited statement.

    words = index.page_words(page_id)                       # [Word(text, x0, y0, x1, y1, conf, line), ...]
    locate(words, "9/ 3/ 92", kind="answer")           # -> [Region(box=(0.61, 0.20, 0.67, 0.21), ...)]
    locate(words, "date of the suggestion", kind="query")
    locate(words, 'what is the "Date"?', kind="query")  # -> [Region(how='field', text='9/3/92', ...), ...]

Three ways of looking, all tolerant of OCR errors (`rag.fuzzy`), each in a module of its own:

- a **span** (`rag.spans`) is text that should stand on the page as a run of words (an
  answer's value, a quote). Among the runs that read like it, the question (the `context`)
  decides (`best_span`, here): when it names a field ('what is the "Date"?', `focus`) whose
  label is on the page (`field_labels`), a run's similarity is added to how well it sits
  where that label's value goes (`beside`: right of it, or just below it); else the run
  nearest the question's words wins (a form repeats 'Yes', but only one sits by 'Smoker?').
- a **field** (`rag.fields`) is the value beside the label of the field a question names
  (`field_value`), found without knowing the value: what question-only highlighting
  boxes first, and an answer's box when no run reads like it. In a table (`rag.tables`) it
  is the cell in the column that label heads and the row the question's other words name
  ('the price of the walnut barrel'); a query with no question words ('walnut barrel price')
  gets that cell too when one of its words heads a column and others name a row.
- **terms** (`rag.terms`) are the content words of a query or statement, each matched to
  page words by edit distance (numbers by their digits), merged into line regions.

Boxes are page fractions (DPI-independent); `Region.pixels(width, height)` gives
page pixels (`rag.regions`). The FUNSD localisation figures are in the README ("Evidence on the page").
"""
from __future__ import annotations

from index.words import Word

from .fields import beside, distance, field_names, field_value, focus, is_led, labels_named
from .regions import Region
from .spans import SPAN_MIN, spans, split_words
from .tables import TableQuestion
from .terms import term_words, terms

SPAN_NEAR_MIN = 0.45  # below SPAN_MIN, a span still matches beside the asked field's label (NEAR_LABEL or better)
NEAR_LABEL = 0.5
LABEL_WEIGHT = 0.75  # how much sitting beside that label adds to a span's similarity
CONTEXT_WEIGHT = 0.2  # how much nearness to the question's words adds to a span's similarity


def best_span(words: list[Word], text: str, context: str | None = None) -> Region | None:
    """The run of words that reads most like `text`, helped by the context (the question asked):

    - when the question names a field ('what is the "Date"?', `focus`) and the page has a label
      reading like it, each run scores its similarity plus LABEL_WEIGHT x how well it sits where a
      form puts that label's value (`beside`: right of it on its row, or just below it), so a
      value read a little worse beside its label beats the same value read well elsewhere, and
      a run as little similar as SPAN_NEAR_MIN is a candidate there; in a table, a run in the cell
      of the row the question names (`_cell_asked`) sits there fully, whatever rows lie between;
    - otherwise each run's similarity plus CONTEXT_WEIGHT x its nearness to the context's words
      (each distinct term counted by its nearest occurrence, 1 when touching, averaged)."""
    found = spans(words, text, limit=20, min_score=SPAN_NEAR_MIN)
    named = _labels(words, context, exclude=text) if context else []
    labels = next((found for _, found in named if found), [])  # `field_labels`
    if labels:
        pieces = split_words(words)[0]
        cell = _cell_asked(words, context, named)  # in a table: the cell of the row the question names

        def fit(r: Region) -> float:
            led = is_led(pieces, r.lines[0])
            place = max((s * beside(box, r.box, led) for box, s, _ in labels), default=0.0)
            if cell is not None and set(r.words) & set(cell.words):
                place = max(place, cell.score)
            return r.score + LABEL_WEIGHT * place

        found = [r for r in found if r.score >= SPAN_MIN or fit(r) - r.score >= LABEL_WEIGHT * NEAR_LABEL]
        for r in found:
            r.fit = round(fit(r), 4)
        return max(found, key=lambda r: (r.fit, r.score)) if found else None
    found = [r for r in found if r.score >= SPAN_MIN]
    if not found:
        return None
    # a question naming a field whose label is not on the page: only the field's words say where
    # (the rest of it, which form or whose, says which page)
    anchors = term_words(words, focus(context) or context, exclude=text) if context and len(found) > 1 else []
    if not anchors:
        return found[0]

    def nearness(r: Region) -> float:
        return sum(max(1 / (1 + distance(r.box, w[1:5]) / 0.05) for w in ws) for ws in anchors) / len(anchors)

    return max(found, key=lambda r: (r.score + CONTEXT_WEIGHT * nearness(r), r.score))



KINDS = ("answer", "query", "statement")


def locate(words: list[Word], text: str, kind: str = "query", context: str | None = None,
           limit: int = 3) -> list[Region]:
    """Regions of the page that support `text`, best first.

    kind='answer': the text is a value to find as it stands (the best span, chosen with the
    `context`, the question: beside the label of the field it asks for, else near its words),
    else the value beside that label (`field_value`), else the text's words;
    'query': a search query's words (what search highlighting shows); when the query is a
    question naming a field ('what is the date?'), first the value beside the field's label;
    'statement': a sentence of an answer that cites the page: the sentence as a span when
    it is on the page nearly verbatim, else its words.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not words or not text.strip():
        return []
    if kind == "answer":
        span = best_span(words, text, context)
        if span is not None:
            return [span]
        value = _field_asked(words, context, exclude=text)
        if value is not None:
            return [value]
    elif kind == "statement":
        found = spans(words, text, limit=1)
        if found and found[0].score >= 0.85:
            return found
    elif kind == "query":
        value = _field_asked(words, text) or (_cell_named(words, text) if focus(text) is None else None)
        if value is not None:
            return [value, *terms(words, text, limit=limit - 1)] if limit > 1 else [value]
    return terms(words, text, limit=limit)


def _field_asked(words: list[Word], question: str | None, exclude: str | None = None) -> Region | None:
    """The value of the field a question asks for: in a table, the cell in the column a label of it heads
    and the row the question names (`_cell_asked`), else the value beside its best label; None without one.
    Its score is the label's similarity, its `label` the label as read."""
    named = _labels(words, question, exclude)
    table = TableQuestion(words, question) if any(labels for _, labels in named) else None
    cell = _cell_asked(words, question, named, table)
    if cell is not None or (table is not None and table.blank):  # an empty cell: not the next header's text
        return cell
    for box, score, text in next((found for _, found in named if found), []):  # `field_labels`
        value = field_value(words, box)
        if value is not None:
            value.score, value.label = score, text
            return value
    return None


def _labels(words: list[Word], question: str | None, exclude: str | None = None) -> list[tuple[str, list]]:
    """For each name of the field a question asks for (`field_names`), its labels on the page (`labels_named`);
    the first name's that has any are `field_labels`."""
    names = field_names(question, exclude)
    pieces = split_words(words)[0] if names else []
    return [(name, labels_named(words, name, pieces)) for name in names]


def _cell_asked(words: list[Word], question: str | None, named: list[tuple[str, list]],
                table: TableQuestion | None = None) -> Region | None:
    """The table cell a question asks for: in the column headed by a label of the field it names, under any of
    that field's names (`named`, from `_labels`: 'the walnut barrel's price' -> 'price'), and the row its
    other words name (`table`, made when needed: its `blank` then says whether that row's cell is empty). When the
    row is in several tables (the same item in 'Prices 2023' and 'Prices 2024'), the table whose title holds
    most of the question's words; the first of them."""
    for name, labels in named:
        cells = []
        for box, score, _ in labels:
            table = table or TableQuestion(words, question)
            cell = table.cell(box, field=name)
            if cell is not None:
                cell.score = score
                cells.append((len(table.title_terms(box)) if cells or len(labels) > 1 else 0, -len(cells), cell))
        if cells:
            return max(cells, key=lambda c: c[:2])[2]
    return None


def _cell_named(words: list[Word], query: str) -> Region | None:
    """For a query that names no field in a question's words ('walnut barrel price'): the cell of a table
    whose header is one of its words and whose row holds others (`TableQuestion`, the highest header first)."""
    table = TableQuestion(words, query)
    for i in sorted(table.reads, key=lambda i: (table.pieces[i].y0, table.pieces[i].x0)):
        w = table.pieces[i]
        cell = table.cell((w.x0, w.y0, w.x1, w.y1))
        if cell is not None:
            return cell
    return None
