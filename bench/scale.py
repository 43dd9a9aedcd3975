"""Scale: an index of 10^6 pages / passages. Approximate vs exact vector search, hybrid and lexical
latency, FAISS train/build time and peak memory, bytes on disk per page.

    from scale import run
    report = run(size=1_000_000)   # -> ScaleReport (run.py prints it as table rows)

The index (bench/.cache/scale-index-*) is written through the real storage code
(`Index.add_pages`: packed words, float16 vectors, FTS5), one passage per page: page
texts are harness.Synth pages (real English words, topics, a Zipf background), vectors
come from scale_data (real MiniLM embeddings of real text, the rest synthesised around
them). Text and vector of a page are unrelated: the lexical and dense sides are each
realistic, which is what latency and recall need. Then, each in a fresh process (so
its peak RSS is its own):

- `fit`: `Index.fit_vectors()` + save, as a build does when it crosses the threshold:
  train time, build time, peak RSS, the layout recorded in meta;
- `exact`: the baseline. A flat index over the same float16 vectors: exact top-k for
  every query (recall's ground truth) and flat single-query latency at growing sizes;
- `query`: the index as `pagerag search` opens it: FAISS load + reconcile, recall@10 of
  the IVF index against the exact top-10 over held-out real queries at several nprobe,
  and hybrid / dense / lexical latency of `Retriever.search` with the real embedder.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import HERE, BenchError, Synth, log, measure

CACHE = Path(os.environ.get("PAGERAG_BENCH_CACHE", HERE / ".cache"))  # a scratch cache for trial runs
FAISS_FILE = "vectors.faiss"
REAL = 4_000  # real passages embedded (~13 min a 2,000 on 2 busy cores); the rest are synthesised
PROBES = (8, 16, 32, 64, 128)
FLAT_SIZES = (10_000, 100_000, 200_000, 500_000, 1_000_000)
WORDS = (15, 110)
PAGES_VERSION = 1  # bump when the pages written change (the vectors are keyed apart: fill_vectors)
EXACT_LEXICAL = "lexical, every phrase scored"  # the baseline of Index.without_common's budget


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the index --------------------------------------------------------------------------
def _words_of(lines: list[str]):
    """Words with plausible boxes: lines 1/60 of the page apart, width by characters."""
    from index.words import Word

    out = []
    for lid, line in enumerate(lines):
        x, y = 0.08, 0.06 + lid * 0.016
        for t in line.split(" "):
            w = 0.0105 * len(t)
            out.append(Word(t, x, y, min(x + w, 0.95), y + 0.012, 0.9, lid))
            x += w + 0.006
    return out


def ensure_index(size: int, seed: int = 0) -> tuple[Path, dict]:
    """The cached SQLite index of the first `size` synthetic pages, passages' vectors still zero
    (`fill_vectors` sets them, so pages can be written while real passages are embedded); no
    FAISS file (`fit` makes it). One folder per seed that grows: a run for more pages resumes
    where the last stopped (an interrupted one too: every 1,000-page document is a transaction).
    """
    from index.schema import FORMAT_VERSION, SCHEMA

    schema = hashlib.sha256(SCHEMA.encode()).hexdigest()[:8]  # the format version moves less often
    folder = CACHE / f"scale-index-v{PAGES_VERSION}-f{FORMAT_VERSION}-{schema}-s{seed}"
    marker = folder / "built.json"
    folder.mkdir(parents=True, exist_ok=True)
    lock = _wait_for_lock(folder)
    try:
        return _write_pages(folder, marker, size, seed)
    finally:
        lock.release()


def _wait_for_lock(folder: Path):
    """The index's write lock, waiting while another run (say, one filling the cache ahead) holds it."""
    from index.errors import IndexLocked
    from index.lock import WriteLock

    while True:
        try:
            return WriteLock(folder).acquire()
        except IndexLocked:
            log(f"scale: waiting for the other writer of {folder.name}")
            time.sleep(30)


