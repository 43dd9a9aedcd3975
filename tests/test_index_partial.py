"""Partly indexed documents: a page that cannot be read (garbled data, over the time limit, over the pixel
limit) costs that page, not its file; it is recorded, shown, and not read again unless asked.

Real TIFFs and PDFs generated in tmp_path; real Tesseract, MuPDF, SQLite, worker processes and SIGKILL.
"""
import json
import os
import random
from pathlib import Path

import pytest
from fault_kit import cli as _cli
from fault_kit import indexed_texts as _texts
from fault_kit import multi_tiff_garbled, page_image, save_image, text_pdf
from test_index_workers import _nested_drawing_pdf

from index.builder import BuildOptions, build
from index.sources import Limits
from index.store import Index

LEDGER = ["Harbour crane ledger", "Orchard irrigation plan", "Museum ticket prices"]


def _failed(index: Path) -> dict:
    idx = Index.open(index)
    try:
        return {Path(p).name: [n for n, _ in failed] for p, _, failed in idx.partial_documents()}
    finally:
        idx.close()


@pytest.mark.slow
def test_a_garbled_frame_costs_that_page_not_the_file(tmp_path):
    """A 3-frame TIFF whose middle frame's data is garbage was skipped whole: now frames 1 and 3 are searchable,
    and page 2's failure is in the summary (exit 3), `index status` (and --json) and `index verify` (not damage)."""
    multi_tiff_garbled(tmp_path / "c" / "ledger.tif", LEDGER, 2)
    run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "tesseract")
    assert run.returncode == 3 and "Traceback" not in run.stderr, run.stderr
    assert "ledger.tif: indexed 2 of 3 pages; page 2: image data is corrupt" in run.stderr, run.stderr
    text = _texts(tmp_path / "idx")["ledger.tif"].lower()
    assert "crane" in text and "museum" in text and "orchard" not in text
    found = _cli("search", "museum ticket prices", "--json", "--index", tmp_path / "idx")
    assert [(Path(h["path"]).name, h["page"]) for h in json.loads(found.stdout)][:1] == [("ledger.tif", 3)]

    status = _cli("index", "status", "--index", tmp_path / "idx")
    assert "Partial:    1 file(s)" in status.stdout and "indexed 2 of 3 pages; page 2:" in status.stdout, status.stdout
    data = json.loads(_cli("index", "status", "--json", "--index", tmp_path / "idx").stdout)
    [partial] = data["partial"]
    assert (partial["pages"], partial["indexed"], [f["page"] for f in partial["failed"]]) == (3, 2, [2])
    assert data["skipped"] == [] and data["documents"] == 1 and data["incomplete"] == 0
    verify = _cli("index", "verify", "--index", tmp_path / "idx")
    assert verify.returncode == 0 and "1 document(s) are partly indexed" in verify.stdout, verify.stdout
    # `show` of the failed page says why it is missing (it said only 'not in the index'), of one past the end how many
    shown = _cli("show", tmp_path / "c" / "ledger.tif", "2", "-o", tmp_path / "p2.png", "--index", tmp_path / "idx")
    assert shown.returncode == 1 and "could not be read when indexed (page 2: image data is corrupt" in shown.stderr \
        and "--retry-failed" in shown.stderr, shown.stderr
    past = _cli("show", tmp_path / "c" / "ledger.tif", "4", "-o", tmp_path / "p4.png", "--index", tmp_path / "idx")
    assert past.returncode == 1 and "the file has 3 pages" in past.stderr, past.stderr
    # --retry-failed on a page still garbled: it failed again; the other pages were not skipped (it said they were)
    retry = _cli("index", "build", tmp_path / "c", "--retry-failed", "--index", tmp_path / "idx", "--ocr", "tesseract")
    assert retry.returncode == 3 and "1 retried" in retry.stderr, retry.stderr
    assert "could not be read again" in retry.stderr, retry.stderr
    assert "every page of it was skipped" not in retry.stderr, retry.stderr
    assert _failed(tmp_path / "idx") == {"ledger.tif": [2]}


