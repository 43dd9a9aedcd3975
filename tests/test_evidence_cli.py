"""Evidence boxes from `ask` and `chat`: PNGs of the cited pages, boxes in --json (real index, real HTTP server)."""
import json

import pytest
from PIL import Image
from test_ask import MINUTES, Q_PARKING, index_copy, invoke, scripted  # noqa: F401  (index_copy: a fixture)

from rag.highlight import colour

pytestmark = pytest.mark.slow
ANSWER = "The board voted to resurface the lot [1]. It will cost $27,500 [1]."


def ask_scripted(index, *args):
    from openai_server import OpenAIServer

    with OpenAIServer(scripted([ANSWER])) as server:
        return invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "pagerag-test",
                      "-k", 2, "--index", index, *args)


def test_ask_json_carries_the_boxes_of_each_citation(index_copy, sample_corpus):
    data = json.loads(ask_scripted(index_copy, "--json").output)
    first = data["evidence"][0]
    assert first["n"] == 1 and first["path"] == str(sample_corpus / MINUTES) and first["page"] == 2
    texts = " ".join(r["text"] for r in first["regions"])
    assert "27,500" in texts
    for r in first["regions"]:
        x0, y0, x1, y1 = r["pixels"]
        assert 0 <= x0 < x1 <= first["width"] and 0 <= y0 < y1 <= first["height"]


def test_ask_saves_the_cited_page_with_its_words_boxed_in_the_citation_colour(index_copy, tmp_path):
    out = tmp_path / "evidence"
    result = ask_scripted(index_copy, "--save-evidence", out, "--json")
    data = json.loads(result.stdout)
    [png] = sorted(out.iterdir())
    assert png.name == "1-minutes-2024-q1-p2.png"
    box = data["evidence"][0]["regions"][0]["pixels"]
    image = Image.open(png)
    assert image.size == (data["evidence"][0]["width"], data["evidence"][0]["height"])
    assert image.getpixel((box[0] - 3, (box[1] + box[3]) // 2)) == colour(1)


def test_without_a_model_the_evidence_is_still_saved(index_copy, tmp_path):
    out = tmp_path / "evidence"
    result = invoke("ask", Q_PARKING, "-m", tmp_path / "no-such-model", "-k", 2, "--save-evidence", out,
                    "--index", index_copy)
    assert result.exit_code == 4
    assert sorted(p.name for p in out.iterdir())[0] == "1-minutes-2024-q1-p2.png"
