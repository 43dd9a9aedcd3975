"""Fault tolerance in one command: a corpus of awkward files, and seeded SIGKILLs mid-build.

    .venv/bin/python bench/faults.py               # make faults: ~3 min on 2 cores
    .venv/bin/python bench/faults.py --trials 40 --json faults.json

Bad input: every file of tests/bad_corpus.py's corpus (generated, ≥30 kinds) must be
indexed (with the right page count) or skipped with its reason; the build runs as the
real CLI and its output is searched for tracebacks. Kill trials: SIGKILL at a seeded
random moment of a first build or of a rebuild of changed/removed files (tests/kill_trials.py); then
`index verify`, resume, and compare with an uninterrupted build (pages, passages,
top 10 dense and lexical for fixed queries). "Pages redone" counts pages committed
before the kill that the resumed build read again (0: nothing finished is re-read).
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

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def bad_input(work: Path) -> dict:
    from bad_corpus import check_bad_build, make_bad_corpus

    kinds = make_bad_corpus(work / "bad")
    proc = subprocess.run([sys.executable, "-m", "cli", "index", "build", str(work / "bad"), "--index",
                           str(work / "bad-idx"), "--ocr", "tesseract"], env=ENV, capture_output=True, text=True)
    handled, problems = check_bad_build(work / "bad", kinds, work / "bad-idx")
    skipping = ("error", "unsupported", "noted")
    skipped_ok = sum(k.expect in skipping for k in kinds) - sum(
        1 for p in problems if any(p.startswith(repr(k.name)) and k.expect in skipping for k in kinds))
    return {"kinds": len(kinds), "handled": handled, "skipped_with_reason": skipped_ok,
            "tracebacks": (proc.stdout + proc.stderr).count("Traceback"), "exit_code": proc.returncode,
            "problems": problems}


def kill_trials(work: Path, n: int, seed: int) -> dict:
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "kill_trials.py"), str(work / "trials"), str(n),
                           str(seed)], env=ENV, capture_output=True, text=True)
    trials = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or len(trials) != n:
        raise SystemExit(f"kill trials failed:\n{proc.stderr[-3000:]}")
    corrupted = [t for t in trials if not t["verify_ok"] or t["differences"]]
    return {"trials": n, "killed_mid_build": sum(t["killed"] for t in trials),
            "first_builds": sum(t["scenario"] == "first" for t in trials),
            "rebuilds": sum(t["scenario"] == "rebuild" for t in trials),
            "survived": n - len(corrupted), "corrupted": len(corrupted),
            "pages_lost": sum(t["pages_lost"] for t in trials),
            "pages_redone": sum(max(0, t["pages_redone"]) for t in trials), "details": trials}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="first seed; trial i uses seed+i")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pagerag-faults-") as tmp:
        work = Path(tmp)
        bad = bad_input(work)
        kills = kill_trials(work, args.trials, args.seed)
    rows = [("bad-input kinds tried", bad["kinds"]), ("  handled as expected", bad["handled"]),
            ("  skipped with a reason", bad["skipped_with_reason"]), ("  tracebacks", bad["tracebacks"]),
            ("  build exit code (3: some files skipped for an error)", bad["exit_code"]),
            ("SIGKILL trials", f"{kills['trials']} ({kills['first_builds']} first builds, "
                               f"{kills['rebuilds']} rebuilds of changed/removed files)"),
            ("  killed mid-build", kills["killed_mid_build"]), ("  survived (verify ok, same as uninterrupted)",
                                                               kills["survived"]),
            ("  corrupted", kills["corrupted"]), ("  pages lost", kills["pages_lost"]),
            ("  pages redone", kills["pages_redone"])]
    width = max(len(r[0]) for r in rows)
    print(f"| {'check'.ljust(width)} | result |\n|{'-' * (width + 2)}|--------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    print(f"\n({time.monotonic() - t0:.0f} s)")
    for p in bad["problems"]:
        print("problem:", p)
    if args.json:
        args.json.write_text(json.dumps({"bad_input": bad, "kill_trials": kills}, indent=2))
    if bad["problems"] or bad["tracebacks"] or kills["corrupted"] or kills["pages_lost"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
