"""Index building against inputs a third hostile first use found (blinda): image sample formats, rotated PDF
pages, huge files, files other programs hold, settings that are not what they look like.

Real files generated in tmp_path, real Tesseract, SQLite, MuPDF and subprocesses; nothing of ours mocked.
"""
import io
import json
import os
import resource
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from fault_kit import cli as _cli
from fault_kit import indexed_texts as _texts
from fault_kit import page_image, text_pdf

from index.builder import BuildOptions, build
from index.sources import Limits, read_image, read_text_layer
from index.store import Index

TEXT = BuildOptions(ocr="none", jobs=1)


def _scan16(lines: list[str]) -> np.ndarray:
    """A 16-bit page as a scanner writes it: ink and paper well inside 0..65535, never at its ends."""
    ink = np.asarray(page_image(lines, size=(900, 200), mode="L"), dtype=np.float64) / 255
    return (3000 + ink * (58000 - 3000)).astype(np.uint16)


def test_deep_samples_are_scaled_to_eight_bits_not_clipped(tmp_path):
    """16-bit scans came out all white (Pillow clips at 255) and float ones (0..1) all black: read as blank."""
    from PIL import Image

    c = tmp_path / "c"
    c.mkdir()
    Image.fromarray(_scan16(["Granary ledger sixteen bit"])).save(c / "scan16.png")
    Image.fromarray(_scan16(["Granary ledger sixteen bit tiff"])).save(c / "scan16.tif")
    Image.fromarray(_scan16(["Granary ledger portable graymap"])).save(c / "scan16.pgm")  # `scanimage`'s own
    ink = np.asarray(page_image(["Mill accounts floating point"], size=(900, 200), mode="L"), dtype=np.float32)
    Image.fromarray(0.1 + ink / 255 * 0.85).save(c / "float.tif")
    for name in ("scan16.png", "scan16.tif", "scan16.pgm", "float.tif"):
        lo, hi = read_image(c / name, "image", 1, 200).convert("L").getextrema()
        assert lo < 40 and hi > 200, (name, lo, hi)  # ink dark, paper light: a page, not a blank
    report = build(tmp_path / "idx", [c], BuildOptions(ocr="tesseract", jobs=1))
    assert report.errors == 0, report.skipped
    texts = _texts(tmp_path / "idx")
    assert "sixteen" in texts["scan16.png"] and "tiff" in texts["scan16.tif"], texts
    assert "graymap" in texts["scan16.pgm"] and "floating" in texts["float.tif"], texts


def test_jpeg_and_pnm_under_their_other_names_are_read(tmp_path):
    c = tmp_path / "c"
    c.mkdir()
    page_image(["Invoice saved by a browser"]).save(c / "download.jfif", format="JPEG")
    page_image(["Invoice named jpe"]).save(c / "old.jpe", format="JPEG")
    page_image(["Scanner output pnm"]).save(c / "scan.pnm", format="PPM")
    page_image(["Scanner output bitmap"]).convert("1").save(c / "fax.pbm", format="PPM")
    report = build(tmp_path / "idx", [c], BuildOptions(ocr="tesseract", jobs=1))
    assert report.skipped == [] and report.new == 4
    texts = _texts(tmp_path / "idx")
    assert "browser" in texts["download.jfif"] and "pnm" in texts["scan.pnm"].lower(), texts


def test_a_later_tiff_page_over_the_pixel_limit_is_said_like_the_first(tmp_path):
    """Only the first frame was measured before reading; a larger later one got Pillow's raw bomb message. It
    costs that page alone: the file is indexed without it."""
    from PIL import Image

    c = tmp_path / "c"
    c.mkdir()
    page_image(["first page fits"], size=(400, 200)).save(
        c / "grows.tif", save_all=True, append_images=[Image.new("L", (3000, 3000), 255)])
    report = build(tmp_path / "idx", [c], BuildOptions(ocr="none", jobs=1, limits=Limits(max_pixels=1_000_000)))
    [partial] = report.partial
    assert [f.reason for f in partial.failed] == ["page 2: image is 3000×3000 px, over the 1,000,000-pixel limit"]
    assert report.skipped == [] and partial.indexed == 1


