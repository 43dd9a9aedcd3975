"""Seeded SIGKILL trials of index builds, for tests/test_faults.py and `bench/faults.py`.

    trials = KillTrials(workdir, ocr="tesseract")
    results = [trials.run(seed) for seed in range(20)]   # [TrialResult(scenario, ..., differences), ...]

`python tests/kill_trials.py WORKDIR N [SEED0]` runs N trials in a fresh process, one JSON line each.
A build is killed at a random point (planning, reading, committing, saving), then checked
(`verify`) and resumed; the resumed index must be what an uninterrupted build makes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fault_kit import multi_tiff_garbled, page_image, save_image, text_pdf

# Builds run in forked children of a process that has imported everything and loaded the
# embedding model but never run it (so no thread pool is forked mid-flight): a trial costs
# the build itself, not a Python start-up. The parent only forks, waits, kills and compares.
QUERIES = ["harbour crane inspection", "invoice total amount due", "tram timetable changes",
           "minutes of the board meeting", "warranty claim for the boiler"]
TOPICS = ["harbour crane inspection", "invoice total amount due", "tram timetable changes",
          "minutes of the board meeting", "warranty claim for the boiler", "library parking decision",
          "water authority budget", "orchard irrigation plan", "museum ticket prices"]


def write_corpus(folder: Path, version: int) -> None:
    """Version 1: 7 text-layer PDFs (1-3 pages), 2 small images and a 3-page TIFF whose page 2 is garbled
    (partly indexed). Version 2 (written over version 1) changes two PDFs, an image and the TIFF (now page 3
    is garbled), removes a PDF and adds one."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, topic in enumerate(TOPICS[:7]):
        name = folder / f"doc{i}.pdf"
        if version == 2 and i == 4:
            name.unlink(missing_ok=True)
            continue
        if version == 2 and i not in (1, 6):
            continue
        edit = " (revised: figures corrected)" if version == 2 else ""
        pages = [f"{topic.capitalize()}{edit}, part {p + 1} of document {i}.\n"
                 f"Reference {i * 100 + p}: details about {topic} and item {p * 7 + i}." for p in range(1 + i % 3)]
        text_pdf(name, pages)
    scans = [["Receipt 4471", "Total 42.50 EUR"], ["Parcel label", "Dock 7 Rotterdam"]]
    for j, lines in enumerate(scans):
        if version == 2 and j == 1:
            save_image(page_image(["Parcel label", "Dock 9 Antwerp"], size=(420, 160)), folder / f"scan{j}.png")
        elif version == 1:
            save_image(page_image(lines, size=(420, 160)), folder / f"scan{j}.png")
    multi_tiff_garbled(folder / "ledger.tif", [f"Ledger sheet {i} version {version}" for i in (1, 2, 3)], version + 1)
    if version == 2:
        text_pdf(folder / "doc9.pdf", ["A new memo about lighthouse maintenance.\nLamp replaced in March."])


def in_child(fn, *args, timeout: float = 300):
    """Run fn(*args) in a forked child; returns its result (or raises with the child's traceback)."""
    import pickle
    import select
    import time
    import traceback

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            out = ("ok", fn(*args))
        except BaseException:  # noqa: BLE001 - everything goes back to the parent
            out = ("error", traceback.format_exc())
        with os.fdopen(w, "wb") as f:
            pickle.dump(out, f)
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    with os.fdopen(r, "rb") as f:
        while True:
            ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise TimeoutError(f"child did not finish in {timeout}s")
            data = f.read1(1 << 20)
            if not data:
                break
            chunks.append(data)
    os.waitpid(pid, 0)
    status, value = pickle.loads(b"".join(chunks))
    if status != "ok":
        raise RuntimeError(value)
    return value


