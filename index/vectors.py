"""The FAISS side of the index: chunk vectors keyed by chunk id, saved atomically.

SQLite keeps every vector as well (chunks.vector, float16: the source of truth), so the
FAISS file is a cache that `reconcile` can always bring back in line with the database
after a crash, and rebuild from scratch when it is lost.

Below APPROX_THRESHOLD passages the cache is exact (IndexIDMap2 over IndexFlatIP); past
it, an inverted file (IndexIVFScalarQuantizer, 8-bit codes) whose layout is chosen by
`layout_for(n)` and recorded in the index's meta table as `vector_index`:

    layout_for(1_000_000) -> Layout(kind='ivf', nlist=1024, nprobe=32, encoding='SQ8', trained_on=1000000)

Both kinds take add/remove by chunk id and a faiss.IDSelector at search time.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FAISS_NAME = "vectors.faiss"
VECTOR_DTYPE = "float16"  # chunks.vector in SQLite; FAISS is given the same rounded values

# Past this many passages a flat search costs more than the rest of a hybrid query
# (bench/scale.py: flat top-100 ~8 ms at 10^5, ~80 ms at 10^6 on 2 cores; IVF stays ~2-4 ms).
APPROX_THRESHOLD = 200_000
RETRAIN_GROWTH = 4  # retrain (more lists) once the index holds 4x what it was trained on
TRAIN_PER_LIST = 40  # k-means sample: 40 vectors per list (FAISS warns below 39)


@dataclass(frozen=True)
class Layout:
    """What the FAISS cache should be; stored as JSON in meta['vector_index']."""

    kind: str = "flat"  # flat | ivf
    nlist: int = 0  # inverted lists (ivf)
    nprobe: int = 0  # lists visited per query (ivf)
    encoding: str = "flat"  # flat (float32) | SQ8 (one byte per dimension) | fp16
    trained_on: int = 0  # passages when the quantizer was trained

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
    two) and nprobe = nlist/32 (min 16) past it, retrained when n grows RETRAIN_GROWTH-fold.
    sqrt(n) rather than the usual 4·sqrt(n): k-means for 4096 lists takes ~16x the CPU of
    1024 (tens of minutes on 2 cores at 10^6), and a query still reads only ~3% of the codes.
    """
    if current is not None and current.kind == "ivf":
        if n >= APPROX_THRESHOLD // 2 and n <= RETRAIN_GROWTH * max(current.trained_on, 1):
            return current
    if n < APPROX_THRESHOLD:
        return Layout()
    nlist = min(2 ** round(math.log2(math.sqrt(n))), 2 ** int(math.log2(max(n // TRAIN_PER_LIST, 1))))
    return Layout("ivf", nlist, max(16, nlist // 32), "SQ8", n)


def training_ids(ids, layout: Layout, seed: int = 0):
    """The ids whose vectors train an IVF layout: TRAIN_PER_LIST per list, drawn at random (seeded), sorted."""
    import numpy as np

    size = min(len(ids), layout.nlist * TRAIN_PER_LIST)
    return np.sort(np.random.default_rng(seed).choice(np.asarray(ids), size, replace=False))


def pack_vector(vector) -> bytes:
    """One float32 vector -> the float16 bytes kept in SQLite (half the size; cosines move < 1e-3)."""
    import numpy as np

    return np.asarray(vector, dtype="float32").astype(VECTOR_DTYPE).tobytes()


def unpack_vectors(blobs: list[bytes], dim: int):
    """SQLite blobs -> float32 array (n, dim)."""
    import numpy as np

    if not blobs:
        return np.zeros((0, dim), dtype="float32")
    return np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE).reshape(len(blobs), dim).astype("float32")


def id_selector(ids):
    """A faiss.IDSelector accepting exactly `ids` (sorted, unique int64): a range for one contiguous run."""
    import faiss

    lo, hi = int(ids[0]), int(ids[-1])
    return faiss.IDSelectorRange(lo, hi + 1) if hi - lo + 1 == len(ids) else faiss.IDSelectorBatch(ids)


def _as_stored(vectors):
    """float32 rows rounded as SQLite stores them, so FAISS holds exactly what it could be rebuilt from."""
    import numpy as np

    return np.ascontiguousarray(np.asarray(vectors, dtype="float32").astype(VECTOR_DTYPE), dtype="float32")


class VectorStore:
    """Chunk vectors by chunk id; vectors are unit length and the metric inner product, so scores are cosines."""

    def __init__(self, folder: Path, dim: int):
        import faiss

        self._faiss = faiss
        self.path = Path(folder) / FAISS_NAME
        self.dim = dim
        self.index = None
        if self.path.exists():
            try:
                self.index = faiss.read_index(str(self.path))
            except RuntimeError:
                self.index = None  # unreadable cache: rebuilt from SQLite by reconcile
            if self.index is not None and self.index.d != dim:
                self.index = None
        if self.index is None:
            self.index = self._empty(Layout())
        self.dirty = False

    # -- what it is -------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        """The layout of the loaded index, trained_on left 0 (meta records it); it may lag meta's
        `vector_index` until the writer next saves (a lost file is reconciled as flat first)."""
        ivf = self._ivf()
        if ivf is None:
            return Layout()
        sq8 = isinstance(ivf, self._faiss.IndexIVFScalarQuantizer) and ivf.sq.qtype == self._faiss.ScalarQuantizer.QT_8bit
        return Layout("ivf", ivf.nlist, ivf.nprobe, "SQ8" if sq8 else "fp16")

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
            self.index.add_with_ids(_as_stored(vectors), np.asarray(ids, dtype="int64"))
            self.dirty = True

    def remove(self, ids) -> None:
        import numpy as np

        if len(ids):
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
        self.dirty = True

    def set_nprobe(self, nprobe: int) -> None:
        self._ivf().nprobe = nprobe
        self.dirty = True

    # -- queries ----------------------------------------------------------------------
    def search(self, vector, k: int, selector=None):
        """(scores, ids) of the k nearest chunks to one query vector; ids are -1 past the end.

        `selector` (a faiss.IDSelector over chunk ids) restricts the search to the chunks it
        accepts, inside FAISS, for either layout.
        """
        import numpy as np

        k = min(k, self.index.ntotal)
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
        """Write to a temporary file, fsync, then rename over the old file: readers see old or new, never half."""
        tmp = self.path.with_suffix(".faiss.tmp")
        self._faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
