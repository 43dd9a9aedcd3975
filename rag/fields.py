"""Fields of a form: the field a question names (`focus`), its label on the page, and the value beside it.

    focus('what is the "Date"?')                 # -> 'Date'
    field_labels(words, 'what is the "Date"?')   # -> [(box of 'Date:', 1.0, 'Date:')]
    field_value(words, box)                      # -> Region(how='field', text='9/3/92', ...)

A field's value is found without knowing it: the words right of its label on its row, or
just below it (`field_value`); `beside` scores how well any box sits where that value goes.
"""
from __future__ import annotations

import math
import re

from index.words import Word

from .fuzzy import norm
from .regions import Box, Region
from .spans import Layout, piece_region, spans, split_words
from .terms import query_terms

LABEL_MIN = 0.75  # a run reading at least this much like the field asked for is its label
RIGHT_REACH = 6.0  # line heights right of a label where `beside` has halved (FUNSD: median gap 2.8)
BELOW_REACH = 1.5  # ... and below it, starting or centred under it (within ALIGN line heights)
ALIGN = 2.0
FIELD_LINES = 3  # lines below a value's first that may continue it
FIELD_REACH = 15.0  # line heights right of a label within which its value's first word may start


_WH = re.compile(r"\b(?:what|which|who|whom|whose|when|where|how\s+(?:much|many|long|old))\b", re.I)
_FOCUS = re.compile(r"\s+(?:is|are|was|were|'s)\s+(?:the\s+|an?\s+)?(?P<focus>.+?)[\s?.!]*", re.I)


def focus(question: str | None) -> str | None:
    """The field a question asks for: what follows its last 'what/who/when/... is (the)', quotes dropped.

    focus('On the form headed "Q", what is the "Date"?') -> 'Date'; focus('Who is the payee?') -> 'payee';
    focus('What did the board decide?') -> None (no field named)."""
    return _focus(question)[0]


_OWNER = re.compile(r"\w+(?:'s|’s|s')\s+", re.I)  # a possessive before the field's name
_OF = re.compile(r"\s+(?:of|on|in|for|from|at|to|by|with|about|per)\s+", re.I)


def _focus(question: str | None) -> tuple[str | None, bool]:
    """(the field asked for, whether the question quoted it)."""
    if not question:
        return None, False
    for m in reversed(list(_WH.finditer(question))):
        f = _FOCUS.fullmatch(question, m.end())
        if f:
            said = f.group("focus").strip()
            name = said.strip("\"'“”‘’«»").strip()
            quoted = name != said  # a quoted label is taken as it is, even 'TO' or 'BY'
            return (name, quoted) if norm(name) and (quoted or query_terms(name)) else (None, False)
    return None, False


def field_labels(words: list[Word], question: str | None, exclude: str | None = None) -> list[tuple[Box, float, str]]:
    """Where the page has the label of the field a question asks for (`focus`): (box, similarity, text) of each
    run reading like it (at least LABEL_MIN), best first; [] when the question names no field or its
    label is not on the page. A field named in the question's own words ('the applicant's date of
    birth on the form') that is not on the page as a whole is looked for without its owner ('date
    of birth on the form'), then by its head, the words before its first preposition ('date').
    Among equally similar runs, one set apart like a label (a colon, or a gap after it) comes
    before the same words in running text ('TO:' before 'sent to'), then one in the question's
    own letter case, then the highest on the page."""
    pieces = split_words(words)[0]
    for wanted in field_names(question, exclude):
        found = labels_named(words, wanted, pieces)
        if found:
            return found
    return []


def field_names(question: str | None, exclude: str | None = None) -> list[str]:
    """The names the field a question asks for may have on the page, longest first: its `focus`, then (unless
    quoted) without its owner, then its head; [] when it names none, or names `exclude`.

    field_names("What is the applicant's date of birth?") -> ["applicant's date of birth", 'date of birth', 'date']
    """
    name, quoted = _focus(question)
    if not name or (exclude and norm(name) == norm(exclude)):
        return []
    names = [name]
    if not quoted:  # "the applicant's date of birth" -> "date of birth" -> "date"
        for shorter in (_OWNER.split(name)[-1], _OF.split(_OWNER.split(name)[-1])[0]):
            if shorter.strip() and shorter.strip() not in names and query_terms(shorter):
                names.append(shorter.strip())
    return names


def labels_named(words: list[Word], wanted: str, pieces: list[Word] | None = None) -> list[tuple[Box, float, str]]:
    """Runs of words reading like a field's name (at least LABEL_MIN), best first (see `field_labels`)."""
    pieces = split_words(words)[0] if pieces is None else pieces
    found = []
    for r in spans(words, wanted, limit=10):
        if r.score >= LABEL_MIN:
            apart = _apart(words[r.words[-1]].text, pieces, r.lines[-1])
            found.append((r.box, r.score, apart, _letters(r.text) == _letters(wanted), -r.box[1], r.text))
    return [(box, score, text) for box, score, *_, text in sorted(found, key=lambda f: f[1:5], reverse=True)]


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _apart(last_word: str, pieces: list[Word], line: Box) -> float:
    """How much a run of words stands apart like a form's label: 1 ending in a colon, 0.5 followed by a
    gap of a line height or more (or nothing) on its row, 0 running on into more words."""
    if ":" in last_word:
        return 1.0
    h = max(line[3] - line[1], 1e-3)
    centre = (line[1] + line[3]) / 2
    after = [w.x0 - line[2] for w in pieces
             if abs((w.y0 + w.y1) / 2 - centre) < 0.5 * h and w.x0 >= line[2] - 0.2 * h and norm(w.text)]
    return 0.5 if not after or min(after) >= h else 0.0


