"""Index building under hostile use: a FAISS file that is not current, damaged meta, a file changed while
read, a short text layer, moved files and an interrupted copy from their twins, a summary of many
unsupported files. Bad embedding settings are in test_index_inputs.py, readers racing a writer in
test_index_readers.py, the process (streams, signals) in test_index_process.py, the paths a build is given
in test_index_paths.py.
"""
import os

import pytest
from fault_kit import text_pdf

from index.builder import BuildOptions, build
from index.maintenance import verify
from index.store import Index

TEXT = BuildOptions(ocr="none", jobs=1)


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
