"""Spans: text that should stand on the page as a run of words (an answer's value, a quote), found as runs.

    spans(words, "9/ 3/ 92")   # -> [Region(how='span', text='9/3/9Z', score=0.83, ...)]

Every run of page words in reading order, up to a little longer than the text, is compared
with it as normalised characters (edit distance; case, spaces and punctuation ignored) and,
when the text is mostly digits (dates, amounts, codes), as digits alone with OCR's
letter-for-digit slips folded back ('9/3/9Z' ~ '9/ 3/ 92', '$1,234.5O' ~ '1234.50'). A run
goes along its row and down its column (a value wrapped in its box, or stacked in a table
cell); a value glued inside a longer word is cut out by characters. Which span a question
wants is chosen in `rag.locate.best_span`.
"""
from __future__ import annotations

import re
import unicodedata

from index.words import Word

from .fuzzy import digits, norm, similarity
from .regions import Region, region

SPAN_MIN = 0.6  # a span match below this similarity is no match (answer kind falls back to terms)
SPAN_SLACK = 3  # runs may hold this many more words than the text (OCR splits tokens)
LEAVE_ROW = 0.02  # what going down a column before a row ends costs a run (reading order is preferred)
INNER_COST = 0.05  # what matching inside a longer word costs (a whole-word match of equal text wins)
RUN_STEPS = 64  # runs tried from one starting word (each goes right along its row or down its column)


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
    layout = Layout(pieces)
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
            out.append(piece_region(pieces, origin, run, score))
    return out[:limit]


def _best_run(i: int, pieces: list[Word], keys: list[str], layout: "Layout", targets: tuple[str, str, str],
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


class Layout:
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


def piece_region(pieces: list[Word], origin: list[int], run: list[int], score: float) -> Region:
    r = region(pieces, run, score)
    r.words = sorted({origin[i] for i in run})
    r.how = "span"
    return r
