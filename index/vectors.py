"""The FAISS side of the index: chunk vectors keyed by chunk id, saved atomically.

SQLite keeps every vector as well (chunks.vector, float16: the source of truth), so the
FAISS file is a cache that `reconcile` can always bring back in line with the database
after a crash, and rebuild from scratch when it is lost.

Below APPROX_THRESHOLD passages the cache is exact (IndexIDMap2 over IndexFlatIP); past
it, an inverted file (IndexIVFScalarQuantizer, 8-bit codes) whose layout is chosen by
`layout_for(n)` (index/vector_layout.py).

Both kinds take add/remove by chunk id and a faiss.IDSelector at search time. An IVF search
takes the `rescore` best candidates by their 8-bit codes and re-scores them exactly with the
float16 vectors SQLite keeps (`VectorStore.search(..., stored=)`), so its scores are the
exact cosines and its order the exact order among the candidates.

A reader maps an IVF file's lists from disk (faiss IO_FLAG_MMAP: ~1 ms whatever the size,
instead of reading hundreds of MiB) and copies them into memory only before it changes them.

The file carries a stamp (index/vector_files.py) so a reader can tell a current file from a
stale or foreign one; the checksum in it (`digest`) and the float16 packing are in
index/vector_values.py.
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

# stamp_on_disk, layout_for, training_ids, digest, pack_vector, unpack_vectors: not used here; index/store.py
# and index/vector_cache.py import them from here
from .vector_files import FAISS_NAME, STAMP_NAME, read_faiss, stamp_on_disk, write_faiss  # noqa: F401
from .vector_layout import Layout, layout_for, training_ids  # noqa: F401
from .vector_values import as_stored, digest, pack_vector, unpack_vectors  # noqa: F401


def rescored(vector, ids, stored, k: int):
    """(scores, ids) of the k best of candidate `ids` by exact inner product with their stored vectors.

    `stored(ids)` -> (ids, float32 rows) of those that still exist (SQLite's float16 values,
    `Index.stored_vectors`); candidates it no longer has are dropped.
    """
    import numpy as np

    have, rows = stored(ids[ids >= 0])
    if not len(have):
        return np.zeros(0, dtype="float32"), np.zeros(0, dtype="int64")
    scores = rows @ np.asarray(vector, dtype="float32").reshape(-1)
    order = np.lexsort((have, -scores))[:k]  # best first, ties by id
    return scores[order].astype("float32"), np.asarray(have, dtype="int64")[order]


def id_selector(ids):
    """A faiss.IDSelector accepting exactly `ids` (sorted, unique int64): a range for one contiguous run."""
    import faiss

    lo, hi = int(ids[0]), int(ids[-1])
    return faiss.IDSelectorRange(lo, hi + 1) if hi - lo + 1 == len(ids) else faiss.IDSelectorBatch(ids)



class VectorStore:
    """Chunk vectors by chunk id; vectors are unit length and the metric inner product, so scores are cosines.

    `stamp` ({"uuid", "gen", "sum"}) says which database state the content in memory
    matches; None when unknown (no file, unreadable file, or a stamp that does not belong
    to the file beside it).
    """

    def __init__(self, folder: Path, dim: int):
        import faiss

        self._faiss = faiss
        self.path = Path(folder) / FAISS_NAME
        self.stamp_path = Path(folder) / STAMP_NAME
        self.dim = dim
        self.index = None
        self.stamp: dict | None = None
        self.load_error: str | None = None
        self.mapped = False  # IVF lists mapped read-only from the file (copied in by _in_memory before a change)
        if self.path.exists():
            try:
                self.index = read_faiss(self.path, mapped=True)
                self.mapped = self._ivf() is not None and "OnDisk" in type(
                    self._faiss.downcast_InvertedLists(self._ivf().invlists)).__name__
            except RuntimeError as e:  # unreadable cache: rebuilt from SQLite by reconcile
                self.index, self.load_error = None, f"unreadable ({str(e).splitlines()[0][:120]})"
            if self.index is not None and self.index.d != dim:
                self.index, self.load_error = None, f"holds {self.index.d}-d vectors, the index uses {dim}-d"
            if self.index is not None:
                self.stamp = self._read_stamp()
        if self.index is None:
            self.index = self._empty(Layout())
        self.dirty = False

    def _read_stamp(self) -> dict | None:
        """The stamp, if it was written for exactly the FAISS file beside it (same size and mtime)."""
        try:
            stamp = json.loads(self.stamp_path.read_text())
            st = self.path.stat()
            if (stamp["size"], stamp["mtime_ns"], stamp["n"]) != (st.st_size, st.st_mtime_ns, self.index.ntotal):
                return None
            return {"uuid": str(stamp["uuid"]), "gen": int(stamp["gen"]), "sum": int(stamp["sum"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def reset(self) -> None:
        """Empty (flat), with an unknown stamp."""
        self.index = self._empty(Layout())
        self.mapped = False
        self.stamp = None
        self.dirty = True

    def _in_memory(self) -> None:
        """Copy mapped IVF lists into memory (the map is read only, and not what a save may write)."""
        if not self.mapped:
            return
        ivf = self._ivf()
        mapped = ivf.invlists
        lists = self._faiss.ArrayInvertedLists(ivf.nlist, ivf.code_size)
        for lst in range(ivf.nlist):
            size = mapped.list_size(lst)
            if size:
                lists.add_entries(lst, size, mapped.get_ids(lst), mapped.get_codes(lst))
        ivf.replace_invlists(lists, True)  # frees the map
        lists.this.disown()
        self.mapped = False

    def contents(self):
        """(ids, float32 vectors) as stored, or None when the layout cannot give them back exactly (IVF-SQ8)."""
        import numpy as np

        if self._ivf() is not None:
            return None
        ids = self.ids()
        if not len(ids):
            return ids, np.zeros((0, self.dim), dtype="float32")
        try:
            inner = self._faiss.downcast_index(self.index.index)
            return ids, inner.reconstruct_n(0, self.index.ntotal)
        except RuntimeError:
            return None

    # -- what it is -------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        """The layout of the loaded index, trained_on left 0 (meta records it); it may lag meta's
        `vector_index` until the writer next saves (a lost file is reconciled as flat first)."""
        ivf = self._ivf()
        if ivf is None:
            return Layout()
        # by bytes a vector: a read index is a plain IndexIVF to SWIG, so its class says nothing
        encoding = {self.dim: "SQ8", 2 * self.dim: "fp16"}.get(ivf.code_size, "flat")
        return Layout("ivf", ivf.nlist, ivf.nprobe, encoding)

    def _ivf(self):
        try:
            return self._faiss.extract_index_ivf(self.index)
        except RuntimeError:
            return None

    def _empty(self, layout: Layout):
        faiss = self._faiss
        if layout.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        quantizer = faiss.IndexFlatIP(self.dim)
        qtype = faiss.ScalarQuantizer.QT_8bit if layout.encoding == "SQ8" else faiss.ScalarQuantizer.QT_fp16
        index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, layout.nlist, qtype, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()
        index.nprobe = layout.nprobe
        return index

    def __len__(self) -> int:
        return self.index.ntotal

    def ids(self):
        """Every chunk id held, as int64 (order unspecified)."""
        import numpy as np

        if self.index.ntotal == 0:
            return np.zeros(0, dtype="int64")
        ivf = self._ivf()
        if ivf is None:
            return self._faiss.vector_to_array(self.index.id_map).astype("int64")
        invlists = ivf.invlists
        parts = []
        for lst in range(ivf.nlist):
            size = invlists.list_size(lst)
            if size:
                parts.append(self._faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
        return np.concatenate(parts).astype("int64")

    # -- changes ----------------------------------------------------------------------
    def add(self, ids, vectors) -> None:
        import numpy as np

        if len(ids):
            self._in_memory()
            self.index.add_with_ids(as_stored(vectors), np.asarray(ids, dtype="int64"))
            self.dirty = True

    def remove(self, ids) -> None:
        import numpy as np

        if len(ids):
            self._in_memory()
            self.index.remove_ids(self._faiss.IDSelectorBatch(np.asarray(ids, dtype="int64")))
            self.dirty = True

    def rebuild(self, layout: Layout, sample, batches) -> None:
        """Replace the index by an empty one of `layout`, trained on `sample` (float32 rows) for IVF,
        then filled from `batches` (an iterable of (ids, vectors))."""
        index = self._empty(layout)
        if layout.kind == "ivf":
            index.train(as_stored(sample))
        for ids, vectors in batches:
            if len(ids):
                index.add_with_ids(as_stored(vectors), ids)
        self.index = index
        self.mapped = False
        self.dirty = True

    def set_nprobe(self, nprobe: int) -> None:
        self._ivf().nprobe = nprobe
        self.dirty = True

    # -- queries ----------------------------------------------------------------------
    def search(self, vector, k: int, selector=None, rescore: int = 0, stored=None):
        """(scores, ids) of the k nearest chunks to one query vector; ids are -1 past the end.

        `selector` (a faiss.IDSelector over chunk ids) restricts the search to the chunks it
        accepts, inside FAISS, for either layout. On IVF, with `stored` (ids -> (ids, float32
        rows): SQLite's vectors), the best max(k, `rescore`) by the codes are re-scored exactly
        (`rescored`) and the k best of them returned.
        """
        import numpy as np

        exact = rescore > 0 and stored is not None and self._ivf() is not None
        want = k
        k = min(max(k, rescore) if exact else k, self.index.ntotal)
        if k == 0:
            return np.zeros(0, dtype="float32"), np.zeros(0, dtype="int64")
        # One query runs on one thread in FAISS whatever the setting, but entering an OpenMP region
        # with two waits for the idle one to be scheduled: p50 0.09 vs 18 ms for 2,000 passages
        # with the other core busy (bench/scale.py).
        threads = self._faiss.omp_get_max_threads()
        self._faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(np.asarray(vector, dtype="float32").reshape(1, -1), k,
                                            params=self.search_params(selector))
        finally:
            self._faiss.omp_set_num_threads(threads)
        if exact:
            return rescored(vector, ids[0], stored, want)
        return scores[0], ids[0]

    def search_params(self, selector=None):
        """faiss SearchParameters for this layout (IVF needs its own type, with nprobe), or None."""
        ivf = self._ivf()
        if ivf is not None:
            params = self._faiss.SearchParametersIVF()
            params.nprobe = ivf.nprobe
        elif selector is not None:
            params = self._faiss.SearchParameters()
        else:
            return None
        if selector is not None:
            params.sel = selector
        return params

    def save(self) -> None:
        """Write file and stamp to temporary files, fsync, rename: readers see old or new, never half.

        The stamp names the file's size and mtime, so a crash between the two renames leaves
        a stamp that does not match its file: read as "unknown", and rebuilt from SQLite.
        Raises OSError (ENOSPC when the disk is full) with the old files left in place.
        """
        tmp, stamp_tmp = self.path.with_suffix(".faiss.tmp"), self.stamp_path.with_suffix(".stamp.tmp")
        self._in_memory()
        try:
            write_faiss(self.index, tmp)
            st = os.stat(tmp)
            if self.stamp is not None:
                stamp = {**self.stamp, "sum": str(self.stamp["sum"]), "n": self.index.ntotal,
                         "size": st.st_size, "mtime_ns": st.st_mtime_ns}
                with open(stamp_tmp, "w") as f:
                    f.write(json.dumps(stamp))
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)
            if self.stamp is not None:
                os.replace(stamp_tmp, self.stamp_path)
            else:
                self.stamp_path.unlink(missing_ok=True)
        except (OSError, RuntimeError) as e:
            for t in (tmp, stamp_tmp):
                t.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise
            full = "space" in str(e).lower()
            raise OSError(errno.ENOSPC if full else errno.EIO,
                          "No space left on device" if full else str(e).splitlines()[0], str(self.path)) from None
        self.dirty = False