def test_text_layer_boxes_follow_a_rotated_page(tmp_path):
    """/Rotate turns the page as rendered (and page.rect); the words came in the unrotated page's space,
    so evidence boxes (and page facts that use positions) pointed at empty paper."""
    import pymupdf

    doc = pymupdf.open()
    for turn in (0, 90, 180, 270):
        page = doc.new_page(width=300, height=500)
        page.insert_text((40, 60), "Lighthouse keeper rota for the winter season", fontsize=9)
        page.set_rotation(turn)
    doc.save(tmp_path / "turned.pdf")
    for n in (1, 2, 3, 4):
        words, (w, h) = read_text_layer(tmp_path / "turned.pdf", n)
        image = np.asarray(read_image(tmp_path / "turned.pdf", "pdf", n, 72).convert("L"))
        assert image.shape == (round(h), round(w))
        ys, xs = np.nonzero(image < 128)  # where the ink is on the page as rendered
        ink = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
        left, top = min(x.x0 for x in words), min(x.y0 for x in words)
        right, bottom = max(x.x1 for x in words), max(x.y1 for x in words)
        assert abs(left - ink[0]) < 0.03 and abs(right - ink[2]) < 0.03, (n, (left, top, right, bottom), ink)
        assert top <= ink[1] + 0.02 and bottom >= ink[3] - 0.02, (n, (left, top, right, bottom), ink)


def test_an_oversized_file_is_refused_without_reading_it(tmp_path):
    """The size limit came after hashing the whole file: a 20 GB file took 2 minutes to refuse, every build."""
    c = tmp_path / "c"
    c.mkdir()
    with open(c / "huge.pdf", "wb") as f:
        f.truncate(4 << 30)  # sparse: 4 GiB of apparent size, no disk used
    text_pdf(c / "ok.pdf", ["Harbour crane inspection report."])

    def read_bytes() -> int:
        return int(next(line.split()[1] for line in Path("/proc/self/io").read_text().splitlines()
                        if line.startswith("rchar:")))

    before = read_bytes()
    report = build(tmp_path / "idx", [c], TEXT)
    assert read_bytes() - before < 512 << 20  # the model and the small PDF, not the 4 GiB
    [skip] = report.skipped
    assert "over the 2048 MiB limit" in skip.reason and report.new == 1


def _limited(fsize: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return limit


def test_a_write_that_fails_is_not_called_damage(tmp_path):
    """An I/O error (here a file-size limit, `ulimit -f`) said the index was damaged and to rebuild it."""
    text_pdf(tmp_path / "warm" / "w.pdf", ["The embedding model exported once, outside the limit."])
    assert _cli("index", "build", tmp_path / "warm", "--index", tmp_path / "w", "--ocr", "none").returncode == 0
    for i in range(12):
        text_pdf(tmp_path / "c" / f"doc{i}.pdf", [f"Minutes of board meeting {i}. " * 40] * 3)
    run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none", "-j", "1",
               preexec_fn=_limited(300 << 10))
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert "damaged" not in line and "Rebuild" not in line and "ulimit -f" in line, line
    check = _cli("index", "verify", "--index", tmp_path / "idx")
    assert check.returncode == 0, check.stdout + check.stderr
    again = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none", "-j", "1")
    assert again.returncode == 0 and _texts(tmp_path / "idx").keys() == {f"doc{i}.pdf" for i in range(12)}


