"""Bad files are skipped with a reason, the build goes on, and the exit code says so."""
import shutil

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.builder import BuildOptions, build
from index.sources import Limits
from index.store import Index


def _encrypted_pdf(path):
    import pymupdf as fitz

    doc = fitz.open()
    doc.new_page().insert_text((72, 72), "secret quarterly numbers " * 5)
    doc.save(path, encryption=fitz.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")


def _truncated(src, path, keep=0.4):
    data = src.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _truncated_tiff(src, path):
    from PIL import Image

    img = Image.open(src)
    img.save(path, save_all=True, append_images=[img.copy(), img.copy()], compression="tiff_deflate")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])


BAD = [
    # name, how to make it from a good page image, expected reason fragment, counts as an error
    ("empty.pdf", lambda good, p: p.write_bytes(b""), "empty file", True),
    ("fake.pdf", lambda good, p: p.write_text("this is not a pdf at all\n" * 20), "not a readable PDF", True),
    ("locked.pdf", lambda good, p: _encrypted_pdf(p), "encrypted", True),
    ("cut.png", lambda good, p: _truncated(good, p), "truncated", True),
    ("cut.tif", lambda good, p: _truncated_tiff(good, p), "not a readable image", True),
    ("garbage.jpg", lambda good, p: p.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 40), "not a readable image", True),
    ("notes.docx", lambda good, p: p.write_bytes(b"PK\x03\x04 word"), "unsupported file type '.docx'", False),
]


@pytest.mark.slow
def test_bad_files_are_skipped_with_reasons_and_the_good_page_is_indexed(tmp_path, make_page):
    good = make_page("corpus/good.png", ["Harbour crane maintenance schedule", "Inspection on 4 May 2024"])
    for name, make, _, _ in BAD:
        make(good, tmp_path / "corpus" / name)
    (tmp_path / "corpus" / ".hidden.png").write_bytes(b"hidden files are not even looked at")

    report = build(tmp_path / "idx", [tmp_path / "corpus"], BuildOptions(ocr="tesseract", jobs=2))

    reasons = {s.path.rsplit("/", 1)[1]: (s.reason, s.is_error) for s in report.skipped}
    assert set(reasons) == {name for name, *_ in BAD}
    for name, _, fragment, is_error in BAD:
        assert fragment in reasons[name][0], (name, reasons[name])
        assert reasons[name][1] is is_error
    assert report.errors == sum(e for *_, e in BAD)
    idx = Index.open(tmp_path / "idx")
    assert [d["path"].rsplit("/", 1)[1] for d in idx.documents()] == ["good.png"]
    assert len(idx.skipped()) == len(BAD)
    assert len(idx.vectors) == idx.counts()["chunks"] > 0


def test_enormous_image_is_skipped_by_the_pixel_limit(tmp_path, make_page):
    page = make_page("corpus/poster.png", ["big"], size=(1200, 900))
    report = build(tmp_path / "idx", [page], BuildOptions(ocr="none", limits=Limits(max_pixels=1_000_000)))
    (skip,) = report.skipped
    assert skip.is_error and "1200×900 px, over the 1,000,000-pixel limit" in skip.reason


def test_cli_exit_code_and_summary_when_a_file_fails(tmp_path, make_page):
    make_page("corpus/a.png", ["Invoice number 4471"])
    (tmp_path / "corpus" / "broken.pdf").write_text("not a pdf")
    result = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "corpus"), "--index", str(tmp_path / "idx"),
                                      "--ocr", "tesseract", "-j", "1"], catch_exceptions=False)
    assert result.exit_code == 3
    assert "Skipped 1 file(s):" in result.output
    assert "ERROR " + str(tmp_path / "corpus" / "broken.pdf") + ": not a readable PDF" in result.output

    status = CliRunner().invoke(cli, ["index", "status", "--index", str(tmp_path / "idx")], catch_exceptions=False)
    assert "Documents:  1" in status.output and "broken.pdf: not a readable PDF" in status.output

    # fixing the file clears its skip record
    shutil.copy(tmp_path / "corpus" / "a.png", tmp_path / "corpus" / "broken.png")
    (tmp_path / "corpus" / "broken.pdf").unlink()
    result = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "corpus"), "--index", str(tmp_path / "idx"),
                                      "--ocr", "tesseract", "--prune", "-j", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert Index.open(tmp_path / "idx").skipped() == []
