"""Ranking pages for a question: dense (FAISS over passages) and lexical (FTS5 bm25 over pages).

Hybrid score of a page = LEXICAL_WEIGHT * bm25 / best bm25 + (1 - LEXICAL_WEIGHT) * cosine
of its best passage. A page first by bm25 with cosine 0.5 scores 0.7 + 0.3 * 0.5 = 0.85.
Score fusion beats reciprocal rank fusion here: on scanned receipts and forms the dense
ranking is weak (Recall@5 0.22 / 0.60) and RRF lets it pull good lexical hits down, while
normalised scores let a confident bm25 match win (README, "Retrieval quality").
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from index.embed import Embedder, OnnxEmbedder, load_embedder
from index.store import Index

from .query import fts_match, snippet

MODES = ("hybrid", "dense", "lexical")
LEXICAL_WEIGHT = 0.7
CANDIDATES = 100  # pages (lexical) and passages (dense) taken before fusing


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
    """`Retriever(Index.open(folder)).search("question", k=5) -> [Hit, ...]`, best first."""

    def __init__(self, index: Index, embedder: Embedder | OnnxEmbedder | None = None):
        self.index = index
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder | OnnxEmbedder:
        if self._embedder is None:  # the ONNX export of the index's model: no torch in a search
            self._embedder = load_embedder(self.index.meta["embed_model"], self.index.folder)
        return self._embedder

    def search(self, question: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if "embed_model" not in self.index.meta:
            return []  # an index with no pages yet
        n = max(CANDIDATES, 10 * k)
        dense = self.dense(question, n) if mode != "lexical" else {}
        lexical = self.lexical(question, n) if mode != "dense" else {}
        if mode == "dense":
            scored = dense
        elif mode == "lexical":
            scored = lexical
        else:
            top = max(lexical.values(), default=1.0) or 1.0
            scored = {p: LEXICAL_WEIGHT * lexical.get(p, 0.0) / top + (1 - LEXICAL_WEIGHT) * max(dense.get(p, 0.0), 0.0)
                      for p in dense.keys() | lexical.keys()}
        best = sorted(scored, key=lambda p: (-scored[p], p))[:k]
        rows = self.index.page_rows(best)
        return [Hit(path=rows[p]["path"], page=rows[p]["page_no"], score=round(float(scored[p]), 6),
                    snippet=snippet(rows[p]["text"] or rows[p]["caption"] or rows[p]["title"], question),
                    title=rows[p]["title"], page_id=p, dense=_round(dense.get(p)), lexical=_round(lexical.get(p)))
                for p in best if p in rows]

    def search_combined(self, queries: list[tuple[str, float]], k: int = 5, mode: str = "hybrid") -> list[Hit]:
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
            for hit in self.search(query, k=pool, mode=mode):
                total[hit.page_id] = total.get(hit.page_id, 0.0) + weight * hit.score
                first.setdefault(hit.page_id, hit)
                if hit.dense is not None:
                    dense[hit.page_id] = max(hit.dense, dense.get(hit.page_id, -1.0))
        best = sorted(total, key=lambda p: (-total[p], p))[:k]
        return [replace(first[p], score=round(total[p], 6), dense=dense.get(p)) for p in best]

    def dense(self, question: str, n: int) -> dict[int, float]:
        """page id -> cosine of its best passage, for the pages of the n nearest passages."""
        vector = self.embedder.encode_query(question)
        scores, ids = self.index.vectors.search(vector, n)
        page_of = self.index.pages_of_chunks([int(i) for i in ids if i >= 0])
        best: dict[int, float] = {}
        for cid, score in zip(ids.tolist(), scores.tolist()):
            page = page_of.get(cid)  # None: removed since FAISS was loaded
            if page is not None and score > best.get(page, -2.0):
                best[page] = score
        return best

    def lexical(self, question: str, n: int) -> dict[int, float]:
        match = fts_match(question)
        return dict(self.index.lexical(match, n)) if match else {}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
