"""`pagerag serve`'s app through Starlette's test client: every page as HTML and as JSON, images by page id
only, streamed answers whose citations open the cited page with its evidence boxed (real index, real HTTP
model server)."""
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image
from starlette.testclient import TestClient
from test_ask import MINUTES, Q_PARKING, index_copy, scripted  # noqa: F401  (index_copy: a fixture)

from cli.serve_cmd import is_loopback
from cli.web.app import WebState, create_app
from index.store import Index
from rag.assistant import AskSettings
from rag.settings import ModelSettings

pytestmark = pytest.mark.slow
ANSWER = "The board voted to resurface the lot [1]. It will cost $27,500 [1]."


@pytest.fixture
def client_for(index_copy):  # noqa: F811
    """A test client over a private copy of the sample index, for the given model settings."""
    def make(settings: ModelSettings | None = None) -> TestClient:
        state = WebState(Index.open(index_copy), settings or ModelSettings(model=str(index_copy / "no-model")),
                         AskSettings(k=3))
        return TestClient(create_app(state))
    return make


def events(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def test_search_page_and_its_json_twin(client_for, sample_corpus):
    client = client_for()
    data = client.get("/search.json", params={"q": "parking lot resurfacing"}).json()
    first = data["hits"][0]
    assert first["path"] == str(sample_corpus / MINUTES) and first["page"] == 2 and first["rank"] == 1
    assert first["url"] == f"/page/{first['page_id']}?q=parking+lot+resurfacing"
    html = client.get("/search", params={"q": "parking lot resurfacing"}).text
    assert f'href="{first["url"]}"' in html and "<mark>parking</mark>" in html.lower()
    assert f'src="/page/{first["page_id"]}/image?w=220&amp;q=parking+lot+resurfacing"' in html
    assert client.get("/").url.path == "/search"


def test_page_viewer_boxes_the_matching_words(client_for):
    client = client_for()
    pid = client.get("/search.json", params={"q": "parking lot"}).json()["hits"][0]["page_id"]
    data = client.get(f"/page/{pid}.json", params={"q": "$27,500"}).json()
    [region, *_] = data["evidence"]["regions"]
    assert "27,500" in region["text"]
    assert data["page"]["width"] >= region["pixels"][2] > region["pixels"][0] >= 0
    html = client.get(f"/page/{pid}", params={"q": "$27,500"}).text
    assert html.count('class="box best"') == len(region["lines"]) and "27,500" in html

    plain = Image.open(io.BytesIO(client.get(f"/page/{pid}/image", params={"w": 600}).content))
    boxed = client.get(f"/page/{pid}/image", params={"w": 600, "q": "$27,500"})
    assert boxed.headers["content-type"] == "image/jpeg" and plain.width == 600
    boxed = Image.open(io.BytesIO(boxed.content))
    x0, y0, x1, y1 = (round(v * 600 / data["page"]["width"]) for v in region["pixels"])
    assert plain.getpixel((x0 - 2, (y0 + y1) // 2)) != boxed.getpixel((x0 - 2, (y0 + y1) // 2))


def test_images_come_by_page_id_only_and_bad_requests_are_404(client_for):
    client = client_for()
    assert client.get("/page/999999.json").status_code == 404
    assert client.get("/page/999999/image").json()["error"] == "no page 999999 in this index"
    assert client.get("/page/..%2F..%2Fetc%2Fpasswd/image").status_code == 404
    assert client.get("/static/..%2Findex.db").status_code == 404
    page = client.get("/page/1/image", params={"path": "/etc/passwd", "w": 10**6})
    assert Image.open(io.BytesIO(page.content)).width <= 2000  # the indexed page, its width clamped


def test_chat_streams_an_answer_whose_citations_open_the_boxed_page(client_for, sample_corpus):
    from openai_server import OpenAIServer

    with OpenAIServer(scripted([ANSWER, "It was held in the Maple Room [1]."])) as server:
        client = client_for(ModelSettings(backend="openai", base_url=server.url, model="pagerag-test"))
        got = events(client.post("/chat/ask", json={"question": Q_PARKING}))
        done = got[-1]
        follow = events(client.post("/chat/ask", json={"question": "Where was the meeting?",
                                                       "cid": done["conversation_id"]}))[-1]
    assert "".join(e["text"] for e in got[:-1]) == ANSWER and len(got) > 3  # streamed piece by piece
    assert done["type"] == "done" and done["answer"] == ANSWER and done["cited"] == [1]
    link = done["links"]["1"]
    assert link == f"/conversations/{done['conversation_id']}/turns/1/sources/1"
    assert follow["turn"] == 2 and follow["conversation_id"] == done["conversation_id"]

    cited = client.get(link + ".json").json()
    assert cited["page"]["path"] == str(sample_corpus / MINUTES) and cited["colour"] == 1
    assert any("27,500" in r["text"] for r in cited["evidence"]["regions"])
    html = client.get(link).text
    assert 'class="box best"' in html and "cited in answer to" in html

    listing = client.get("/conversations.json").json()["conversations"]
    assert listing[0]["id"] == done["conversation_id"] and listing[0]["n_turns"] == 2
    chat = client.get(f"/chat?cid={done['conversation_id']}").text
    assert f'href="{link}"' in chat  # stored answers keep their citation links


def test_without_a_model_chat_shows_the_evidence_and_says_how_to_get_one(client_for):
    client = client_for()
    done = events(client.post("/chat/ask", json={"question": Q_PARKING}))[-1]
    assert done["model_error"].startswith("No answer: the model could not be used. model folder")
    assert done["sources"][0]["evidence"]["regions"] and done["sources"][0]["url"].startswith("/page/")
    assert client.get("/conversations.json").json() == {"conversations": []}
    assert client.post("/chat/ask", json={"question": " "}).status_code == 400


def test_status_page(client_for):
    client = client_for()
    data = client.get("/status.json").json()["status"]
    assert data["pages"] == 15 and data["documents"] > 0 and data["chat_model"]["backend"] == "transformers"
    page = client.get("/status").text
    assert "15 (" in page and "<th>Languages</th><td>eng (9 pages)</td>" in page  # as `pagerag index status`


def test_an_index_built_from_nothing_says_so_not_no_page_matches(tmp_path):
    from index.builder import BuildOptions, build

    (tmp_path / "empty").mkdir()
    build(tmp_path / "index", [tmp_path / "empty"], BuildOptions(ocr="none"))
    client = TestClient(create_app(WebState(Index.open(tmp_path / "index"))))
    for url in ("/search?q=parking", "/search"):
        page = client.get(url).text
        assert "has no pages yet: build it with <code>pagerag index build PATH</code>" in page
        assert "No page matches" not in page and "Type a question" not in page
    assert "no pages yet" in client.get("/search.json?q=parking").json()["note"]


def test_the_default_model_is_named_as_the_command_line_names_it(client_for):
    """Chat and status named 'default' where `pagerag chat` says which model that is."""
    client = client_for(ModelSettings())
    assert client.get("/status.json").json()["status"]["chat_model"] == {
        "backend": "transformers", "model": "meta-llama/Llama-3.2-11B-Vision-Instruct"}
    assert "model: meta-llama/Llama-3.2-11B-Vision-Instruct (transformers)" in client.get("/chat").text
    assert "<td>meta-llama/Llama-3.2-11B-Vision-Instruct (transformers)</td>" in client.get("/status").text


def test_commands_quoted_in_messages_show_as_code(client_for):
    """pagerag's messages quote what to type in backticks; a web page shows it as code, escaped."""
    from cli.web.filters import code

    assert code("run `pagerag index build <scans>` first, or `x") == \
        "run <code>pagerag index build &lt;scans&gt;</code> first, or `x"
    assert '<code>pagerag ask "…"</code>' in client_for().get("/conversations").text


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_serve_prints_its_port_warns_off_loopback_and_serves(sample_index, tmp_path, host, warned):
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", host, "--index", str(sample_index)],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PAGERAG_BACKEND": "openai"})
    try:
        lines = []
        while not any("Serving" in line for line in lines):
            lines.append(proc.stderr.readline())
            assert lines[-1], "serve exited: " + "".join(lines)
        port = int(re.search(r":(\d+)/", lines[-1]).group(1))
        assert any("Warning: listening on 0.0.0.0" in line for line in lines) == warned
        for _ in range(50):
            try:
                status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=5))
                break
            except OSError:
                time.sleep(0.2)
        assert status["status"]["pages"] == 15
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture
def pdf_client(pdf_index, tmp_path):
    """A test client over a fresh index of two text PDFs (fast), and their paths."""
    folder, pdfs = pdf_index
    state = WebState(Index.open(folder), ModelSettings(model=str(tmp_path / "no-model")), AskSettings(k=2))
    return TestClient(create_app(state)), pdfs


