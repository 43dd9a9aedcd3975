"""Integrity: stale vectors never served, verify/repair, damaged, read-only and full indexes, risky commands."""
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_kit import text_pdf

from cli.main import cli
from index.builder import BuildOptions, build
from index.errors import BadArgument, IndexDamaged, IndexLocationError, IndexReadOnly, NotIndexed
from index.maintenance import remove_paths, verify
from index.store import Index
from index.vector_files import STAMP_NAME
from rag.retrieve import Retriever

TEXT = BuildOptions(ocr="none", jobs=1)
DOCS = {
    "ferry.pdf": ["Ferry timetable: the harbour ferry leaves at 07:15 and 19:40 every weekday."],
    "bakery.pdf": ["Bakery order: twelve loaves of rye bread and forty butter croissants."],
    "museum.pdf": ["Museum tickets: adults pay nine euros, children enter free on Sundays."],
}


@pytest.fixture(scope="module")
def embedder():
    from index.embed import DEFAULT_MODEL, Embedder

    return Embedder(DEFAULT_MODEL)


def make_corpus(folder: Path, docs=DOCS) -> Path:
    for name, pages in docs.items():
        text_pdf(folder / name, pages)
    return folder


def top(folder, query, embedder, mode="dense", k=3):
    idx = Index.open(folder)
    try:
        return [(Path(h.path).name, h.page) for h in Retriever(idx, embedder).search(query, k=k, mode=mode)]
    finally:
        idx.close()


def run(*args, env=None):
    return CliRunner(env=env).invoke(cli, [str(a) for a in args], catch_exceptions=False)


def dense_view(folder, embedder):
    """Every page's dense score for two queries, as search sees them."""
    idx = Index.open(folder)
    try:
        r = Retriever(idx, embedder)
        return [[(Path(h.path).name, h.page, round(h.score, 5)) for h in r.search(q, k=10, mode="dense")]
                for q in ("brake pads on the locomotive engine", "twelve loaves of rye bread")]
    finally:
        idx.close()


def test_a_stale_faiss_file_is_never_served(tmp_path, embedder):
    """The crash of issue 6: the FAISS file on disk predates a changed file's re-read."""
    import json

    corpus, idx_dir = make_corpus(tmp_path / "c"), tmp_path / "idx"
    build(idx_dir, [corpus], TEXT)
    old_faiss = (idx_dir / "vectors.faiss").read_bytes(), (idx_dir / STAMP_NAME).read_bytes()
    max_before = Index.open(idx_dir).db.execute("SELECT max(id) FROM chunks").fetchone()[0]

    text_pdf(corpus / "bakery.pdf", ["Locomotive maintenance log: brake pads replaced on engine four."])
    report = build(idx_dir, [corpus], TEXT)
    assert report.changed == 1
    new_ids = [r[0] for r in Index.open(idx_dir).db.execute(
        "SELECT c.id FROM chunks c JOIN pages p ON p.id = c.page_id JOIN documents d ON d.id = p.doc_id "
        "WHERE d.path LIKE '%bakery.pdf'")]
    assert min(new_ids) > max_before, "a chunk id was reused"
    (idx_dir / "vectors.faiss").unlink()
    truth = dense_view(idx_dir, embedder)  # no file: vectors straight from SQLite
    assert truth[0][0][:2] == ("bakery.pdf", 1)

    # as after a kill before the checkpoint: the old FAISS file and its stamp come back
    (idx_dir / "vectors.faiss").write_bytes(old_faiss[0])
    (idx_dir / STAMP_NAME).write_bytes(old_faiss[1])
    assert Index.open(idx_dir).vectors.stamp == Index.open(idx_dir).vector_stamp()  # (stamp ignored: mtime)
    assert dense_view(idx_dir, embedder) == truth
    # the stamp made for this very file: an older generation of this database, brought up to date by ids
    stamp = json.loads(old_faiss[1])
    stamp["mtime_ns"] = (idx_dir / "vectors.faiss").stat().st_mtime_ns
    (idx_dir / STAMP_NAME).write_text(json.dumps(stamp))
    from index.vectors import VectorStore

    assert VectorStore(idx_dir, 384).stamp["gen"] < Index.open(idx_dir).vector_stamp()["gen"]
    assert dense_view(idx_dir, embedder) == truth
    report = verify(idx_dir)
    assert report.ok and any("behind SQLite" in n for n in report.notes), report
    # another database's file (a folder rebuilt from scratch, an old copy) is never taken at its word
    stamp["uuid"] = "someone-else"
    (idx_dir / STAMP_NAME).write_text(json.dumps(stamp))
    assert dense_view(idx_dir, embedder) == truth


