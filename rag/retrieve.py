"""Ranking pages for a question: dense (FAISS over passages) and lexical (FTS5 bm25 over pages).

Hybrid score of a page = LEXICAL_WEIGHT * bm25 / best bm25 + (1 - LEXICAL_WEIGHT) * cosine
of its best passage. A page first by bm25 with cosine 0.5 scores 0.7 + 0.3 * 0.5 = 0.85.
Score fusion beats reciprocal rank fusion here: on scanned receipts and forms the dense
ranking is weak (Recall@5 0.22 / 0.60) and RRF lets it pull good lexical hits down, while
normalised scores let a confident bm25 match win (README, "Retrieval quality").
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence, Union

from index.embed import Embedder, OnnxEmbedder, load_embedder
from index.store import Index

from .query import fts_match, snippet

MODES = ("hybrid", "dense", "lexical")
LEXICAL_WEIGHT = 0.7
CANDIDATES = 100  # pages (lexical) and passages (dense) taken before fusing
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
    """`Retriever(Index.open(folder)).search("question", k=5) -> [Hit, ...]`, best first."""

    def __init__(self, index: Index, embedder: Embedder | OnnxEmbedder | None = None):
        self.index = index
        self._embedder = embedder
        self._vectors: dict[str, object] = {}  # question -> query vector, oldest first

    @property
    def embedder(self) -> Embedder | OnnxEmbedder:
        if self._embedder is None:  # the ONNX export of the index's model: no torch in a search
            self._embedder = load_embedder(self.index.meta["embed_model"], self.index.folder)
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
        doc_ids = self.index.documents_under(within) if within else None
        n = max(CANDIDATES, 10 * k)
        dense = self.dense(question, n, doc_ids) if set(modes) - {"lexical"} else {}
        lexical = self.lexical(question, n, doc_ids) if set(modes) - {"dense"} else {}
        ranked = {mode: self._top(fuse(dense, lexical, mode), k) for mode in modes}
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
        vector = self.encode(question)
        scores, ids = self.index.nearest(vector, n, doc_ids)
        page_of = self.index.pages_of_chunks([int(i) for i in ids if i >= 0])
        best: dict[int, float] = {}
        for cid, score in zip(ids.tolist(), scores.tolist()):
            page = page_of.get(cid)  # None: removed since FAISS was loaded
            if page is not None and score > best.get(page, -2.0):
                best[page] = score
        return best

    def lexical(self, question: str, n: int, doc_ids: list[int] | None = None) -> dict[int, float]:
        match = fts_match(question)
        return dict(self.index.lexical(match, n, doc_ids)) if match else {}

    def encode(self, question: str):
        """The query vector, remembered for the last few questions (modes and scopes of one question share it)."""
        vector = self._vectors.get(question)
        if vector is None:
            vector = self.embedder.encode_query(question)
            if len(self._vectors) >= 8:
                self._vectors.pop(next(iter(self._vectors)))
            self._vectors[question] = vector
        return vector


def fuse(dense: dict[int, float], lexical: dict[int, float], mode: str = "hybrid") -> dict[int, float]:
    """page id -> score under `mode`, from the dense (cosine) and lexical (bm25) scores of the candidates."""
    if mode == "dense":
        return dense
    if mode == "lexical":
        return lexical
    top = max(lexical.values(), default=1.0) or 1.0
    return {p: LEXICAL_WEIGHT * lexical.get(p, 0.0) / top + (1 - LEXICAL_WEIGHT) * max(dense.get(p, 0.0), 0.0)
            for p in dense.keys() | lexical.keys()}


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
