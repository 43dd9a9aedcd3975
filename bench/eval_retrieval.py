"""Retrieval quality on ../shared/eval: `pagerag eval` per dataset, one table, the fusion check.

    .venv/bin/python bench/eval_retrieval.py [--ocr auto] [--datasets sroie funsd mmlongbench_doc]
    .venv/bin/python bench/eval_retrieval.py --cache /work/evalcache     # indexes already built there
    .venv/bin/python bench/eval_retrieval.py --cache DIR --no-build --instructions   # + answer instructions

Builds one index per dataset with `pagerag index build` (cached in bench/.cache, or
`--cache DIR`/<dataset>; reused when the build is unchanged), then runs
`pagerag eval qa.jsonl --json` on it (corpus-wide, and within each question's document
where questions carry a doc_id) and prints one table. Below it: for every dataset whether
hybrid is at least as good as the better single mode on R@5 and MRR, the worst dataset
and the average. The eval data is research-only: it is read in place, never copied
(`--instructions` writes its altered questions to a temporary folder, removed after).

`--instructions [TEXT]` appends TEXT (default: INSTRUCTIONS, the kind of instructions that
analyst questions over financial filings carry) to every question: a check that wording
which names no page does not drag hybrid below the dense ranking.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# ../shared/eval beside the checkout (or beside the folder of worktrees)
EVAL = Path(os.environ.get("PAGERAG_EVAL") or next(
    (p / "shared" / "eval" for p in (REPO.parent, REPO.parent.parent) if (p / "shared" / "eval").exists()),
    REPO.parent / "shared" / "eval"))
PAGERAG = [sys.executable, "-m", "cli"]
DATASETS = ("sroie", "funsd", "mmlongbench_doc")
INSTRUCTIONS = "Answer in USD millions. Base your judgement on the income statement."


def build(ds: str, index: Path, ocr: str, extra: list[str]) -> dict:
    folder = EVAL / ds
    pages = [str(folder / json.loads(line)["page"]) for line in (folder / "corpus.jsonl").read_text().splitlines()
             if line.strip()]
    t0 = time.perf_counter()
    out = subprocess.run([*PAGERAG, "index", "build", *pages, "--index", str(index), "--ocr", ocr, "--json", *extra],
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode not in (0, 3):
        sys.exit(f"build of {ds} failed:\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout)
    report["wall"] = time.perf_counter() - t0
    return report


def evaluate(ds: str, index: Path, modes: list[str], report: Path | None, suffix: str | None = None) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        qa = EVAL / ds / "qa.jsonl"
        if suffix:  # the same questions with instructions appended, read against the dataset's own root
            items = [json.loads(line) for line in qa.read_text().splitlines() if line.strip()]
            qa = Path(tmp) / "qa.jsonl"
            qa.write_text("".join(json.dumps({**it, "question": f"{it['question'].rstrip()} {suffix}"}) + "\n"
                                  for it in items))
        cmd = [*PAGERAG, "eval", str(qa), "--root", str(EVAL / ds), "--index", str(index), "--json",
               *(arg for m in modes for arg in ("--mode", m))]
        if report:
            cmd += ["--report", str(report)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        sys.exit(f"pagerag eval on {ds} failed:\n{out.stderr[-3000:]}")
    return [{"dataset": ds, **row} for row in json.loads(out.stdout)["rows"]]


def fusion_check(rows: list[dict], datasets: list[str]) -> list[str]:
    """Per dataset (corpus-wide, all questions): hybrid against the better single mode; worst and average."""
    cell = {(r["dataset"], r["mode"]): r for r in rows if (r["scope"], r["group"]) == ("corpus", "all")}
    lines, margins = [], {}
    for ds in datasets:
        if not all((ds, m) in cell for m in ("hybrid", "dense", "lexical")):
            continue
        h, d, lx = (cell[(ds, m)] for m in ("hybrid", "dense", "lexical"))
        m5 = h["recall"]["5"] - max(d["recall"]["5"], lx["recall"]["5"])
        mrr = h["mrr"] - max(d["mrr"], lx["mrr"])
        margins[ds] = (m5, mrr, h["recall"]["5"], h["mrr"])
        ok = "yes" if m5 >= 0 and mrr >= 0 else "NO"
        lines.append(f"{ds:<16} hybrid R@5 {h['recall']['5']:.3f} (vs best single {m5:+.3f})  "
                     f"MRR {h['mrr']:.3f} (vs best single {mrr:+.3f})  hybrid >= both: {ok}")
    if margins:
        worst = min(margins, key=lambda ds: margins[ds][2])
        lines.append(f"worst set (hybrid R@5): {worst} {margins[worst][2]:.3f};  average hybrid R@5 "
                     f"{sum(v[2] for v in margins.values()) / len(margins):.3f}, MRR "
                     f"{sum(v[3] for v in margins.values()) / len(margins):.3f}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--ocr", default="auto")
    ap.add_argument("--modes", nargs="+", default=["hybrid", "dense", "lexical"])
    ap.add_argument("--cache", type=Path, help="folder holding (or to hold) one index per dataset, named after it")
    ap.add_argument("--no-build", action="store_true", help="use the cached indexes as they are")
    ap.add_argument("--reports", type=Path, help="write each dataset's per-question report into this folder")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    ap.add_argument("--instructions", nargs="?", const=INSTRUCTIONS, metavar="TEXT",
                    help=f"append TEXT to every question (default: '{INSTRUCTIONS}')")
    args, extra = ap.parse_known_args()
    if not EVAL.exists():
        sys.exit(f"no eval data at {EVAL} (set PAGERAG_EVAL)")
    if args.reports:
        args.reports.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'dataset':<16} {'scope':<9} {'group':<19} {'mode':<8} {'n':>4} {'R@1':>6} {'R@5':>6} {'R@10':>6} "
          f"{'MRR':>6} {'nDCG@5':>7}")
    for ds in args.datasets:
        index = args.cache / ds if args.cache else HERE / ".cache" / f"eval-{ds}-{args.ocr}"
        if not args.no_build:
            report = build(ds, index, args.ocr, extra)
            print(f"# {ds}: {report['pages_read']} pages read this run ({report['ocr_engine']}), "
                  f"{len(report['skipped'])} skipped, build {report['wall']:.0f}s", file=sys.stderr)
        found = evaluate(ds, index, args.modes, args.reports / f"{ds}.jsonl" if args.reports else None,
                         args.instructions)
        for r in found:
            rc = r["recall"]
            print(f"{ds:<16} {r['scope']:<9} {r['group']:<19} {r['mode']:<8} {r['n']:>4} {rc['1']:>6.3f} "
                  f"{rc['5']:>6.3f} {rc['10']:>6.3f} {r['mrr']:>6.3f} {r['ndcg5']:>7.3f}", flush=True)
        rows += found
    print()
    print("\n".join(fusion_check(rows, args.datasets)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