@pytest.mark.slow
def test_an_index_held_by_another_program_is_locked_not_damaged(tmp_path):
    """A database browser or `sqlite3` shell holding a write transaction on index.db: after SQLite's wait,
    the build said the index was damaged and to rebuild it."""
    text_pdf(tmp_path / "c" / "a.pdf", ["Library parking decision of the board."])
    assert _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none").returncode == 0
    text_pdf(tmp_path / "c" / "b.pdf", ["Orchard irrigation plan for the spring."])
    other = sqlite3.connect(tmp_path / "idx" / "index.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert "locked by another program" in line and "damaged" not in line, line
    assert _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "none").returncode == 0


def test_an_embedding_model_folder_that_holds_no_model_is_refused_before_reading(tmp_path):
    """`--embed-model ~` walked the whole tree, died on a file name that is not UTF-8 (traceback), and an
    empty folder failed only once pages had been read."""
    from index.embed import model_key

    text_pdf(tmp_path / "c" / "a.pdf", ["Warranty claim for the boiler."])
    junk = tmp_path / "not-a-model"
    junk.mkdir()
    (junk / os.fsdecode(b"caf\xe9.txt")).write_bytes(b"notes")
    run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--embed-model", junk)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "holds no model" in run.stderr.strip().splitlines()[-1], run.stderr
    assert Index.open(tmp_path / "idx").counts()["pages"] == 0
    (junk / "config.json").write_text("{}")
    assert len(model_key(junk)) == 20  # a model folder with such a name is keyed, not a traceback


def test_setting_variables_are_named_and_any_case_is_taken(tmp_path):
    text_pdf(tmp_path / "c" / "a.pdf", ["Museum ticket prices for the summer."])
    bad = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", env={"PAGERAG_OCR": "junk"})
    assert bad.returncode == 2 and "PAGERAG_OCR" in bad.stderr, bad.stderr
    ok = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", env={"PAGERAG_OCR": "NONE"})
    assert ok.returncode == 0, ok.stderr
    nan = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--page-timeout", "nan")
    assert nan.returncode == 2 and "--page-timeout" in nan.stderr, nan.stderr


def test_json_reports_escape_the_index_path_like_every_other_path(tmp_path):
    """A non-UTF-8 byte in the index path came out as a lone surrogate (jq: U+FFFD), skipped paths as \\xNN."""
    text_pdf(tmp_path / "c" / "a.pdf", ["Tram timetable changes."])
    (tmp_path / "c" / "empty.pdf").write_bytes(b"")
    index = os.fsdecode(os.fsencode(tmp_path) + b"/idx\xff")
    run = _cli("index", "build", tmp_path / "c", "--index", index, "--json")
    assert run.returncode == 3, run.stderr
    outputs = [run.stdout, _cli("index", "status", "--index", index, "--json").stdout,
               _cli("index", "verify", "--index", index, "--json").stdout]
    for out in outputs:
        assert "\\udc" not in out
        data = json.loads(out)
        assert data["index"].endswith("/idx\\xff"), data["index"]
    assert json.loads(outputs[0])["skipped"][0]["path"].endswith("empty.pdf")


def test_page_image_modes_still_round_trip(tmp_path):
    """8-bit pages are untouched by the deep-sample scaling (same pixels as Pillow's own conversion)."""
    from PIL import Image

    img = page_image(["plain eight bit page"], size=(300, 100), mode="L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    (tmp_path / "p.png").write_bytes(buf.getvalue())
    assert read_image(tmp_path / "p.png", "image", 1, 200).tobytes() == Image.open(io.BytesIO(buf.getvalue())
                                                                                     ).convert("RGB").tobytes()


def test_prune_of_a_folder_that_is_gone_says_how_to_drop_it(tmp_path):
    """`build GONE --prune` after the folder was deleted: only "Path 'GONE' does not exist", and --prune cannot
    drop what was indexed there; the message names `index remove`, which can."""
    import shutil

    text_pdf(tmp_path / "old" / "a.pdf", ["Water authority budget for the year."])
    assert _cli("index", "build", tmp_path / "old", "--index", tmp_path / "idx", "--ocr", "none").returncode == 0
    shutil.rmtree(tmp_path / "old")
    run = _cli("index", "build", tmp_path / "old", "--index", tmp_path / "idx", "--prune")
    assert run.returncode == 2 and f"run `pagerag index remove {tmp_path / 'old'}`" in run.stderr, run.stderr
    assert _cli("index", "remove", tmp_path / "old", "--index", tmp_path / "idx").returncode == 0
    assert Index.open(tmp_path / "idx").counts()["documents"] == 0


def test_a_tessdata_prefix_that_hides_the_packs_is_named(tmp_path):
    """TESSDATA_PREFIX pointing elsewhere said to `apt-get install tesseract-ocr-eng`, which is installed."""
    text_pdf(tmp_path / "c" / "a.pdf", ["Short"])
    run = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "idx", "--ocr", "tesseract",
               env={"TESSDATA_PREFIX": str(tmp_path / "nowhere")})
    assert run.returncode == 1, run.stderr
    assert f"TESSDATA_PREFIX is set to '{tmp_path / 'nowhere'}'" in run.stderr.strip().splitlines()[-1], run.stderr