def _write_pages(folder: Path, marker: Path, size: int, seed: int) -> tuple[Path, dict]:
    from index.embed import DEFAULT_MODEL
    from index.store import Index, NewChunk, NewPage
    from scale_data import DIM

    built = json.loads(marker.read_text()) if marker.exists() else {"wall": 0.0, "cpu": 0.0, "vectors": None}
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model=DEFAULT_MODEL, embed_dim=DIM)
    for doc in idx.db.execute("SELECT id FROM documents WHERE status != 'done'").fetchall():
        idx.remove_document(doc[0])  # the document a killed run was writing
    have = idx.db.execute("SELECT count(*) FROM pages").fetchone()[0]
    if have > size:
        idx.close()
        raise BenchError(f"{folder} holds {have:,} pages, more than --size {size:,}: delete it or ask for more")
    synth = Synth(seed, WORDS)
    zero = bytes(4 * DIM)
    per_doc = 1000
    if have < size:
        log(f"scale: writing pages {have:,}-{size:,} to {folder.name} (Index.add_pages; ~10k pages/min on 2 busy cores)")
    with measure() as span:
        for start in range(have, size, per_doc):
            stop = min(size, start + per_doc)
            title = f"doc {start // per_doc}"
            doc = idx.add_document(f"/bench/scale/doc{start // per_doc:05d}.pdf", f"{start:064d}", 1, 1, "pdf",
                                   title, stop - start)
            pages = []
            for i in range(start, stop):
                lines = synth.page(i)
                body = " ".join(lines[1:])
                pages.append(NewPage(doc, i - start + 1, 612, 792, "text-layer", "\n".join(lines), _words_of(lines),
                                     None, [NewChunk(body, 0, len(body.split()), (0.08, 0.06, 0.9, 0.5), zero)]))
            idx.add_pages(pages, {doc: title})
            idx.finish_document(doc)
            if stop % 50_000 == 0:
                log(f"scale: {stop:,} pages written")
        idx.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        idx.close()
    if have < size:
        built = {"wall": built["wall"] + round(span.wall, 1), "cpu": built["cpu"] + round(span.cpu, 1),
                 "others": span.others, "when": time.strftime("%Y-%m-%d %H:%M"), "vectors": None}
    built["pages"] = size
    marker.write_text(json.dumps(built))
    return folder, built


def fill_vectors(folder: Path, built: dict, vectors, key: str) -> dict:
    """Set chunks.vector (chunk id i + 1 <- vectors[i], float16 as the store keeps them), once per `key`."""
    import sqlite3

    if built.get("vectors") == key:
        return built
    log(f"scale: setting {len(vectors):,} passage vectors")
    with measure() as span:
        db = sqlite3.connect(folder / "index.db", isolation_level=None)
        if db.execute("SELECT count(*), max(id) FROM chunks").fetchone() != (len(vectors), len(vectors)):
            raise BenchError(f"{folder}: chunk ids are not 1..{len(vectors)}; delete the folder and run again")
        db.execute("PRAGMA journal_mode=WAL")
        for start in range(0, len(vectors), 50_000):
            block = vectors[start:start + 50_000].astype("float16")
            db.execute("BEGIN")
            db.executemany("UPDATE chunks SET vector = ? WHERE id = ?",
                           ((block[j].tobytes(), start + j + 1) for j in range(len(block))))
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    (folder / FAISS_FILE).unlink(missing_ok=True)
    built = {**built, "vectors": key, "vectors_wall": round(span.wall, 1)}
    (folder / "built.json").write_text(json.dumps(built))
    return built


def _child(*args: str) -> dict:
    """Run this file as `python scale.py ARGS` (nice'd), return the JSON it prints last."""
    out = subprocess.run(["nice", sys.executable, __file__, *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if out.returncode != 0:
        raise BenchError(f"scale {args[0]} failed:\n{out.stderr[-3000:]}")
    sys.stderr.write(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    ops = {"query embedding": lambda q: embedder.encode_query(q),
           **{m: (lambda q, m=m: retriever.search(q, k=5, mode=m)) for m in MODES},
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
