"""The build and query processes as cron, a terminal or a service manager run them: every standard
stream closed, a narrow encoding, stop signals (SIGTERM, SIGHUP) outside a build. Real subprocesses.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_kit import text_pdf

from index.builder import BuildOptions, build
from index.store import Index

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
TEXT = BuildOptions(ocr="none", jobs=1)


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], env={**ENV, **(env or {})},
                          capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.slow
def test_build_with_every_standard_stream_closed_and_status_in_a_narrow_encoding(tmp_path):
    """cron-style (`<&- >&- 2>&-`): the build still indexes; a Latin-1 terminal gets escapes, not a traceback."""
    text_pdf(tmp_path / "c" / "ledger.pdf", ["Harbour crane ledger: forty tonnes lifted on Tuesday."])
    (tmp_path / "c" / "notes ✓.txt").write_text("not a document: listed as skipped")
    idx = tmp_path / "idx"
    cmd = f'exec "{sys.executable}" -m cli index build "{tmp_path / "c"}" --index "{idx}" --ocr none -j 1 <&- >&- 2>&-'
    done = subprocess.run(["bash", "-c", cmd], env=ENV, timeout=300)
    assert done.returncode == 0
    assert Index.open(idx).counts() == {"documents": 1, "incomplete": 0, "pages": 1, "chunks": 1, "ocr_pages": 0}
    status = _cli("index", "status", "--index", idx, env={"PYTHONIOENCODING": "latin-1"})
    assert status.returncode == 0, status.stderr
    assert "notes \\u2713.txt: unsupported file type" in status.stdout and "Traceback" not in status.stderr


def _has_open(pid: int, name: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").endswith(name) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signals_outside_a_build_exit_130_with_one_line(tmp_path, sig):
    """A command that has opened the index and waits (here `search --batch` on its stdin) ends with one line
    and 130 on SIGTERM/SIGHUP, as a build does: not killed silently (-15) nor a traceback."""
    text_pdf(tmp_path / "c" / "a.pdf", ["Museum tickets: adults pay nine euros, children enter free."])
    build(tmp_path / "idx", [tmp_path / "c"], TEXT)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "search", "--batch", "--index", str(tmp_path / "idx")],
                            env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _has_open(proc.pid, "index.db") and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == f"Interrupted ({signal.Signals(sig).name})."
