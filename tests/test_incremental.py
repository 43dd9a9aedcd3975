"""Incremental builds, prune/remove, one writer at a time, crash safety and resume."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cli.main import cli
from kill_trials import sigint_as_usual
from index.builder import BuildInterrupted, BuildOptions, build
from index.errors import IndexFormatError, IndexLocked, ModelMismatch
from index.lock import WriteLock
from index.store import Index
from rag.retrieve import Retriever

pytestmark = pytest.mark.slow
OPTS = BuildOptions(ocr="tesseract", jobs=2)


def consistent(folder):
    """FAISS (as saved on disk, reopened) holds exactly the chunk ids in SQLite."""
    idx = Index.open(folder)
    db_ids = sorted(r[0] for r in idx.db.execute("SELECT id FROM chunks"))
    from index.vectors import VectorStore

    on_disk = VectorStore(folder, int(idx.meta["embed_dim"]))
    return sorted(on_disk.ids().tolist()) == db_ids


def paths_found(folder, query, k=3):
    return [(h.path.rsplit("/", 1)[1], h.page) for h in Retriever(Index.open(folder)).search(query, k=k)]


def test_rebuild_changes_and_prune(tmp_path, make_page):
    make_page("c/alpha.png", ["Alpha orchard irrigation plan", "Sprinklers every Tuesday"])
    make_page("c/beta.png", ["Beta bakery sourdough order", "Twelve loaves of rye"])
    first = build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    assert (first.new, first.pages_read, first.pages_ocr) == (2, 2, 2)

    again = build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    assert (again.unchanged, again.pages_read, again.chunks_added, again.new) == (2, 0, 0, 0)

    # same bytes, new mtime: hashed, found unchanged, nothing read
    os.utime(tmp_path / "c/alpha.png", (time.time() + 10, time.time() + 10))
    touched = build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    assert (touched.unchanged, touched.pages_read) == (2, 0)

    make_page("c/beta.png", ["Beta bakery croissant order", "Forty butter croissants"])
    changed = build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    assert (changed.changed, changed.unchanged, changed.pages_read) == (1, 1, 1)
    idx = Index.open(tmp_path / "idx")
    texts = " ".join(r[0] for r in idx.db.execute("SELECT text FROM pages"))
    assert "croissant" in texts.lower() and "sourdough" not in texts.lower()
    assert paths_found(tmp_path / "idx", "butter croissants")[0] == ("beta.png", 1)
    assert consistent(tmp_path / "idx")

    (tmp_path / "c/alpha.png").unlink()
    kept = build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    assert kept.pruned == 0 and Index.open(tmp_path / "idx").counts()["documents"] == 2
    pruned = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", prune=True))
    assert pruned.pruned == 1
    idx = Index.open(tmp_path / "idx")
    assert [d["path"].rsplit("/", 1)[1] for d in idx.documents()] == ["beta.png"]
    assert len(idx.vectors) == idx.counts()["chunks"]
    assert consistent(tmp_path / "idx")
    assert all(name == "beta.png" for name, _ in paths_found(tmp_path / "idx", "orchard irrigation sprinklers"))


def test_remove_command(tmp_path, make_page):
    make_page("c/one.png", ["Gamma ferry timetable"])
    make_page("c/sub/two.png", ["Delta museum tickets"])
    build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    runner = CliRunner()
    result = runner.invoke(cli, ["index", "remove", str(tmp_path / "c/sub"), "--index", str(tmp_path / "idx")],
                           catch_exceptions=False)
    assert result.exit_code == 0 and f"Removed {tmp_path / 'c/sub/two.png'} (1 page(s))." in result.output
    assert consistent(tmp_path / "idx")
    assert [d["path"] for d in Index.open(tmp_path / "idx").documents()] == [str(tmp_path / "c/one.png")]
    again = runner.invoke(cli, ["index", "remove", str(tmp_path / "c/sub"), "--index", str(tmp_path / "idx")])
    assert again.exit_code == 1 and "nothing indexed under" in again.output


def test_the_build_summary_says_what_was_read_and_nothing_when_nothing_was(tmp_path, make_page):
    make_page("c/one.png", ["Kappa kayak rental receipt"])
    runner, args = CliRunner(), ["index", "build", str(tmp_path / "c"), "--index", str(tmp_path / "idx")]
    first = runner.invoke(cli, args).output
    assert "Read 1 page(s), 1 by OCR (tesseract), 1 passage(s) embedded in " in first
    again = runner.invoke(cli, args).output  # it said 'Read 0 page(s), 0 by OCR (tesseract), 0 passage(s) ...'
    assert "1 unchanged" in again and "Nothing new to read (" in again and "Read" not in again
    (tmp_path / "c/one.png").rename(tmp_path / "c/renamed.png")
    moved = runner.invoke(cli, [*args, "--prune"]).output
    assert "Read no page; 1 passage(s) embedded in " in moved and "from their indexed twins" in moved


def test_second_writer_is_refused_naming_the_holder(tmp_path, make_page):
    make_page("c/one.png", ["Epsilon"])
    with WriteLock(tmp_path / "idx"):
        with pytest.raises(IndexLocked, match=f"pid {os.getpid()}"):
            build(tmp_path / "idx", [tmp_path / "c"], OPTS)
        result = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "c"), "--index", str(tmp_path / "idx")])
        assert result.exit_code == 1 and "is being written by pid" in result.output
    assert build(tmp_path / "idx", [tmp_path / "c"], OPTS).new == 1  # free again


def test_model_mismatch_and_format_version_are_clear_errors(tmp_path, make_page):
    make_page("c/one.png", ["Zeta"])
    build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    with pytest.raises(ModelMismatch, match="built with embedding model 'sentence-transformers/all-MiniLM-L6-v2'"):
        build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", embed_model="other/model"))
    db = sqlite3.connect(tmp_path / "idx" / "index.db")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'format_version'")
    db.commit()
    with pytest.raises(IndexFormatError, match="format version 999"):
        Index.open(tmp_path / "idx")
    result = CliRunner().invoke(cli, ["index", "status", "--index", str(tmp_path / "idx")])
    assert result.exit_code == 1 and "format version 999" in result.output and "Traceback" not in result.output


def _spawn_build(tmp_path, *extra):
    return subprocess.Popen([sys.executable, "-m", "cli", "index", "build", str(tmp_path / "c"), "--index",
                             str(tmp_path / "idx"), "--ocr", "tesseract", "-j", "1", "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_usual)


def _wait_for_pages(tmp_path, proc, n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(tmp_path / "idx" / "index.db", timeout=5) as db:
                if db.execute("SELECT count(*) FROM pages").fetchone()[0] >= n:
                    return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"build did not reach {n} pages in time: {proc.poll()}")


N_KILLED = 14  # pages read ahead and committed together must not finish the build before the signal


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_build_resumes_without_redoing_pages(tmp_path, make_page, sig):
    for i in range(N_KILLED):  # enough pages that the build is far from done when the signal lands
        make_page(f"c/page{i}.png", [f"Ledger sheet number {i}", f"Shipment of {i * 7 + 3} crates to dock {i}"])
    proc = _spawn_build(tmp_path)
    _wait_for_pages(tmp_path, proc, 2)
    # a reader while the build writes: sees the committed pages, is not blocked by the lock
    during = Retriever(Index.open(tmp_path / "idx")).search("ledger sheet shipment crates", k=N_KILLED, mode="lexical")
    assert proc.poll() is None and len(during) >= 2
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    idx = Index.open(tmp_path / "idx")
    done = idx.counts()["pages"]
    assert 2 <= done < N_KILLED, "the build should have been stopped part-way"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run the same command again to resume" in err
    assert idx.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # searches work on the interrupted index: FAISS is reconciled from SQLite
    assert len(idx.vectors) == idx.counts()["chunks"]

    resumed = build(tmp_path / "idx", [tmp_path / "c"], OPTS)
    assert resumed.pages_read == N_KILLED - done
    # every file was registered before the kill; finished ones are unchanged, the rest resume
    assert (resumed.new, resumed.unchanged, resumed.resumed) == (0, done, N_KILLED - done)
    idx = Index.open(tmp_path / "idx")
    assert idx.counts() | {"chunks": 0} == {"documents": N_KILLED, "incomplete": 0, "pages": N_KILLED, "chunks": 0,
                                              "ocr_pages": N_KILLED}
    assert consistent(tmp_path / "idx")
    assert paths_found(tmp_path / "idx", "shipment of 38 crates to dock 5")[0] == ("page5.png", 1)


def test_keyboard_interrupt_in_process_keeps_committed_pages(tmp_path, make_page):
    for i in range(3):
        make_page(f"c/p{i}.png", [f"Ticket {i}"])

    class Stop:
        def __init__(self):
            self.n = 0

        def update(self, n):
            self.n += n
            raise KeyboardInterrupt

        def close(self):
            pass

    with pytest.raises(BuildInterrupted) as info:
        build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", jobs=1), progress=lambda total: Stop())
    assert info.value.report.pages_read == 1
    assert Index.open(tmp_path / "idx").counts()["pages"] == 1
    assert consistent(tmp_path / "idx")
