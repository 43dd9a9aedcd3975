"""Captions at index time: made by a model, embedded and searchable, cached by page content."""
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.builder import BuildOptions, build
from index.store import Index
from rag.backends import Backend, get_backend
from rag.captions import BackendCaptioner
from rag.retrieve import Retriever

pytestmark = pytest.mark.slow


class Describer(Backend):
    """The model behind the test server: describes a picture by its dominant colour, counting calls."""

    name = "describer"

    def __init__(self):
        super().__init__("describer")
        self.calls = 0

    def stream(self, messages, images, options):
        self.calls += 1
        r, g, b = images[0].convert("RGB").resize((1, 1)).getpixel((0, 0))
        colour = "blue" if b > max(r, g) else "green" if g > r else "red"
        yield f"A photograph of a {colour} lighthouse beside a harbour at dusk."


def photo(path, colour):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (640, 480), colour)
    ImageDraw.Draw(img).rectangle((300, 100, 340, 400), fill="white")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def test_captions_make_textless_pages_findable_and_are_cached(tmp_path, make_page):
    from openai_server import OpenAIServer

    photo(tmp_path / "c/IMG_0042.png", (20, 40, 200))
    make_page("c/memo.png", ["Memo: the quarterly budget review moves to Thursday"])
    model = Describer()
    with OpenAIServer(model, models=["describer"]) as server:
        captioner = BackendCaptioner(get_backend("openai")("describer", base_url=server.url))
        first = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", captioner=captioner))
        assert (first.captions_made, first.captions_cached, model.calls) == (2, 0, 2)
        hits = Retriever(Index.open(tmp_path / "idx")).search("lighthouse photo at the harbour", k=1)
        assert (hits[0].path.rsplit("/", 1)[1], hits[0].snippet) == (
            "IMG_0042.png", "A photograph of a blue lighthouse beside a harbour at dusk.")

        again = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", captioner=captioner))
        assert (again.captions_made, again.captions_cached, model.calls) == (0, 0, 2)

        # same pixels, different bytes (new metadata): the file is re-read, its caption comes from the cache
        from PIL import Image

        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Comment", "edited")
        Image.open(tmp_path / "c/IMG_0042.png").save(tmp_path / "c/IMG_0042.png", pnginfo=info)
        photo(tmp_path / "c/memo.png", (200, 30, 30))  # really changed: a new caption
        changed = build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract", captioner=captioner))
    assert (changed.changed, changed.captions_made, changed.captions_cached, model.calls) == (2, 1, 1, 3)
    idx = Index.open(tmp_path / "idx")
    kinds = dict(idx.db.execute("SELECT kind, count(*) FROM chunks GROUP BY kind"))
    assert kinds["caption"] == 2 and len(idx.vectors) == idx.counts()["chunks"]


def test_captions_for_an_existing_index_and_with_a_real_tiny_vlm(tmp_path, make_page, tiny_folders, one_thread):
    make_page("c/note.png", ["Note about the boiler inspection"])
    build(tmp_path / "idx", [tmp_path / "c"], BuildOptions(ocr="tesseract"))
    result = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "c"), "--index", str(tmp_path / "idx"),
                                      "--captions", "-m", str(tiny_folders["mllama"]), "--json"],
                                catch_exceptions=False)
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["pages_read"] == 0 and report["captions_made"] == 1
    (caption,) = [r[0] for r in Index.open(tmp_path / "idx").db.execute("SELECT caption FROM pages")]
    assert caption and caption.isprintable()


def test_captions_without_a_model_warn_and_build_goes_on(tmp_path, make_page):
    make_page("c/note.png", ["Gas meter reading 44120"])
    result = CliRunner().invoke(cli, ["index", "build", str(tmp_path / "c"), "--index", str(tmp_path / "idx"),
                                      "--captions", "-m", str(tmp_path / "missing-model")], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Captions skipped (the build goes on without them):" in result.output
    assert Index.open(tmp_path / "idx").counts()["pages"] == 1
