"""An index folder: SQLite (documents, pages, chunks, FTS5) plus the FAISS vector cache.

    idx = Index.open(folder)                 # readers; never blocked by a writer
    idx = Index.open(folder, create=True)    # the builder, under WriteLock

Every write that adds or removes pages is one SQLite transaction; vectors live in
SQLite too, and `vectors` reconciles the FAISS file with them on first use, so a
crash between the two can never leave search inconsistent.

`Index` is assembled from one module per concept: opening, documents, writing pages and captions
here; reading pages back in index/page_lookup.py, vectors and the FAISS cache in
index/vector_cache.py, lexical (FTS5) search in index/lexical.py, page facts in index/facts.py.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IndexDamaged, IndexFormatError, IndexReadOnly, ModelMismatch, damaged_message, database_error
from .location import _connect, check_location, make_folder, quick_check, read_only_message, writable
from .schema import DB_NAME, FAILED_PAGES, FORMAT_VERSION, SCHEMA
from .stored_paths import db_path, valid_text
from .vectors import VectorStore, digest, unpack_vectors
from .facts import PageFacts
from .page_lookup import PageLookup
from .lexical import (CANDIDATE_BUDGET, COMMON_MIN_PAGES, COMMON_WINDOW, COMMON_WINDOWS,  # noqa: F401 (re-exported)
                      LEXICAL_BUDGET, LexicalSearch)
from .vector_cache import EXACT_BELOW, VectorCache, _stored  # noqa: F401 (re-exported)
from .wordpack import pack_words, unpack_words
from .words import fold


@dataclass
class NewChunk:
    text: str
    word_start: int
    word_end: int
    box: tuple | None
    vector: bytes  # float32 x dim (stored as float16)
    kind: str = "text"


@dataclass
class NewPage:
    doc_id: int
    page_no: int
    width: int
    height: int
    source: str
    text: str
    words: list
    ocr_conf: float | None
    chunks: list[NewChunk]
    caption: str | None = None
    rotation: int = 0  # degrees clockwise applied to the file's image (see schema)
    lang: str | None = None
    facts: list = field(default_factory=list)  # [(kind, value)]: page structure (index/structure.py)


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


QUICK_CHECK_BELOW = 1 << 30  # `check="if-small"`: quick_check reads the whole file (~5 s per GiB)


class Index(PageLookup, VectorCache, LexicalSearch, PageFacts):
    def __init__(self, folder: Path, db: sqlite3.Connection):
        self.folder = folder
        self.db = db
        self._vectors: VectorStore | None = None
        self._vectors_lock = threading.RLock()  # one load or catch-up at a time (the web app searches in threads)
        self._removed = False  # documents removed while FAISS was not loaded
        self.readonly = False

    @classmethod
    def open(cls, folder: Path | str, create: bool = False, check: bool | str = False) -> "Index":
        """Open (or with `create`, make) the index in `folder`.

        A folder this process cannot write is opened read-only (searches work, nothing is
        created there). `check` runs SQLite's quick_check first (raises IndexDamaged);
        "if-small" only for a database under QUICK_CHECK_BELOW bytes.
        """
        folder = Path(folder).expanduser().resolve()
        check_location(folder)
        db_path = folder / DB_NAME
        if not db_path.exists():
            if not create:
                raise IndexFormatError(
                    f"no index at {folder}: build one with `pagerag index build PATH --index {folder}`")
            make_folder(folder)
        readonly = not writable(folder, db_path)
        if readonly and create:
            raise IndexReadOnly(read_only_message(folder))
        try:
            db = _connect(db_path, readonly)
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if check is True or (check == "if-small" and db_path.stat().st_size <= QUICK_CHECK_BELOW):
                problems = quick_check(db)
                if problems:
                    raise IndexDamaged(damaged_message(folder, problems[0]))
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e):
                raise IndexFormatError(f"{db_path} is not a pagerag index ({e}); point --index at another folder") from None
            raise database_error(folder, e) from None
        if "meta" not in tables:
            if not tables and not create:
                raise IndexFormatError(f"no index at {folder} yet ({DB_NAME} is empty: a first build stopped before "
                                       f"writing anything); build one with `pagerag index build PATH --index {folder}`")
            if tables:
                raise IndexFormatError(f"{db_path} is not a pagerag index; point --index at another folder")
            # one transaction: a build killed while creating the index leaves an empty file, not half a schema
            db.executescript("BEGIN IMMEDIATE;\n" + SCHEMA)
            db.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("format_version", str(FORMAT_VERSION)), ("created", now()), ("vectors_uuid", uuid.uuid4().hex),
                ("vectors_gen", "0"), ("vectors_sum", "0")])
            db.execute("COMMIT")
        idx = cls(folder, db)
        idx.readonly = readonly
        if create and "meta" in tables and "failed_pages" not in tables:  # an index made before that table
            db.executescript(FAILED_PAGES)
        meta = idx.meta
        version = meta.get("format_version")
        if version is None:
            raise IndexDamaged(damaged_message(folder, "its meta table records no format version"))
        if version != str(FORMAT_VERSION):
            raise IndexFormatError(
                f"the index at {folder} has format version {version}, this pagerag reads version "
                f"{FORMAT_VERSION}: rebuild it into a new folder with `pagerag index build PATH --index NEW_DIR`")
        bad = [k for k in ("embed_dim", "vectors_gen", "vectors_sum") if k in meta and not meta[k].isdigit()]
        if bad:
            raise IndexDamaged(damaged_message(folder, f"its meta value {bad[0]} = {meta[bad[0]]!r} is not a number"))
        return idx

    def close(self) -> None:
        self.db.close()

    # -- metadata -------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def set_meta(self, **values) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])

    def check_model(self, name: str | None) -> str | None:
        """The embedding model to use: the one asked for, which must match the index's if it has one."""
        recorded = self.meta.get("embed_model")
        if name and recorded and name != recorded:
            raise ModelMismatch(
                f"the index at {self.folder} was built with embedding model '{recorded}' "
                f"({self.meta.get('embed_dim')}-d); vectors of '{name}' cannot be mixed with it. "
                f"Drop --embed-model, or build into a new folder with --index NEW_DIR")
        return name or recorded

    def snapshot(self):
        """A read transaction: several SELECTs see one committed state even while a build writes."""
        return _Transaction(self.db, "BEGIN")

    # -- documents ------------------------------------------------------------------
    def document(self, path: str) -> sqlite3.Row | None:
        cur = self.db.execute("SELECT * FROM documents WHERE path = ?", (db_path(path),))  # a surrogate path too
        cur.row_factory = sqlite3.Row
        return cur.fetchone()

    def twin(self, sha256: str, n_pages: int) -> sqlite3.Row | None:
        """A finished document with these bytes (the file moved or copied since), or None."""
        cur = self.db.execute("SELECT * FROM documents WHERE sha256 = ? AND status = 'done' AND n_pages = ? "
                              "ORDER BY id LIMIT 1", (sha256, n_pages))
        cur.row_factory = sqlite3.Row
        return cur.fetchone()

    def stored_pages(self, doc_id: int) -> list[sqlite3.Row]:
        """A document's pages as read (words unpacked), by page number."""
        cur = self.db.execute("SELECT page_no, width, height, source, text, words, rotation, lang FROM pages "
                              "WHERE doc_id = ? ORDER BY page_no", (doc_id,))
        cur.row_factory = sqlite3.Row
        return [{**dict(r), "words": unpack_words(r["words"], r["text"])} for r in cur.fetchall()]

    def documents(self) -> list[sqlite3.Row]:
        cur = self.db.execute("SELECT * FROM documents ORDER BY path")
        cur.row_factory = sqlite3.Row
        return cur.fetchall()

    def add_document(self, path: str, sha256: str, size: int, mtime_ns: int, kind: str, title: str,
                     n_pages: int) -> int:
        cur = self.db.execute(
            "INSERT INTO documents (path, sha256, size, mtime_ns, kind, title, n_pages, status, indexed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'indexing', ?)",
            (path, sha256, size, mtime_ns, kind, valid_text(title), n_pages, now()))
        return cur.lastrowid

    def touch_document(self, doc_id: int, mtime_ns: int) -> None:
        self.db.execute("UPDATE documents SET mtime_ns = ? WHERE id = ?", (mtime_ns, doc_id))

    def finish_document(self, doc_id: int) -> None:
        self.db.execute("UPDATE documents SET status = 'done', indexed_at = ? WHERE id = ?", (now(), doc_id))

    def remove_document(self, doc_id: int) -> int:
        """Delete a document, its pages, chunks, FTS rows and vectors; returns the number of pages removed."""
        with self.transaction():
            before = self.vector_stamp()
            rows = self.db.execute("SELECT c.id, c.vector FROM chunks c JOIN pages p ON p.id = c.page_id"
                                   " WHERE p.doc_id = ?", (doc_id,)).fetchall()
            chunk_ids = [r[0] for r in rows]
            page_ids = [r[0] for r in self.db.execute("SELECT id FROM pages WHERE doc_id = ?", (doc_id,))]
            self.db.executemany("DELETE FROM pages_fts WHERE rowid = ?", [(p,) for p in page_ids])
            self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            gone = digest(chunk_ids, unpack_vectors([r[1] for r in rows], self._dim())) if rows else 0
            after = self._changed_chunks(0, gone) if rows else before
        self._faiss_follow(before, after, remove=chunk_ids)
        return len(page_ids)

    def done_pages(self, doc_id: int) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT page_no FROM pages WHERE doc_id = ?", (doc_id,))}

    # -- pages ----------------------------------------------------------------------
    def add_pages(self, pages: list[NewPage], titles: dict[int, str]) -> list[int]:
        """Insert pages with their chunks in one transaction; returns the new chunk ids, in order."""
        added, blobs = [], []
        with self.transaction():
            before = self.vector_stamp()
            if self._has_failed_pages():  # a page that failed before, read now (`build --retry-failed`)
                self.db.executemany("DELETE FROM failed_pages WHERE doc_id = ? AND page_no = ?",
                                    [(p.doc_id, p.page_no) for p in pages])
            for p in pages:
                words = pack_words(p.words, p.text)
                page_id = self.db.execute(
                    "INSERT INTO pages (doc_id, page_no, width, height, source, text, words, ocr_conf, caption,"
                    " rotation, lang) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (p.doc_id, p.page_no, p.width, p.height, p.source, p.text, words, p.ocr_conf, p.caption,
                     p.rotation, p.lang)).lastrowid
                self.db.execute("INSERT INTO pages_fts (rowid, title, text, caption) VALUES (?, ?, ?, ?)",
                                (page_id, fold(titles[p.doc_id]), fold(p.text), fold(p.caption or "")))
                self.db.executemany("INSERT OR IGNORE INTO page_facts (page_id, kind, value) VALUES (?, ?, ?)",
                                    [(page_id, kind, value) for kind, value in p.facts])
                for ord_, c in enumerate(p.chunks):
                    box = json.dumps([round(v, 4) for v in c.box]) if c.box else None
                    blob = _stored(c.vector)
                    cid = self.db.execute(
                        "INSERT INTO chunks (page_id, ord, kind, text, word_start, word_end, box, vector)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (page_id, ord_, c.kind, c.text, c.word_start, c.word_end, box, blob)).lastrowid
                    added.append(cid)
                    blobs.append(blob)
            vectors = unpack_vectors(blobs, self._dim())
            after = self._changed_chunks(digest(added, vectors), 0) if added else before
        self._faiss_follow(before, after, add=(added, vectors))  # FAISS gets the vectors as stored
        return added

    # -- captions -------------------------------------------------------------------
    def pages_without_caption(self) -> list[sqlite3.Row]:
        cur = self.db.execute(
            "SELECT p.id, p.page_no, p.rotation, d.path, d.kind, d.title FROM pages p JOIN documents d"
            " ON d.id = p.doc_id WHERE p.caption IS NULL AND d.status = 'done' ORDER BY d.path, p.page_no")
        cur.row_factory = sqlite3.Row
        return cur.fetchall()

    def cached_caption(self, key: str) -> str | None:
        row = self.db.execute("SELECT caption FROM captions WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_caption(self, page_id: int, key: str, caption: str, chunk: NewChunk | None) -> int | None:
        """Store a page's caption (and cache it by `key`) with its embedded chunk; returns the chunk id."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO captions VALUES (?, ?)", (key, caption))
            self.db.execute("UPDATE pages SET caption = ? WHERE id = ?", (caption, page_id))
            self.db.execute("UPDATE pages_fts SET caption = ? WHERE rowid = ?", (fold(caption), page_id))
            if chunk is None:
                return None
            before = self.vector_stamp()
            ord_ = self.db.execute("SELECT count(*) FROM chunks WHERE page_id = ?", (page_id,)).fetchone()[0]
            blob = _stored(chunk.vector)
            cid = self.db.execute(
                "INSERT INTO chunks (page_id, ord, kind, text, word_start, word_end, box, vector)"
                " VALUES (?, ?, 'caption', ?, 0, 0, NULL, ?)", (page_id, ord_, chunk.text, blob)).lastrowid
            vector = unpack_vectors([blob], self._dim())
            after = self._changed_chunks(digest([cid], vector), 0)
        self._faiss_follow(before, after, add=([cid], vector))
        return cid

    # -- skips ----------------------------------------------------------------------
    def record_skip(self, path: str, reason: str, is_error: bool) -> None:
        self.db.execute("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?)",
                        (path, valid_text(reason), int(is_error), now()))

    def clear_skip(self, path: str) -> None:
        self.db.execute("DELETE FROM skipped WHERE path = ?", (path,))

    def skipped(self) -> list[tuple[str, str, bool]]:
        return [(p, r, bool(e)) for p, r, e in self.db.execute("SELECT path, reason, is_error FROM skipped ORDER BY path")]

    # -- pages that could not be read (partly indexed documents) --------------------
    def record_failed_page(self, doc_id: int, page_no: int, reason: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO failed_pages VALUES (?, ?, ?, ?)",
                        (doc_id, page_no, valid_text(reason), now()))

    def failed_pages(self, doc_id: int | None = None) -> dict[int, list[tuple[int, str]]]:
        """doc id -> [(page_no, reason)] by page number: the pages that could not be read (all documents'
        when `doc_id` is None)."""
        if not self._has_failed_pages():
            return {}
        where, args = ("WHERE doc_id = ?", (doc_id,)) if doc_id is not None else ("", ())
        out: dict[int, list[tuple[int, str]]] = {}
        for doc, page_no, reason in self.db.execute(
                f"SELECT doc_id, page_no, reason FROM failed_pages {where} ORDER BY doc_id, page_no", args):
            out.setdefault(doc, []).append((page_no, reason))
        return out

    def partial_documents(self) -> list[tuple[str, int, list[tuple[int, str]]]]:
        """[(path, pages in the file, [(page_no, reason)])] of the finished documents indexed without some
        pages, by path."""
        failed = self.failed_pages()
        if not failed:
            return []
        rows = self.db.execute("SELECT id, path, n_pages FROM documents WHERE status = 'done' AND id IN "
                               "(SELECT value FROM json_each(?)) ORDER BY path", (json.dumps(sorted(failed)),))
        return [(path, n, failed[doc]) for doc, path, n in rows]

    def _has_failed_pages(self) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'failed_pages'"
                               ).fetchone() is not None

    # -- misc -----------------------------------------------------------------------
    def transaction(self):
        return _Transaction(self.db)

    def counts(self) -> dict[str, int]:
        one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return {"documents": one("SELECT count(*) FROM documents WHERE status = 'done'"),
                "incomplete": one("SELECT count(*) FROM documents WHERE status != 'done'"),
                "pages": one("SELECT count(*) FROM pages"),
                "chunks": one("SELECT count(*) FROM chunks"),
                "ocr_pages": one("SELECT count(*) FROM pages WHERE source NOT IN ('text-layer', 'none')")}

    def ocr_languages(self) -> dict[str, int]:
        """OCR language list -> pages read with it, most pages first: {'eng': 40, 'deu+eng': 3}."""
        return dict(self.db.execute("SELECT lang, count(*) AS n FROM pages WHERE lang IS NOT NULL"
                                    " GROUP BY lang ORDER BY n DESC, lang"))

    def size_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (KeyboardInterrupt included).

    A read snapshot ("BEGIN") opened inside another transaction joins it: a caller can hold one
    snapshot across several readers (`index verify` checks everything against one state)."""

    def __init__(self, db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE"):
        self.db = db
        self.begin = begin
        self.joined = False

    def __enter__(self):
        self.joined = self.begin == "BEGIN" and self.db.in_transaction
        if not self.joined:
            self.db.execute(self.begin)
        return self.db

    def __exit__(self, exc_type, *_):
        if not self.joined:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
