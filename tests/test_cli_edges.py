"""Damaged or odd index metadata and odd paths: clear errors, never a traceback."""
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from cli.main import cli

pytestmark = pytest.mark.slow


def test_embed_dim_disagreeing_with_the_vectors_is_damage(tmp_path, sample_index):
    idx = tmp_path / "idx"
    shutil.copytree(sample_index, idx)
    with sqlite3.connect(idx / "index.db") as db:
        db.execute("UPDATE meta SET value = '512' WHERE key = 'embed_dim'")
    (idx / "vectors.faiss").unlink()  # rebuilt from SQLite, where the vectors are 384-d
    result = CliRunner().invoke(cli, ["search", "rent increase", "--index", str(idx)])
    assert result.exit_code == 1 and "512 dimensions" in result.output and "damaged" in result.output, result.output
    assert not isinstance(result.exception, ValueError)


def test_folders_whose_names_are_not_utf8(tmp_path, sample_corpus):
    """Index folder and document folder named with a byte that is not UTF-8: FAISS, SQLite, the ONNX
    export and the page images all get there (faiss and onnxruntime want str paths they encode)."""
    import os

    root = os.fsdecode(bytes(tmp_path)) if isinstance(tmp_path, bytes) else str(tmp_path)
    docs, idx = root + "/d" + os.fsdecode(b"\xe9") + "cs", root + "/id" + os.fsdecode(b"\xe9") + "x"
    os.mkdir(docs)
    target = docs + "/r" + os.fsdecode(b"\xe9") + "nt.pdf"
    shutil.copy(sample_corpus / "invoices" / "bluefin-office-supply-invoice.pdf", target)
    runner = CliRunner()
    env = {"XDG_CACHE_HOME": root + "/c" + os.fsdecode(b"\xe9") + "che"}  # the ONNX export goes beside the index
    built = runner.invoke(cli, ["index", "build", docs, "--index", idx], env=env)
    assert built.exit_code == 0, built.output
    assert os.path.isfile(idx + "/vectors.faiss")
    assert "id\\xe9x:" in built.output  # the folder printed readably, its byte as \xe9
    found = runner.invoke(cli, ["search", "invoice total", "-k", "1", "--json", "--in", docs, "--index", idx], env=env)
    assert found.exit_code == 0, found.output
    assert "nt.pdf" in found.output
    png = root + "/page.png"
    shown = runner.invoke(cli, ["show", target, "-o", png, "--index", idx], env=env)
    assert shown.exit_code == 0 and os.path.getsize(png) > 1000, shown.output
    from index.store import Index
    from rag.evidence import page_image

    assert page_image(Index.open(idx), target, 1).size[0] > 100


def test_truncated_pdf_is_a_recorded_skip_with_mupdf_quiet(tmp_path, capfd):
    import pymupdf

    doc = pymupdf.open()
    for i in range(30):
        page = doc.new_page()
        page.insert_text((72, 72), f"page {i} " * 20)
        page.insert_image(pymupdf.Rect(72, 200, 500, 700),
                          pixmap=pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 200), False))
    whole = doc.tobytes()
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in (500, 5000, len(whole) // 2):
        (docs / f"cut{n}.pdf").write_bytes(whole[:n])
    result = CliRunner().invoke(cli, ["index", "build", str(docs), "--index", str(tmp_path / "idx"), "--json"])
    assert result.exit_code == 3 and not isinstance(result.exception, RuntimeError), result.output
    from index.store import Index

    skipped = Index.open(tmp_path / "idx").skipped()
    assert len(skipped) == 3 and all(e and "PDF" in r for _, r, e in skipped), skipped
    assert "MuPDF" not in capfd.readouterr().err
