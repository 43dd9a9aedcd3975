"""An index folder: SQLite (documents, pages, chunks, FTS5) plus the FAISS vector cache.

    idx = Index.open(folder)                 # readers; never blocked by a writer
    idx = Index.open(folder, create=True)    # the builder, under WriteLock

Every write that adds or removes pages is one SQLite transaction; vectors live in
SQLite too, and `vectors` reconciles the FAISS file with them on first use, so a
crash between the two can never leave search inconsistent.
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .errors import (BadArgument, DiskFull, IndexDamaged, IndexFormatError, IndexReadOnly, ModelMismatch, NotIndexed,
                     damaged_message)
from .location import _connect, check_location, make_folder, quick_check, read_only_message, writable
from .schema import DB_NAME, FORMAT_VERSION, SCHEMA
from .sources import db_path, path_forms, shown, valid_text
from .vectors import (FAISS_NAME, Layout, VectorStore, digest, id_selector, layout_for, pack_vector, stamp_on_disk,
                      training_ids, unpack_vectors)
from .wordpack import pack_words, unpack_words
from .words import Word, fold


# Index.without_common: the commonest phrases are left out of bm25 queries on large indexes
COMMON_MIN_PAGES = 20_000
LEXICAL_BUDGET = 200_000  # postings of the phrases bm25 weighs, about (bench/scale.py)
CANDIDATE_BUDGET = 20_000  # postings of the rarest phrases, whose pages are the ones scored (bench/scale.py)
COMMON_WINDOWS, COMMON_WINDOW = 8, 128
_PHRASE = re.compile(r'"[^"]*"')
_OR_OF_PHRASES = re.compile(r'"[^"]*"(?: OR "[^"]*")*')


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


MAX_SQLITE_INT = 2**63 - 1  # a larger Python int cannot be bound to a query (OverflowError)
EXACT_BELOW = 4096  # passages in a search scope scored exactly when the FAISS cache is approximate


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


QUICK_CHECK_BELOW = 1 << 30  # `check="if-small"`: quick_check reads the whole file (~5 s per GiB)


class Index:
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
            if "disk is full" in str(e):
                raise DiskFull(f"the disk holding {folder} is full; free some space and run the command again") from None
            raise IndexDamaged(damaged_message(folder, str(e))) from None
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

    # -- vectors --------------------------------------------------------------------
    @property
    def vectors(self) -> VectorStore:
        if self._vectors is None:
            with self._vectors_lock:
                if self._vectors is None:
                    dim = int(self.meta.get("embed_dim", 0) or 0)
                    if not dim:
                        raise NotIndexed(f"the index at {self.folder} has no vectors yet")
                    vs = VectorStore(self.folder, dim)
                    self._vectors = vs
                    try:
                        self.reconcile()
                    except BaseException:
                        self._vectors = None
                        raise
        return self._vectors

    def current_vectors(self) -> VectorStore:
        """`vectors`, first brought up to what SQLite holds now: a long-lived reader (`serve`, `chat`)
        catches up with pages another process built or removed since it loaded FAISS: read again from the
        file and reconciled by ids, then swapped in whole, so a search running meanwhile in another thread
        finishes on the copy it started with. When nothing changed this costs one read of meta."""
        vs = self.vectors
        if vs.stamp != self.vector_stamp():
            with self._vectors_lock:
                if self._vectors.stamp != self.vector_stamp():
                    fresh = VectorStore(self.folder, vs.dim)
                    self.reconcile(fresh)
                    self._vectors = fresh
        return self._vectors

    def vector_stamp(self) -> dict:
        """What FAISS must hold: {"uuid", "gen", "sum"} of the chunks committed in SQLite."""
        m = self.meta
        return {"uuid": m.get("vectors_uuid", ""), "gen": int(m.get("vectors_gen", 0)),
                "sum": int(m.get("vectors_sum", 0))}

    def reconcile(self, vs: VectorStore | None = None) -> tuple[int, int]:
        """Make FAISS hold exactly the chunks in SQLite, ids and content; returns (added, removed).

        A file stamped with this database's current generation and checksum is used as is.
        One stamped with an earlier generation of this database is brought up to date by
        ids: chunk ids are never reused (AUTOINCREMENT), so an id both sides hold has the
        same vector. Anything else (no stamp, another database, a later generation) is
        rebuilt from the vectors in SQLite.
        """
        import numpy as np

        vs = vs or self._vectors
        with self.snapshot():
            want = self.vector_stamp()
            have = vs.stamp
            if have == want and len(vs) == self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]:
                return 0, 0
            trusted = have is not None and have["uuid"] == want["uuid"] and have["gen"] <= want["gen"]
            dropped = 0
            if not trusted:
                dropped = len(vs)
                vs.reset()
            in_faiss = vs.ids()
            in_db = np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks")), dtype="int64")
            extra = np.setdiff1d(in_faiss, in_db)
            missing = np.setdiff1d(in_db, in_faiss)
            vs.remove(extra)
            # a lost or new cache is read in one pass over the table, else just the missing ids
            for ids, vectors in self.iter_vectors(ids=None if len(missing) == len(in_db) else missing):
                vs.add(ids, vectors)
        vs.stamp = want
        vs.dirty = True
        return len(missing), len(extra) + dropped

    def _changed_chunks(self, added: int, removed: int) -> dict:
        """Inside a write transaction: fold a change into the stamp (gen + 1, sum + added - removed)."""
        stamp = self.vector_stamp()
        stamp["gen"] += 1
        stamp["sum"] = (stamp["sum"] + added - removed) % (1 << 64)
        self.set_meta(vectors_gen=stamp["gen"], vectors_sum=stamp["sum"])
        return stamp

    def _faiss_follow(self, before: dict, after: dict, add=None, remove=None) -> None:
        """After a commit: apply the same change to FAISS in memory, if it is loaded."""
        vs = self._vectors
        if vs is None:
            if remove is not None and len(remove):
                self._removed = True
            return
        if remove is not None:
            vs.remove(remove)
        if add is not None:
            vs.add(*add)
        # content first, stamp last: an interrupt in between leaves a stamp that under-claims
        vs.stamp = after if vs.stamp == before else None

    def snapshot(self):
        """A read transaction: several SELECTs see one committed state even while a build writes."""
        return _Transaction(self.db, "BEGIN")

    def all_vectors(self):
        """(ids, float32 vectors) of every chunk, as FAISS should hold them."""
        return self._joined(self.iter_vectors())

    def _joined(self, batches):
        """(ids, vectors) batches -> one (ids int64, float32 vectors) pair."""
        import numpy as np

        parts = list(batches)
        if not parts:
            return np.zeros(0, dtype="int64"), np.zeros((0, self._dim()), "float32")
        return np.concatenate([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def iter_vectors(self, batch: int = 20_000, ids=None):
        """(ids int64, vectors float32) batches of every chunk (or of `ids`, a sorted list), by id."""
        import numpy as np

        dim = int(self.meta["embed_dim"])
        if ids is not None:
            for start in range(0, len(ids), 5000):
                part = [int(i) for i in ids[start:start + 5000]]
                rows = self.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)
                got = list(rows)
                yield np.array([r[0] for r in got], dtype="int64"), unpack_vectors([r[1] for r in got], dim)
            return
        last = -1
        while True:
            rows = self.db.execute("SELECT id, vector FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield np.array([r[0] for r in rows], dtype="int64"), unpack_vectors([r[1] for r in rows], dim)

    def fit_vectors(self) -> Layout:
        """Give the FAISS cache the layout its size calls for (flat, or IVF trained on a sample of
        SQLite's vectors), record it in meta['vector_index'] and return it. Writers only."""
        import numpy as np

        vs = self.vectors
        n = len(vs)
        recorded = Layout.from_json(self.meta.get("vector_index"))
        want = layout_for(n, recorded)
        have = vs.layout
        if (have.kind, have.nlist, have.encoding) != (want.kind, want.nlist, want.encoding):
            sample = None
            if want.kind == "ivf":
                picked = training_ids(np.sort(vs.ids()), want)
                sample = np.vstack([v for _, v in self.iter_vectors(ids=picked)])
            vs.rebuild(want, sample, self.iter_vectors())
        elif want.kind == "ivf" and have.nprobe != want.nprobe:
            vs.set_nprobe(want.nprobe)
        if recorded != want:
            self.set_meta(vector_index=want.to_json())
        return want

    def save_vectors(self) -> None:
        """Write FAISS if this process changed it, removed documents whose vectors the file still has, or
        the file on disk is not current (lost, damaged, copied without its times, behind): a writer leaves
        a file that search can use as it is."""
        if self.readonly or "embed_dim" not in self.meta:
            return
        if self._vectors is None and not self._removed and stamp_on_disk(self.folder) == self.vector_stamp():
            return
        if self.vectors.dirty or not (self.folder / FAISS_NAME).exists():
            self.fit_vectors()
            self._vectors.save()

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

    def _dim(self) -> int:
        return int(self.meta.get("embed_dim", 0) or 0)

    def done_pages(self, doc_id: int) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT page_no FROM pages WHERE doc_id = ?", (doc_id,))}

    # -- pages ----------------------------------------------------------------------
    def add_pages(self, pages: list[NewPage], titles: dict[int, str]) -> list[int]:
        """Insert pages with their chunks in one transaction; returns the new chunk ids, in order."""
        added, blobs = [], []
        with self.transaction():
            before = self.vector_stamp()
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

    def page(self, path: str, page_no: int) -> sqlite3.Row:
        if not 0 <= page_no <= MAX_SQLITE_INT:  # no such page, and SQLite could not even compare it
            raise NotIndexed(f"page {page_no} of {shown(db_path(path))} is not in the index")
        cur = self.db.execute(
            "SELECT p.*, d.path, d.title, d.kind FROM pages p JOIN documents d ON d.id = p.doc_id"
            " WHERE d.path = ? AND p.page_no = ?", (db_path(path), page_no))
        cur.row_factory = sqlite3.Row
        row = cur.fetchone()
        if row is None:
            raise NotIndexed(f"page {page_no} of {shown(db_path(path))} is not in the index")
        return row

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
            if not found:
                raise NotIndexed(f"nothing is indexed at or under {shown(path)}: check the path, or index it "
                                 f"with `pagerag index build {shown(path)} --index {shown(db_path(self.folder))}`")
            ids.update(found)
        return sorted(ids)

    def chunk_ids_of_documents(self, doc_ids: list[int]):
        """The chunk (= FAISS) ids of these documents, as a sorted int64 array."""
        import numpy as np

        rows = self.db.execute(
            "SELECT c.id FROM chunks c JOIN pages p ON p.id = c.page_id"
            " WHERE p.doc_id IN (SELECT value FROM json_each(?)) ORDER BY c.id", (json.dumps(doc_ids),))
        return np.fromiter((r[0] for r in rows), dtype="int64")

    def nearest(self, vector, k: int, doc_ids: list[int] | None = None):
        """(scores, chunk ids) of the k passages nearest to `vector`, of those documents only if given.

        The scope is a faiss IDSelector inside the search (a range for one contiguous run of ids).
        On an approximate (IVF) cache a small scope is scored exactly from SQLite instead: the few
        lists it probes may hold none of one document's passages.
        """
        import numpy as np

        exact = {"rescore": self.vector_layout().rescore, "stored": self.stored_vectors}
        vectors = self.current_vectors()
        if doc_ids is None:
            return vectors.search(vector, k, **exact)
        among = self.chunk_ids_of_documents(doc_ids)
        if not len(among):
            return np.zeros(0, dtype="float32"), np.zeros(0, dtype="int64")
        if vectors.layout.kind != "flat" and len(among) <= EXACT_BELOW:
            blobs = [r[0] for r in self.db.execute(
                "SELECT vector FROM chunks WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(among.tolist()),))]
            scores = unpack_vectors(blobs, vectors.dim) @ np.asarray(vector, dtype="float32").reshape(-1)
            order = np.argsort(-scores, kind="stable")[:k]
            return scores[order], among[order]
        return vectors.search(vector, min(k, len(among)), selector=id_selector(among), **exact)

    def vector_layout(self) -> Layout:
        """The FAISS layout and search parameters recorded in meta['vector_index'] (flat when none)."""
        return Layout.from_json(self.meta.get("vector_index")) or Layout()

    def stored_vectors(self, ids):
        """(ids, float32 vectors) of those of `ids` still in SQLite, as FAISS holds them; by id."""
        import numpy as np

        return self._joined(self.iter_vectors(ids=np.sort(np.asarray(ids, dtype="int64"))))

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
        first = self.db.execute("SELECT id FROM pages ORDER BY id LIMIT 1").fetchone()  # min(), max() together
        last = self.db.execute("SELECT id FROM pages ORDER BY id DESC LIMIT 1").fetchone()  # would scan the table
        if first is None or last[0] - first[0] < COMMON_MIN_PAGES:
            return match, None
        lo, pages = first[0], last[0] - first[0] + 1  # ids taken as dense: gaps only make it drop more
        starts = [lo + (pages - COMMON_WINDOW) * i // (COMMON_WINDOWS - 1) for i in range(COMMON_WINDOWS)]
        sampled = COMMON_WINDOWS * COMMON_WINDOW
        share = {p: sum(self.db.execute(
            "SELECT count(*) FROM pages_fts WHERE pages_fts MATCH ? AND rowid BETWEEN ? AND ?",
            (p, s, s + COMMON_WINDOW - 1)).fetchone()[0] for s in starts) / sampled for p in parts}
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

    def pages_with_facts(self, facts: list[tuple[str, str]], doc_ids: list[int] | None = None) -> dict[int, set]:
        """page id -> which of `facts` ([(kind, value)]) it holds, for the pages holding any
        (of those documents only, when `doc_ids` is given)."""
        out: dict[int, set] = {}
        for page_id, kind, value in self._facts_query("f.page_id, f.kind, f.value", "", facts, doc_ids):
            out.setdefault(page_id, set()).add((kind, value))
        return out

    def fill_printed_numbers(self, doc_ids: list[int]) -> int:
        """Add the printed page numbers that the run of each document's pages implies
        (index.structure.running_numbers); returns how many were added. A document is a
        multi-page file, or the numbered page images of one folder (their ('page', N) facts)."""
        from .structure import running_numbers

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
            "SELECT p.id, p.doc_id, p.page_no, d.path, d.n_pages, f.kind, f.value FROM pages p"
            " JOIN documents d ON d.id = p.doc_id LEFT JOIN page_facts f ON f.page_id = p.id"
            " AND f.kind IN ('page', 'printed') WHERE p.doc_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(ids)),)).fetchall()
        groups: dict[object, dict[int, list]] = {}
        for pid, doc_id, page_no, path, n_pages, kind, value in rows:
            key = doc_id if n_pages > 1 else path.rsplit("/", 1)[0]
            entry = groups.setdefault(key, {}).setdefault(pid, [page_no if n_pages > 1 else None, []])
            if kind == "page" and n_pages == 1:
                entry[0] = int(value)
            elif kind == "printed":
                entry[1].append(value)
        added = []
        for pages in groups.values():
            placed = {pid: (place, printed) for pid, (place, printed) in pages.items() if place is not None}
            added += [(pid, "printed", value) for pid, value in running_numbers(placed).items()]
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

    def page_rows(self, page_ids: list[int]) -> dict[int, sqlite3.Row]:
        cur = self.db.execute(
            "SELECT p.id, p.page_no, p.text, p.caption, d.path, d.title FROM pages p JOIN documents d"
            f" ON d.id = p.doc_id WHERE p.id IN ({','.join('?' * len(page_ids))})", list(page_ids))
        cur.row_factory = sqlite3.Row
        return {r["id"]: r for r in cur}

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


def _stored(vector: bytes) -> bytes:
    """float32 bytes -> the float16 bytes chunks.vector holds."""
    import numpy as np

    return pack_vector(np.frombuffer(vector, dtype="float32"))


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