@pytest.mark.slow
def test_a_page_that_times_out_leaves_the_other_pages_searchable_and_is_not_read_again(tmp_path):
    """A PDF with one page that takes minutes to render beside normal pages lost all three to the time limit,
    and every later build waited for that page again. Now the normal pages are indexed, and a rebuild of the
    unchanged file does not read the failed page (it is named again, exit 3) unless --retry-failed asks."""
    import pymupdf

    _nested_drawing_pdf(tmp_path / "nested.pdf")
    pdf = pymupdf.open(text_pdf(tmp_path / "parts.pdf", ["Tram timetable changes for the winter.",
                                                        "Lighthouse keeper rota for March."]))
    pdf.insert_pdf(pymupdf.open(tmp_path / "nested.pdf"), start_at=1)  # the nested page is page 2 of 3
    (tmp_path / "c").mkdir()
    pdf.save(tmp_path / "c" / "mixed.pdf")
    options = BuildOptions(ocr="none", jobs=2, page_timeout=3)
    report = build(tmp_path / "idx", [tmp_path / "c"], options)
    assert report.skipped == [] and report.errors == 1
    [partial] = report.partial
    assert (partial.pages, partial.indexed, partial.earlier) == (3, 2, False)
    assert [f.page for f in partial.failed] == [2] and "took longer than 3 s" in partial.failed[0].reason
    text = _texts(tmp_path / "idx")["mixed.pdf"]
    assert "timetable" in text and "Lighthouse" in text and "nested" not in text

    again = build(tmp_path / "idx", [tmp_path / "c"], options)
    assert (again.pages_read, again.unchanged, again.retried) == (0, 1, 0)
    assert [(p.indexed, p.earlier) for p in again.partial] == [(2, True)] and again.errors == 1
    assert again.seconds < 3, "the page that times out was waited for again"

    retry = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="none", jobs=2, page_timeout=1,
                                                                   retry_failed=True))
    assert (retry.retried, retry.unchanged) == (1, 0)
    assert [f.page for f in retry.partial[0].failed] == [2] and "took longer than 1 s" in retry.partial[0].failed[0].reason
    assert _failed(tmp_path / "idx") == {"mixed.pdf": [2]}


def test_failed_pages_are_read_again_when_asked_or_when_the_file_changes(tmp_path):
    """Page 2 of a TIFF over the pixel limit fails; a build with a higher limit leaves it failed (the file is
    unchanged), --retry-failed reads it and the document is whole; a changed file is read again whole."""
    corpus = tmp_path / "c"
    save_image(page_image(["First sheet of the granary ledger"]), corpus / "ledger.tif", save_all=True,
               append_images=[page_image(["Second sheet: barley delivered"], size=(1200, 900))])
    small = BuildOptions(ocr="tesseract", jobs=1, limits=Limits(max_pixels=500_000))
    report = build(tmp_path / "idx", [corpus], small)
    assert [(p.indexed, [f.reason for f in p.failed]) for p in report.partial] == [
        (1, ["page 2: image is 1200×900 px, over the 500,000-pixel limit"])]
    assert "barley" not in _texts(tmp_path / "idx")["ledger.tif"]

    same = build(tmp_path / "idx", [corpus], BuildOptions(ocr="tesseract", jobs=1))
    assert same.pages_read == 0 and [p.earlier for p in same.partial] == [True]

    retry = build(tmp_path / "idx", [corpus], BuildOptions(ocr="tesseract", jobs=1, retry_failed=True))
    assert (retry.retried, retry.pages_read, retry.partial, retry.errors) == (1, 1, [], 0)
    assert "barley" in _texts(tmp_path / "idx")["ledger.tif"] and _failed(tmp_path / "idx") == {}
    idx = Index.open(tmp_path / "idx")
    assert [p for p, in idx.db.execute("SELECT page_no FROM pages ORDER BY page_no")] == [1, 2]
    idx.close()

    build(tmp_path / "idx2", [corpus], small)
    save_image(page_image(["First sheet, corrected"]), corpus / "ledger.tif", save_all=True,
               append_images=[page_image(["Second sheet: oats"], size=(1300, 900))])
    changed = build(tmp_path / "idx2", [corpus], small)
    assert changed.changed == 1 and changed.pages_read == 1 and [p.earlier for p in changed.partial] == [False]
    assert "corrected" in _texts(tmp_path / "idx2")["ledger.tif"]


def test_a_file_none_of_whose_pages_can_be_read_is_skipped_whole(tmp_path):
    """Partly indexed needs a page: a TIFF whose every page is garbled is a skipped file, as before."""
    multi_tiff_garbled(tmp_path / "c" / "ledger.tif", LEDGER[:2], 1, 2)
    report = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="none", jobs=1))
    assert report.partial == [] and report.errors == 1
    [skip] = report.skipped
    assert skip.is_error and skip.reason.startswith("none of its 2 pages could be read: page 1: image data is corrupt")
    idx = Index.open(tmp_path / "idx")
    assert idx.documents() == [] and idx.partial_documents() == [] and idx.failed_pages() == {}
    idx.close()