def test_a_page_whose_file_went_or_broke_is_410_with_what_to_do(pdf_client):
    client, (gone, damaged) = pdf_client
    ids = {h["path"]: h["page_id"] for h in client.get("/search.json", params={"q": "budget parking", "k": 5})
           .json()["hits"]}
    assert set(ids) == {str(gone), str(damaged)}
    gone.unlink()
    damaged.write_bytes(b"%PDF-1.4 this is not a PDF any more")
    for path in (gone, damaged):
        for params in ({"w": 333}, {"w": 333, "q": "budget"}):
            r = client.get(f"/page/{ids[str(path)]}/image", params=params)
            assert r.status_code == 410 and str(path) in r.json()["error"], r.text
    assert "--prune" in client.get(f"/page/{ids[str(gone)]}/image").json()["error"]
    assert client.get(f"/page/{ids[str(gone)]}.json").status_code == 200  # its text still shows


BAD_REQUESTS = [
    ("get", "/page/999999999999999999999999", 404), ("get", "/page/999999999999999999999999.json", 404),
    ("get", "/page/9223372036854775808/image", 404), ("get", "/page/1?n=99999999999999999999999&q=a", 200),
    ("get", "/page/1/image?w=1e5&n=-3&kind=x", 200), ("get", "/search.json?k=99999999999999999999999&q=a", 200),
    ("get", "/conversations/d613%25.json", 404), ("get", "/conversations/%25", 404),
    ("get", "/conversations/_.json", 404), ("get", "/conversations/x/turns/99999999999999999999/sources/1", 404),
    ("get", "/chat?cid=%25", 404), ("get", "/chat/ask", 405),
]


