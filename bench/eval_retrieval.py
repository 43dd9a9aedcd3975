"""Retrieval quality on ../shared/eval: Recall@1/@5 of `pagerag search` per dataset.

    .venv/bin/python bench/eval_retrieval.py [--ocr auto] [--datasets sroie funsd mmlongbench_doc]

Builds one index per dataset with `pagerag index build` (cached in bench/.cache, reused
when the build is unchanged), runs every question of qa.jsonl through
`pagerag search --batch` (the same code path as `pagerag search --json`), and prints a
table per retrieval mode. A question counts as a hit at k when any gold page is in the top k.
The eval data is research-only: it is read in place, never copied into the repo.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EVAL = Path(os.environ.get("PAGERAG_EVAL", REPO.parent / "shared" / "eval"))
PAGERAG = [sys.executable, "-m", "cli"]
DATASETS = ("sroie", "funsd", "mmlongbench_doc")


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build(ds: str, ocr: str, extra: list[str]) -> tuple[Path, dict]:
    folder = EVAL / ds
    index = HERE / ".cache" / f"eval-{ds}-{ocr}"
    pages = [str(folder / row["page"]) for row in load_jsonl(folder / "corpus.jsonl")]
    t0 = time.perf_counter()
    out = subprocess.run([*PAGERAG, "index", "build", *pages, "--index", str(index), "--ocr", ocr, "--json", *extra],
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode not in (0, 3):
        sys.exit(f"build of {ds} failed:\n{out.stderr[-3000:]}")
    report = json.loads(out.stdout)
    report["wall"] = time.perf_counter() - t0
    return index, report


def search(index: Path, questions: list[str], mode: str, k: int) -> list[list[dict]]:
    out = subprocess.run([*PAGERAG, "search", "--batch", "-k", str(k), "--mode", mode, "--index", str(index)],
                         input="\n".join(q.replace("\n", " ") for q in questions) + "\n",
                         capture_output=True, text=True, cwd=REPO, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def recall(rows: list[tuple[dict, list[dict]]], folder: Path, k: int) -> float:
    if not rows:
        return float("nan")
    hit = 0
    for qa, hits in rows:
        gold = qa["gold_page"] if isinstance(qa["gold_page"], list) else [qa["gold_page"]]
        gold = {str((folder / g).resolve()) for g in gold}
        hit += any(h["path"] in gold for h in hits[:k])
    return hit / len(rows)


def groups(ds: str, qas: list[dict]) -> dict[str, list[int]]:
    out = {"all": list(range(len(qas)))}
    if ds == "mmlongbench_doc":
        out["single-page"] = [i for i, q in enumerate(qas) if not isinstance(q["gold_page"], list)]
        out["multi-page"] = [i for i, q in enumerate(qas) if isinstance(q["gold_page"], list)]
        out["doc-scoped wording"] = [i for i, q in enumerate(qas) if q.get("doc_scoped_wording")]
        out["not doc-scoped"] = [i for i, q in enumerate(qas) if not q.get("doc_scoped_wording")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--ocr", default="auto")
    ap.add_argument("--modes", nargs="+", default=["hybrid", "dense", "lexical"])
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args, extra = ap.parse_known_args()
    if not EVAL.exists():
        sys.exit(f"no eval data at {EVAL} (set PAGERAG_EVAL)")
    results = []
    print(f"{'dataset':<16} {'group':<20} {'n':>4} {'mode':<8} {'R@1':>6} {'R@5':>6} {'R@10':>6}")
    for ds in args.datasets:
        folder = EVAL / ds
        index, report = build(ds, args.ocr, extra)
        print(f"# {ds}: {report['pages_read']} pages read this run ({report['ocr_engine']}), "
              f"{report['pages_per_second']:.2f} pages/s, {len(report['skipped'])} skipped, build {report['wall']:.0f}s",
              file=sys.stderr)
        qas = load_jsonl(folder / "qa.jsonl")
        for mode in args.modes:
            hits = search(index, [q["question"] for q in qas], mode, 10)
            for name, idxs in groups(ds, qas).items():
                rows = [(qas[i], hits[i]) for i in idxs]
                r = {k: recall(rows, folder, k) for k in (1, 5, 10)}
                results.append({"dataset": ds, "group": name, "n": len(rows), "mode": mode, "ocr": report["ocr_engine"],
                                **{f"R@{k}": round(v, 3) for k, v in r.items()}})
                print(f"{ds:<16} {name:<20} {len(rows):>4} {mode:<8} {r[1]:>6.3f} {r[5]:>6.3f} {r[10]:>6.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
