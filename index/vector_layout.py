"""Which FAISS index the vector cache should be, by size: exact (flat) below APPROX_THRESHOLD passages,
an inverted file (IndexIVFScalarQuantizer, 8-bit codes) past it, recorded in the index's meta table
as `vector_index`:

    layout_for(1_000_000) -> Layout(kind='ivf', nlist=1024, nprobe=256, encoding='SQ8', trained_on=1000000,
                                    rescore=100)
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

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
