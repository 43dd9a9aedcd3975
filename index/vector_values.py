"""Vectors as SQLite keeps them (float16, the source of truth) and their order-free checksum.

    pack_vector([0.6, 0.8]) -> 4 bytes; unpack_vectors([blob], 2) -> float32 array [[0.6001, 0.8]]
    digest(ids, vectors): sum mod 2**64 of one hash per (id, vector), kept up to date by the store
"""
from __future__ import annotations

_MASK = (1 << 64) - 1
VECTOR_DTYPE = "float16"  # chunks.vector in SQLite; FAISS is given the same rounded values


def pack_vector(vector) -> bytes:
    """One float32 vector -> the float16 bytes kept in SQLite (half the size; cosines move < 1e-3)."""
    import numpy as np

    return np.asarray(vector, dtype="float32").astype(VECTOR_DTYPE).tobytes()



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



def as_stored(vectors):
    """float32 rows rounded as SQLite stores them, so FAISS holds exactly what it could be rebuilt from."""
    import numpy as np

    return np.ascontiguousarray(np.asarray(vectors, dtype="float32").astype(VECTOR_DTYPE), dtype="float32")