def beside(label: Box, box: Box, led: bool = False) -> float:
    """How well `box` sits where a form puts the value of the field labelled `label`: 1 touching it on
    its right or just below it, halving at RIGHT_REACH line heights to the right (values sit at a tab
    stop) or BELOW_REACH below (the next line); a quarter of that anywhere else; 0 on the label itself.
    `led`: the box has words of its own just left of it on its row (likely its own label), so below
    the label counts half."""
    h = max(label[3] - label[1], 1e-3)
    overlap_x = min(label[2], box[2]) - max(label[0], box[0])
    overlap_y = min(label[3], box[3]) - max(label[1], box[1])
    if overlap_x > 0.5 * h and overlap_y > 0.5 * h:
        return 0.0
    centre = (label[1] + label[3]) / 2
    if box[1] - 0.5 * h <= centre <= box[3] + 0.5 * h and box[0] >= label[2] - h:
        return 1 / (1 + max(0.0, box[0] - label[2]) / h / RIGHT_REACH)
    aligned = abs(box[0] - label[0]) < ALIGN * h or abs(box[0] + box[2] - label[0] - label[2]) / 2 < ALIGN * h
    if box[1] >= label[3] - 0.5 * h and overlap_x > -h and aligned:
        return (0.5 if led else 1.0) / (1 + max(0.0, box[1] - label[3]) / h / BELOW_REACH)
    return 0.25 / (1 + distance(label, box) / h / RIGHT_REACH)


def is_led(pieces: list[Word], line: Box) -> bool:
    """Whether a line of words has another word just before it on its row (within a column gap)."""
    h = max(line[3] - line[1], 1e-3)
    centre = (line[1] + line[3]) / 2
    return any(abs((w.y0 + w.y1) / 2 - centre) < 0.5 * h and w.x1 <= line[0] + 0.2 * h
               and line[0] - w.x1 < Layout.MAX_GAP * h and norm(w.text) for w in pieces)


def field_value(words: list[Word], label: Box) -> Region | None:
    """The value of the field labelled `label`: the words right of it on its row (the first within
    FIELD_REACH line heights, then on while the gaps stay column-narrow), else those of the nearest
    line below it that starts under it; then the lines just below that start where it starts and
    have nothing of their own to their left (a value wrapped in its box, FIELD_LINES at most).
    None when there is no value."""
    pieces, origin = split_words(words)
    keep = [i for i, w in enumerate(pieces) if norm(w.text)]
    if not keep:
        return None
    layout = Layout(pieces)
    h = max(label[3] - label[1], 1e-3)
    centre = (label[1] + label[3]) / 2

    def row_from(first: int) -> list[int]:
        run, j = [first], layout.right(first)
        while j is not None and j not in run:
            run.append(j)
            j = layout.right(j)
        return [i for i in run if norm(pieces[i].text)]

    def under(box: Box) -> int | None:  # the first word of the nearest line below a box, starting under it
        found = [i for i in keep if pieces[i].y0 >= box[3] - 0.3 * h and pieces[i].y0 - box[3] < 2.5 * h
                 and box[0] - h <= pieces[i].x0 <= box[2] + h]
        return min(found, key=lambda i: (pieces[i].y0 - box[3]) / h + abs(pieces[i].x0 - box[0]) / h / 4) \
            if found else None

    right = [i for i in keep if abs((pieces[i].y0 + pieces[i].y1) / 2 - centre) < 0.5 * h
             and pieces[i].x0 >= label[2] - 0.3 * h and pieces[i].x0 - label[2] < FIELD_REACH * h]
    first = min(right, key=lambda i: pieces[i].x0) if right else None
    if first is None:
        first = under(label)
    if first is None:
        return None
    run = row_from(first)
    x0, bottom = pieces[first].x0, max(pieces[i].y1 for i in run)
    for _ in range(FIELD_LINES):
        below = [i for i in keep if i not in run and 0 <= pieces[i].y0 - bottom < h and abs(pieces[i].x0 - x0) < h]
        if not below:
            break
        nxt = min(below, key=lambda i: pieces[i].y0)
        line = pieces[nxt]
        if is_led(pieces, (line.x0, line.y0, line.x1, line.y1)):
            break
        more = row_from(nxt)
        run += more
        bottom = max(pieces[i].y1 for i in more)
    r = piece_region(pieces, origin, run, 0.0)
    r.how = "field"
    return r


def distance(a: Box, b: Box) -> float:
    """Gap between two boxes (0 when they touch), with vertical gaps counting double:
    a form's value sits beside its key or just below it."""
    dx = max(0.0, b[0] - a[2], a[0] - b[2])
    dy = max(0.0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, 2 * dy)
