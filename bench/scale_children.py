"""The scale benchmark's measurements, each run by scale.py in a fresh process (`python scale.py fit|exact|ann|query
...`) so that its peak RSS is its own: FAISS fit, the exact baseline, IVF recall and latency by nprobe, and
hybrid / dense / lexical latency of `Retriever.search`.
"""
from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import asdict
from pathlib import Path

from harness import measure
from scale_index import CACHE, WORDS

PROBES = (8, 16, 32, 64, 128)
FLAT_SIZES = (10_000, 100_000, 200_000, 500_000, 1_000_000)
EXACT_LEXICAL = "lexical, every phrase scored"  # the baseline of Index.without_common's budget
SEQUENTIAL = "hybrid, one thread"  # baselines of the lexical side's own thread and connection (rag.retrieve)
THREADED = "hybrid, lexical in a thread"  # as the default does
ONE_CONNECTION = "lexical, one connection"


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child: fit ------------------------------------------------------------------------
def child_fit(folder: Path) -> dict:
    """Train and fill the FAISS cache from SQLite, as a writer does; time it."""
    from index.lock import WriteLock
    from index.store import Index
    from index.vector_files import FAISS_NAME

    (folder / FAISS_NAME).unlink(missing_ok=True)
    with WriteLock(folder), measure() as span:
        idx = Index.open(folder)
        t0 = time.perf_counter()
        layout = idx.fit_vectors()
        fit = time.perf_counter() - t0
        idx.save_vectors()
        idx.close()
    return {"wall": span.wall, "cpu": span.cpu, "others": span.others, "fit": fit,
            "layout": asdict(layout), "maxrss_mib": _maxrss_mib()}


# -- child: exact ----------------------------------------------------------------------
def child_exact(vectors_path: Path, size: int, queries_path: Path, k: int) -> dict:
    """Exact top-k per query at `size` and at the approximate threshold (prefixes of the vectors),
    and flat single-query top-100 latency at growing sizes."""
    import faiss
    import numpy as np

    from index.vector_layout import APPROX_THRESHOLD
    from search_latency import Latency

    data = np.memmap(vectors_path, dtype="float16", mode="r").reshape(-1, 384)[:size]
    queries = np.load(queries_path).astype("float32")
    flat = faiss.IndexFlatIP(384)
    latency, truth = {}, {}
    t0 = time.perf_counter()
    for n in sorted({n for n in (*FLAT_SIZES, APPROX_THRESHOLD) if n < size} | {size}):
        while flat.ntotal < n:
            stop = min(n, flat.ntotal + 100_000)
            flat.add(np.ascontiguousarray(data[flat.ntotal:stop], dtype="float32"))
        faiss.omp_set_num_threads(1)  # as a single search runs (one query: no OpenMP)
        lat = Latency(f"flat {n}")
        for q in queries[:100]:
            t = time.perf_counter()
            flat.search(q[None, :], 100)
            lat.ms.append((time.perf_counter() - t) * 1000)
        latency[n] = lat.summary()
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        if n in (size, APPROX_THRESHOLD):
            truth[n] = (flat.search(queries, k)[1] + 1).tolist()  # chunk ids are row + 1
    return {"truth": truth, "flat_latency": latency, "load_s": time.perf_counter() - t0, "maxrss_mib": _maxrss_mib()}


