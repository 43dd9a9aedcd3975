"""The FAISS side of the index: chunk vectors keyed by chunk id, saved atomically.

SQLite keeps every vector as well (chunks.vector, float16: the source of truth), so the
FAISS file is a cache that `reconcile` can always bring back in line with the database
after a crash, and rebuild from scratch when it is lost.

Below APPROX_THRESHOLD passages the cache is exact (IndexIDMap2 over IndexFlatIP); past
it, an inverted file (IndexIVFScalarQuantizer, 8-bit codes) whose layout is chosen by
`layout_for(n)` and recorded in the index's meta table as `vector_index`:

    layout_for(1_000_000) -> Layout(kind='ivf', nlist=1024, nprobe=256, encoding='SQ8', trained_on=1000000,
                                    rescore=100)

Both kinds take add/remove by chunk id and a faiss.IDSelector at search time. An IVF search
takes the `rescore` best candidates by their 8-bit codes and re-scores them exactly with the
float16 vectors SQLite keeps (`VectorStore.search(..., stored=)`), so its scores are the
exact cosines and its order the exact order among the candidates.

A reader maps an IVF file's lists from disk (faiss IO_FLAG_MMAP: ~1 ms whatever the size,
instead of reading hundreds of MiB) and copies them into memory only before it changes them.

The file carries a stamp (`vectors.faiss.stamp`: the database's uuid, its change
generation and the checksum of the (id, vector) pairs the file holds) so a reader can
tell a current file from a stale or foreign one without trusting ids alone
(`Index.reconcile`).
"""
from __future__ import annotations

import errno
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

FAISS_NAME = "vectors.faiss"
STAMP_NAME = FAISS_NAME + ".stamp"
_MASK = (1 << 64) - 1
VECTOR_DTYPE = "float16"  # chunks.vector in SQLite; FAISS is given the same rounded values

# Past this many passages a flat search costs more than the rest of a hybrid query
# (bench/scale.py: flat top-100 ~8 ms at 10^5, ~80 ms at 10^6 on 2 cores; IVF stays ~2-4 ms).
APPROX_THRESHOLD = 200_000
RETRAIN_GROWTH = 4  # retrain (more lists) once the index holds 4x what it was trained on
TRAIN_PER_LIST = 40  # k-means sample: 40 vectors per list (FAISS warns below 39)
RESCORE = 100  # IVF candidates re-scored exactly from SQLite's float16 vectors (bench/scale.py)


@dataclass(frozen=True)
class Layout:
    """What the FAISS cache should be; stored as JSON in meta['vector_index']."""

    kind: str = "flat"  # flat | ivf
    nlist: int = 0  # inverted lists (ivf)
    nprobe: int = 0  # lists visited per query (ivf)
    encoding: str = "flat"  # flat (float32) | SQ8 (one byte per dimension) | fp16
    trained_on: int = 0  # passages when the quantizer was trained
    rescore: int = 0  # (ivf) best candidates re-scored exactly with SQLite's vectors; 0: none

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> "Layout | None":
        if not text:
            return None
        try:
            return cls(**json.loads(text))
        except (TypeError, ValueError):
            return None


