"""Finding the words on a page that support a text, as boxes: for a search hit, an answer, a cited statement.

    words = index.page_words(page_id)                       # [Word(text, x0, y0, x1, y1, conf, line), ...]
    locate(words, "9/ 3/ 92", kind="answer")           # -> [Region(box=(0.61, 0.20, 0.67, 0.21), ...)]
    locate(words, "date of the suggestion", kind="query")
    locate(words, 'what is the "Date"?', kind="query")  # -> [Region(how='field', text='9/3/92', ...), ...]

Three ways of looking, all tolerant of OCR errors:

- a **span** is text that should stand on the page as a run of words (an answer's value,
  a quote). Every run of page words in reading order, up to a little longer than the
  text, is compared with it as normalised characters (edit distance; case, spaces and
  punctuation ignored) and, when the text is mostly digits (dates, amounts, codes), as
  digits alone with OCR's letter-for-digit slips folded back ('9/3/9Z' ~ '9/ 3/ 92',
  '$1,234.5O' ~ '1234.50'). A run goes along its row and down its column (a value
  wrapped in its box, or stacked in a table cell); a value glued inside a longer word is
  cut out by characters. Among the runs, the question (the `context`) decides: when it
  names a field ('what is the "Date"?', `focus`) whose label is on the page
  (`field_labels`), a run's similarity is added to how well it sits where that label's
  value goes (`beside`: right of it, or just below it); else the run nearest the
  question's words wins (a form repeats 'Yes', but only one sits by 'Smoker?').
- a **field** is the value beside the label of the field a question names
  (`field_value`), found without knowing the value: what question-only highlighting
  boxes first, and an answer's box when no run reads like it.
- **terms** are the content words of a query or statement, each matched to page words
  by edit distance (numbers by their digits); the matched words are merged into
  line regions, ranked by how much of the text they hold (rare words weigh more).

Boxes are page fractions (DPI-independent); `Region.pixels(width, height)` gives
page pixels. The FUNSD localisation figures are in the README ("Evidence on the page").
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

from index.words import Word

from .query import STOPWORDS

SPAN_MIN = 0.6  # a span match below this similarity is no match (answer kind falls back to terms)
SPAN_NEAR_MIN = 0.45  # ... unless it sits beside the label of the field asked for (NEAR_LABEL or better)
NEAR_LABEL = 0.5
LABEL_MIN = 0.75  # a run reading at least this much like the field asked for is its label
LABEL_WEIGHT = 0.75  # how much sitting beside that label adds to a span's similarity
RIGHT_REACH = 6.0  # line heights right of a label where `beside` has halved (FUNSD: median gap 2.8)
BELOW_REACH = 1.5  # ... and below it, starting or centred under it (within ALIGN line heights)
ALIGN = 2.0
FIELD_LINES = 3  # lines below a value's first that may continue it
FIELD_REACH = 15.0  # line heights right of a label within which its value's first word may start
SPAN_SLACK = 3  # runs may hold this many more words than the text (OCR splits tokens)
LEAVE_ROW = 0.02  # what going down a column before a row ends costs a run (reading order is preferred)
INNER_COST = 0.05  # what matching inside a longer word costs (a whole-word match of equal text wins)
RUN_STEPS = 64  # runs tried from one starting word (each goes right along its row or down its column)
CONTEXT_WEIGHT = 0.2  # how much nearness to the question's words adds to a span's similarity
TERM_MIN = 0.8  # edit-distance similarity for a term to match a longer word
DIGIT_WEIGHT = 2.0  # a number or date in a query says more than a word
# OCR's usual letter-for-digit slips, folded when a token is mostly digits
_DIGIT_FOLD = str.maketrans({"o": "0", "O": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "i": "1", "|": "1",
                             "!": "1", "Z": "2", "z": "2", "S": "5", "s": "5", "B": "8", "g": "9", "G": "6"})
_ALNUM = re.compile(r"[\W_]+", re.UNICODE)

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
    # 'field': the value beside the label of the field a question asks for
    fit: float | None = None  # for an answer's span: its similarity plus its place beside the field's label
    label: str | None = None  # for a field: its label as read on the page

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        return scale(self.box, width, height)


def scale(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Page fractions -> pixels of a width x height page: (0.5, 0.5, 1, 1), 100, 200 -> (50, 100, 100, 200)."""
    x0, y0, x1, y1 = box
    return (math.floor(x0 * width), math.floor(y0 * height), math.ceil(x1 * width), math.ceil(y1 * height))


