"""Cold start: `pagerag search`, `ask` (up to the model), `index status` and `--help`, each in a fresh process.

    from cold_start import run
    report = run(index_folder, "capital budget", runs=10)   # -> ColdReport
    report.commands["search"].median, .peak_rss_mib

Every run is a new `python -m cli ...` process, timed from spawn to exit (wall), with
its own CPU time and peak RSS from wait4() (CPU time moves far less than wall time when
other work shares the cores). The baselines run in the same loop, interleaved: the
interpreter alone, the interpreter importing what a search must import (onnxruntime,
tokenizers, numpy, faiss), and the search as it was before the ONNX encoder
(`PAGERAG_EMBED_BACKEND=torch`: sentence-transformers on torch). `ask` runs with the
default backend and an empty Hugging Face cache, so the model is missing and it prints
its evidence and exits 4: everything up to calling a model.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import PAGERAG, REPO, BenchError, log

MIB = 2 ** 20


@dataclass
class Runs:
    name: str
    argv: list[str] = field(repr=False)
    walls: list[float] = field(default_factory=list)  # seconds
    cpus: list[float] = field(default_factory=list)  # user + system CPU seconds of the process
    rss: list[int] = field(default_factory=list)  # peak resident bytes of the process
    expect: int = 0  # exit code

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpus)

    @property
    def peak_rss_mib(self) -> float:
        return max(self.rss) / MIB

    def summary(self) -> dict:
        return {"runs": len(self.walls), "min_s": round(min(self.walls), 3), "median_s": round(self.median, 3),
                "max_s": round(max(self.walls), 3), "cpu_median_s": round(self.cpu_median, 3),
                "peak_rss_mib": round(self.peak_rss_mib, 1)}


def timed(argv: list[str], env: dict[str, str], expect: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS bytes) of one process; raises BenchError on an unexpected exit code."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != expect:
        raise BenchError(f"`{' '.join(argv[2:6])} ...` exited {proc.returncode}, expected {expect}:\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024  # Linux reports KiB


@dataclass
class ColdReport:
    index: str
    query: str
    commands: dict[str, Runs]

    def as_json(self) -> dict:
        return {"index": self.index, "query": self.query,
                "commands": {name: r.summary() for name, r in self.commands.items()}}


IMPORTS = "import onnxruntime, tokenizers, numpy, faiss"


def compile_bytecode() -> None:
    """Write pagerag's own bytecode (__pycache__), as an installed or once-run pagerag has it: with
    PYTHONDONTWRITEBYTECODE set (as in some shells and CI) every run would compile ~30 modules
    from source, ~0.1 s that no user pays."""
    import compileall

    for package in ("cli", "index", "rag"):
        compileall.compile_dir(REPO / package, quiet=1)


def run(index: Path, query: str, runs: int = 10, torch_runs: int = 3) -> ColdReport:
    """`runs` fresh processes per command, in rotation; the torch search `torch_runs` times (~7 s each)."""
    with tempfile.TemporaryDirectory(prefix="pagerag-bench-hf-") as empty_hf:
        env = {**os.environ, "PAGERAG_INDEX": str(index), "HF_HUB_CACHE": empty_hf, "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": str(REPO)}
        commands = {
            "python alone": Runs("python alone", [sys.executable, "-c", "pass"]),
            "imports of a search": Runs("imports of a search", [sys.executable, "-c", IMPORTS]),
            "--help": Runs("--help", [*PAGERAG, "--help"]),
            "index status": Runs("index status", [*PAGERAG, "index", "status"]),
            "search": Runs("search", [*PAGERAG, "search", query]),
            "ask, no model": Runs("ask, no model", [*PAGERAG, "ask", query], expect=4),
            "search, torch": Runs("search, torch", [*PAGERAG, "search", query]),
        }
        torch_env = {**env, "PAGERAG_EMBED_BACKEND": "torch"}
        compile_bytecode()
        timed(commands["search"].argv, env, 0)  # warm the page cache and make sure the ONNX export exists
        log(f"cold start: {runs} fresh processes per command ({torch_runs} for the torch search)")
        for i in range(runs):
            for name, r in commands.items():
                if name == "search, torch" and i >= torch_runs:
                    continue
                wall, cpu, rss = timed(r.argv, torch_env if name == "search, torch" else env, r.expect)
                r.walls.append(wall)
                r.cpus.append(cpu)
                r.rss.append(rss)
    return ColdReport(str(index), query, commands)


if __name__ == "__main__":
    raise SystemExit("run the benchmarks with `python bench/run.py --only cold`")
