"""Fault tests: seeded SIGKILLs at random moments, signals with worker processes, a corpus of bad files.

After every kill: `verify` passes, and the resumed build equals an uninterrupted one
(pages, passages, top 10 dense and lexical) without reading a finished page twice.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from bad_corpus import check_bad_build, make_bad_corpus
from fault_kit import page_image
from kill_trials import committed_pages, sigint_as_usual

from cli.main import cli
from index.builder import BuildOptions, build
from index.maintenance import verify
from index.store import Index

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(HERE.parent), "HF_HUB_OFFLINE": "1"}


def test_twenty_sigkills_at_random_moments(tmp_path):
    # a fresh process: forking this one, after other tests ran models on threads, could hang
    proc = subprocess.run([sys.executable, str(HERE / "kill_trials.py"), str(tmp_path), "20"], env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(trials) == 20
    assert {t["scenario"] for t in trials} == {"first", "rebuild"}
    assert sum(t["killed"] for t in trials) >= 16, "most kills should land mid-build"
    for t in trials:
        assert t["verify_ok"], t
        assert t["differences"] == [], t
        assert (t["pages_lost"], t["pages_redone"]) == (0, 0), t


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_signals_stop_the_build_and_its_workers(tmp_path, sig):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(6):
        page_image([f"Ledger sheet {i}", f"Shipment of {i * 7 + 3} crates"], size=(900, 500)).save(corpus / f"p{i}.png")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "index", "build", str(corpus), "--index",
                             str(tmp_path / "idx"), "--ocr", "tesseract", "-j", "2"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_usual)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(committed_pages(tmp_path / "idx")) >= 1:
                break
        except Exception:  # not created yet
            pass
        time.sleep(0.1)
    workers = _children(proc.pid)
    assert proc.poll() is None and len(workers) >= 2, "the build should be running its OCR workers"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)  # returns only once nothing holds the pipes open
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err
        assert "Interrupted: finished pages are saved; run the same command again to resume." in err
        assert "Traceback" not in err
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not [w for w in workers if _alive(w)], "a worker outlived the build"

    assert verify(tmp_path / "idx").ok
    done = len(committed_pages(tmp_path / "idx"))
    resumed = build(tmp_path / "idx", [corpus], BuildOptions(ocr="tesseract", jobs=1))
    assert resumed.pages_read == 6 - done
    assert Index.open(tmp_path / "idx").counts()["pages"] == 6 and verify(tmp_path / "idx").ok


def test_bad_input_corpus_is_indexed_or_skipped_with_reasons(tmp_path):
    kinds = make_bad_corpus(tmp_path / "bad")
    assert len(kinds) >= 30
    cmd = [sys.executable, "-m", "cli", "index", "build", str(tmp_path / "bad"), "--index", str(tmp_path / "idx"),
           "--ocr", "tesseract", "-j", "2"]
    first = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert first.returncode == 3, first.stderr[-3000:]  # done, with files skipped for an error
    assert "Traceback" not in first.stderr + first.stdout
    handled, problems = check_bad_build(tmp_path / "bad", kinds, tmp_path / "idx")
    assert problems == [] and handled == len(kinds)
    assert verify(tmp_path / "idx").ok
    # again: what was indexed is unchanged; what failed is tried again, and fails the same way
    again = build(tmp_path / "idx", [tmp_path / "bad"], BuildOptions(ocr="tesseract", jobs=1))
    assert again.unchanged == sum(k.expect == "indexed" for k in kinds)
    assert check_bad_build(tmp_path / "bad", kinds, tmp_path / "idx") == (len(kinds), [])
    # a name that is not UTF-8 prints with its odd byte escaped
    found = CliRunner().invoke(cli, ["search", "harbour crane maintenance", "--mode", "lexical", "-k", "40",
                                     "--index", str(tmp_path / "idx")], catch_exceptions=False)
    assert found.exit_code == 0 and "caf\\xe9-latin1.png" in found.output
    status = CliRunner().invoke(cli, ["index", "status", "--index", str(tmp_path / "idx")], catch_exceptions=False)
    assert status.exit_code == 0 and "cannot read this folder (File name too long)" in status.output