@pytest.mark.parametrize("method, url, status", BAD_REQUESTS)
def test_bad_urls_get_a_4xx_never_a_500(pdf_client, method, url, status):
    client, _ = pdf_client
    r = getattr(client, method)(url)
    assert r.status_code == status, r.text
    if status >= 400 and (url.endswith(".json") or "/image" in url or url.startswith("/chat/ask")):
        assert r.json()["error"]


@pytest.mark.parametrize("body, status", [
    ("[]", 400), ("null", 400), ('"str"', 400), ("7", 400), ('{"question": 7}', 400), ('{"question": ["a"]}', 400),
    ('{"question": "a", "cid": 5}', 400), ('{"question": "a", "cid": "%"}', 404), ("{not json", 400),
    (b"\xff\xfe", 400), ('{"question": "\\ud800"}', 400), ('{"question": "a", "cid": "\\udcff"}', 400)])
def test_chat_ask_refuses_a_body_that_is_not_a_question_with_a_json_400(pdf_client, body, status):
    client, _ = pdf_client
    r = client.post("/chat/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status and r.headers["content-type"] == "application/json" and r.json()["error"]


def test_chat_ask_answers_a_form_with_415(pdf_client):
    client, _ = pdf_client
    r = client.post("/chat/ask", data={"question": "budget"})
    assert r.status_code == 415 and "JSON" in r.json()["error"]


def test_a_page_viewed_without_a_query_has_no_boxed_image(pdf_client):
    client, _ = pdf_client
    pid = client.get("/search.json", params={"q": "budget"}).json()["hits"][0]["page_id"]
    assert client.get(f"/page/{pid}.json", params={"n": 3}).json()["boxed_image"] is None
    assert "n=3" in client.get(f"/page/{pid}.json", params={"n": 3, "q": "budget"}).json()["boxed_image"]


def test_conversation_ids_in_urls_are_prefixes_not_patterns(pdf_client, pdf_index):
    from rag.conversations import ConversationStore

    client, _ = pdf_client
    cid = ConversationStore(pdf_index[0]).new("What was approved?")
    assert client.get(f"/conversations/{cid[:3]}.json").json()["conversation"]["id"] == cid
    for pattern in ("%25", f"{cid[:2]}%25", f"{cid[:-1]}_", "_" * len(cid)):
        r = client.get(f"/conversations/{pattern}.json")
        assert r.status_code == 404 and "no conversation" in r.json()["error"], pattern
    assert client.get("/chat.json", params={"cid": "%"}).status_code == 404
    assert client.get("/chat.json", params={"cid": " "}).status_code == 400


def test_conversation_ids_are_matched_literally_and_an_empty_one_is_refused(pdf_index):
    from click.testing import CliRunner

    from cli.main import cli
    from index.errors import BadArgument, NotIndexed
    from rag.conversations import ConversationStore

    store = ConversationStore(pdf_index[0])
    cid = store.new("What was approved?")
    assert store.resolve(cid[:2]) == cid
    for pattern in ("%", f"{cid[:2]}%", f"{cid[:-1]}_", "_"):
        with pytest.raises(NotIndexed):
            store.resolve(pattern)
    with pytest.raises(BadArgument):
        store.resolve(" ")
    shown = CliRunner().invoke(cli, ["conversations", "show", "", "--index", str(pdf_index[0])])
    assert shown.exit_code == 1 and "empty conversation id" in shown.output and shown.output.count("\n") == 1
    for command in (["ask", "budget"], ["chat"]):
        asked = CliRunner().invoke(cli, [*command, "-m", str(pdf_index[0] / "no-model"), "--cid", "",
                                         "--index", str(pdf_index[0])], input="")
        assert asked.exit_code == 1 and "empty conversation id" in asked.output, asked.output


def test_serve_says_a_host_that_does_not_resolve(pdf_index):
    from click.testing import CliRunner

    from cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--host", "not.a.host.invalid", "--index", str(pdf_index[0])])
    assert result.exit_code == 1 and "cannot be resolved" in result.output and "Warning" not in result.output