def test_a_corrupt_exif_block_is_read_past_quietly(tmp_path):
    """Pillow warned 'Corrupt EXIF data' on stderr with its source line, twice a file; with warnings as errors
    (PYTHONWARNINGS=error, a developer's setting) the whole photo was skipped."""
    import struct

    buf = io.BytesIO()
    page_image(["Receipt with a broken EXIF block"]).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    exif = b"Exif\x00\x00II\x2a\x00\xff\xff\xff\x7f"  # its first directory lies 2 GB past the end
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "photo.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + jpeg[2:])
    plain = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "a", "-j", "1")
    strict = _cli("index", "build", tmp_path / "c", "--index", tmp_path / "b", "-j", "1",
                  env={"PYTHONWARNINGS": "error::UserWarning"})
    for run, index in ((plain, tmp_path / "a"), (strict, tmp_path / "b")):
        assert run.returncode == 0 and "Warning" not in run.stderr, run.stderr
        assert "receipt" in _texts(index)["photo.jpg"].lower()


def test_a_build_that_finds_nothing_to_read_says_so(tmp_path):
    """`build ~/scnas` (an empty folder, or one of .docx files) printed '0 new ...' and nothing else."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "letter.docx").write_bytes(b"PK\x03\x04 word")
    for folder in ("empty", "docs"):
        run = _cli("index", "build", tmp_path / folder, "--index", tmp_path / "idx", "--ocr", "none")
        assert run.returncode == 0 and "No file to index was found there" in run.stderr, run.stderr
        assert ".pdf" in run.stderr and ".tiff" in run.stderr
    text_pdf(tmp_path / "docs" / "a.pdf", ["Museum ticket prices."])
    run = _cli("index", "build", tmp_path / "docs", "--index", tmp_path / "idx", "--ocr", "none")
    assert run.returncode == 0 and "No file to index" not in run.stderr, run.stderr


@pytest.mark.parametrize("name, bad, good", [("PAGERAG_EMBED_BACKEND", "junk", "ONNX"),
                                            ("PAGERAG_EMBED_INT8", "banana", "OFF")])
def test_a_bad_embed_setting_fails_before_any_page_is_read(tmp_path, monkeypatch, name, bad, good):
    """PAGERAG_EMBED_INT8=banana meant 'on', silently; either setting named wrong is said before any page is
    read (nothing stored), and a right one is taken in any case."""
    from index.errors import EmbedderUnavailable

    text_pdf(tmp_path / "c" / "a.pdf", ["Warranty claim for the boiler."])
    monkeypatch.setenv(name, bad)
    with pytest.raises(EmbedderUnavailable, match=f"{name} is '{bad}'"):
        build(tmp_path / "idx", [tmp_path / "c"], TEXT)
    assert Index.open(tmp_path / "idx").counts()["pages"] == 0
    monkeypatch.setenv(name, good)
    assert build(tmp_path / "idx", [tmp_path / "c"], TEXT).new == 1
