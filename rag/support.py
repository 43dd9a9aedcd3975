"""Whether retrieval found support for a question, by each signal it fuses: the decision to abstain.

    support = measure(retriever, "What did Björn Åkesson report?", hits)
    support.dense     # 0.24: cosine of the best passage (MiniLM knows little of names)
    support.lexical   # 1.0: share of the question's word weight that one of the hits holds
    support.found     # ['bjorn', 'akesson', 'report']

The lexical side weighs each word the question is searched by (rag.query.fts_match's words, and its
multi-part tokens that hold a digit, folded and respelt as the search does them; FTS5's tokenizer stems
them on both sides) by its rarity in the index, idf = ln((N + 1) / (n + 0.5)) for a word on n of N
pages, and takes the best of the hits: the weight of the words a page holds over the weight of them all.

'How do I bake banana bread?' on 4 pages, one holding 'bread': idf 'bread' = ln(5 / 1.5) = 1.20,
'bake' and 'banana' on no page = ln(5 / 0.5) = 2.30 each -> lexical = 1.20 / 5.81 = 0.21.
A word on no page weighs most, a word on every page next to nothing: the question's distinctive
words decide. The third signal is the page structure a question names ('page 17', 'figure 3'): a
retrieved page that holds it all is support (rag.retrieve ranks by it too). Thresholds (MIN_SCORE,
MIN_LEXICAL) are chosen leave-one-dataset-out by bench/abstention.py (README, "Evidence for the model,
and abstention").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from index.words import fold

from .query import clipped, content, match_words, phrases, ref_groups, structure_refs

MIN_SCORE = 0.43  # best passage cosine below which the dense side finds no support
MIN_LEXICAL = 0.50  # share of the question's word weight one retrieved page must hold for lexical support


@dataclass
class Support:
    dense: float  # cosine of the best passage of the retrieved pages (of any page when they have none)
    lexical: float  # 0..1: the most of the question's word weight one retrieved page holds
    words: list[str] = field(default_factory=list)  # the question's search words, most distinctive first
    found: list[str] = field(default_factory=list)  # those the best-supported page holds
    structure: list[str] = field(default_factory=list)  # the page-structure facts named ('page 17'), when a
    # retrieved page holds them all (the hybrid ranking's third signal, rag.retrieve.Retriever.structure)

    def supported(self, min_score: float = MIN_SCORE, min_lexical: float = MIN_LEXICAL) -> bool:
        """Any signal finds the question's subject: abstain only when none does."""
        return self.dense >= min_score or (bool(self.words) and self.lexical >= min_lexical) or bool(self.structure)


def search_units(question: str, respelt: dict[str, str]) -> list[tuple[str, ...]]:
    """The things the lexical search looks for, each as its spellings: a content word (with the indexed
    word it is respelt to) or a multi-part token with a digit (a date, amount, code) as one phrase; not
    "bjorn s" for "Björn's", which pages write in other ways.

    'Total of INV-2024/07 from Acme?' -> [('total',), ('inv',), ('2024',), ('07',), ('acme',), ('inv 2024 07',)]
    """
    units = [(w, respelt[w]) if w in respelt and respelt[w] != w else (w,) for w in match_words(question)]
    units += [(p,) for p in phrases(content(fold(question))) if any(c.isdigit() for c in p) and (p,) not in units]
    return units


def _match(unit: tuple[str, ...]) -> str:
    return " OR ".join('"' + s.replace('"', "") + '"' for s in unit)


def lexical_support(index, question: str, page_ids: list[int], respelt: dict[str, str]) -> tuple[float, list, list]:
    """(share of the question's word weight the best of `page_ids` holds, the words most distinctive first,
    those it holds)."""
    units = search_units(question, respelt)
    if not units:
        return 0.0, [], []
    matches = [_match(u) for u in units]
    pages = max(index.page_count(), 1)  # past 20,000 pages, estimated from the ids' span
    counts = index.page_counts(matches)
    weight = [math.log((pages + 1) / (min(counts[m], pages) + 0.5)) for m in matches]
    holds: dict[int, set[int]] = {p: set() for p in page_ids}
    if page_ids:
        marks = ",".join("?" * len(page_ids))
        for i, m in enumerate(matches):
            for (pid,) in index.db.execute(f"SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? AND rowid IN ({marks})",
                                           (m, *page_ids)):
                holds[pid].add(i)
    total = sum(weight) or 1.0
    best = max(page_ids, key=lambda p: (sum(weight[i] for i in holds[p]), -page_ids.index(p)), default=None)
    held = holds.get(best, set())
    order = sorted(range(len(units)), key=lambda i: -weight[i])
    return (round(sum(weight[i] for i in held) / total, 4), [units[i][0] for i in order],
            [units[i][0] for i in order if i in held])


def structure_support(index, question: str, page_ids: list[int]) -> list[str]:
    """The page-structure facts the question names ('page 17', 'figure 3', 'the cover') when one of
    `page_ids` holds them all, as the question words them; else []. 'How many dogs are on page 17?'
    asks about a page, not a subject: the page found is the support."""
    refs = structure_refs(question)
    if not refs or not page_ids:
        return []
    groups = ref_groups(refs)
    marks = ",".join("?" * len(page_ids))
    docs = [d for (d,) in index.db.execute(f"SELECT DISTINCT doc_id FROM pages WHERE id IN ({marks})", page_ids)]
    held = index.pages_with_facts(refs, docs)
    if not any(all(g & held.get(p, set()) for g in groups) for p in page_ids):
        return []
    return [" ".join(sorted(g)[0]) for g in groups]


def measure(retriever, query: str, hits, within=None, asked: str | None = None) -> Support:
    """Each signal's support for `query` among `hits` (rag.retrieve.Hit, as ranked for it, searched `within`
    those files or folders: the best cosine of a page elsewhere is no support).

    `asked`: a follow-up as asked, when `query` folds the previous question in. Its own words are the
    ones the pages must hold ('How do I bake bread?' after 'What did Björn report?' finds 'bjorn' and
    'report' again, which is no support for it); a follow-up without words of its own ('And then?') is
    weighed by the words of `query`."""
    query, asked = clipped(query), asked and clipped(asked)  # what the search read of them
    dense = [h.dense for h in hits if h.dense is not None]
    if not dense:
        doc_ids = retriever.index.documents_under(within) if within else None
        dense = retriever.dense(query, 100, doc_ids).values()
    best = max(dense, default=0.0)
    page_ids = [h.page_id for h in hits]
    words = asked if asked and search_units(asked, {}) else query
    share, units, found = lexical_support(retriever.index, words, page_ids, retriever.respell(words))
    return Support(round(float(best), 4), share, units, found, structure_support(retriever.index, query, page_ids))