# -- normalising --------------------------------------------------------------------------
def norm(text: str) -> str:
    """Lower-case letters and digits only: 'Date:' -> 'date', '9/ 3/ 92' -> '9392'."""
    return _ALNUM.sub("", unicodedata.normalize("NFKC", text).lower())


def digits(text: str) -> str:
    """The digits of a mostly-numeric text, OCR slips folded: '$1,234.5O' -> '123450'; 'Total' -> ''."""
    text = unicodedata.normalize("NFKC", text)
    n_digits = sum(ch.isdigit() for ch in text)
    n_alpha = sum(ch.isalpha() for ch in text)
    if n_digits == 0 or n_alpha > n_digits:
        return ""
    return "".join(ch for ch in text.translate(_DIGIT_FOLD) if ch.isdigit())


def similarity(a: str, b: str) -> float:
    """1 - edit distance / longer length, on normalised text: ('invoices', 'lnvoice') -> 0.75."""
    return Levenshtein.normalized_similarity(a, b)


# -- spans --------------------------------------------------------------------------------
def spans(words: list[Word], text: str, limit: int = 5, min_score: float = SPAN_MIN) -> list[Region]:
    """Runs of words that read like `text`, best first, no two sharing a word; [] if nothing is close.

    A run goes on along its row and down to the line below that starts where the run started
    (a value wrapped in a form's box, or stacked in a table's cell), so columns do not mix.
    """
    target = norm(text)
    if not target:
        return []
    target_digits = digits(text) if len(digits(text)) >= max(1, len(target) // 2) else ""
    raw_target = _raw(text)
    n_tokens = len(text.split())
    pieces, origin = split_words(words)
    layout = _Layout(pieces)
    keys = [norm(w.text) for w in pieces]
    found: list[tuple[float, float, list[int]]] = []
    for i in range(len(pieces)):
        if not (_may_start(keys[i], target) or (not keys[i] and raw_target.startswith(_raw(pieces[i].text) or "~"))):
            continue  # a run starts like the text, or with the punctuation it starts with ('$ -0-')
        best = _best_run(i, pieces, keys, layout, (target, target_digits, raw_target), n_tokens + SPAN_SLACK)
        if best[0] >= min_score:
            found.append(best)
    if len(target) >= 3:  # the text inside a longer word: OCR glued a value to its label ('TypeEQPR')
        for i, key in enumerate(keys[:len(pieces)]):
            if len(key) >= len(target) + 2:
                inner = _inner(pieces[i], key, target)
                if inner is not None and inner[0] >= min_score:
                    pieces.append(inner[1])
                    origin.append(origin[i])
                    found.append((inner[0], 0.0, [len(pieces) - 1]))
    found.sort(key=lambda f: (-f[0], -f[1], f[2][0]))
    out, taken = [], set()
    for score, _, run in found:
        if taken.isdisjoint(run):
            taken.update(run)
            out.append(_piece_region(pieces, origin, run, score))
    return out[:limit]


def _best_run(i: int, pieces: list[Word], keys: list[str], layout: "_Layout", targets: tuple[str, str, str],
              max_words: int) -> tuple[float, float, list[int]]:
    """The most similar run starting at word i: (similarity, similarity with punctuation, word indexes). A run goes on to the next word
    on its row or to the line below where it started (a value wrapped in its box, or the next entry of a
    column), both tried; a branch stops when its text has grown well past the target's length or its
    beginning no longer reads like the target's (a bounded search: RUN_STEPS extensions at most)."""
    target, target_digits, raw_target = targets  # normalised, its digits (a number's), with punctuation
    best: tuple[float, float, list[int]] = (0.0, 0.0, [])
    stack = [([i], keys[i], digits(pieces[i].text) or keys[i], _raw(pieces[i].text), 0.0)]
    steps = 0
    while stack and steps < RUN_STEPS:
        run, acc, acc_digits, acc_raw, cost = stack.pop()
        steps += 1
        score = similarity(target, acc)
        if target_digits:
            score = max(score, similarity(target_digits, acc_digits))
        score -= cost
        if score >= best[0]:  # equal similarity: the run closer in punctuation ('Indiana )' holds the ')')
            raw = similarity(raw_target, acc_raw)
            if score > best[0] or raw > best[1]:
                best = (score, raw, run)
        if len(run) >= max_words or len(acc) > 1.5 * len(target) + 3:
            continue
        if len(run) > 1 and not target_digits and similarity(target[:len(acc)], acc) < 0.5:
            continue  # this branch has strayed
        j = run[-1]
        right, below = layout.right(j), layout.below(j, pieces[i].x0)
        for k, extra in ((below, 0.0 if right is None else LEAVE_ROW), (right, 0.0)):  # the row's next word first
            if k is not None and k not in run:
                stack.append((run + [k], acc + keys[k], acc_digits + (digits(pieces[k].text) or keys[k]),
                              acc_raw + _raw(pieces[k].text), cost + extra))
    return best


def _inner(word: Word, key: str, target: str) -> tuple[float, Word] | None:
    """The part of a word that reads most like the text, as a word of its own (its box cut out by
    characters), with its similarity less INNER_COST; None when no part comes near."""
    from rapidfuzz import fuzz

    found = fuzz.partial_ratio_alignment(target, key)
    if found is None or found.score < 50:
        return None
    score = similarity(target, key[found.dest_start:found.dest_end]) - INNER_COST
    text = unicodedata.normalize("NFKC", word.text)
    at = [k for k, ch in enumerate(text) if norm(ch)]  # where each character of `key` stands in the text
    if len(at) != len(key):
        return None  # a character that normalises to several: no reliable cut
    a, b = at[found.dest_start], at[found.dest_end - 1] + 1
    width = (word.x1 - word.x0) / len(text)
    return score, Word(text[a:b], word.x0 + a * width, word.y0, word.x0 + b * width, word.y1, word.conf, word.line)


def _raw(text: str) -> str:
    """Text with its punctuation, for telling equally similar runs apart: lower case, no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def _may_start(key: str, target: str) -> bool:
    """Whether a run can start at a word: it begins like the text, or is in the text's first letters
    (OCR lost a letter: 'EAD' for 'HEAD')."""
    if not key:
        return False
    return similarity(key[:len(target)], target[:len(key)]) >= 0.34 or key[:3] in target[:len(key) + 2] \
        or (digits(key)[:3] != "" and digits(key)[:3] in target[:len(key) + 2])


_SPLIT = re.compile(r"_+|\.{2,}|(?<=[:;])(?=\S)")


def split_words(words: list[Word]) -> tuple[list[Word], list[int]]:
    """Words cut where OCR glued a form's key to its value: 'SALES:___59,791' -> 'SALES:', '59,791'.

    Returns the pieces (boxes shared out by characters; a blank's underscores go to the value
    written on it, before or after them) and, for each, its word's index.
    """
    pieces, origin = [], []
    for i, w in enumerate(words):
        cuts = [(m.start(), m.end()) for m in _SPLIT.finditer(w.text)]
        if not cuts:
            pieces.append(w)
            origin.append(i)
            continue
        n, start, box_start = len(w.text), 0, 0
        for a, b in [*cuts, (n, n)]:
            blank = w.text[a:b].startswith("_")  # a form's blank belongs to the value written on it
            if w.text[start:a].strip():
                end = n if blank and b == n else a
                x0 = w.x0 + (w.x1 - w.x0) * box_start / n
                x1 = w.x0 + (w.x1 - w.x0) * end / n
                pieces.append(Word(w.text[start:a].strip(), x0, w.y0, x1, w.y1, w.conf, w.line))
                origin.append(i)
            start = b
            box_start = a if blank else b
    return pieces, origin


class _Layout:
    """Where a run of words goes next: the next word on its row, else the line below where the run began."""

    MAX_GAP = 4.5  # in line heights: a wider gap on a row separates columns (a key from another field)
    BELOW_GAP = 4.0  # in line heights: the most a value's next line may stand below (a blank line between)

    def __init__(self, words: list[Word]):
        import numpy as np

        a = np.array([(w.x0, w.y0, w.x1, w.y1) for w in words], dtype="float32").reshape(-1, 4)
        self.x0, self.y0, self.x1, self.y1 = a.T
        self.h = np.maximum(self.y1 - self.y0, 1e-3)
        self.cy = (self.y0 + self.y1) / 2
        self._right: dict[int, int | None] = {}

    def next(self, j: int, run_x0: float) -> int | None:
        right = self.right(j)
        return right if right is not None else self.below(j, run_x0)

    def right(self, j: int) -> int | None:
        if j not in self._right:
            import numpy as np

            h = self.h[j]
            gap = self.x0 - self.x1[j]
            ok = (np.abs(self.cy - self.cy[j]) < 0.5 * np.maximum(self.h, h)) & (gap > -0.5 * h) \
                & (gap < self.MAX_GAP * h) & (self.x0 > self.x0[j])
            ok[j] = False
            self._right[j] = int(np.argmin(np.where(ok, gap, np.inf))) if ok.any() else None
        return self._right[j]

    def below(self, j: int, run_x0: float) -> int | None:
        import numpy as np

        h = self.h[j]
        dy = self.y0 - self.y1[j]
        dx = np.abs(self.x0 - run_x0)
        ok = (self.cy > self.cy[j] + 0.7 * h) & (dy < self.BELOW_GAP * h) & (dx < 4 * h)
        return int(np.argmin(np.where(ok, dy / h + dx / h, np.inf))) if ok.any() else None


def _piece_region(pieces: list[Word], origin: list[int], run: list[int], score: float) -> Region:
    r = region(pieces, run, score)
    r.words = sorted({origin[i] for i in run})
    r.how = "span"
    return r


def best_span(words: list[Word], text: str, context: str | None = None) -> Region | None:
    """The run of words that reads most like `text`, helped by the context (the question asked):

    - when the question names a field ('what is the "Date"?', `focus`) and the page has a label
      reading like it, each run scores its similarity plus LABEL_WEIGHT x how well it sits where a
      form puts that label's value (`beside`: right of it on its row, or just below it), so a
      value read a little worse beside its label beats the same value read well elsewhere, and
      a run as little similar as SPAN_NEAR_MIN is a candidate there;
    - otherwise each run's similarity plus CONTEXT_WEIGHT x its nearness to the context's words
      (each distinct term counted by its nearest occurrence, 1 when touching, averaged)."""
    found = spans(words, text, limit=20, min_score=SPAN_NEAR_MIN)
    labels = field_labels(words, context, exclude=text) if context else []
    if labels:
        pieces = split_words(words)[0]

        def fit(r: Region) -> float:
            led = _led(pieces, r.lines[0])
            return r.score + LABEL_WEIGHT * max((s * beside(box, r.box, led) for box, s, _ in labels), default=0.0)

        found = [r for r in found if r.score >= SPAN_MIN or fit(r) - r.score >= LABEL_WEIGHT * NEAR_LABEL]
        for r in found:
            r.fit = round(fit(r), 4)
        return max(found, key=lambda r: (r.fit, r.score)) if found else None
    found = [r for r in found if r.score >= SPAN_MIN]
    if not found:
        return None
    # a question naming a field whose label is not on the page: only the field's words say where
    # (the rest of it, which form or whose, says which page)
    anchors = _term_words(words, focus(context) or context, exclude=text) if context and len(found) > 1 else []
    if not anchors:
        return found[0]

    def nearness(r: Region) -> float:
        return sum(max(1 / (1 + _distance(r.box, w[1:5]) / 0.05) for w in ws) for ws in anchors) / len(anchors)

    return max(found, key=lambda r: (r.score + CONTEXT_WEIGHT * nearness(r), r.score))


# -- labels and their fields ----------------------------------------------------------------
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
    name, quoted = _focus(question)
    if not name or (exclude and norm(name) == norm(exclude)):
        return []
    names = [name]
    if not quoted:  # "the applicant's date of birth" -> "date of birth" -> "date"
        for shorter in (_OWNER.split(name)[-1], _OF.split(_OWNER.split(name)[-1])[0]):
            if shorter.strip() and shorter.strip() not in names and query_terms(shorter):
                names.append(shorter.strip())
    pieces = split_words(words)[0]
    for wanted in names:
        found = []
        for r in spans(words, wanted, limit=10):
            if r.score >= LABEL_MIN:
                apart = _apart(words[r.words[-1]].text, pieces, r.lines[-1])
                found.append((r.box, r.score, apart, _letters(r.text) == _letters(wanted), -r.box[1], r.text))
        if found:
            return [(box, score, text) for box, score, *_, text in sorted(found, key=lambda f: f[1:5], reverse=True)]
    return []


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
    return 0.25 / (1 + _distance(label, box) / h / RIGHT_REACH)


def _led(pieces: list[Word], line: Box) -> bool:
    """Whether a line of words has another word just before it on its row (within a column gap)."""
    h = max(line[3] - line[1], 1e-3)
    centre = (line[1] + line[3]) / 2
    return any(abs((w.y0 + w.y1) / 2 - centre) < 0.5 * h and w.x1 <= line[0] + 0.2 * h
               and line[0] - w.x1 < _Layout.MAX_GAP * h and norm(w.text) for w in pieces)


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
    layout = _Layout(pieces)
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
        if _led(pieces, (line.x0, line.y0, line.x1, line.y1)):
            break
        more = row_from(nxt)
        run += more
        bottom = max(pieces[i].y1 for i in more)
    r = _piece_region(pieces, origin, run, 0.0)
    r.how = "field"
    return r


def _distance(a: Box, b: Box) -> float:
    """Gap between two boxes (0 when they touch), with vertical gaps counting double:
    a form's value sits beside its key or just below it."""
    dx = max(0.0, b[0] - a[2], a[0] - b[2])
    dy = max(0.0, b[1] - a[3], a[1] - b[3])
    return math.hypot(dx, 2 * dy)


# -- terms --------------------------------------------------------------------------------
def query_terms(text: str, exclude: str | None = None) -> list[tuple[str, str]]:
    """(normalised term, digits) for the content words of a text, multi-part numbers kept whole.

    'Total on 12/02/2018?' -> [('total', ''), ('12022018', '12022018')]
    """
    skip = {norm(t) for t in (exclude or "").split()}
    out: list[tuple[str, str]] = []
    for raw in text.split():
        key = norm(raw)
        if len(key) < 2 or key in skip or key in STOPWORDS:
            continue
        if digits(raw) or key.isalpha():
            item = (key, digits(raw))
            if item not in out:
                out.append(item)
        else:  # 'R&D', 'e-mail': also its parts
            for part in re.findall(r"[^\W_]+", raw.lower()):
                if part not in STOPWORDS and len(part) > 1 and (part, "") not in out:
                    out.append((part, ""))
    return out


def term_matches(key: str, key_digits: str, word: str) -> bool:
    """Whether a page word is the term, OCR errors allowed: short words exactly, long ones by edit distance,
    numbers by their digits."""
    w = norm(word)
    if not w:
        return False
    if key_digits:
        d = digits(word)
        return d == key_digits or (len(key_digits) >= 5 and similarity(d, key_digits) >= TERM_MIN)
    if len(key) <= 3:
        return w == key
    return w == key or similarity(w, key) >= TERM_MIN or (len(key) >= 5 and w.startswith(key))


def _term_hits(words: list[Word], wanted: list[tuple[str, str]]) -> dict[int, set[int]]:
    """word index -> indexes of the terms it matches."""
    hits: dict[int, set[int]] = {}
    for t, (key, key_digits) in enumerate(wanted):
        for i, w in enumerate(words):
            if term_matches(key, key_digits, w.text):
                hits.setdefault(i, set()).add(t)
    # multi-part numbers split by OCR ('9/' '3/' '92'): look for them as spans
    for t, (key, key_digits) in enumerate(wanted):
        if len(key_digits) >= 4 and not any(t in ts for ts in hits.values()):
            for r in spans(words, key_digits, limit=3):
                if r.score >= 0.9:
                    for i in r.words:
                        hits.setdefault(i, set()).add(t)
    return hits


def _term_words(words: list[Word], text: str, exclude: str | None = None) -> list[list[Word]]:
    """For each content word of `text` found on the page, the page words that match it."""
    wanted = query_terms(text, exclude)
    hits = _term_hits(words, wanted)
    found = [[words[i] for i, ts in hits.items() if t in ts] for t in range(len(wanted))]
    return [ws for ws in found if ws]


def terms(words: list[Word], text: str, limit: int = 5, exclude: str | None = None) -> list[Region]:
    """Line regions holding the text's content words, best first: score = summed weight of distinct terms,
    a term weighing more the fewer page words match it (and more still for a number)."""
    wanted = query_terms(text, exclude)
    hits = _term_hits(words, wanted)
    if not hits:
        return []
    counts = [sum(t in ts for ts in hits.values()) for t in range(len(wanted))]
    weight = [(DIGIT_WEIGHT if d else 1.0) / math.sqrt(max(1, c)) for (_, d), c in zip(wanted, counts)]
    regions = []
    for group in _group(words, sorted(hits)):
        held = set().union(*(hits[i] for i in group))
        regions.append(region(words, group, round(sum(weight[t] for t in held), 4)))
    regions.sort(key=lambda r: (-r.score, r.box[1], r.box[0]))
    return regions[:limit]


def _group(words: list[Word], indexes: list[int]) -> list[list[int]]:
    """Matched words merged into regions: words on one line, and lines close above each other that overlap,
    or where a sentence wraps (the upper match ends its line, the lower one starts the next)."""
    lines: dict[int, list[int]] = {}
    for i in indexes:
        lines.setdefault(words[i].line, []).append(i)
    line_words: dict[int, list[int]] = {}
    for i, w in enumerate(words):
        if w.line in lines:
            line_words.setdefault(w.line, []).append(i)
    groups = sorted(lines.values(), key=lambda g: min(words[i].y0 for i in g))
    merged: list[list[int]] = []
    for g in groups:
        for m in merged:
            if _adjacent(words, m, g, line_words):
                m.extend(g)
                break
        else:
            merged.append(list(g))
    return merged


def _adjacent(words: list[Word], a: list[int], b: list[int], line_words: dict[int, list[int]]) -> bool:
    ax0, ay0, ax1, ay1 = _union([words[i] for i in a])
    bx0, by0, bx1, by1 = _union([words[i] for i in b])
    height = max(max(words[i].y1 - words[i].y0 for i in a + b), 1e-3)
    if max(by0 - ay1, ay0 - by1) > 1.0 * height:
        return False
    if min(ax1, bx1) - max(ax0, bx0) > 0:
        return True
    upper = line_words[words[max(a)].line]  # the upper group's last line, in reading order
    lower = line_words[words[min(b)].line]
    return upper.index(max(a)) >= len(upper) - 3 and lower.index(min(b)) <= 2 and by0 > ay0


def _union(words: list[Word]) -> Box:
    return (min(w.x0 for w in words), min(w.y0 for w in words), max(w.x1 for w in words), max(w.y1 for w in words))


def region(words: list[Word], indexes: list[int], score: float) -> Region:
    """A Region for some of the page's words: a box per line, one around them all, their text in order."""
    indexes = sorted(indexes)
    by_line: dict[int, list[Word]] = {}
    for i in indexes:
        by_line.setdefault(words[i].line, []).append(words[i])
    lines = sorted((_union(ws) for ws in by_line.values()), key=lambda b: (b[1], b[0]))
    return Region(box=_union([words[i] for i in indexes]), lines=lines,
                  text=" ".join(words[i].text for i in indexes), score=round(score, 4), words=indexes)


# -- the entry point ----------------------------------------------------------------------
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
        value = _field_asked(words, text)
        if value is not None:
            return [value, *terms(words, text, limit=limit - 1)] if limit > 1 else [value]
    return terms(words, text, limit=limit)


def _field_asked(words: list[Word], question: str | None, exclude: str | None = None) -> Region | None:
    """The value of the field a question asks for, beside its best label on the page; None without one.
    Its score is the label's similarity, its `label` the label as read."""
    for box, score, text in field_labels(words, question, exclude=exclude):
        value = field_value(words, box)
        if value is not None:
            value.score, value.label = score, text
            return value
    return None