def _pages(index: Path) -> list:
    import sqlite3

    db = sqlite3.connect(f"file:{index / 'index.db'}?mode=ro", uri=True)
    try:
        return sorted((Path(p).name, n) for p, n in db.execute(
            "SELECT d.path, p.page_no FROM pages p JOIN documents d ON d.id = p.doc_id"))
    finally:
        db.close()


def _killed_after(corpus: Path, index: Path, pages: int, delay: float) -> bool:
    """Run `index build` (a process of its own) and SIGKILL it `delay` s after `pages` pages are committed;
    whether it was still running then."""
    import signal
    import subprocess
    import sys
    import time

    build = subprocess.Popen([sys.executable, "-m", "cli", "index", "build", corpus, "--index", index, "--ocr",
                              "tesseract", "-j", "1"], env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(
                                  Path(__file__).resolve().parent.parent)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while build.poll() is None and time.monotonic() < deadline:
        try:
            if len(_pages(index)) >= pages:
                break
        except Exception:  # noqa: BLE001 - no database yet, or no tables
            pass
        time.sleep(0.01)
    time.sleep(delay)
    build.send_signal(signal.SIGKILL)
    return build.wait() == -signal.SIGKILL


@pytest.mark.slow
def test_a_build_killed_with_a_partly_read_file_leaves_a_consistent_index(tmp_path):
    """kill -9 at seeded moments of a build whose TIFF has a garbled page: `index verify` is clean after the
    kill, and the resumed build ends as an uninterrupted one (same pages, page 2 failed)."""
    corpus = tmp_path / "c"
    multi_tiff_garbled(corpus / "ledger.tif", [*LEDGER, "Tram timetable changes"], 2)
    text_pdf(corpus / "memo.pdf", ["A memo about lighthouse maintenance.", "Lamp replaced in March."])
    assert _cli("index", "build", corpus, "--index", tmp_path / "ref", "--ocr", "tesseract").returncode == 3
    want = _pages(tmp_path / "ref")
    assert want == [("ledger.tif", 1), ("ledger.tif", 3), ("ledger.tif", 4), ("memo.pdf", 1), ("memo.pdf", 2)]
    rng = random.Random(7)
    for trial in range(3):
        index = tmp_path / f"idx{trial}"
        assert _killed_after(corpus, index, trial + 1, rng.uniform(0, 0.5)), "the build ended before the kill"
        verify = _cli("index", "verify", "--index", index)
        assert verify.returncode == 0, verify.stdout
        resumed = _cli("index", "build", corpus, "--index", index, "--ocr", "tesseract")
        assert resumed.returncode == 3 and "ledger.tif: indexed 3 of 4 pages; page 2: image data is corrupt" in \
            resumed.stderr, resumed.stderr
        assert _pages(index) == want and _failed(index) == {"ledger.tif": [2]}
        assert _cli("index", "verify", "--index", index).returncode == 0


def test_the_web_status_page_lists_partly_indexed_files(tmp_path):
    """The web app's status page (and its JSON twin) is `index status`'s data: the partly indexed file is there."""
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app

    multi_tiff_garbled(tmp_path / "c" / "ledger.tif", LEDGER, 2)
    build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="none", jobs=1))
    client = TestClient(create_app(WebState(Index.open(tmp_path / "idx"))))
    [partial] = client.get("/status.json").json()["status"]["partial"]
    assert (partial["indexed"], partial["pages"], [f["page"] for f in partial["failed"]]) == (2, 3, [2])
    page = client.get("/status").text
    assert "Partly indexed files" in page and "2 of 3" in page and "page 2: image data is corrupt" in page


def test_a_moved_partly_indexed_file_takes_its_pages_and_its_failures_from_its_twin(tmp_path):
    """A moved file's pages come from its indexed twin; the twin's failed page was a missing page, so the whole
    file was read again (a page that takes minutes, again). Its failures come along instead, unread."""
    multi_tiff_garbled(tmp_path / "c" / "ledger.tif", LEDGER, 2)
    options = BuildOptions(ocr="none", jobs=1, prune=True)
    build(tmp_path / "idx", [tmp_path / "c"], options)
    (tmp_path / "c" / "ledger.tif").rename(tmp_path / "c" / "moved.tif")
    report = build(tmp_path / "idx", [tmp_path / "c"], options)
    assert (report.new, report.pruned, report.pages_copied, report.pages_read) == (1, 1, 2, 0)
    assert [(Path(p.path).name, p.indexed, p.earlier) for p in report.partial] == [("moved.tif", 2, False)]
    assert _failed(tmp_path / "idx") == {"moved.tif": [2]}
