"""An index's vectors: SQLite's chunks.vector (the source of truth) and the FAISS cache kept in step.

`Index` inherits these methods (index/store.py). Every transaction that adds or removes chunks
folds the change into the vector stamp in meta (`_changed_chunks`); a FAISS file whose stamp
differs is caught up by ids or rebuilt from SQLite (`reconcile`), so a crash between the two
can never leave search inconsistent.
"""
from __future__ import annotations

import json

from .errors import NotIndexed
from .vectors import (FAISS_NAME, Layout, VectorStore, id_selector, layout_for, pack_vector, stamp_on_disk, training_ids,
                      unpack_vectors)

EXACT_BELOW = 4096  # passages in a search scope scored exactly when the FAISS cache is approximate


class VectorCache:
    """The vector half of `Index` (needs its `db`, `folder`, `meta`, `set_meta`, `snapshot`, `readonly`,
    `_vectors`, `_vectors_lock` and `_removed`)."""

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

    def _dim(self) -> int:
        return int(self.meta.get("embed_dim", 0) or 0)


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


def _stored(vector: bytes) -> bytes:
    """float32 bytes -> the float16 bytes chunks.vector holds."""
    import numpy as np

    return pack_vector(np.frombuffer(vector, dtype="float32"))