# -- child: ann -------------------------------------------------------------------------
def child_ann(vectors_path: Path, size: int, queries_path: Path, truth_path: Path, k: int, nlist: int = 0) -> dict:
    """The IVF layout pagerag picks for `size` passages (or one of `nlist` lists), trained and filled by
    VectorStore from the cached vectors (as `Index.fit_vectors` does from SQLite), then recall@k and
    latency by nprobe, with and without re-scoring the best `rescore` exactly (the vectors here
    standing in for SQLite's: the same float16 values; `query` times the real path)."""
    import tempfile
    from dataclasses import replace

    import numpy as np

    from index.vector_layout import layout_for, training_ids
    from index.vectors import VectorStore
    from search_latency import Latency

    data = np.memmap(vectors_path, dtype="float16", mode="r").reshape(-1, 384)[:size]
    layout = layout_for(size)
    if nlist and layout.kind == "ivf":
        layout = replace(layout, nlist=nlist, nprobe=nlist // 4)

    def stored(ids):
        ids = np.sort(ids)
        return ids, data[ids - 1].astype("float32")  # chunk id = row + 1
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        vs = VectorStore(Path(tmp), 384)
        t0 = time.perf_counter()
        picked = training_ids(np.arange(size), layout)
        vs.rebuild(layout, data[picked].astype("float32"), [])
        train = time.perf_counter() - t0
        for start in range(0, size, 20_000):
            stop = min(size, start + 20_000)
            vs.add(np.arange(start + 1, stop + 1), data[start:stop].astype("float32"))  # chunk id = row + 1
        fill = time.perf_counter() - t0 - train
        vs.save()
        file_bytes = vs.path.stat().st_size
        queries = np.load(queries_path).astype("float32")
        truth = np.array(json.loads(truth_path.read_text()))
        recall = {}
        probes = sorted({*PROBES, layout.nprobe, 2 * layout.nprobe} - {0}) if layout.kind == "ivf" else [0]
        for nprobe in probes:
            if nprobe:
                vs.set_nprobe(min(nprobe, layout.nlist))
            for rescore in sorted({0, layout.rescore}):
                lat, hits = Latency(f"nprobe {nprobe}"), 0
                for q, true in zip(queries, truth):
                    t = time.perf_counter()
                    _, ids = vs.search(q, 100, rescore=rescore, stored=stored)
                    lat.ms.append((time.perf_counter() - t) * 1000)
                    hits += len(set(ids[:k].tolist()) & set(true[:k].tolist()))
                recall[f"{nprobe}+{rescore}"] = {"recall": hits / (k * len(queries)), **lat.summary()}
    return {"layout": asdict(layout), "train_s": train, "fill_s": fill, "file_bytes": file_bytes,
            "recall": recall, "maxrss_mib": _maxrss_mib()}


# -- child: query ----------------------------------------------------------------------
def child_query(folder: Path, n_text: int, queries_path: Path | None = None, truth_path: Path | None = None,
                k: int = 10) -> dict:
    import numpy as np

    from index.embed import load_embedder
    from index.store import Index
    from rag.query import fts_match
    from rag.retrieve import CANDIDATES, Retriever
    from search_latency import MODES, Corpus, Latency, make_queries

    t0 = time.perf_counter()
    idx = Index.open(folder)
    vs = idx.vectors  # as the first search of a process: open, FAISS load (mapped) + reconcile by stamp
    load = time.perf_counter() - t0
    layout = idx.vector_layout()
    embedder = load_embedder(idx.meta["embed_model"], idx.folder)  # as `pagerag search` does (ONNX)
    embedder.encode_query("warm up")
    nearest = {}
    if queries_path is not None and layout.kind == "ivf":  # recall@k of the real path: IVF + SQLite re-scoring
        queries = np.load(queries_path).astype("float32")
        truth = np.array(json.loads(truth_path.read_text()))
        lat, hits = Latency("nearest"), 0
        for q, true in zip(queries, truth):
            t = time.perf_counter()
            _, ids = idx.nearest(q, CANDIDATES)
            lat.ms.append((time.perf_counter() - t) * 1000)
            hits += len(set(ids[:k].tolist()) & set(true[:k].tolist()))
        nearest = {"recall": hits / (k * len(queries)), **lat.summary(), "queries": len(queries)}
    texts = make_queries(Corpus(idx.counts()["pages"], WORDS, 0), n_text)
    retriever = Retriever(idx, embedder)
    sequential = Retriever(idx, embedder, parallel=False)
    threaded = Retriever(idx, embedder, parallel=True)
    sequential._vectors = threaded._vectors = retriever._vectors  # one cache of query vectors: none pays an
    # embedding another saves
    ops = {"query embedding": lambda q: embedder.encode_query(q),
           **{m: (lambda q, m=m: retriever.search(q, k=5, mode=m)) for m in MODES},
           SEQUENTIAL: lambda q: sequential.search(q, k=5, mode="hybrid"),
           THREADED: lambda q: threaded.search(q, k=5, mode="hybrid"),
           ONE_CONNECTION: lambda q: sequential.search(q, k=5, mode="lexical"),
           EXACT_LEXICAL: lambda q: (idx.lexical(fts_match(q), CANDIDATES, budget=10 ** 12, candidates=10 ** 12)
                                     if fts_match(q) else [])}
    lats = {name: Latency(name) for name in ops}
    tops: dict[str, list] = {"lexical": [], EXACT_LEXICAL: []}
    with measure() as span:
        for i, q in enumerate([*texts[:10], *texts]):
            for j in range(len(ops)):
                name = list(ops)[(i + j) % len(ops)]
                t = time.perf_counter()
                got = ops[name](q)
                if i >= 10:
                    lats[name].ms.append((time.perf_counter() - t) * 1000)
                    if name in tops:
                        tops[name].append([h.page_id for h in got] if name == "lexical" else [p for p, _ in got[:5]])
    agree = [len(set(a) & set(b)) / max(1, min(5, len(b))) for a, b in zip(tops["lexical"], tops[EXACT_LEXICAL])]
    top1 = [a[:1] == b[:1] for a, b in zip(tops["lexical"], tops[EXACT_LEXICAL])]
    return {"layout": asdict(layout), "load_s": load, "mapped": vs.mapped, "nearest": nearest,
            "latency": {n: lat.summary() for n, lat in lats.items()}, "others": span.others,
            "lexical_agreement": {"top5": sum(agree) / len(agree), "top1": sum(top1) / len(top1)},
            "maxrss_mib": _maxrss_mib()}
