"""Scale: an index of 10^6 pages / passages. Approximate vs exact vector search, hybrid and lexical
latency, FAISS train/build time and peak memory, bytes on disk per page.

    from scale import run
    report = run(size=1_000_000)   # -> ScaleReport (run.py prints it as table rows)

The index (bench/.cache/scale-index-*) is written through the real storage code
(`Index.add_pages`: packed words, float16 vectors, FTS5), one passage per page: page
texts are harness.Synth pages (real English words, topics, a Zipf background), vectors
come from scale_data (real MiniLM embeddings of real text, the rest synthesised around
them). Text and vector of a page are unrelated: the lexical and dense sides are each
realistic, which is what latency and recall need (scale_index.py). Then, each in a fresh process
(so its peak RSS is its own; scale_children.py):

- `fit`: `Index.fit_vectors()` + save, as a build does when it crosses the threshold:
  train time, build time, peak RSS, the layout recorded in meta;
- `exact`: the baseline. A flat index over the same float16 vectors: exact top-k for
  every query (recall's ground truth) and flat single-query latency at growing sizes;
- `query`: the index as `pagerag search` opens it: FAISS load + reconcile, recall@10 of
  the IVF index against the exact top-10 over held-out real queries at several nprobe,
  and hybrid / dense / lexical latency of `Retriever.search` with the real embedder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import HERE, BenchError, log
from scale_children import child_ann, child_exact, child_fit, child_query
from scale_index import CACHE, ensure_index, fill_vectors

REAL = 4_000  # real passages embedded (~13 min a 2,000 on 2 busy cores); the rest are synthesised


def _child(*args: str) -> dict:
    """Run this file as `python scale.py ARGS` (nice'd), return the JSON it prints last."""
    out = subprocess.run(["nice", sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if out.returncode != 0:
        raise BenchError(f"scale {args[0]} failed:\n{out.stderr[-3000:]}")
    sys.stderr.write(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- a fresh process ---------------------------------------------------------------------
def fresh_search(folder: Path, runs: int = 5) -> dict:
    """`pagerag search` on the scale index, each run a new process (open, FAISS map + stamp check,
    encoder load, hybrid search), interleaved with the interpreter alone as the baseline."""
    from cold_start import Runs, timed
    from harness import PAGERAG

    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "HF_HUB_OFFLINE": "1"}
    search = Runs("search", [*PAGERAG, "search", "harbour ledger totals for the spring", "--index", str(folder)])
    alone = Runs("python alone", [sys.executable, "-c", "pass"])
    for _ in range(runs):
        for r in (search, alone):
            wall, rss = timed(r.argv, env, r.expect)
            r.walls.append(wall)
            r.rss.append(rss)
    return {r.name: r.summary() for r in (search, alone)}


# -- sizes -----------------------------------------------------------------------------
def disk_bytes(folder: Path, sample: int = 2000) -> dict:
    """Bytes per page on disk, what fills index.db, and what format 1 (JSON words, float32 vectors) would take."""
    import sqlite3

    from index.wordpack import unpack_words

    db = sqlite3.connect(folder / "index.db")
    pages, chunks = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("pages", "chunks"))
    files = {f.name: f.stat().st_size for f in folder.iterdir() if f.is_file() and f.name != "built.json"}
    content = dict(zip(("page text", "word boxes"), db.execute("SELECT SUM(length(text)), SUM(length(words)) FROM pages").fetchone()))
    content["passage text"], content["vectors in SQLite"] = db.execute(
        "SELECT SUM(length(text)), SUM(length(vector)) FROM chunks").fetchone()
    try:
        content["FTS5 index"] = db.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'pages_fts%'").fetchone()[0]
    except sqlite3.Error:
        pass
    step = max(1, pages // sample)
    rows = db.execute("SELECT words, text FROM pages WHERE id % ? = 0", (step,)).fetchall()
    as_json = sum(len(json.dumps([[w[0], *(round(v, 4) for v in w[1:5]), round(w[5], 3), w[6]]
                                   for w in unpack_words(b, t)], ensure_ascii=False, separators=(",", ":")).encode())
                  for b, t in rows)
    packed = sum(len(b) for b, _ in rows)
    db.close()
    total = sum(files.values())
    v1_extra = content["vectors in SQLite"] + (content["word boxes"] * as_json / packed - content["word boxes"])
    return {"pages": pages, "chunks": chunks, "files": files, "content": {k: int(v or 0) for k, v in content.items()},
            "bytes_per_page": total / pages, "format1_bytes_per_page": (total + v1_extra) / pages,
            "words_json_over_packed": as_json / packed}


# -- the whole thing -------------------------------------------------------------------
@dataclass
class ScaleReport:
    size: int  # passages in the vector measurements
    pages: int  # pages (= passages) of the whole index
    calibration: dict
    built: dict
    fit: dict
    exact: dict
    ann: dict  # passages -> the IVF measurements at that size (the threshold, and `size`)
    query: dict
    disk: dict
    k: int
    vector_queries: int
    threshold: int
    fresh: dict | None = None  # `pagerag search` in new processes (fresh_search)


def run(size: int = 1_000_000, pages: int | None = None, text_queries: int = 200, k: int = 10) -> ScaleReport:
    """Vectors at `size` passages (exact vs IVF), the whole index at `pages` pages (default: `size`)."""
    import numpy as np

    from index.vector_layout import APPROX_THRESHOLD
    from scale_data import all_vectors, real_vectors

    pages = pages or size
    real = real_vectors(min(REAL, size))
    vectors, calibration = all_vectors(real, max(size, pages))
    name = Path(vectors.filename).stem
    qpath = CACHE / f"{name}-queries.npy"
    np.save(qpath, real.queries)
    log(f"scale: exact baseline over {size:,} vectors (flat, float32)")
    exact = _child("exact", str(vectors.filename), str(size), str(qpath), str(k))
    ann = {}
    for n, truth in sorted(exact.pop("truth").items(), key=lambda kv: int(kv[0])):
        truth_path = CACHE / f"{name}-truth{n}-k{k}.json"
        truth_path.write_text(json.dumps(truth))
        log(f"scale: IVF over {int(n):,} vectors: train, fill, recall@{k} and latency by nprobe")
        ann[int(n)] = _child("ann", str(vectors.filename), str(n), str(qpath), str(truth_path), str(k))
    folder, built = ensure_index(pages)
    built = fill_vectors(folder, built, vectors[:pages], f"{name}:{pages}")
    log(f"scale: FAISS cache of the {pages:,}-page index from SQLite (Index.fit_vectors, fresh process)")
    fit = _child("fit", str(folder))
    log(f"scale: hybrid, dense and lexical latency on {pages:,} pages ({text_queries} queries)")
    truth = CACHE / f"{name}-truth{pages}-k{k}.json"
    query = _child("query", str(folder), str(text_queries), *([str(qpath), str(truth), str(k)] if truth.exists() else []))
    log(f"scale: `pagerag search` in fresh processes on {pages:,} pages")
    fresh = fresh_search(folder)
    return ScaleReport(size, pages, calibration, built, fit, exact, ann, query, disk_bytes(folder), k,
                       len(real.queries), APPROX_THRESHOLD, fresh)


def main(argv: list[str]) -> None:
    what, *args = argv
    if what == "fit":
        out = child_fit(Path(args[0]))
    elif what == "exact":
        out = child_exact(Path(args[0]), int(args[1]), Path(args[2]), int(args[3]))
    elif what == "ann":
        out = child_ann(Path(args[0]), int(args[1]), Path(args[2]), Path(args[3]), int(args[4]),
                        *(int(a) for a in args[5:6]))
    elif what == "query":
        out = child_query(Path(args[0]), int(args[1]), *(Path(a) for a in args[2:4]), *(int(a) for a in args[4:5]))
    else:
        raise SystemExit("run the benchmarks with `python bench/run.py --only scale`")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
