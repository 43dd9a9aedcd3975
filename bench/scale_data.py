"""The passages of the scale benchmark: real text embedded with MiniLM, and synthetic vectors around it.

    real = real_vectors(30_000)          # -> Real: .base (n, 384) float16, .queries (1000, 384), .texts
    vecs = all_vectors(real, 1_000_000)  # -> memmap (10^6, 384) float16: the real ones first, then synthetic
    calibration(real)                    # -> how close synthetic points sit to the real ones

Real text: paragraphs of the docstrings of the Python standard library and of the
installed packages, and of the Markdown/reST/text files beside them and in /usr/share/doc,
packed into passages of 40-100 words (the size of pagerag's passages), deduplicated,
shuffled with a fixed seed; as many are collected as are embedded (QUERIES + n, n in whole
shards). Held-out passages' first 8-16 words are the queries. Embedded with the ONNX export
of MiniLM that `pagerag search` uses (cosine >= 0.9999 to sentence-transformers').
Embedding 10^6 real passages would take hours here, so the rest are synthesised:

    x = normalise(v_i + t (v_j - v_i) + sigma * z)

v_i a random real passage, v_j one of its 10 nearest real neighbours, t ~ U(0, 0.5), z
Gaussian with the covariance of the real vectors (so noise lies along the directions the
embeddings actually vary in, not off the manifold), sigma found by bisection so that a
synthetic point is as close to its nearest real passage as a real passage is to its
nearest other one (median top-1 cosine, leave-one-out). A synthetic point is then, by
that measure, like one more real text from the same sources. Cached in bench/.cache/scale-*.
"""
from __future__ import annotations

import ast
import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from random import Random

from harness import HERE, BenchError, log

CACHE = Path(os.environ.get("PAGERAG_BENCH_CACHE", HERE / ".cache"))  # a scratch cache for trial runs
DATA_VERSION = 2  # bump when the text sources, passage packing or synthesis change
DIM = 384
QUERIES = 1000
SHARD = 2000
POOL = 30_000  # real passages embedded, at most
NEIGHBOURS = 10


# -- real text --------------------------------------------------------------------------
def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
    except (SyntaxError, ValueError, RecursionError):
        return []
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return [d for node in ast.walk(tree) if isinstance(node, kinds) for d in [ast.get_docstring(node)] if d]


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _prose(paragraph: str) -> bool:
    """Mostly words, not code, tables or markup."""
    words = paragraph.split()
    return len(words) >= 8 and sum(w.strip(".,;:()'\"").isalpha() for w in words) >= 0.7 * len(words)


def _sources() -> list[Path]:
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"]), Path("/usr/share/doc")]
    files = []
    for root in roots:
        if root.is_dir():
            files += [f for f in root.rglob("*") if f.suffix in (".py", ".md", ".rst", ".txt") and f.is_file()
                      and f.stat().st_size < 400_000]
    return sorted(set(files))


def real_texts(n: int, seed: int = 0) -> list[str]:
    """`n` distinct passages of 40-100 words of real prose found on this machine, shuffled with `seed`.

    Files are visited in a seeded random order until 2n passages are found (parsing every
    file here takes ~12 min on a busy machine), so the passages come from many packages.
    """
    files = _sources()
    Random(seed).shuffle(files)
    passages, seen = [], set()
    for f in files:
        texts = _docstrings(f) if f.suffix == ".py" else [f.read_text(encoding="utf-8", errors="ignore")]
        current: list[str] = []
        for p in (p for t in texts for p in _paragraphs(t) if _prose(p)):
            current += p.split()
            while len(current) >= 40:
                piece = " ".join(current[:100])
                current = current[100:] if len(current) > 100 else []
                if piece not in seen:
                    seen.add(piece)
                    passages.append(piece)
        if len(passages) >= 2 * n:
            break
    if len(passages) < n:
        raise BenchError(f"only {len(passages)} passages of real text found on this machine, {n} needed")
    Random(seed).shuffle(passages)
    return passages[:n]


# -- embedding --------------------------------------------------------------------------
@dataclass
class Real:
    base: "object"  # (n, DIM) float16: embedded real passages
    queries: "object"  # (QUERIES, DIM) float16: embedded short queries from held-out passages
    query_texts: list[str]


