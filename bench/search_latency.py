"""Search latency: p50/p95 of in-process `Retriever.search` on a 10^4-page index, against the query embedding alone.

    from search_latency import run
    report = run(pages=10_000)    # -> SearchReport; report.latencies["hybrid"].p50 in ms

The index is made without OCR: synthetic text-layer PDFs (harness.Synth, 1,000
pages a file) built with the real `pagerag index build --ocr none`. Embedding 10^4
pages takes minutes on 2 cores, so the PDFs and the index are cached in
bench/.cache/search-<parameters>/ and reused while the parameters, the generator
version and the index format are unchanged (`--rebuild` forces a new one). Queries
are varied (phrases copied from pages, questions, keywords, rare words, amounts and
dates); each is timed in every mode in rotating order after a warm-up.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random

from harness import HERE, BenchError, Span, Synth, log, measure, run_cli, write_text_pdf

GENERATOR_VERSION = 1  # bump when Synth or the query mix changes, so cached indexes are rebuilt
PAGES_PER_PDF = 1000
CACHE = Path(os.environ.get("PAGERAG_BENCH_CACHE", HERE / ".cache"))  # a scratch cache for trial runs
MODES = ("hybrid", "dense", "lexical")


@dataclass(frozen=True)
class Corpus:
    pages: int = 10_000
    # words a page, uniform; real pages hold more, but MiniLM on 2 cores embeds ~30 passages/s and
    # this keeps the one-off build near 5 minutes: 1 passage a page, 2 for the ~10% over 100 words
    words: tuple[int, int] = (15, 110)
    seed: int = 0

    @property
    def key(self) -> str:
        """Cache folder name: 'search-g1-f1-p10000-w15-110-s0'."""
        from index.schema import FORMAT_VERSION

        return f"search-g{GENERATOR_VERSION}-f{FORMAT_VERSION}-p{self.pages}-w{self.words[0]}-{self.words[1]}-s{self.seed}"


@dataclass
class SearchIndex:
    folder: Path
    pages: int
    chunks: int
    file_bytes: dict[str, int]  # file in the index folder -> size
    content_bytes: dict[str, int]  # what fills index.db: page texts, word boxes JSON, vectors, FTS
    build: dict  # how the cached index was built: wall, cpu, others, pages_per_second, when
    cached: bool

    @property
    def size(self) -> int:
        return sum(self.file_bytes.values())


def _content_bytes(db) -> dict[str, int]:
    out = dict(zip(("page text", "word boxes JSON"), db.execute(
        "SELECT SUM(length(text)), SUM(length(words)) FROM pages").fetchone()))
    out["passage text"], out["vectors in SQLite"] = db.execute(
        "SELECT SUM(length(text)), SUM(length(vector)) FROM chunks").fetchone()
    try:  # dbstat is compiled into most SQLite builds, not all
        out["FTS5 index"] = db.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'pages_fts%'").fetchone()[0]
    except Exception:
        pass
    return {k: int(v or 0) for k, v in out.items()}


def _describe(folder: Path, build: dict, cached: bool) -> SearchIndex:
    from index.store import Index

    idx = Index.open(folder / "index")
    try:
        counts = idx.counts()
        files = {f.name: f.stat().st_size for f in idx.folder.iterdir() if f.is_file()}
        return SearchIndex(idx.folder, counts["pages"], counts["chunks"], files, _content_bytes(idx.db), build, cached)
    finally:
        idx.close()


def ensure_index(corpus: Corpus, rebuild: bool = False) -> SearchIndex:
    """The cached index for `corpus`, built with `pagerag index build` when missing or unfinished."""
    folder = CACHE / corpus.key
    marker = folder / "built.json"
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    if marker.exists():
        return _describe(folder, json.loads(marker.read_text()), cached=True)
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    synth = Synth(corpus.seed, corpus.words)
    log(f"search index: writing {corpus.pages} synthetic text-layer pages to {docs}")
    for start in range(0, corpus.pages, PAGES_PER_PDF):
        pdf = docs / f"volume-{start // PAGES_PER_PDF + 1:03d}.pdf"
        if not pdf.exists():  # written under a temporary name: an interrupted run leaves no half file
            write_text_pdf(pdf.with_suffix(".tmp"), synth, range(start, min(start + PAGES_PER_PDF, corpus.pages)))
            pdf.with_suffix(".tmp").rename(pdf)
    log(f"search index: pagerag index build --ocr none (minutes; cached in {folder})")
    report, span = run_cli("index", "build", str(docs), "--index", str(folder / "index"), "--ocr", "none")
    build = {"wall": round(span.wall, 1), "cpu": round(span.cpu, 1), "others": span.others,
             "pages_read": report["pages_read"], "chunks_added": report["chunks_added"],
             "builder_pages_per_second": report["pages_per_second"],
             "when": time.strftime("%Y-%m-%d %H:%M"), "resumed": report["resumed"] > 0}
    index = _describe(folder, build, cached=False)
    if index.pages != corpus.pages:
        raise BenchError(f"the search index has {index.pages} pages, expected {corpus.pages}; "
                         f"see `pagerag index status --index {index.folder}`")
    marker.write_text(json.dumps(build, indent=2))
    return index


def make_queries(corpus: Corpus, n: int = 200) -> list[str]:
    """`n` varied queries over `corpus`: 35% phrases from a page, 25% questions, 20% keywords,
    10% one rare word, 10% an amount, date or code with a word of context."""
    synth = Synth(corpus.seed, corpus.words)
    rng = Random(corpus.seed + 7919)
    out: list[str] = []
    while len(out) < n:
        page_id = rng.randrange(corpus.pages)
        body = " ".join(synth.page(page_id)[1:]).split()
        topic = synth.topic_of(page_id)
        kind = rng.random()
        if kind < 0.35:
            size = rng.randint(3, 8)
            start = rng.randrange(max(1, len(body) - size))
            out.append(" ".join(body[start:start + size]))
        elif kind < 0.60:
            a, b, c = rng.sample(topic, 3)
            out.append(rng.choice(["What is the {} {} of the {}?", "Which record mentions {} and {} near {}?",
                                   "When was the {} {} signed by {}?", "How much did the {} {} cost for {}?"])
                       .format(a, b, c))
        elif kind < 0.80:
            words = rng.sample(topic, rng.randint(1, 2)) + [synth.background_word(rng) for _ in range(rng.randint(1, 2))]
            out.append(" ".join(rng.sample(words, len(words))))
        elif kind < 0.90:
            out.append(synth.background[rng.randrange(8000, len(synth.background))])
        else:
            numbers = [w for w in body if any(ch.isdigit() for ch in w)]
            word = rng.choice(topic)
            out.append(f"{word} {rng.choice(numbers)}" if numbers else f"{word} {synth.number(rng)}")
    return out


@dataclass
class Latency:
    name: str
    ms: list[float] = field(default_factory=list, repr=False)

    def pct(self, q: float) -> float:
        """Percentile by linear interpolation between closest ranks: [1, 2, 3, 4], 0.5 -> 2.5."""
        s = sorted(self.ms)
        pos = (len(s) - 1) * q
        lo = int(pos)
        return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * (pos - lo)

    @property
    def p50(self) -> float:
        return self.pct(0.50)

    @property
    def p95(self) -> float:
        return self.pct(0.95)

    def summary(self) -> dict:
        return {"p50_ms": round(self.p50, 2), "p95_ms": round(self.p95, 2),
                "mean_ms": round(statistics.fmean(self.ms), 2), "n": len(self.ms)}


@dataclass
class SearchReport:
    corpus: Corpus
    index: SearchIndex
    queries: int
    k: int
    latencies: dict[str, Latency]  # 'query embedding', 'FAISS top-100', the three modes, and the torch baselines
    load_vectors: float  # seconds: FAISS read + reconcile with SQLite, once per process
    span: Span  # the timed loop

    def as_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("latencies", "index")}
        data["index"] = {**asdict(self.index), "folder": str(self.index.folder), "size": self.index.size}
        data["latencies"] = {name: lat.summary() for name, lat in self.latencies.items()}
        return data


TORCH = ", torch"  # the same, with the query embedded by sentence-transformers on torch (before the ONNX encoder)


def time_queries(folder: Path, queries: list[str], k: int = 5, warmup: int = 10) -> tuple:
    """Time every query in every mode, plus its embedding and FAISS search alone, in one process.

    The query is embedded as `pagerag search` does (the index's ONNX encoder, one thread);
    the query embedding and hybrid search run again with sentence-transformers on torch
    (one thread, as before), interleaved with the rest so that both see the same load.
    """
    from index.embed import Embedder, load_embedder
    from index.store import Index
    from rag.retrieve import CANDIDATES, Retriever

    idx = Index.open(folder)
    embedder = load_embedder(idx.meta["embed_model"], idx.folder)
    reference = Embedder(idx.meta["embed_model"])
    for e in (embedder, reference):
        e.encode_query("warm up")
    t0 = time.perf_counter()
    vectors = idx.vectors
    load_vectors = time.perf_counter() - t0
    retriever, torch_retriever = Retriever(idx, embedder), Retriever(idx, reference)
    query_vectors = embedder.encode(queries)
    ops = {"query embedding": lambda i: embedder.encode_query(queries[i]),
           f"FAISS top-{CANDIDATES}": lambda i: vectors.search(query_vectors[i], CANDIDATES),
           **{mode: (lambda i, mode=mode: retriever.search(queries[i], k=k, mode=mode)) for mode in MODES},
           "query embedding" + TORCH: lambda i: reference.encode_query(queries[i]),
           "hybrid" + TORCH: lambda i: torch_retriever.search(queries[i], k=k, mode="hybrid")}
    names = list(ops)
    latencies = {name: Latency(name) for name in names}
    with measure() as span:
        for i in [*range(min(warmup, len(queries))), *range(len(queries))]:
            for j in range(len(names)):  # rotate the order so no mode always runs right after another
                name = names[(i + j) % len(names)]
                t = time.perf_counter()
                ops[name](i)
                latencies[name].ms.append((time.perf_counter() - t) * 1000)
    for lat in latencies.values():
        del lat.ms[:min(warmup, len(queries))]  # the warm-up round
    idx.close()
    return latencies, load_vectors, span


def run(pages: int = 10_000, queries: int = 200, k: int = 5, words: tuple[int, int] = Corpus.words, seed: int = 0,
        rebuild: bool = False) -> SearchReport:
    corpus = Corpus(pages, tuple(words), seed)
    index = ensure_index(corpus, rebuild)
    qs = make_queries(corpus, queries)
    log(f"search: {len(qs)} queries x 7 timings in-process")
    latencies, load_vectors, span = time_queries(index.folder, qs, k)
    return SearchReport(corpus, index, len(qs), k, latencies, load_vectors, span)


if __name__ == "__main__":
    raise SystemExit("run the benchmarks with `python bench/run.py --only search`")