def test_verify_finds_and_repairs_derivable_damage(tmp_path, embedder):
    corpus, idx_dir = make_corpus(tmp_path / "c"), tmp_path / "idx"
    build(idx_dir, [corpus], TEXT)
    ok = run("index", "verify", "--index", idx_dir)
    assert ok.exit_code == 0 and "is consistent." in ok.output and "FAIL" not in ok.output

    db = sqlite3.connect(idx_dir / "index.db")
    db.execute("DELETE FROM pages_fts WHERE rowid = (SELECT min(id) FROM pages)")
    db.execute("UPDATE meta SET value = '12345' WHERE key = 'vectors_sum'")
    db.commit()
    db.close()
    bad = run("index", "verify", "--index", idx_dir, "--json")
    data = __import__("json").loads(bad.output)
    assert bad.exit_code == 1 and data["ok"] is False
    failed = {c["name"] for c in data["checks"] if not c["ok"]}
    assert {"full-text", "checksum"} <= failed

    fixed = run("index", "verify", "--index", idx_dir, "--repair")
    assert fixed.exit_code == 0, fixed.output
    assert "Repaired: full-text rows rebuilt from the pages." in fixed.output
    assert top(idx_dir, "ferry timetable", embedder, mode="lexical")[0] == ("ferry.pdf", 1)

    # vectors in the FAISS file changed behind our back (same size, stamp rewritten to match the file)
    import faiss
    import numpy as np

    index = faiss.read_index(str(idx_dir / "vectors.faiss"))
    inner = faiss.downcast_index(index.index)
    vecs = inner.reconstruct_n(0, index.ntotal)
    inner.reset()
    inner.add(np.ascontiguousarray(vecs[::-1]))
    faiss.write_index(index, str(idx_dir / "vectors.faiss"))
    stamp = __import__("json").loads((idx_dir / STAMP_NAME).read_text())
    stamp["mtime_ns"] = (idx_dir / "vectors.faiss").stat().st_mtime_ns
    (idx_dir / STAMP_NAME).write_text(__import__("json").dumps(stamp))
    tampered = verify(idx_dir)
    assert not tampered.ok and any(c.name == "faiss file" and not c.ok for c in tampered.checks)
    assert verify(idx_dir, repair=True).ok


def test_damaged_database_gives_clear_messages_and_build_refuses(tmp_path):
    corpus, idx_dir = make_corpus(tmp_path / "c"), tmp_path / "idx"
    build(idx_dir, [corpus], TEXT)
    db_file = idx_dir / "index.db"
    data = bytearray(db_file.read_bytes())
    middle = len(data) // 2 // 4096 * 4096  # garbage over whole pages in the middle; the header intact
    data[middle - 8192:middle + 8192] = os.urandom(16384)
    db_file.write_bytes(bytes(data))
    before = db_file.read_bytes()
    for args in (["index", "status"], ["search", "ferry timetable"], ["index", "verify"],
                 ["index", "build", corpus, "--ocr", "none", "-j", "1"]):
        result = run(*args, "--index", idx_dir)
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        assert "damaged" in result.output or "FAIL sqlite" in result.output, (args, result.output)
    assert db_file.read_bytes() == before, "build wrote into a damaged database"
    with pytest.raises(IndexDamaged):
        build(idx_dir, [corpus], TEXT)


def test_read_only_index_is_searchable_and_refuses_writes(tmp_path, read_only, embedder, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    corpus, idx_dir = make_corpus(tmp_path / "c"), tmp_path / "idx"
    build(idx_dir, [corpus], TEXT)
    files_before = sorted(p.name for p in idx_dir.iterdir())
    view = read_only(idx_dir)

    assert top(view, "croissants and rye bread", embedder)[0] == ("bakery.pdf", 1)
    assert top(view, "museum tickets", embedder, mode="lexical")[0] == ("museum.pdf", 1)
    status = run("index", "status", "--index", view)
    assert status.exit_code == 0 and "read-only" in status.output and "Documents:  3" in status.output
    assert verify(view).ok
    for args in (["index", "build", corpus, "--ocr", "none"], ["index", "remove", corpus / "ferry.pdf"],
                 ["index", "verify", "--repair"]):
        result = run(*args, "--index", view)
        assert result.exit_code == 1 and "read-only" in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    # ask works too: its conversations go to the user's data folder, not into the read-only index
    asked = CliRunner().invoke(cli, ["ask", "ferry times", "--index", str(view), "-k", "1"])
    assert asked.exception is None or isinstance(asked.exception, SystemExit), asked.exception
    assert asked.exit_code == 4 and "Evidence found" in asked.output, asked.output
    off_topic = CliRunner().invoke(cli, ["ask", "How do I bake banana bread?", "--min-score", "1", "--index", str(view)])
    assert off_topic.exit_code == 0 and "do not seem to contain this" in off_topic.output, off_topic.output
    listed = run("conversations", "--index", view)
    assert listed.exit_code == 0 and "banana bread" in listed.output
    assert len(list((tmp_path / "data" / "pagerag" / "conversations").glob("*.db"))) == 1
    with pytest.raises(IndexReadOnly):
        remove_paths(view, [corpus / "ferry.pdf"])
    assert sorted(p.name for p in idx_dir.iterdir()) == files_before


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    # Big enough for SQLite's write-ahead log (up to ~4 MB before its automatic checkpoint)
    # once the filler is gone; the filler makes it full for the build that must fail.
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_disk_full_is_one_line_and_the_index_survives(tmp_path, small_disk, embedder):
    corpus, idx_dir = make_corpus(tmp_path / "c"), small_disk / "idx"
    build(idx_dir, [corpus], TEXT)
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 40_000))
    more = {f"report{i}.pdf": [f"Annual report {i}: " + "revenue grew in every region " * 40] * 4 for i in range(12)}
    make_corpus(corpus, more)
    result = run("index", "build", corpus, "--index", idx_dir, "--ocr", "none", "-j", "1")
    assert result.exit_code == 1, result.output
    assert "disk" in result.output and "full" in result.output and "Traceback" not in result.output
    (small_disk / "filler").unlink()
    assert verify(idx_dir).ok
    assert top(idx_dir, "harbour ferry timetable", embedder)[0] == ("ferry.pdf", 1)
    assert build(idx_dir, [corpus], TEXT).errors == 0  # and it goes on once there is room
    assert verify(idx_dir).ok