def real_vectors(n: int, seed: int = 0) -> Real:
    """Embed QUERIES held-out queries and the first `n` real passages (minutes, once; cached as
    .npy shards, per number of passages collected)."""
    if n > POOL:
        raise BenchError(f"at most {POOL} real passages; the rest are synthesised")
    whole = -(-n // SHARD) * SHARD  # whole shards, so that every run's shards are the same
    folder = CACHE / f"scale-real-v{DATA_VERSION}-n{whole}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    texts_file = folder / "texts.txt"
    if not texts_file.exists():
        log(f"scale: collecting {whole + QUERIES} real passages (docstrings and docs on this machine)")
        texts = real_texts(whole + QUERIES, seed)
        (folder / "texts.tmp").write_text("\n".join(texts))
        (folder / "texts.tmp").rename(texts_file)
    texts = texts_file.read_text().split("\n")
    rng = Random(seed + 1)
    query_texts = [" ".join(t.split()[:rng.randint(8, 16)]) for t in texts[:QUERIES]]
    queries = _embed_cached(folder / "queries", query_texts)
    base = _embed_cached(folder / "base", texts[QUERIES:QUERIES + whole])[:n]
    return Real(base, queries, query_texts)


def _embed_cached(prefix: Path, texts: list[str], shard: int = SHARD):
    """Embeddings of `texts` (float16), in shards written as they are done, so an interrupted run resumes."""
    import numpy as np

    from index.embed import DEFAULT_MODEL, load_embedder

    embedder = None
    parts = []
    for start in range(0, len(texts), shard):
        f = prefix.with_name(f"{prefix.name}-{start:07d}.npy")
        if not f.exists():
            if embedder is None:
                embedder = load_embedder(DEFAULT_MODEL)  # ONNX, as a search encodes
            log(f"scale: embedding {prefix.name} passages {start:,}-{min(start + shard, len(texts)):,} of {len(texts):,}")
            tmp = f.with_suffix(".tmp.npy")
            np.save(tmp, embedder.encode(texts[start:start + shard]).astype("float16"))
            tmp.rename(f)
        parts.append(np.load(f))
    return np.vstack(parts)


# -- synthesis --------------------------------------------------------------------------
class Synthesiser:
    """Synthetic unit vectors near the real ones; see the module docstring for the method."""

    def __init__(self, real, seed: int = 0):
        import faiss
        import numpy as np

        self.real = np.ascontiguousarray(real, dtype="float32")
        flat = faiss.IndexFlatIP(DIM)
        flat.add(self.real)
        self.index = flat
        sims, nn = flat.search(self.real, NEIGHBOURS + 1)
        self.neighbours = nn[:, 1:]  # column 0 is the point itself
        self.target = float(np.median(sims[:, 1]))  # leave-one-out top-1 cosine of real passages
        centred = self.real - self.real.mean(0)
        vals, vecs = np.linalg.eigh(centred.T @ centred / len(centred))
        self.noise_basis = (vecs * np.sqrt(np.clip(vals, 0, None))).T.astype("float32")  # z = g @ basis
        self.seed = seed
        self.sigma = self._calibrate()

    def make(self, n: int, seed: int, sigma: float | None = None):
        """`n` synthetic float32 unit vectors (deterministic in `seed`)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        i = rng.integers(0, len(self.real), n)
        j = self.neighbours[i, rng.integers(0, NEIGHBOURS, n)]
        t = rng.uniform(0, 0.5, (n, 1)).astype("float32")
        z = rng.standard_normal((n, DIM), dtype="float32") @ self.noise_basis
        x = self.real[i] + t * (self.real[j] - self.real[i]) + (self.sigma if sigma is None else sigma) * z
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")

    def top1(self, x):
        """Median cosine of each row to its nearest real passage."""
        import numpy as np

        return float(np.median(self.index.search(np.ascontiguousarray(x), 1)[0][:, 0]))

    def _calibrate(self) -> float:
        lo, hi = 0.0, 4.0
        for _ in range(14):
            mid = (lo + hi) / 2
            if self.top1(self.make(3000, self.seed + 99, mid)) > self.target:
                lo = mid  # still closer to the real set than real passages are: more noise
            else:
                hi = mid
        return (lo + hi) / 2


def all_vectors(real: Real, n: int, seed: int = 0):
    """(n, DIM) float16 memmap: the real passages first, then synthetic ones; built once, cached."""
    import numpy as np

    base = real.base
    path = CACHE / f"scale-vectors-v{DATA_VERSION}-r{len(base)}-n{n}-s{seed}.f16"
    if path.exists():
        return np.memmap(path, dtype="float16", mode="r", shape=(n, DIM)), _load_calibration(path)
    synth = Synthesiser(base, seed)
    log(f"scale: synthesising {max(0, n - len(base)):,} vectors (sigma {synth.sigma:.3f}, "
        f"target top-1 cosine {synth.target:.3f})")
    tmp = path.with_suffix(".tmp")
    out = np.memmap(tmp, dtype="float16", mode="w+", shape=(n, DIM))
    m = min(n, len(base))
    out[:m] = base[:m]
    for start in range(m, n, 50_000):
        stop = min(n, start + 50_000)
        out[start:stop] = synth.make(stop - start, seed * 1_000_003 + start)
    out.flush()
    del out
    cal = {"sigma": synth.sigma, "real_top1": synth.target,
           "synthetic_top1_to_real": synth.top1(synth.make(5000, seed + 7)), "real": len(base)}
    path.with_suffix(".json").write_text(__import__("json").dumps(cal))
    tmp.rename(path)
    return np.memmap(path, dtype="float16", mode="r", shape=(n, DIM)), cal


def _load_calibration(path: Path) -> dict:
    import json

    try:
        return json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit("run the benchmarks with `python bench/run.py --only scale`")