def killed_when(ready, delay: float, fn, *args, timeout: float = 300) -> bool:
    """Fork fn(*args); once ready() (polled every 10 ms) wait `delay` s more and SIGKILL it.

    Returns True if it was still running when killed."""
    import signal
    import time

    pid = os.fork()
    if pid == 0:
        try:
            fn(*args)
        finally:
            os._exit(0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not os.waitpid(pid, os.WNOHANG)[0]:
        try:
            if ready():
                break
        except Exception:  # noqa: BLE001 - the database may not exist yet
            pass
        time.sleep(0.01)
    else:
        return False
    time.sleep(delay)
    if os.waitpid(pid, os.WNOHANG)[0]:
        return False
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


def snapshot(index: Path, embedder) -> dict:
    """What a user sees: pages, passages, and the top 10 for fixed queries, dense and lexical."""
    from index.stored_paths import fs_path
    from index.store import Index
    from rag.retrieve import Retriever

    idx = Index.open(index)
    try:
        name = lambda p: os.path.basename(fs_path(p))  # noqa: E731
        pages = {(name(p), n): (t, s) for p, n, t, s in idx.db.execute(
            "SELECT d.path, p.page_no, p.text, p.source FROM pages p JOIN documents d ON d.id = p.doc_id")}
        chunks = {(name(p), n, o): t for p, n, o, t in idx.db.execute(
            "SELECT d.path, p.page_no, c.ord, c.text FROM chunks c JOIN pages p ON p.id = c.page_id "
            "JOIN documents d ON d.id = p.doc_id")}
        docs = {name(d["path"]): (d["sha256"], d["status"]) for d in idx.documents()}
        failed = {(name(p), n): reason for p, _, pages in idx.partial_documents() for n, reason in pages}
        r = Retriever(idx, embedder)
        tops = {(mode, q): [(os.path.basename(h.path), h.page, h.score) for h in r.search(q, k=10, mode=mode)]
                for q in QUERIES for mode in ("dense", "lexical")}
        return {"pages": pages, "chunks": chunks, "docs": docs, "failed": failed, "tops": tops}
    finally:
        idx.close()


def same_ranking(a: list, b: list, tol: float = 1e-4) -> bool:
    """Same pages in the top k, with scores equal rank by rank (so any reordering is between near-ties)."""
    return (len(a) == len(b) and sorted(x[:2] for x in a) == sorted(x[:2] for x in b)
            and all(abs(x[2] - y[2]) <= tol for x, y in zip(a, b)))


def differences(got: dict, want: dict) -> list[str]:
    out = [k for k in ("pages", "chunks", "docs", "failed") if got[k] != want[k]]
    out += [f"top-10 {m} {q!r}" for (m, q), hits in want["tops"].items() if not same_ranking(got["tops"][(m, q)], hits)]
    return out


def committed_pages(index: Path) -> dict:
    """(file name, page) -> sha256 of the document version the page belongs to."""
    import sqlite3

    db = sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True)
    try:
        return {(os.path.basename(p), n): sha for p, n, sha in db.execute(
            "SELECT d.path, p.page_no, d.sha256 FROM pages p JOIN documents d ON d.id = p.doc_id")}
    finally:
        db.close()


@dataclass
class TrialResult:
    scenario: str
    after_pages: int  # killed once this many pages were committed ...
    delay: float  # ... and this many seconds more
    killed: bool
    verify_ok: bool
    verify_problems: list
    pages_lost: int
    pages_redone: int
    differences: list

    @property
    def corrupted(self) -> bool:
        return not self.verify_ok or bool(self.differences)


