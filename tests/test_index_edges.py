"""Index building and upkeep under hostile use: checks racing a writer, odd processes, odd folders.

Real SQLite, FAISS, files and subprocesses throughout; the few vectors that need no model are random.
"""
import threading

import numpy as np

from index.maintenance import verify
from index.store import Index, NewChunk, NewPage
from index.words import Word

DIM = 16


def _page(doc: int, n: int, rng) -> NewPage:
    v = rng.normal(size=DIM).astype("float32")
    v /= np.linalg.norm(v)
    words = [Word("page", 0.1, 0.1, 0.2, 0.15, 0.9, 0), Word(str(n), 0.25, 0.1, 0.3, 0.15, 0.9, 0)]
    return NewPage(doc, n, 100, 100, "text-layer", f"page {n}", words, None,
                   [NewChunk(f"page {n}", 0, 2, None, v.tobytes())])


def test_verify_while_a_writer_commits_checks_one_state(tmp_path):
    """`index verify` during a build: every check sees one committed state, so a commit in the
    middle of the checks is never reported as a mismatch ("FAIL search vectors")."""
    folder = tmp_path / "idx"
    idx = Index.open(folder, create=True)
    idx.set_meta(embed_model="test", embed_dim=DIM)
    idx.vectors  # noqa: B018 - the builder loads FAISS before adding pages
    doc = idx.add_document("/x.pdf", "0" * 64, 1, 1, "pdf", "x", 10_000)
    rng = np.random.default_rng(0)
    idx.add_pages([_page(doc, n, rng) for n in range(1, 21)], {doc: "x"})
    idx.save_vectors()
    stop = threading.Event()

    def writer():
        n = 21
        while not stop.is_set():
            idx.add_pages([_page(doc, n, rng)], {doc: "x"})
            n += 1
            if n % 7 == 0:
                idx.save_vectors()

    t = threading.Thread(target=writer)
    t.start()
    try:
        reports = [verify(folder) for _ in range(40)]
    finally:
        stop.set()
        t.join()
    failed = [c for r in reports for c in r.checks if not c.ok]
    assert not failed, failed
    assert verify(folder).ok
    idx.close()


# -- the process: closed standard streams, a narrow encoding, stop signals ------------------------------
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from fault_kit import text_pdf  # noqa: E402

from index.builder import BuildOptions, build  # noqa: E402

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


# -- prune, and folders that are not documents ------------------------------------------------------------
def _docs(folder) -> list[str]:
    idx = Index.open(folder)
    try:
        return sorted(Path(d["path"]).name for d in idx.documents())
    finally:
        idx.close()


def test_prune_drops_only_gone_files_under_the_paths_given(tmp_path):
    for name in ("a/one.pdf", "a/two.pdf", "b/three.pdf"):
        text_pdf(tmp_path / name, [f"Document {name}: orchard irrigation plan for the north field."])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "a", tmp_path / "b"], TEXT)
    (tmp_path / "a" / "two.pdf").unlink()
    (tmp_path / "a" / "two.pdf").mkdir()  # a file replaced by a folder of the same name is gone too
    (tmp_path / "b" / "three.pdf").unlink()
    report = build(idx, [tmp_path / "a"], BuildOptions(ocr="none", jobs=1, prune=True))
    assert report.pruned == 1
    assert _docs(idx) == ["one.pdf", "three.pdf"]  # b was not named: its document stays (an unmounted disk?)
    assert verify(idx).ok


