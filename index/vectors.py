"""The FAISS side of the index: chunk vectors keyed by chunk id, saved atomically.

SQLite keeps every vector as well (chunks.vector), so the FAISS file is a cache that
`reconcile` can always bring back in line with the database after a crash.
"""
from __future__ import annotations

import os
from pathlib import Path

FAISS_NAME = "vectors.faiss"


class VectorStore:
    """IndexIDMap2 over a flat inner-product index; vectors are unit length, so scores are cosines."""

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
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.dirty = False

    def __len__(self) -> int:
        return self.index.ntotal

    def ids(self):
        import numpy as np

        if self.index.ntotal == 0:
            return np.zeros(0, dtype="int64")
        return self._faiss.vector_to_array(self.index.id_map).astype("int64")

    def add(self, ids, vectors) -> None:
        import numpy as np

        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype="float32"),
                                    np.asarray(ids, dtype="int64"))
            self.dirty = True

    def remove(self, ids) -> None:
        import numpy as np

        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype="int64"))
            self.dirty = True

    def search(self, vector, k: int):
        """(scores, ids) of the k nearest chunks to one query vector; ids are -1 past the end."""
        import numpy as np

        k = min(k, self.index.ntotal)
        if k == 0:
            return np.zeros(0, dtype="float32"), np.zeros(0, dtype="int64")
        scores, ids = self.index.search(np.asarray(vector, dtype="float32").reshape(1, -1), k)
        return scores[0], ids[0]

    def save(self) -> None:
        """Write to a temporary file, fsync, then rename over the old file: readers see old or new, never half."""
        tmp = self.path.with_suffix(".faiss.tmp")
        self._faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