class KillTrials:
    """Seeded SIGKILL trials over a first build and a rebuild of changed/removed files.

        trials = KillTrials(workdir, ocr="tesseract")
        results = [trials.run(seed) for seed in range(20)]
    """

    def __init__(self, workdir: Path, ocr: str = "tesseract"):
        import shutil
        import time

        import faiss  # noqa: F401 - imported once here, not in every child

        from index.builder import BuildOptions
        from index.embed import DEFAULT_MODEL, load_embedder

        self.work = workdir
        self.embedder = None  # each child loads its own: a model's thread pools do not survive a fork
        in_child(lambda: load_embedder(DEFAULT_MODEL) and None)  # any one-time export happens here, once
        self.options = {"first": BuildOptions(ocr=ocr, jobs=1), "rebuild": BuildOptions(ocr=ocr, jobs=1, prune=True)}
        self.corpus = {"first": workdir / "c-first", "rebuild": workdir / "c-rebuild"}
        self.start = {"first": workdir / "start-first", "rebuild": workdir / "start-rebuild"}
        write_corpus(self.corpus["first"], 1)
        write_corpus(self.corpus["first"], 2)
        write_corpus(self.corpus["rebuild"], 1)
        in_child(self._build, self.start["rebuild"], "rebuild")  # the index of version 1 ...
        write_corpus(self.corpus["rebuild"], 2)  # ... and the files change under it
        self.start["first"].mkdir()
        self.reference, self.duration, self.reads = {}, {}, {}
        for scenario in ("first", "rebuild"):
            ref = workdir / f"ref-{scenario}"
            shutil.copytree(self.start[scenario], ref)
            t0 = time.monotonic()
            self.reads[scenario] = in_child(self._build, ref, scenario).pages_read
            self.duration[scenario] = time.monotonic() - t0
            self.reference[scenario] = in_child(snapshot, ref, self.embedder)

    def _build(self, index: Path, scenario: str):
        from index.builder import build

        return build(index, [self.corpus[scenario]], self.options[scenario])

    def _after_kill(self, index: Path):
        from index.maintenance import verify

        report = verify(index)
        return report.ok, [c.detail for c in report.checks if not c.ok], committed_pages(index)

    def _resume(self, index: Path):
        from index.maintenance import verify

        report = self._build(index, self.scenario)
        check = verify(index)
        return report.pages_read, check.ok, [c.detail for c in check.checks if not c.ok], snapshot(index, self.embedder)

    def run(self, seed: int, scenario: str | None = None) -> TrialResult:
        import random
        import shutil

        rng = random.Random(seed)
        self.scenario = scenario or ("first", "rebuild")[seed % 2]
        index = self.work / f"trial-{seed}"
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(self.start[self.scenario], index)
        before = committed_pages(index) if (index / "index.db").exists() else {}
        # a random point of the build's progress (k pages committed, k = 0: while planning), plus a
        # random fraction of one page's time: kills land in planning, reading, committing and saving
        k = rng.randint(0, self.reads[self.scenario] - 1)
        delay = rng.uniform(0, self.duration[self.scenario] / max(1, self.reads[self.scenario]))
        fresh = lambda: sum(before.get(key) != sha for key, sha in committed_pages(index).items())  # noqa: E731
        killed = killed_when(lambda: fresh() >= k, delay, self._build, index, self.scenario)
        ok, problems, after = in_child(self._after_kill, index)
        final_sha = {name: sha for name, (sha, _) in self.reference[self.scenario]["docs"].items()}
        kept = {k for k, sha in after.items() if final_sha.get(k[0]) == sha and before.get(k) != sha}
        pages_read, ok2, problems2, snap = in_child(self._resume, index)
        want = self.reference[self.scenario]
        lost = sum(1 for k in want["pages"] if k not in snap["pages"])
        redone = pages_read - (self.reads[self.scenario] - len(kept))
        shutil.rmtree(index, ignore_errors=True)
        return TrialResult(self.scenario, k, round(delay, 3), killed, ok and ok2, problems + problems2, lost, redone,
                           differences(snap, want))


def sigint_as_usual() -> None:
    """preexec_fn for a build the test will interrupt: a shell that starts a job in the background
    (CI runners, `cmd &`) leaves SIGINT ignored in it and its children, and Python keeps it so."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main() -> None:
    """`python tests/kill_trials.py WORKDIR N [SEED0]`: N kill trials in a fresh process, one JSON line each."""
    import json
    import sys
    from dataclasses import asdict

    work, n = Path(sys.argv[1]), int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    work.mkdir(parents=True, exist_ok=True)
    trials = KillTrials(work)
    for seed in range(first, first + n):
        print(json.dumps({"seed": seed, **asdict(trials.run(seed))}), flush=True)


if __name__ == "__main__":
    main()
