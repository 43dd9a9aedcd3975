"""Lexical search: bm25 over the pages' FTS5 table, with a cheaper plan on large indexes.

`Index` inherits these methods (index/store.py).
"""
from __future__ import annotations

import json
import re

# Index.without_common: the commonest phrases are left out of bm25 queries on large indexes
COMMON_MIN_PAGES = 20_000
LEXICAL_BUDGET = 200_000  # postings of the phrases bm25 weighs, about (bench/scale.py)
CANDIDATE_BUDGET = 20_000  # postings of the rarest phrases, whose pages are the ones scored (bench/scale.py)
COMMON_WINDOWS, COMMON_WINDOW = 8, 128
SHARES_KEPT = 20_000  # phrase shares remembered between queries (Index._shares)
_PHRASE = re.compile(r'"[^"]*"')
_OR_OF_PHRASES = re.compile(r'"[^"]*"(?: OR "[^"]*")*')


class LexicalSearch:
    """The FTS5 half of `Index` (needs its `db`)."""

    def lexical(self, match: str, limit: int, doc_ids: list[int] | None = None,
                budget: int | None = None, candidates: int | None = None) -> list[tuple[int, float]]:
        """(page id, bm25) best first for an FTS5 MATCH expression; bm25 is negated so higher is better.

        `doc_ids` restricts the match to those documents' pages inside the query itself. On
        large indexes the commonest phrases are left out (`without_common`), and only the pages
        holding one of the rarest phrases are scored (`lexical_plan`), with every phrase kept.
        """
        match, among = self.lexical_plan(match, budget, candidates)
        if not match:
            return []
        where, args = "", [match]
        if among is not None:
            # '+rowid': a filter on the rows FTS5 matches, not a constraint handed to FTS5 (which would
            # run the match once per candidate); bm25 is then computed for the candidates only
            where, args = " AND +rowid IN (SELECT rowid FROM pages_fts WHERE pages_fts MATCH ?)", [match, among]
        if doc_ids is not None:
            where += " AND rowid IN (SELECT id FROM pages WHERE doc_id IN (SELECT value FROM json_each(?)))"
            args.append(json.dumps(doc_ids))
        rows = self.db.execute(
            "SELECT rowid, bm25(pages_fts, 0.5, 1.0, 0.7) AS s FROM pages_fts WHERE pages_fts MATCH ?"
            f"{where} ORDER BY s LIMIT ?", (*args, limit))
        return [(pid, -score) for pid, score in rows]


    def page_counts(self, matches: list[str]) -> dict[str, int]:
        """FTS5 MATCH expression -> the pages holding it: counted, or on large indexes (`large`) estimated
        from windows of pages (`_shares`), as counting a common word there reads ~10^5 postings."""
        lo, pages = self.page_id_span()
        if pages > COMMON_MIN_PAGES:
            return {m: round(share * pages) for m, share in self._shares(matches, lo, pages).items()}
        return {m: self.db.execute("SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ?", (m,)).fetchone()[0]
                for m in matches}

    def _shares(self, parts: list[str], lo: int, pages: int) -> dict[str, float]:
        """phrase -> its share of the pages, estimated from COMMON_WINDOWS windows of COMMON_WINDOW pages;
        remembered (SHARES_KEPT phrases) until the index's page ids change: queries share their common words."""
        cache = self.__dict__.get("_share_cache")
        if cache is None or cache[0] != (lo, pages) or len(cache[1]) > SHARES_KEPT:
            cache = self.__dict__["_share_cache"] = ((lo, pages), {})
        known = cache[1]
        starts = [lo + (pages - COMMON_WINDOW) * i // (COMMON_WINDOWS - 1) for i in range(COMMON_WINDOWS)]
        for p in parts:
            if p not in known:
                known[p] = sum(self.db.execute(
                    "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ? AND rowid BETWEEN ? AND ?",
                    (p, s, s + COMMON_WINDOW - 1)).fetchone()[0] for s in starts) / (COMMON_WINDOWS * COMMON_WINDOW)
        return {p: known[p] for p in parts}

    def page_id_span(self) -> tuple[int, int]:
        """(first page id, ids from it to the last one): about the page count, (0, 0) for none. Two lookups
        on the primary key (min() and max() in one query would scan the table)."""
        first = self.db.execute("SELECT id FROM pages ORDER BY id LIMIT 1").fetchone()
        last = self.db.execute("SELECT id FROM pages ORDER BY id DESC LIMIT 1").fetchone()
        return (0, 0) if first is None else (first[0], last[0] - first[0] + 1)

    def page_count(self) -> int:
        """The pages in the index: counted up to COMMON_MIN_PAGES (a bounded walk of the pages_doc index), else
        the id span (`page_id_span`). The span alone overstates an index whose files were removed or re-read: 2 pages
        left of 300 indexed read as 300, and every word then weighed as rare (rag.support)."""
        n = self.db.execute("SELECT count(*) FROM (SELECT doc_id FROM pages LIMIT ?)",
                            (COMMON_MIN_PAGES + 1,)).fetchone()[0]
        return n if n <= COMMON_MIN_PAGES else self.page_id_span()[1]

    def large(self) -> bool:
        """Whether searches take the large-index paths: more than COMMON_MIN_PAGES pages (`lexical_plan`),
        the lexical half of a hybrid search in a thread of its own (rag.retrieve)."""
        return self.page_id_span()[1] > COMMON_MIN_PAGES

    def without_common(self, match: str, budget: int | None = None) -> str:
        """`match` without its commonest phrases (`lexical_plan`'s first part)."""
        return self.lexical_plan(match, budget)[0]

    def lexical_plan(self, match: str, budget: int | None = None,
                     candidates: int | None = None) -> tuple[str, str | None]:
        """`match` (an OR of quoted phrases, as rag.query.fts_match makes) without its commonest phrases,
        so that bm25 scores at most about `budget` (LEXICAL_BUDGET) postings; other expressions
        are returned as they are, and so is everything on indexes under COMMON_MIN_PAGES pages.

        bm25's cost is one scoring per page that holds a phrase ('also' is on ~40% of pages:
        ~1 s at 10^6 pages, bench/scale.py), and its weight is least for those phrases: idf =
        log((N - n + 0.5) / (n + 0.5)), which FTS5 clamps to 1e-6 past n = N/2. So phrases on more
        than half the pages are always left out (no page's score changes), then the commonest
        ones go while the postings to score exceed the budget; the rarest phrase always stays.
        Counts are estimated from COMMON_WINDOWS windows of COMMON_WINDOW consecutive pages
        spread over the index (~0.1 ms a phrase).

        Returns (phrases kept, phrases whose pages are the candidates, or None for every page
        matching). Scoring a page costs ~30x reading one posting (bench/scale.py), so only the
        pages holding one of the rarest phrases (about `candidates`, CANDIDATE_BUDGET, postings
        of them; the rarest always) are scored, by every kept phrase: their scores are the
        ones a full query gives. Left out are pages holding only commoner phrases, which
        weigh little: at 10^6 pages, the same top-5 as every phrase scored on every page for
        0.95 of queries (budgets 200,000 / 20,000), where scoring every page of 100,000 postings
        gave 0.92 in 1.4x the time; 5,000 candidate postings: 0.88 (bench/scale.py).
        """
        parts = _PHRASE.findall(match)
        if not parts or not _OR_OF_PHRASES.fullmatch(match):
            return match, None
        lo, pages = self.page_id_span()  # ids taken as dense: gaps only make it drop more
        if pages <= COMMON_MIN_PAGES:
            return match, None
        share = self._shares(parts, lo, pages)
        budget = budget or LEXICAL_BUDGET
        kept, rarest, postings = set(), set(), 0.0
        for p in sorted(parts, key=lambda p: share[p]):
            cost = share[p] * pages
            if share[p] > 0.5 or (kept and postings + cost > budget):
                break
            kept.add(p)
            postings += cost
            if len(rarest) == len(kept) - 1 and (not rarest or postings <= min(candidates or CANDIDATE_BUDGET, budget)):
                rarest.add(p)
        among = None if rarest == kept else " OR ".join(p for p in parts if p in rarest)
        return " OR ".join(p for p in parts if p in kept), among
