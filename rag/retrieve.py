"""Ranking pages for a question: dense (FAISS over passages) and lexical (FTS5 bm25 over pages).

Hybrid score of a page = w * bm25 / best bm25 + (1 - w) * cosine / best cosine (its best passage's), plus
STRUCTURE_BOOST x the share of the page-structure facts a question names ("Figure 10", "page 14"
= the 14th page or the one printed '14', "the cover", a slide's title: index/structure.py) that
the page holds. Both halves count from 0 to 1 at their best page, and the lexical weight w is set
per question from how decisively each ranking separates its best page from its 10th (`spread`):

    w = spread(bm25)^p / (spread(bm25)^p + spread(cosine)^p),  p = SPREAD_POWER

An exact amount on a receipt gives a steep bm25 ranking (spread ~0.74) over flat cosines
(~0.12): w ~ 0.99. A question whose words are generic gives a flat bm25 ranking, and a steeper
dense one then leads. The rule treats the halves alike (no weight that favours one): where dense is
the stronger half (financial filings; none of the dev sets is), only its own flatness holds it back. Its one
constant and the candidate depth were chosen leave-one-dataset-out (bench/fusion_sweep.py, README
"Retrieval quality"). Score fusion beats reciprocal rank fusion here: on scanned receipts and
forms the dense ranking is weak (Recall@5 0.25 / 0.64) and RRF lets it pull good lexical hits down.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence, Union

from index.embed import Embedder, OnnxEmbedder, load_embedder
from index.embed_models import model_folder
from index.spelling import respell, vocabulary
from index.store import Index

from .query import (clipped, content, fts_match, longest_titles, lower_words, ref_groups, snippet, structure_refs,
                    title_candidates)

MODES = ("hybrid", "dense", "lexical")
SPREAD_POWER = 2.5  # chosen leave-one-dataset-out (bench/fusion_sweep.py, README)
# added to a page holding every structure fact a question names: the whole range of the content
# score, so such pages come first and the content orders them
STRUCTURE_BOOST = 1.0
SPREAD_RANK = 10  # spread = (best - 10th best) / best
RESPELL = True  # search a misspelt question word as the indexed word one edit away (index/spelling.py)
CANDIDATES = 100  # pages (lexical) and passages (dense) taken before fusing
LEXICAL_CACHE_KIB = 32_768  # SQLite page cache of the lexical searches on a large index (Retriever._lexical_side)
Within = Optional[Sequence[Union[str, Path]]]  # files or folders to search within; None: everything


@dataclass
class Hit:
    path: str  # the file as indexed, absolute
    page: int  # 1-based page number within the file
    score: float
    snippet: str
    title: str
    page_id: int
    dense: float | None = None  # cosine of the page's best passage
    lexical: float | None = None  # bm25 of the page


class Retriever:
    """`Retriever(Index.open(folder)).search("question", k=5) -> [Hit, ...]`, best first.

    `few_queries`: this process asks one or two questions and exits (`pagerag search`, `ask`):
    the query encoder starts quicker and runs a little slower (index.embed.OnnxEmbedder)."""

    def __init__(self, index: Index, embedder: Embedder | OnnxEmbedder | None = None, few_queries: bool = False,
                 parallel: bool = True):
        self.index = index
        self._embedder = embedder
        self.few_queries = few_queries
        # on a large index, the lexical half of a hybrid search runs in a thread of its own (`_both`)
        self.parallel = parallel
        self._lexical_index: Index | None = None  # that thread's own connection
        self._vectors: dict[str, object] = {}  # question -> query vector, oldest first
        self._known: frozenset[str] | None = None

    @property
    def embedder(self) -> Embedder | OnnxEmbedder:
        if self._embedder is None:  # the ONNX export of the index's model: no torch in a search
            self._embedder = load_embedder(self.index.meta["embed_model"], self.index.folder,
                                           few_queries=self.few_queries)
        return self._embedder

    def search(self, question: str, k: int = 5, mode: str = "hybrid", within: Within = None) -> list[Hit]:
        """The k best pages; `within` (files or folders, as indexed) searches only their documents."""
        return self.search_modes(question, k, (mode,), within)[mode]

    def search_modes(self, question: str, k: int = 5, modes: Sequence[str] = MODES,
                     within: Within = None) -> dict[str, list[Hit]]:
        """mode -> the k best pages under it; one dense and one lexical lookup serve all modes."""
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if "embed_model" not in self.index.meta:
            return {mode: [] for mode in modes}  # an index with no pages yet
        question = clipped(question)
        doc_ids = self.index.documents_under(within) if within else None
        n = max(CANDIDATES, 10 * k)
        large = self.parallel and self.index.large()
        if set(modes) - {"lexical"} and set(modes) - {"dense"} and large:
            dense, lexical = self._both(question, n, doc_ids)
        else:
            dense = self.dense(question, n, doc_ids) if set(modes) - {"lexical"} else {}
            lexical = self.lexical(question, n, doc_ids, self._lexical_side() if large else None) \
                if set(modes) - {"dense"} else {}
        facts = self.structure(question, doc_ids) if "hybrid" in modes else {}
        ranked = {mode: self._top(fuse(dense, lexical, mode, facts), k) for mode in modes}
        rows = self.index.page_rows(sorted({p for best in ranked.values() for p, _ in best}))
        return {mode: [Hit(path=rows[p]["path"], page=rows[p]["page_no"], score=round(float(score), 6),
                           snippet=snippet(rows[p]["text"] or rows[p]["caption"] or rows[p]["title"], question),
                           title=rows[p]["title"], page_id=p, dense=_round(dense.get(p)),
                           lexical=_round(lexical.get(p)))
                       for p, score in best if p in rows]
                for mode, best in ranked.items()}

    @staticmethod
    def _top(scored: dict[int, float], k: int) -> list[tuple[int, float]]:
        return [(p, scored[p]) for p in sorted(scored, key=lambda p: (-scored[p], p))[:k]]

    def search_combined(self, queries: list[tuple[str, float]], k: int = 5, mode: str = "hybrid",
                        within: Within = None) -> list[Hit]:
        """Pages ranked by the weighted sum of their scores for several queries.

        A follow-up is searched as [(question, 1), (previous question + question, 1)]:
        'Who was absent?' alone ranks every set of minutes alike; with 'What was decided
        about the parking lot?' folded in, the minutes that discuss the parking lot win.
        """
        pool = max(20, 4 * k)
        total: dict[int, float] = {}
        first: dict[int, Hit] = {}
        dense: dict[int, float] = {}  # the page's best cosine under any of the queries
        for query, weight in queries:
            for hit in self.search(query, k=pool, mode=mode, within=within):
                total[hit.page_id] = total.get(hit.page_id, 0.0) + weight * hit.score
                first.setdefault(hit.page_id, hit)
                if hit.dense is not None:
                    dense[hit.page_id] = max(hit.dense, dense.get(hit.page_id, -1.0))
        best = sorted(total, key=lambda p: (-total[p], p))[:k]
        return [replace(first[p], score=round(total[p], 6), dense=dense.get(p)) for p in best]

    def dense(self, question: str, n: int, doc_ids: list[int] | None = None) -> dict[int, float]:
        """page id -> cosine of its best passage, for the pages of the n nearest passages
        (of those documents only, when `doc_ids` is given)."""
        vector = self.encode(content(question))
        scores, ids = self.index.nearest(vector, n, doc_ids)
        page_of = self.index.pages_of_chunks([int(i) for i in ids if i >= 0])
        best: dict[int, float] = {}
        for cid, score in zip(ids.tolist(), scores.tolist()):
            page = page_of.get(cid)  # None: removed since FAISS was loaded
            if page is not None and score > best.get(page, -2.0):
                best[page] = score
        return best

    def lexical(self, question: str, n: int, doc_ids: list[int] | None = None,
                index: Index | None = None) -> dict[int, float]:
        index = index or self.index
        match = fts_match(question, self.respell(question, index))
        return dict(index.lexical(match, n, doc_ids)) if match else {}

    def _both(self, question: str, n: int, doc_ids: list[int] | None) -> tuple[dict, dict]:
        """(dense, lexical) at once: the lexical half in a thread, on a connection of its own (FTS5, FAISS
        and onnxruntime release the GIL; one connection would take its statements in turn). At 10^6
        pages, idle: hybrid p50 42.7 ms against 56.7 on one thread; with other work keeping 1.0-1.6 of
        2 cores busy, 0.98-1.07x at p50 and 0.79-0.98x at p95 (bench/scale.py, README "At 10^6 pages")."""
        import threading

        side = self._lexical_side()
        out: dict[str, object] = {}

        def lexical():
            try:
                out["lexical"] = self.lexical(question, n, doc_ids, side)
            except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
                out["error"] = e

        thread = threading.Thread(target=lexical, name="lexical", daemon=True)
        thread.start()
        try:
            dense = self.dense(question, n, doc_ids)
        finally:
            thread.join()
        if "error" in out:
            raise out["error"]
        return dense, out["lexical"]

    def _lexical_side(self) -> Index:
        """The index again, on the connection lexical searches of a large index use: its own (a thread can
        use it beside the dense half's), with a page cache of LEXICAL_CACHE_KIB instead of SQLite's 2 MiB:
        bm25 reads each scored page's length from the FTS5 docsize table, ~0.9x the CPU a query at 10^6
        pages (bench: p50 38.0 -> 33.8 CPU-ms at 32-128 MiB)."""
        if self._lexical_index is None:
            side = Index.open(self.index.folder)
            side.db.execute(f"PRAGMA cache_size = -{LEXICAL_CACHE_KIB}")
            self._lexical_index = side
        return self._lexical_index

    def respell(self, question: str, index: Index | None = None) -> dict[str, str]:
        """The question's words that no page holds -> the indexed term one edit away (index/spelling.py)."""
        if not RESPELL:
            return {}
        if self._known is None:  # a language model's whole words are not misspellings
            self._known = vocabulary(str(model_folder(self.index.meta["embed_model"]) or "") or None)
        return respell((index or self.index).db, lower_words(question), self._known)

    def structure(self, question: str, doc_ids: list[int] | None = None) -> dict[int, float]:
        """page id -> share of the things the question names ('page 6', 'Figure 3', a slide's title:
        `ref_groups`) that the page holds."""
        refs = structure_refs(question)
        titles = self.index.present_facts([("title", t) for t in title_candidates(question)], doc_ids)
        refs += [("title", t) for t in longest_titles([v for _, v in titles])]
        if not refs:
            return {}
        groups = ref_groups(refs)
        held = self.index.pages_with_facts(refs, doc_ids)
        return {p: sum(bool(g & facts) for g in groups) / len(groups) for p, facts in held.items()}

    def encode(self, question: str):
        """The query vector, remembered for the last few questions (modes and scopes of one question share it)."""
        vector = self._vectors.get(question)
        if vector is None:
            vector = self.embedder.encode_query(question)
            if len(self._vectors) >= 8:
                self._vectors.pop(next(iter(self._vectors)))
            self._vectors[question] = vector
        return vector


def spread(scores: dict[int, float]) -> float:
    """How decisively a ranking picks its best: (best - 10th best) / best (the last, when fewer).

    {1: 8.0, 2: 2.0, ...10th: 2.0} -> 0.75 (a steep bm25); cosines 0.52 ... 0.46 -> 0.12 (flat);
    a single page found -> 1.0.
    """
    top = sorted(scores.values(), reverse=True)[:SPREAD_RANK]
    if not top or top[0] <= 0:
        return 0.0
    return 1.0 if len(top) == 1 else (top[0] - max(top[-1], 0.0)) / top[0]


def fuse(dense: dict[int, float], lexical: dict[int, float], mode: str = "hybrid",
         facts: dict[int, float] | None = None) -> dict[int, float]:
    """page id -> score under `mode`, from the dense (cosine) and lexical (bm25) scores of the
    candidates; hybrid adds STRUCTURE_BOOST x the share of named structure facts a page holds."""
    if mode == "dense":
        return dense
    if mode == "lexical":
        return lexical
    s_lex, s_dense = spread(lexical) ** SPREAD_POWER, spread(dense) ** SPREAD_POWER
    w = s_lex / (s_lex + s_dense) if s_lex + s_dense > 0 else 0.5
    top_lex = max(lexical.values(), default=1.0) or 1.0
    top_dense = max(max(dense.values(), default=1.0), 0.0) or 1.0
    facts = facts or {}
    return {p: w * lexical.get(p, 0.0) / top_lex + (1 - w) * max(dense.get(p, 0.0), 0.0) / top_dense
            + STRUCTURE_BOOST * facts.get(p, 0.0)
            for p in dense.keys() | lexical.keys() | facts.keys()}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
