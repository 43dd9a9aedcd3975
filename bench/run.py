"""pagerag benchmarks in one command: throughput and search latency, each against a baseline from the same run.

    .venv/bin/python bench/run.py                        # everything (make bench): ~11 min on 2 idle cores,
                                                         # ~17 the first time (builds the cached search index)
    .venv/bin/python bench/run.py --only search --json bench-search.json
    .venv/bin/python bench/run.py --only throughput --engines tesseract --eval-dir

Prints one table: each figure, its baseline, and their ratio. Wall-clock ratios move
with whatever else the machine runs, so every row also says how many cores other
work kept busy meanwhile (from /proc/stat), and throughput rows add the CPU-time
ratio, which that load barely touches. See bench/README.md for what each row means.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import EVAL_SCANS, BenchError, Span, environment, log, measure  # noqa: E402

MIB = 2 ** 20


# -- the table --------------------------------------------------------------------------
def _load(*spans: Span | None) -> str:
    values = [s.others for s in spans if s is not None and s.others is not None]
    return f"others {max(values):.1f} cores" if values else ""


def throughput_rows(report) -> list[tuple[str, ...]]:
    import throughput

    rows = []
    for r in report.results:
        b, f = r.build, r.floor
        rows.append((f"index build: {r.name}, {b.pages} p.", f"{b.pages_per_second:.2f} pages/s",
                     f"{f.pages_per_second:.2f} pages/s ({f.what})", f"{r.ratio:.2f}",
                     "; ".join([f"CPU/page {b.span.cpu / b.pages:.2f} s vs {f.span.cpu / f.pages:.3f} s "
                                f"(ratio {r.cpu_ratio:.2f})", _load(b.span, f.span), *r.notes])))
        start = b.span.wall - b.builder_seconds
        rows.append(("  build wall / floor wall", f"{b.span.wall:.1f} s", f"{f.span.wall:.1f} s", "",
                     f"peak RSS {b.span.peak_rss / MIB:.0f} MiB; "
                     f"CLI start-up + exit {start:.1f} s; build() {b.builder_seconds:.1f} s; "
                     + (f"floor workers up after {f.startup:.1f} s" if f.startup else "floor in-process")))
        if r.embed is not None:
            (onnx, onnx_batched), (torch, torch_batched) = r.embed["onnx"], r.embed["torch"]
            rows.append((f"  embedding its {b.chunks} passages alone, ONNX", f"{onnx.cpu:.1f} CPU-s",
                         f"torch: {torch.cpu:.1f} CPU-s", f"{onnx.cpu / torch.cpu:.2f}",
                         f"one call per page (as the builder); in one call {onnx_batched.cpu:.1f} vs "
                         f"{torch_batched.cpu:.1f} CPU-s; the build used {b.span.cpu - f.span.cpu:.1f} CPU-s "
                         "more than the floor"))
            if "onnx int8" in r.embed:
                int8, int8_batched = r.embed["onnx int8"]
                rows.append(("  the same, ONNX int8 (what builds use)", f"{int8.cpu:.1f} CPU-s",
                             f"ONNX fp32: {onnx.cpu:.1f} CPU-s", f"{int8.cpu / onnx.cpu:.2f}",
                             f"in one call {int8_batched.cpu:.1f} vs {onnx_batched.cpu:.1f} CPU-s"))
        if r.what_if is not None:
            w = r.what_if
            env = " ".join(f"{k}={v}" for k, v in r.what_if_env.items())
            rows.append((f"  what-if: the same build, {env}", f"{w.pages_per_second:.2f} pages/s",
                         f"{f.pages_per_second:.2f} pages/s", f"{w.pages_per_second / f.pages_per_second:.2f}",
                         f"{w.span.wall:.1f} s, {w.span.cpu:.1f} CPU-s (default build {b.span.cpu:.1f}); "
                         + _load(w.span)))
    if report.model_load is not None:
        m, t = report.model_load["onnx"], report.model_load["torch"]
        rows.append(("embedding model load, fresh process, ONNX", f"{m.span.wall:.1f} s",
                     f"torch: {t.span.wall:.1f} s", f"{m.span.wall / t.span.wall:.2f}",
                     f"imports {m.imports:.1f} s + load {m.load:.1f} s, {m.span.cpu:.1f} CPU-s; torch: import "
                     f"sentence_transformers {t.imports:.1f} s + load {t.load:.1f} s, {t.span.cpu:.1f} CPU-s"))
    return rows


def search_rows(report) -> list[tuple[str, ...]]:
    from search_latency import TORCH

    idx, lat = report.index, report.latencies
    db = idx.file_bytes.get("index.db", 0)
    content = ", ".join(f"{k} {v / MIB:.1f}" for k, v in idx.content_bytes.items())
    built = idx.build
    rows = [(f"search index ({'cached' if idx.cached else 'built now'})",
             f"{idx.pages:,} pages, {idx.chunks:,} passages", "", "",
             f"built in {built['wall']:.0f} s ({built['pages_read'] / built['wall']:.1f} pages/s, {built['when']}, "
             f"others {built['others'] or 0:.1f} cores); bench/.cache/{idx.folder.parent.name}"),
            ("  size on disk", f"{idx.size / MIB:.1f} MiB", "", "",
             f"{idx.size / idx.pages / 1024:.1f} KiB/page; index.db {db / MIB:.1f} MiB ({content} MiB), "
             f"vectors.faiss {idx.file_bytes.get('vectors.faiss', 0) / MIB:.1f} MiB")]
    base = lat["query embedding"]
    fmt = lambda l: f"p50 {l.p50:.1f} / p95 {l.p95:.1f} ms"  # noqa: E731
    rows.append((f"query embedding alone ({report.queries} queries)", fmt(base), "", "", "the floor of dense and hybrid"))
    for name, l in lat.items():
        if name == "query embedding":
            continue
        if name.endswith(TORCH):
            label = f"  before: {name}"
        else:
            label = f"search {name}, k={report.k}" if not name.startswith("FAISS") else f"  {name} alone"
        note = "no query embedding in this mode" if name == "lexical" else ""
        rows.append((label, fmt(l), "query embedding", f"{l.p50 / base.p50:.2f} / {l.p95 / base.p95:.2f}",
                     "; ".join(filter(None, [note, _load(report.span) if name == "hybrid" else ""]))))
    rows.append(("  first search in a process: FAISS load + reconcile", f"{report.load_vectors * 1000:.0f} ms", "", "", ""))
    return rows


def cold_rows(report) -> list[tuple[str, ...]]:
    """search and ask against the bare imports a search needs; --help and index status against python alone."""
    c = report.commands
    fmt = lambda r: f"median {r.median:.2f} s, {r.cpu_median:.2f} CPU-s, {r.peak_rss_mib:.0f} MiB"  # noqa: E731
    spread = lambda r: f"{len(r.walls)} runs: min {min(r.walls):.2f} / max {max(r.walls):.2f} s"  # noqa: E731
    rows = [(f"fresh process: {name}", fmt(r), "", "", spread(r)) for name, r in c.items()
            if name in ("python alone", "imports of a search")]
    torch = c["search, torch"]
    for name, r in c.items():
        if name in ("python alone", "imports of a search", "search, torch"):
            continue
        base = c["imports of a search"] if name in ("search", "ask, no model") else c["python alone"]
        notes = [spread(r), f"CPU ratio {r.cpu_median / base.cpu_median:.2f}"]
        if base.name == "imports of a search":
            notes.append(f"{r.median / torch.median:.2f} of the torch search")
        rows.append((f"`pagerag {name}`, fresh process", fmt(r), f"{base.name}: {fmt(base)}",
                     f"{r.median / base.median:.2f}", "; ".join(notes)))
    rows.append(("  before: `pagerag search`, torch", fmt(torch), "", "", spread(torch)))
    return rows


def scale_rows(report) -> list[tuple[str, ...]]:
    """Rows of bench/scale.py: approximate vs exact vectors at `size`, the whole index at `pages`."""
    from index.store import CANDIDATE_BUDGET, LEXICAL_BUDGET
    from scale_children import EXACT_LEXICAL, ONE_CONNECTION, SEQUENTIAL, THREADED

    q, fit, exact, cal = report.query, report.fit, report.exact, report.calibration
    flat = {int(s): v for s, v in exact["flat_latency"].items()}
    rows = [(f"vectors: up to {report.size:,} passages", "", "exact (flat) search", "",
             f"{cal.get('real', 0):,} real MiniLM passages + synthetic (sigma {cal.get('sigma', 0):.3f}): median "
             f"top-1 cosine to the real set {cal.get('synthetic_top1_to_real', 0):.3f} synthetic vs "
             f"{cal.get('real_top1', 0):.3f} real")]
    for n, ann in sorted(report.ann.items(), key=lambda kv: int(kv[0])):
        n, lay = int(n), ann["layout"]
        kind = f"IVF{lay['nlist']},{lay['encoding']}, nprobe {lay['nprobe']}" if lay["kind"] == "ivf" else "flat"
        rows.append((f"  {n:,} passages: FAISS train + fill", f"{ann['train_s']:.0f} s + {ann['fill_s']:.0f} s", "", "",
                     f"{kind}; peak RSS {ann['maxrss_mib']:.0f} MiB (the flat baseline process: "
                     f"{exact['maxrss_mib']:.0f} MiB at {report.size:,}); vectors.faiss {ann['file_bytes'] / MIB:.0f} MiB"))
        for key, r in sorted(ann["recall"].items(), key=lambda kv: tuple(map(int, str(kv[0]).split("+")))):
            nprobe, rescore = (int(x) for x in f"{key}+0".split("+")[:2])
            mark = " (default)" if nprobe == lay["nprobe"] and rescore == lay.get("rescore", 0) else ""
            again = f" + best {rescore} re-scored" if rescore else ""
            rows.append((f"    recall@{report.k}, top-100 search, nprobe {nprobe}{again}{mark}",
                         f"{r['recall']:.3f}; p50 {r['p50_ms']:.1f} / p95 {r['p95_ms']:.1f} ms",
                         f"1.000; p50 {flat[n]['p50_ms']:.1f} ms", f"{r['p50_ms'] / flat[n]['p50_ms']:.2f}",
                         f"{report.vector_queries} held-out real queries" if mark else ""))
    rows.append(("  flat top-100 p50 by size (1 thread)", ", ".join(f"{s:,}: {v['p50_ms']:.1f} ms" for s, v in sorted(flat.items())),
                 "", "", f"approximate from {report.threshold:,} passages (index/vector_layout.py APPROX_THRESHOLD)"))
    flay = fit["layout"]
    rows.append((f"index: {report.pages:,} pages = passages", f"{flay['kind']}" + (
        f" IVF{flay['nlist']},{flay['encoding']}, nprobe {flay['nprobe']}" if flay["kind"] == "ivf" else ""), "", "",
                 f"pages written in {report.built['wall'] / 60:.0f} min (Index.add_pages)"))
    rows.append(("  FAISS cache from SQLite (fit_vectors + save)", f"{fit['wall']:.0f} s", "", "",
                 f"{fit['cpu']:.0f} CPU-s; peak RSS {fit['maxrss_mib']:.0f} MiB; {_load(_span(fit))}"))
    lat = q["latency"]
    base, exact_lex = lat["query embedding"], lat[EXACT_LEXICAL]
    fmt = lambda l: f"p50 {l['p50_ms']:.1f} / p95 {l['p95_ms']:.1f} ms"  # noqa: E731
    ratio = lambda a, b: f"{a['p50_ms'] / b['p50_ms']:.2f} / {a['p95_ms'] / b['p95_ms']:.2f}"  # noqa: E731
    rows.append(("  query embedding alone", fmt(base), "", "", ""))
    near = q.get("nearest")
    if near:
        rows.append((f"  recall@{report.k} of Index.nearest (IVF + SQLite re-scoring)",
                     f"{near['recall']:.3f}; {fmt(near)}", f"1.000; flat p50 {flat[report.size]['p50_ms']:.1f} ms"
                     if report.size in flat else "", "", f"{near['queries']} held-out real queries, "
                     f"nprobe {q['layout']['nprobe']}, best {q['layout'].get('rescore', 0)} re-scored"))
    for name in ("hybrid", "dense"):
        rows.append((f"  search {name}, k=5", fmt(lat[name]), "query embedding", ratio(lat[name], base),
                     _load(Span(others=q.get("others"))) if name == "hybrid" else ""))
        if name == "hybrid" and THREADED in lat:
            rows.append((f"  — {THREADED}", fmt(lat[THREADED]), f"{SEQUENTIAL}: "
                         f"{fmt(lat[SEQUENTIAL])}", ratio(lat[THREADED], lat[SEQUENTIAL]),
                         "the default, timed again beside its baseline"))
    agree = q["lexical_agreement"]
    rows.append(("  search lexical, k=5", fmt(lat["lexical"]), f"{EXACT_LEXICAL}: {fmt(exact_lex)}",
                 ratio(lat["lexical"], exact_lex),
                 f"same top-5 pages {agree['top5']:.3f}, same first page {agree['top1']:.3f} "
                 f"(commonest phrases left out past {LEXICAL_BUDGET:,} postings, pages of the rarest "
                 f"{CANDIDATE_BUDGET:,} scored, index/lexical.py)"))
    if ONE_CONNECTION in lat:
        rows.append(("  — on a connection of its own (32 MiB page cache)", fmt(lat["lexical"]),
                     f"{ONE_CONNECTION}: {fmt(lat[ONE_CONNECTION])}", ratio(lat["lexical"], lat[ONE_CONNECTION]), ""))
    rows.append(("  first search: open + FAISS load + reconcile", f"{q['load_s'] * 1000:.0f} ms", "", "",
                 f"lists {'mapped' if q.get('mapped') else 'read'}; "
                 f"peak RSS of the searching process {q['maxrss_mib']:.0f} MiB"))
    fresh = report.fresh or {}
    if fresh:
        f, py = fresh["search"], fresh["python alone"]
        rows.append(("  `pagerag search`, fresh process", f"median {f['median_s']:.2f} s, {f['peak_rss_mib']:.0f} MiB",
                     f"python alone: median {py['median_s']:.2f} s", f"{f['median_s'] / py['median_s']:.1f}",
                     f"{f['runs']} runs: min {f['min_s']:.2f} / max {f['max_s']:.2f} s"))
    d = report.disk
    content = ", ".join(f"{k} {v / d['pages']:.0f}" for k, v in d["content"].items())
    rows.append(("  size on disk per page", f"{d['bytes_per_page']:,.0f} B", f"format 1: {d['format1_bytes_per_page']:,.0f} B",
                 f"{d['bytes_per_page'] / d['format1_bytes_per_page']:.2f}",
                 f"index.db per page: {content} B; word boxes as JSON: {d['words_json_over_packed']:.1f}x; "
                 + ", ".join(f"{k} {v / MIB:.0f} MiB" for k, v in d["files"].items())))
    return rows


def _span(d: dict) -> Span:
    return Span(wall=d.get("wall", 0.0), cpu=d.get("cpu", 0.0), others=d.get("others"))


def print_table(header: list[str], rows: list[tuple[str, ...]]) -> None:
    cols = ("measurement", "result", "baseline (same run)", "ratio", "notes")
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols[:-1])]
    for line in header:
        print(line)
    print()
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " | notes")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|------")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " | " + r[-1])


# -- main -------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["throughput", "search", "cold", "scale"], help="run one part only")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    g = ap.add_argument_group("throughput")
    g.add_argument("--engines", nargs="+", choices=["tesseract", "rapidocr"],
                   help="OCR engines to time [default: every installed one]")
    g.add_argument("--pages", type=int, default=40,
                   help="scanned pages, at least: whole copies of the sample's 9; 0 skips scanned builds [40]")
    g.add_argument("--eval-dir", type=Path, nargs="?", const=EVAL_SCANS,
                   help=f"use real scans from this folder instead of the sample, in place [bare flag: {EVAL_SCANS}]")
    g.add_argument("--text-pages", type=int, default=200, help="pages of the synthetic text-layer PDF, 0 to skip [200]")
    g.add_argument("--jobs", type=int, help="workers for the build and the floor [default: the build's, CPU count]")
    g.add_argument("--no-breakdown", action="store_true", help="skip model load and embedding-alone timings")
    g.add_argument("--no-what-if", action="store_true",
                   help="skip building again with OMP_NUM_THREADS=1 (first engine only), and the text-layer "
                        "PDF with PAGERAG_EMBED_INT8=0")
    g = ap.add_argument_group("search")
    g.add_argument("--search-pages", type=int, default=10_000, help="pages of the synthetic search index [10000]")
    g.add_argument("--search-words", type=int, nargs=2, default=[15, 110], metavar=("MIN", "MAX"),
                   help="words per synthetic page; more makes a slower one-off build [15 110]")
    g.add_argument("--queries", type=int, default=200, help="queries to time [200]")
    g.add_argument("-k", type=int, default=5, help="pages returned per search [5]")
    g.add_argument("--rebuild", action="store_true", help="rebuild the cached search index")
    g.add_argument("--cold-runs", type=int, default=10, help="fresh processes per command for the cold start [10]")
    g = ap.add_argument_group("scale")
    g.add_argument("--size", type=int, default=1_000_000,
                   help="pages (= passages) of the scale index; the first run builds and caches it "
                        "(10^6: ~1 h, ~3 GiB in bench/.cache) [1000000]")
    g.add_argument("--scale-pages", type=int,
                   help="pages of the whole scale index, if fewer than --size (writing pages is the slow part)")
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.eval_dir is not None and not args.eval_dir.is_dir():
        sys.exit(f"--eval-dir: no folder {args.eval_dir}; pass a folder of page images")
    env = environment()
    results: dict = {"command": [Path(sys.executable).name, *sys.argv], "env": env}
    rows: list[tuple[str, ...]] = []
    with measure() as total:
        try:
            if args.only in (None, "throughput"):
                import throughput

                engines = args.engines or throughput.available_engines()
                report = throughput.run(engines, args.pages, args.text_pages, args.jobs, args.eval_dir,
                                        breakdown=not args.no_breakdown, what_if=not args.no_what_if)
                rows += throughput_rows(report)
                results["throughput"] = asdict(report) | {"figures": [
                    {"name": r.name, "build_pages_per_second": r.build.pages_per_second,
                     "floor_pages_per_second": r.floor.pages_per_second, "ratio": r.ratio, "cpu_ratio": r.cpu_ratio}
                    for r in report.results]}
            if args.only in (None, "search"):
                import search_latency

                report = search_latency.run(args.search_pages, args.queries, args.k, tuple(args.search_words),
                                            rebuild=args.rebuild)
                rows += search_rows(report)
                results["search"] = report.as_json()
            if args.only in (None, "cold"):
                import cold_start
                import search_latency

                corpus = search_latency.Corpus(args.search_pages, tuple(args.search_words))
                index = search_latency.ensure_index(corpus, rebuild=args.rebuild and args.only == "cold")
                report = cold_start.run(index.folder, search_latency.make_queries(corpus, 1)[0],
                                        runs=args.cold_runs)
                rows += [(f"cold start, on the {index.pages:,}-page search index", "", "", "", ""),
                         *cold_rows(report)]
                results["cold"] = report.as_json()
            if args.only in (None, "scale"):
                import scale

                report = scale.run(args.size, args.scale_pages, args.queries)
                rows += scale_rows(report)
                results["scale"] = asdict(report)
        except BenchError as e:
            sys.exit(f"bench: {e}")
    env["loadavg_end"] = os.getloadavg()
    results["total"] = asdict(total)
    header = [f"pagerag bench, {time.strftime('%Y-%m-%d %H:%M')}: {env['cpus']} CPUs ({env['cpu']}), "
              f"torch {env['torch']}, {env['tesseract']}, rapidocr-onnxruntime {env['rapidocr-onnxruntime']}",
              f"load average at start {env['loadavg_start'][0]:.2f}, at end {env['loadavg_end'][0]:.2f}; "
              f"other work kept {total.others or 0:.2f} cores busy on average during the run "
              f"(steal {total.steal or 0:.2f}); total {total.wall / 60:.1f} min"]
    print_table(header, rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
