"""Ranking pages for a question: dense (FAISS) and lexical (FTS5 bm25) chunk rankings, fused per page.

Reciprocal rank fusion over *page* rankings: each retriever ranks pages by their best
chunk, and a page's fused score is sum(1 / (RRF_K + rank)). With RRF_K = 60, a page
ranked 1st by both gets 2/61 ≈ 0.0328; 1st by one and absent from the other 1/61 ≈ 0.0164.
"""
from __future__ import annotations

from dataclasses import dataclass

from index.embed import Embedder
from index.store import Index

from .query import fts_match, snippet

MODES = ("hybrid", "dense", "lexical")
RRF_K = 60
CANDIDATES = 100  # chunks taken from each retriever before ranking pages


@dataclass
class Hit:
    path: str  # the file as indexed, absolute
    page: int  # 1-based page number within the file
    score: float
    snippet: str
    title: str
    page_id: int
    dense_rank: int | None = None
    lexical_rank: int | None = None


@dataclass
class _PageBest:
    score: float
    chunk_id: int


class Retriever:
    """`Retriever(Index.open(folder)).search("question", k=5) -> [Hit, ...]`, best first."""

    def __init__(self, index: Index, embedder: Embedder | None = None):
        self.index = index
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.index.meta["embed_model"])
        return self._embedder

    def search(self, question: str, k: int = 5, mode: str = "hybrid") -> list[Hit]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if "embed_model" not in self.index.meta:
            return []  # an index with no pages yet
        n = max(CANDIDATES, 10 * k)
        dense = self._dense(question, n) if mode != "lexical" else {}
        lexical = self._lexical(question, n) if mode != "dense" else {}
        dense_rank = _ranks(dense)
        lexical_rank = _ranks(lexical)
        if mode == "dense":
            scored = {p: b.score for p, b in dense.items()}
        elif mode == "lexical":
            scored = {p: b.score for p, b in lexical.items()}
        else:
            scored = {p: sum(1 / (RRF_K + r[p]) for r in (dense_rank, lexical_rank) if p in r)
                      for p in dense.keys() | lexical.keys()}
        best = sorted(scored, key=lambda p: (-scored[p], p))[:k]
        chunk_for = {p: (lexical.get(p) or dense.get(p)).chunk_id for p in best}
        rows = self.index.chunk_rows(list(chunk_for.values()))
        hits = []
        for p in best:
            row = rows[chunk_for[p]]
            hits.append(Hit(path=row.path, page=row.page_no, score=round(float(scored[p]), 6),
                            snippet=snippet(row.text or row.title, question), title=row.title, page_id=p,
                            dense_rank=dense_rank.get(p), lexical_rank=lexical_rank.get(p)))
        return hits

    def _dense(self, question: str, n: int) -> dict[int, _PageBest]:
        vector = self.embedder.encode([question])[0]
        scores, ids = self.index.vectors.search(vector, n)
        return self._by_page([(int(i), float(s)) for s, i in zip(scores, ids) if i >= 0])

    def _lexical(self, question: str, n: int) -> dict[int, _PageBest]:
        match = fts_match(question)
        return self._by_page(self.index.lexical(match, n)) if match else {}

    def _by_page(self, scored_chunks: list[tuple[int, float]]) -> dict[int, _PageBest]:
        """Best chunk per page; chunks that vanished since FAISS was loaded are ignored."""
        pages_of = dict(self.index.db.execute(
            f"SELECT id, page_id FROM chunks WHERE id IN ({','.join('?' * len(scored_chunks))})",
            [c for c, _ in scored_chunks])) if scored_chunks else {}
        best: dict[int, _PageBest] = {}
        for cid, score in scored_chunks:
            page = pages_of.get(cid)
            if page is not None and (page not in best or score > best[page].score):
                best[page] = _PageBest(score, cid)
        return best


def _ranks(pages: dict[int, _PageBest]) -> dict[int, int]:
    """page -> 1-based rank by score, ties broken by page id."""
    order = sorted(pages, key=lambda p: (-pages[p].score, p))
    return {p: i + 1 for i, p in enumerate(order)}
