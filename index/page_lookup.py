"""Reading pages back: a page by path and number or by id, its words, the pages of chunks, and the
documents a search is scoped to (what search, ask, show and the web app read; the builder writes).

`Index` inherits these methods (index/store.py).
"""
from __future__ import annotations

import sqlite3

from .errors import BadArgument, NotIndexed
from .given_paths import not_indexed_hint, path_key, under_key
from .stored_paths import db_path, path_forms, shown
from .wordpack import unpack_words
from .words import Word

MAX_SQLITE_INT = 2**63 - 1  # a larger Python int cannot be bound to a query (OverflowError)


class PageLookup:
    """The read-back half of `Index` (needs its `db` and `folder`)."""

    def page(self, path: str, page_no: int) -> sqlite3.Row:
        if not 0 <= page_no <= MAX_SQLITE_INT:  # no such page, and SQLite could not even compare it
            raise NotIndexed(f"page {page_no} of {shown(db_path(path))} is not in the index")
        cur = self.db.execute(
            "SELECT p.*, d.path, d.title, d.kind FROM pages p JOIN documents d ON d.id = p.doc_id"
            " WHERE d.path = ? AND p.page_no = ?", (db_path(path), page_no))
        cur.row_factory = sqlite3.Row
        row = cur.fetchone()
        if row is None:
            doc = self.find_document(path)  # the path given in another Unicode normalisation
            if doc is not None and doc["path"] != db_path(path):
                return self.page(doc["path"], page_no)
            raise NotIndexed(f"page {page_no} of {shown(db_path(path))} is not in the index"
                             + (self._why_missing(doc, page_no) if doc is not None else ""))
        return row

    def _why_missing(self, doc: sqlite3.Row, page_no: int) -> str:
        """Why an indexed document lacks a page: it could not be read (a partly indexed file), or there is none."""
        reason = dict(self.failed_pages(doc["id"]).get(doc["id"], [])).get(page_no)
        if reason is not None:
            return (f": it could not be read when indexed ({reason}); `pagerag index build --retry-failed` "
                    "reads it again (or fix the file and build again)")
        n = doc["n_pages"]
        return f": the file has {n} page{'s' if n != 1 else ''}" if n and page_no > n else ""

    def find_document(self, path: str) -> sqlite3.Row | None:
        """The document stored at a path given by a person: as given, else the one whose path has its key
        (`given_paths.path_key`: 'Bjo\u0308rn.pdf' written on macOS finds 'Bj\u00f6rn.pdf'); None if neither."""
        row = self.document(path)
        if row is not None:
            return row
        key = path_key(db_path(path))
        return next((d for d in self.documents() if path_key(d["path"]) == key), None)

    def page_words(self, page_id: int) -> list[Word]:
        """A page's words with their boxes (page fractions), in reading order."""
        row = self.db.execute("SELECT words, text FROM pages WHERE id = ?", (page_id,)).fetchone()
        if row is None:
            raise NotIndexed(f"no page with id {page_id} in the index")
        return unpack_words(row[0], row[1])

    def page_by_id(self, page_id: int) -> sqlite3.Row:
        """A page with its document's path, title and kind."""
        if not 0 <= page_id <= MAX_SQLITE_INT:
            raise NotIndexed(f"no page with id {page_id} in the index at {self.folder}")
        cur = self.db.execute(
            "SELECT p.*, d.path, d.title, d.kind FROM pages p JOIN documents d ON d.id = p.doc_id WHERE p.id = ?",
            (page_id,))
        cur.row_factory = sqlite3.Row
        row = cur.fetchone()
        if row is None:
            raise NotIndexed(f"no page with id {page_id} in the index at {self.folder}")
        return row

    def pages_of_chunks(self, chunk_ids: list[int]) -> dict[int, int]:
        """chunk id -> page id, for the chunks that still exist."""
        if not chunk_ids:
            return {}
        return dict(self.db.execute(
            f"SELECT id, page_id FROM chunks WHERE id IN ({','.join('?' * len(chunk_ids))})", list(chunk_ids)))

    # -- scopes (search within documents) -------------------------------------------
    def documents_under(self, paths) -> list[int]:
        """Ids of the indexed documents at or under each path (a file or a folder), sorted.

        A folder matches by path prefix on the documents' unique path index:
        ['/scans/2023'] -> the documents '/scans/2023/a.pdf', '/scans/2023/q1/b.tif', not '/scans/2023-old/c.pdf'.
        """
        ids: set[int] = set()
        for raw in paths:
            if not str(raw).strip() or "\0" in str(raw):  # '' would resolve to the current folder
                raise BadArgument("an empty path was given to search within; name the files or folders")
            for path in path_forms(raw):  # as written, else with links resolved
                prefix = path.rstrip("/") + "/"
                found = [r[0] for r in self.db.execute(
                    "SELECT id FROM documents WHERE path = ? OR (path >= ? AND path < ?)",
                    (path, prefix, prefix[:-1] + "0"))]  # '0' sorts right after '/'
                if found:
                    break
            if not found:  # written in another Unicode normalisation than stored (a name typed on macOS)
                found = [d["id"] for d in self.documents() for path in path_forms(raw) if under_key(d["path"], path)]
            if not found:
                raise NotIndexed(f"nothing is indexed at or under {shown(path)}: " + not_indexed_hint(
                    path, [d["path"] for d in self.documents()],
                    f"pagerag index build {shown(path)} --index {shown(db_path(self.folder))}"))
            ids.update(found)
        return sorted(ids)

    def page_rows(self, page_ids: list[int]) -> dict[int, sqlite3.Row]:
        cur = self.db.execute(
            "SELECT p.id, p.page_no, p.text, p.caption, d.path, d.title FROM pages p JOIN documents d"
            f" ON d.id = p.doc_id WHERE p.id IN ({','.join('?' * len(page_ids))})", list(page_ids))
        cur.row_factory = sqlite3.Row
        return {r["id"]: r for r in cur}