@pytest.mark.skipif(os.geteuid() == 0 and not Path("/usr/bin/setpriv").exists(), reason="needs setpriv as root")
def test_prune_keeps_files_it_cannot_check(tmp_path):
    """A folder made unreadable is not a deletion: its documents stay, the build goes on (not 'Permission denied')."""
    text_pdf(tmp_path / "c" / "locked" / "inner" / "kept.pdf", ["Ferry timetable: departures at 07:15 daily."])
    text_pdf(tmp_path / "c" / "open.pdf", ["Bakery order: twelve loaves of rye bread."])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    (tmp_path / "c" / "new.pdf").write_bytes((tmp_path / "c" / "open.pdf").read_bytes())
    (tmp_path / "c" / "locked").chmod(0)
    as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
    try:
        run = subprocess.run([*as_user, sys.executable, "-m", "cli", "index", "build", str(tmp_path / "c"),
                              "--index", str(idx), "--ocr", "none", "-j", "1", "--prune"],
                             env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        (tmp_path / "c" / "locked").chmod(0o755)
    assert run.returncode == 3, run.stderr  # done; the unreadable folder is a recorded error
    assert "cannot read this folder" in run.stderr and "Traceback" not in run.stderr
    assert _docs(idx) == ["kept.pdf", "new.pdf", "open.pdf"]


def test_links_to_folders_are_followed_once_and_index_folders_left_out(tmp_path):
    text_pdf(tmp_path / "elsewhere" / "linked.pdf", ["Water authority budget for the year."])
    text_pdf(tmp_path / "c" / "here.pdf", ["Library parking decision of the board."])
    os.symlink(tmp_path / "elsewhere", tmp_path / "c" / "shortcut")
    os.symlink(".", tmp_path / "c" / "elsewhere-up")  # a loop back to the corpus
    idx = tmp_path / "c" / "my-index"  # the index inside the corpus it indexes
    report = build(idx, [tmp_path / "c"], TEXT)
    assert _docs(idx) == ["here.pdf", "linked.pdf"]
    assert [(Path(s.path).name, s.is_error) for s in report.skipped] == [("elsewhere-up", False)]
    assert "read once" in report.skipped[0].reason
    again = build(idx, [tmp_path / "c"], TEXT)  # its own files (index.db, write.lock, ...) are never walked
    assert again.unchanged == 2 and [Path(s.path).name for s in again.skipped] == ["elsewhere-up"]


# -- the FAISS cache and the database's own records ------------------------------------------------------
def test_a_build_with_nothing_to_do_rewrites_a_faiss_file_that_is_not_current(tmp_path):
    from index.vector_files import FAISS_NAME, stamp_on_disk

    text_pdf(tmp_path / "c" / "a.pdf", ["Tram timetable changes from the first of May."])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    for damage in ("truncate", "delete", "copy"):
        faiss = idx / FAISS_NAME
        if damage == "truncate":
            faiss.write_bytes(faiss.read_bytes()[:100])
        elif damage == "delete":
            faiss.unlink()
        else:
            os.utime(faiss, ns=(1, 1))  # `cp -r` without -p: the stamp no longer names the file
        assert stamp_on_disk(idx) is None
        assert build(idx, [tmp_path / "c"], TEXT).unchanged == 1
        assert stamp_on_disk(idx) == Index.open(idx).vector_stamp(), damage
        assert verify(idx).notes == []


def test_damaged_meta_and_an_interrupted_first_build_are_one_line(tmp_path):
    import sqlite3

    from index.errors import IndexDamaged, IndexFormatError

    text_pdf(tmp_path / "c" / "a.pdf", ["Museum ticket prices for adults and children."])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    db = sqlite3.connect(idx / "index.db")
    db.execute("UPDATE meta SET value = 'x' WHERE key = 'embed_dim'")
    db.commit()
    with pytest.raises(IndexDamaged, match="embed_dim = 'x' is not a number"):
        Index.open(idx)
    db.execute("DELETE FROM meta WHERE key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(IndexDamaged, match="records no format version"):
        Index.open(idx)
    empty = tmp_path / "empty"  # what a first build killed before its first commit leaves
    empty.mkdir()
    (empty / "index.db").write_bytes(b"")
    with pytest.raises(IndexFormatError, match="index.db is empty"):
        Index.open(empty)
    assert build(empty, [tmp_path / "c"], TEXT).new == 1 and verify(empty).ok


def test_a_file_deleted_or_changed_while_read_says_so(tmp_path):
    """The reason names what happened to the file, not the library error it caused (IndexError: page 4...)."""
    from index.builder import _Builder, BuildReport

    text_pdf(tmp_path / "c" / "a.pdf", ["Ferry timetable page one.", "Ferry timetable page two."])
    idx = Index.open(tmp_path / "idx", create=True)
    builder = _Builder(idx, TEXT, BuildReport(str(idx.folder)), None)
    builder.plan([tmp_path / "c"])
    doc_id = next(iter(builder.files))
    assert builder.changed_since_planned(doc_id) is None
    (tmp_path / "c" / "a.pdf").write_bytes(b"%PDF-1.4 something else")
    assert "changed while it was being read" in builder.changed_since_planned(doc_id)
    (tmp_path / "c" / "a.pdf").unlink()
    assert builder.changed_since_planned(doc_id) == "the file was deleted while it was being read"
    idx.close()


def test_a_bad_embed_backend_setting_fails_before_any_page_is_read(tmp_path, monkeypatch):
    from index.errors import EmbedderUnavailable

    text_pdf(tmp_path / "c" / "a.pdf", ["Warranty claim for the boiler."])
    monkeypatch.setenv("PAGERAG_EMBED_BACKEND", "junk")
    with pytest.raises(EmbedderUnavailable, match="PAGERAG_EMBED_BACKEND is 'junk'"):
        build(tmp_path / "idx", [tmp_path / "c"], TEXT)
    assert Index.open(tmp_path / "idx").counts()["pages"] == 0


def test_remove_and_within_take_a_path_as_written_before_its_links_resolved(tmp_path):
    """A link inside the corpus is indexed under its own name: removing the link (or searching within it)
    means the link's document, never its target's; a folder reached through a link is named through it."""
    from index.maintenance import remove_paths

    text_pdf(tmp_path / "elsewhere" / "linked.pdf", ["Water authority budget for the year."])
    text_pdf(tmp_path / "c" / "here.pdf", ["Library parking decision of the board."])
    os.symlink(tmp_path / "elsewhere", tmp_path / "c" / "shortcut")
    os.symlink("here.pdf", tmp_path / "c" / "alias.pdf")
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    assert _docs(idx) == ["alias.pdf", "here.pdf", "linked.pdf"]
    index = Index.open(idx)
    assert len(index.documents_under([tmp_path / "c" / "shortcut"])) == 1
    assert len(index.documents_under([tmp_path / "c" / "alias.pdf"])) == 1
    index.close()
    [removed] = remove_paths(idx, [tmp_path / "c" / "alias.pdf"])
    assert [Path(p).name for p, _ in removed.documents] == ["alias.pdf"]
    [removed] = remove_paths(idx, [tmp_path / "c" / "shortcut"])
    assert [Path(p).name for p, _ in removed.documents] == ["linked.pdf"]
    assert _docs(idx) == ["here.pdf"] and verify(idx).ok


def test_a_long_running_reader_catches_up_with_a_build(tmp_path):
    """A server (or chat) that loaded FAISS before a build finds the passages the build added, and not
    those it removed, without a restart."""
    folder = tmp_path / "idx"
    writer = Index.open(folder, create=True)
    writer.set_meta(embed_model="test", embed_dim=DIM)
    writer.vectors  # noqa: B018
    rng = np.random.default_rng(1)
    old = writer.add_document("/old.pdf", "0" * 64, 1, 1, "pdf", "old", 5)
    writer.add_pages([_page(old, n, rng) for n in range(1, 6)], {old: "old"})
    writer.save_vectors()

    reader = Index.open(folder)
    probe = rng.normal(size=DIM).astype("float32")
    assert len(reader.nearest(probe, 10)[1]) == 5  # FAISS loaded by the reader
    new = writer.add_document("/new.pdf", "1" * 64, 1, 1, "pdf", "new", 1)
    page = _page(new, 1, rng)
    [added] = writer.add_pages([page], {new: "new"})
    writer.remove_document(old)  # no save: the file on disk lags, as during a build
    target = np.frombuffer(page.chunks[0].vector, dtype="float32")
    scores, ids = reader.nearest(target, 10)
    assert ids.tolist() == [added] and scores[0] > 0.99
    assert reader.nearest(target, 10, doc_ids=[new])[1].tolist() == [added]
    reader.close()
    writer.close()


def test_building_the_index_folder_itself_is_refused_before_anything_is_written(tmp_path):
    from index.errors import BadArgument

    text_pdf(tmp_path / "c" / "a.pdf", ["Orchard irrigation plan."])
    with pytest.raises(BadArgument, match="is the index folder or lies inside it"):
        build(tmp_path / "c", [tmp_path / "c"], TEXT)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["a.pdf"]


@pytest.mark.slow
def test_a_short_text_layer_is_kept_when_ocr_reads_less(tmp_path):
    """Under 20 letters a text layer is not trusted over OCR; but when OCR reads even less (invisible text,
    a huge page scaled down to the pixel limit) or is off, the page keeps the words its file holds."""
    import pymupdf as fitz

    doc = fitz.open()
    doc.new_page().insert_text((72, 72), "Invoice 4471", fontsize=11, render_mode=3)  # invisible: OCR sees white
    (tmp_path / "c").mkdir()
    doc.save(tmp_path / "c" / "label.pdf")
    for ocr in ("tesseract", "none"):
        folder = tmp_path / f"idx-{ocr}"
        build(folder, [tmp_path / "c"], BuildOptions(ocr=ocr, jobs=1))
        index = Index.open(folder)
        assert index.db.execute("SELECT source, text FROM pages").fetchall() == [("text-layer", "Invoice 4471")]
        index.close()


@pytest.mark.slow
def test_a_moved_file_is_not_read_again(tmp_path, make_page):
    """A folder renamed, `build --prune`: the files' pages are taken from their indexed twins (same bytes),
    re-embedded under their new titles; nothing is OCR'd again and the index equals a fresh build."""
    make_page("c/old/receipt.png", ["Harbour cafe receipt", "Total 14.20 paid by card"])
    text_pdf(tmp_path / "c" / "old" / "minutes.pdf", ["Minutes of the board meeting: the parking lot is closed.",
                                                       "Second page: the library opens on Sundays."])
    idx = tmp_path / "idx"
    opts = BuildOptions(ocr="tesseract", jobs=1, prune=True)
    build(idx, [tmp_path / "c"], opts)
    (tmp_path / "c" / "old").rename(tmp_path / "c" / "new")
    moved = build(idx, [tmp_path / "c"], opts)
    assert (moved.new, moved.pruned, moved.pages_read, moved.pages_ocr, moved.pages_copied) == (2, 2, 0, 0, 3)
    fresh = build(tmp_path / "fresh", [tmp_path / "c"], opts)
    assert fresh.pages_read == 3

    def rows(folder):
        index = Index.open(folder)
        try:
            return index.db.execute(
                "SELECT d.path, d.title, p.page_no, p.text, p.source, c.text, c.vector FROM chunks c "
                "JOIN pages p ON p.id = c.page_id JOIN documents d ON d.id = p.doc_id ORDER BY d.path, p.page_no, "
                "c.ord").fetchall()
        finally:
            index.close()
    assert rows(idx) == rows(tmp_path / "fresh")
    assert verify(idx).ok


def test_index_locations_that_cannot_even_be_looked_at_are_one_line(tmp_path):
    """A name longer than the file system allows, or a path under a file: a usage error, not a traceback."""
    from click.testing import CliRunner

    from cli.main import cli
    from index.errors import IndexLocationError

    text_pdf(tmp_path / "c" / "a.pdf", ["Orchard irrigation plan."])
    too_long = tmp_path / ("L" * 300)
    for location in (too_long, tmp_path / "c" / "a.pdf" / "idx"):
        for args in (["index", "build", str(tmp_path / "c")], ["index", "status"], ["search", "orchard"]):
            result = CliRunner().invoke(cli, [*args, "--index", str(location)])
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output and "--index" in result.output
    with pytest.raises(IndexLocationError, match="File name too long"):
        Index.open(too_long)


def test_a_device_named_as_a_path_is_a_file_not_a_folder(tmp_path):
    report = build(tmp_path / "idx", [Path("/dev/null")], TEXT)
    assert [(s.path, s.reason) for s in report.skipped] == [("/dev/null", "unsupported file type 'null'")]


@pytest.mark.slow
def test_an_interrupted_copy_from_a_twin_resumes_as_a_copy(tmp_path):
    """Ctrl-C while a moved file's pages are copied: the next build copies the rest (still no OCR)."""
    from index.builder import BuildInterrupted

    text_pdf(tmp_path / "c" / "old" / "report.pdf", [f"Annual report page {i}: harbour tariffs." for i in range(40)])
    idx = tmp_path / "idx"
    build(idx, [tmp_path / "c"], TEXT)
    (tmp_path / "c" / "old").rename(tmp_path / "c" / "new")
    calls = []

    def progress(total):
        class Bar:
            def update(self, n):
                calls.append(n)
                if len(calls) == 1:
                    raise KeyboardInterrupt  # as Ctrl-C lands between two batches

            def close(self):
                pass
        return Bar()

    with pytest.raises(BuildInterrupted) as stopped:
        build(idx, [tmp_path / "c" / "new"], TEXT, progress=progress)
    first = stopped.value.report.pages_copied
    assert 0 < first < 40
    rest = build(idx, [tmp_path / "c" / "new"], TEXT)
    assert (rest.resumed, rest.pages_read, rest.pages_copied) == (1, 0, 40 - first)
    assert verify(idx).ok


def test_a_build_summary_counts_many_unsupported_files_instead_of_listing_them(tmp_path):
    from click.testing import CliRunner

    from cli.main import cli

    (tmp_path / "c").mkdir()
    for i in range(25):
        (tmp_path / "c" / f"note{i}.txt").write_text("not a document")
    (tmp_path / "c" / "empty.png").write_bytes(b"")
    result = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "c"), "--index", str(tmp_path / "idx"),
                                      "--ocr", "none", "-j", "1"])
    assert result.exit_code == 3, result.output
    assert f"ERROR {tmp_path / 'c' / 'empty.png'}: empty file (0 bytes)" in result.output
    assert "and 25 file(s) not read (unsupported file type '.txt': 25); `pagerag index status` lists them" \
        in result.output
    assert "note3.txt" not in result.output
    status = CliRunner().invoke(cli, ["index", "status", "--index", str(tmp_path / "idx")])
    assert "note3.txt: unsupported file type '.txt'" in status.output