def test_risky_commands_are_refused(tmp_path, monkeypatch):
    corpus, idx_dir = make_corpus(tmp_path / "c"), tmp_path / "idx"
    build(idx_dir, [corpus], TEXT)
    monkeypatch.chdir(corpus)
    for empty in ("", "  "):
        result = run("index", "remove", empty, "--index", idx_dir)
        assert result.exit_code == 2 and "empty path" in result.output
        with pytest.raises(BadArgument):
            remove_paths(idx_dir, [empty])
    assert Index.open(idx_dir).counts()["documents"] == 3

    # one path that matches nothing: nothing at all is removed
    result = run("index", "remove", corpus / "ferry.pdf", corpus / "nope.pdf", "--index", idx_dir)
    assert result.exit_code == 1 and "nothing was removed" in result.output
    assert Index.open(idx_dir).counts()["documents"] == 3
    result = run("index", "remove", corpus, "--index", idx_dir)
    assert result.exit_code == 0 and f"Removed 3 document(s) (3 page(s)) under {corpus}." in result.output
    assert verify(idx_dir).ok

    missing = tmp_path / "no-index"
    result = run("index", "remove", corpus / "ferry.pdf", "--index", missing)
    assert result.exit_code == 1 and "no index at" in result.output and not missing.exists()
    with pytest.raises(IndexFormatError_or_NotIndexed()):
        remove_paths(missing, [corpus])

    regular = tmp_path / "file.txt"
    regular.write_text("x")
    for where in ("/dev/null", regular, regular / "idx"):
        for args in (["index", "status"], ["index", "build", corpus, "--ocr", "none"], ["search", "ferry"]):
            result = run(*args, "--index", where)
            assert result.exit_code in (1, 2) and "not a folder" in result.output, (where, args, result.output)
            assert "Traceback" not in result.output
    with pytest.raises(IndexLocationError):
        build(regular / "idx", [corpus], TEXT)
    result = run("index", "status", env={"PAGERAG_INDEX": "/dev/null"})
    assert result.exit_code == 2 and "PAGERAG_INDEX '/dev/null' exists and is not a folder" in result.output
    result = run("index", "status", env={"PAGERAG_INDEX": ""})  # empty is unset: the default, not created
    assert result.exit_code == 1 and "no index at" in result.output and not (corpus / ".pagerag").exists()


def IndexFormatError_or_NotIndexed():
    from index.errors import IndexFormatError

    return (IndexFormatError, NotIndexed)


def test_a_file_rewritten_during_the_build_is_not_recorded_mixed(tmp_path):
    corpus = tmp_path / "c"
    text_pdf(corpus / "long.pdf", [f"Version one, page {i}: old inventory figures" for i in range(1, 5)])
    text_pdf(corpus / "other.pdf", ["An unrelated page about lighthouses"])

    class Rewrite:  # the progress bar: after the first committed page, the file is replaced
        done = False

        def update(self, n):
            if not self.done:
                text_pdf(corpus / "long.pdf", [f"Version two, page {i}: new inventory" for i in range(1, 5)])
                Rewrite.done = True

        def close(self):
            pass

    report = build(tmp_path / "idx", [corpus], TEXT, progress=lambda total: Rewrite())
    (skip,) = [s for s in report.skipped if s.path.endswith("long.pdf")]
    assert "changed while it was being read" in skip.reason and skip.is_error
    idx = Index.open(tmp_path / "idx")
    assert [Path(d["path"]).name for d in idx.documents()] == ["other.pdf"]
    again = build(tmp_path / "idx", [corpus], TEXT)
    assert (again.new, again.errors) == (1, 0)
    texts = [r[0] for r in Index.open(tmp_path / "idx").db.execute(
        "SELECT p.text FROM pages p JOIN documents d ON d.id = p.doc_id WHERE d.path LIKE '%long.pdf'")]
    assert len(texts) == 4 and all("Version two" in t for t in texts)
