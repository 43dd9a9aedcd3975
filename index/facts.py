"""Page facts: the structure a question may name ('page 14', 'figure 10', 'the last page'; index/structure.py).

`Index` inherits these methods (index/store.py).
"""
from __future__ import annotations

import json
import re

_INK = re.compile(r"\w\w")  # a page without two letters or digits in a row is blank (the back of a cover)


class PageFacts:
    """The page_facts half of `Index` (needs its `db` and `transaction`)."""

    def pages_with_facts(self, facts: list[tuple[str, str]], doc_ids: list[int] | None = None) -> dict[int, set]:
        """page id -> which of `facts` ([(kind, value)]) it holds, for the pages holding any
        (of those documents only, when `doc_ids` is given)."""
        out: dict[int, set] = {}
        for page_id, kind, value in self._facts_query("f.page_id, f.kind, f.value", "", facts, doc_ids):
            out.setdefault(page_id, set()).add((kind, value))
        return out

    def fill_printed_numbers(self, doc_ids: list[int]) -> int:
        """Add the printed page numbers that the run of each document's pages implies
        (index.structure.running_numbers), and the places counted without blank pages
        (index.structure.inked_places); returns how many facts were added. A document is a
        multi-page file, or the numbered page images of one folder (their ('page', N) facts)."""
        from .structure import inked_places, running_numbers

        if not doc_ids:
            return 0
        docs = self.db.execute("SELECT id, path, n_pages FROM documents WHERE id IN (SELECT value FROM json_each(?))",
                               (json.dumps(doc_ids),)).fetchall()
        ids = {d for d, _, n in docs if n > 1}
        for folder in {path.rsplit("/", 1)[0] for _, path, n in docs if n == 1}:  # the page images beside them
            ids.update(d for d, path in self.db.execute(
                "SELECT id, path FROM documents WHERE n_pages = 1 AND path > ? AND path < ?", (folder + "/", folder + "0"))
                if "/" not in path[len(folder) + 1:])
        rows = self.db.execute(
            "SELECT p.id, p.doc_id, p.page_no, d.path, d.n_pages, f.kind, f.value,"
            " coalesce(p.text, '') || ' ' || coalesce(p.caption, '') FROM pages p"
            " JOIN documents d ON d.id = p.doc_id LEFT JOIN page_facts f ON f.page_id = p.id"
            " AND f.kind IN ('page', 'printed') WHERE p.doc_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(ids)),)).fetchall()
        groups: dict[object, dict[int, list]] = {}
        blank: dict[int, bool] = {}
        for pid, doc_id, page_no, path, n_pages, kind, value, text in rows:
            key = doc_id if n_pages > 1 else path.rsplit("/", 1)[0]
            blank[pid] = not _INK.search(text or "")
            entry = groups.setdefault(key, {}).setdefault(pid, [page_no if n_pages > 1 else None, []])
            if kind == "page" and n_pages == 1:
                entry[0] = int(value)
            elif kind == "printed":
                entry[1].append(value)
        added = []
        for pages in groups.values():
            placed = {pid: (place, printed) for pid, (place, printed) in pages.items() if place is not None}
            added += [(pid, "printed", value) for pid, value in running_numbers(placed).items()]
            added += [(pid, "inked", value) for pid, value in
                      inked_places({pid: (place, blank[pid]) for pid, (place, _) in placed.items()}).items()]
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO page_facts (page_id, kind, value) VALUES (?, ?, ?)", added)
        return len(added)

    def present_facts(self, facts: list[tuple[str, str]], doc_ids: list[int] | None = None) -> list[tuple[str, str]]:
        """Those of `facts` that some page holds (of those documents only, when `doc_ids` is given), in order."""
        held = set(self._facts_query("DISTINCT f.kind, f.value", "", facts, doc_ids))
        return [f for f in facts if tuple(f) in held]

    def _facts_query(self, select: str, tail: str, facts: list[tuple[str, str]], doc_ids: list[int] | None):
        if not facts:
            return []
        where, args = "", [json.dumps([list(f) for f in facts])]
        if doc_ids is not None:
            where = " AND f.page_id IN (SELECT id FROM pages WHERE doc_id IN (SELECT value FROM json_each(?)))"
            args.append(json.dumps(doc_ids))
        return self.db.execute(
            f"SELECT {select} FROM page_facts f JOIN json_each(?) j"
            " ON f.kind = json_extract(j.value, '$[0]') AND f.value = json_extract(j.value, '$[1]')"
            f"{where} {tail}", args).fetchall()
