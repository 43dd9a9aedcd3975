"""Terms: the content words of a query or statement, each found on the page, merged into line regions.

    query_terms('Total on 12/02/2018?')   # -> [('total', ''), ('12022018', '12022018')]
    terms(words, "acme supply total")     # -> [Region(how='terms', ...), ...] by how much of the text each holds

Each term is matched to page words by edit distance (numbers by their digits); the matched
words are merged into line regions, ranked by how much of the text they hold (rare words
weigh more).
"""
from __future__ import annotations

import math
import re

from index.words import Word

from .fuzzy import digits, norm, similarity
from .query import STOPWORDS
from .regions import Region, region, union
from .spans import spans

TERM_MIN = 0.8  # edit-distance similarity for a term to match a longer word
DIGIT_WEIGHT = 2.0  # a number or date in a query says more than a word


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


def term_words(words: list[Word], text: str, exclude: str | None = None) -> list[list[Word]]:
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
    ax0, ay0, ax1, ay1 = union([words[i] for i in a])
    bx0, by0, bx1, by1 = union([words[i] for i in b])
    height = max(max(words[i].y1 - words[i].y0 for i in a + b), 1e-3)
    if max(by0 - ay1, ay0 - by1) > 1.0 * height:
        return False
    if min(ax1, bx1) - max(ax0, bx0) > 0:
        return True
    upper = line_words[words[max(a)].line]  # the upper group's last line, in reading order
    lower = line_words[words[min(b)].line]
    return upper.index(max(a)) >= len(upper) - 3 and lower.index(min(b)) <= 2 and by0 > ay0