def layout_for(n: int, current: Layout | None = None) -> Layout:
    """The layout for an index of `n` passages, keeping `current` while it still fits.

    Flat below APPROX_THRESHOLD (back to flat only below half of it, so an index hovering
    at the threshold is not rebuilt back and forth); IVF with ~sqrt(n) lists (a power of
    two), nprobe = nlist/4 (min 16) and the best RESCORE candidates re-scored exactly past
    it, retrained when n grows RETRAIN_GROWTH-fold. sqrt(n) rather than the usual 4·sqrt(n):
    k-means for 4096 lists takes ~16x the CPU of 1024 (tens of minutes on 2 cores at 10^6).
    Recall@10 at 10^6 on bench/scale.py's passages: nlist/4 + re-scoring 0.996 (p50 ~40 ms on
    a busy core), nlist/8 + re-scoring 0.983, nlist/4 alone 0.984; on the previous run's
    passages nlist/8 gave 0.952 and nlist/4 + re-scoring 0.987: the cheapest over 0.98 on both.
    """
    if current is not None and current.kind == "ivf":
        if n >= APPROX_THRESHOLD // 2 and n <= RETRAIN_GROWTH * max(current.trained_on, 1):
            # trained lists kept, today's search parameters
            return replace(current, nprobe=_nprobe(current.nlist), rescore=RESCORE)
    if n < APPROX_THRESHOLD:
        return Layout()
    nlist = min(2 ** round(math.log2(math.sqrt(n))), 2 ** int(math.log2(max(n // TRAIN_PER_LIST, 1))))
    return Layout("ivf", nlist, _nprobe(nlist), "SQ8", n, RESCORE)


def _nprobe(nlist: int) -> int:
    return min(nlist, max(16, nlist // 4))


def training_ids(ids, layout: Layout, seed: int = 0):
    """The ids whose vectors train an IVF layout: TRAIN_PER_LIST per list, drawn at random (seeded), sorted."""
    import numpy as np

    size = min(len(ids), layout.nlist * TRAIN_PER_LIST)
    return np.sort(np.random.default_rng(seed).choice(np.asarray(ids), size, replace=False))


def pack_vector(vector) -> bytes:
    """One float32 vector -> the float16 bytes kept in SQLite (half the size; cosines move < 1e-3)."""
    import numpy as np

    return np.asarray(vector, dtype="float32").astype(VECTOR_DTYPE).tobytes()


def read_faiss(path: Path, mapped: bool = False):
    """faiss.read_index through a Python file: any path works (faiss's own wants str, and a folder
    name with bytes that are not UTF-8 is a surrogate str it cannot encode).

    `mapped`: an IVF file's lists are mapped from disk, read only (faiss IO_FLAG_MMAP), where the
    path can be given to faiss as UTF-8; other files are read whole either way.
    """
    import faiss

    if mapped:
        try:
            name = os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            name = None
        if name is not None:
            return faiss.read_index(name, faiss.IO_FLAG_MMAP)
    with open(path, "rb", buffering=1 << 20) as f:
        reader = faiss.PyCallbackIOReader(f.read)
        try:
            return faiss.read_index(reader)
        finally:
            del reader


def write_faiss(index, path: Path) -> None:
    """faiss.write_index through a Python file (see read_faiss), flushed and fsynced."""
    import faiss

    with open(path, "wb", buffering=1 << 20) as f:
        writer = faiss.PyCallbackIOWriter(f.write)
        try:
            faiss.write_index(index, writer)
        finally:
            del writer
        f.flush()
        os.fsync(f.fileno())


def unpack_vectors(blobs: list[bytes], dim: int):
    """SQLite blobs -> float32 array (n, dim)."""
    import numpy as np

    if not blobs:
        return np.zeros((0, dim), dtype="float32")
    flat = np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE)
    if dim <= 0 or flat.size != len(blobs) * dim:  # embed_dim in the meta table disagrees with the stored vectors
        from .errors import IndexDamaged

        raise IndexDamaged(f"the index's stored vectors do not have the {dim} dimensions its meta table records "
                           f"({flat.size} values in {len(blobs)} vector(s)); the index is damaged: "
                           "rebuild it into a new folder (`pagerag index build PATHS --index NEW_FOLDER`)")
    return flat.reshape(len(blobs), dim).astype("float32")


def _mix(z):
    """splitmix64's finaliser over a uint64 array: every input bit moves about half the output bits."""
    import numpy as np

    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def digest(ids, vectors) -> int:
    """Order-free checksum of (chunk id, vector) pairs: the sum mod 2**64 of one hash per pair.

    `vectors` are float32 rows as FAISS holds them (SQLite's float16 values, widened).
    Sums compose: digest(a ∪ b) = digest(a) + digest(b) mod 2**64, so the store keeps it
    up to date by adding the digest of what it inserts and subtracting that of what it
    deletes. Moving a vector to another id, or changing one bit of one vector, changes it.
    """
    import numpy as np

    ids = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    if not len(ids):
        return 0
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), -1)
    weights = _mix(np.arange(vectors.shape[1], dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    total = 0
    with np.errstate(over="ignore"):
        for start in range(0, len(ids), 8192):
            bits = vectors[start:start + 8192].view(np.uint32).astype(np.uint64)
            rows = (bits * weights).sum(axis=1, dtype=np.uint64)
            h = _mix(rows ^ _mix(ids[start:start + 8192] + np.uint64(1)))
            total = (total + int(h.sum(dtype=np.uint64))) & _MASK
    return total


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


def _as_stored(vectors):
    """float32 rows rounded as SQLite stores them, so FAISS holds exactly what it could be rebuilt from."""
    import numpy as np

    return np.ascontiguousarray(np.asarray(vectors, dtype="float32").astype(VECTOR_DTYPE), dtype="float32")


def stamp_on_disk(folder: Path) -> dict | None:
    """The FAISS file's stamp ({"uuid", "gen", "sum"}) if it names the file beside it (size, mtime), without
    reading the file: whether the cache is current costs two small reads, not loading it."""
    try:
        stamp = json.loads((Path(folder) / STAMP_NAME).read_text())
        st = (Path(folder) / FAISS_NAME).stat()
        if (stamp["size"], stamp["mtime_ns"]) != (st.st_size, st.st_mtime_ns):
            return None
        return {"uuid": str(stamp["uuid"]), "gen": int(stamp["gen"]), "sum": int(stamp["sum"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
            self.index.add_with_ids(_as_stored(vectors), np.asarray(ids, dtype="int64"))
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
            index.train(_as_stored(sample))
        for ids, vectors in batches:
            if len(ids):
                index.add_with_ids(_as_stored(vectors), ids)
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
