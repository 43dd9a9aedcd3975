"""The query side against what a hostile new user (or a hostile server, or a web page in their
browser) does: JSON that Python cannot hold, servers that echo the API key, credentials in the base
URL, nonsense Retry-After, bidi overrides in an answer, an indexed image swapped for a bomb, output
paths that would overwrite the index, conversations damaged row by row, and a `serve` reached with
another Host name, from another origin, or with a huge body.

Real parts: a scripted HTTP server on 127.0.0.1 answering raw bytes, real indexes of text PDFs and
an image, real SQLite files, `pagerag serve` in a subprocess spoken to over real sockets.
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from openai_helpers import clean_env  # noqa: F401 - no PAGERAG_*/OPENAI_* or proxy variables leak in
from rag.backends import GenerationOptions, ModelUnavailable
from rag.backends.openai import OpenAIBackend
from scripted_server import Scripted
from scripted_server import failure as scripted_failure

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "What is the total?"}]}]
JSON_TYPE = "application/json"


def failure(reply: str) -> str:
    return scripted_failure(reply)[0]


# --- replies JSON cannot hold in Python ---

@pytest.mark.parametrize("reply, said", [
    ("json-big-int", "answered JSON that cannot be read (Exceeds the limit (4300 digits)"),
    ("sse-big-int", "sent an event that cannot be read as JSON (Exceeds the limit (4300 digits)"),
    ("json-deep", "answered JSON that cannot be read (nested too deep"),
    ("sse-deep", "sent an event that cannot be read as JSON (nested too deep)"),
])
def test_json_python_cannot_hold_is_a_reply_error_not_a_traceback(reply, said):
    assert said in failure(reply)


def test_a_json_reply_with_a_byte_order_mark_is_read():
    from scripted_server import answer

    assert answer("json-bom")[0] == "The total [1]."


def test_a_reply_that_is_not_valid_http_is_not_a_server_to_start():
    message = failure("huge-header")
    assert "the reply is not valid HTTP" in message and "ollama serve" not in message


# --- secrets: the API key and the base URL's credentials are never printed ---

@pytest.mark.parametrize("reply", ["echo-401", "echo-500"])
def test_a_server_that_echoes_the_key_does_not_get_it_printed(reply, monkeypatch):
    monkeypatch.setenv("PAGERAG_API_KEY", KEY)
    message = failure(reply)
    assert KEY not in message and "Bearer ***" in message


def test_a_password_in_the_base_url_is_not_printed():
    with Scripted("echo-500") as server:
        url = server.url.replace("http://", "http://user:pass-word-9@")
        backend = OpenAIBackend("m", base_url=url, retries=0)
        with pytest.raises(ModelUnavailable) as info:
            "".join(backend.stream(MESSAGES, [], GenerationOptions(max_new_tokens=8, timeout=20)))
    message = str(info.value)
    # the password, and the Basic-auth header the server echoed (base64 of user:pass-word-9)
    assert "pass-word-9" not in message and "dXNlcjpwYXNzLXdvcmQtOQ==" not in message
    assert "http://user:***@127.0.0.1" in message and "Basic ***" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1?api-key=s3cret-value", "http://127.0.0.1:9/v1#frag"])
def test_a_base_url_with_a_query_or_fragment_is_refused_at_once(url):
    with pytest.raises(ModelUnavailable) as info:
        OpenAIBackend("m", base_url=url)
    assert "has a query or fragment" in str(info.value) and "s3cret-value" not in str(info.value)


@pytest.mark.slow
def test_the_web_chat_never_shows_the_key(pdf_index, monkeypatch):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index
    from rag.assistant import AskSettings
    from rag.settings import ModelSettings

    monkeypatch.setenv("PAGERAG_API_KEY", KEY)
    index, _ = pdf_index
    with Scripted("echo-401") as server:
        settings = ModelSettings(backend="openai", base_url=server.url, model="m")
        with TestClient(create_app(WebState(Index.open(index), settings, AskSettings(min_score=-1)))) as client:
            reply = client.post("/chat/ask", json={"question": "What was the annual budget?"})
    assert reply.status_code == 200 and KEY not in reply.text and "Bearer ***" in reply.text


# --- what a server says about waiting ---

def test_retry_after_is_quoted_only_when_it_is_a_duration():
    from rag.backends.openai_errors import retry_wait

    assert [retry_wait(v) for v in ("30", "0", "nan", "inf", "-5", "soon", "", None)] == \
        [30.0, 0.0, None, None, None, None, None, None]
    assert retry_wait("Wed, 21 Oct 2099 07:28:00 GMT") > 365 * 86400
    assert "check its log, or try again later" in failure("retry-nan")
    assert "it asks to wait more than a year before trying again" in failure("retry-date")


# --- the answer's text ---

def test_bidi_overrides_in_an_answer_are_dropped():
    from rag.assistant import printable

    with Scripted("bidi") as server:
        text = "".join(OpenAIBackend("m", base_url=server.url, retries=0).stream(
            MESSAGES, [], GenerationOptions(max_new_tokens=64, timeout=20)))
    assert "\u202e" in text  # the backend passes it on; what is shown and saved goes through printable
    assert printable(text) == "The total is 24 [1]."
    assert printable("\u05e9\u05dc\u05d5\u05dd \u2067x\u2069") == "\u05e9\u05dc\u05d5\u05dd x"  # RTL text itself stays


# --- an indexed image replaced by one too large to open ---

@pytest.fixture
def image_index(tmp_path) -> tuple[Path, Path]:
    from fault_kit import page_image

    from index.builder import BuildOptions, build

    scan = tmp_path / "docs" / "scan.png"
    scan.parent.mkdir()
    page_image(["Harbour crane inspection report"]).save(scan)
    build(tmp_path / "index", [scan.parent], BuildOptions(ocr="none"))
    return tmp_path / "index", scan


@pytest.mark.slow
def test_an_image_swapped_for_a_bomb_is_one_line_and_a_410(image_index, tmp_path):
    from PIL import Image
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    index, scan = image_index
    Image.new("1", (20000, 20000)).save(scan)  # 400 Mpx in a few hundred kB
    result = CliRunner().invoke(cli, ["show", str(scan), "--index", str(index), "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and "too large to open safely" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    with TestClient(create_app(WebState(Index.open(index)))) as client:
        reply = client.get("/page/1/image?w=300")
    assert reply.status_code == 410 and "re-run `pagerag index build`" in reply.json()["error"]


# --- output paths that would overwrite the index or the input ---

@pytest.mark.slow
def test_outputs_never_overwrite_the_index_or_the_input(pdf_index):
    index, pdfs = pdf_index
    before = (index / "index.db").read_bytes()
    show = CliRunner().invoke(cli, ["show", str(pdfs[0]), "--index", str(index), "-o", str(index / "index.db")])
    assert show.exit_code == 1 and "is in the index folder" in show.output
    itself = CliRunner().invoke(cli, ["show", str(pdfs[0]), "--index", str(index), "-o", str(pdfs[0])])
    assert itself.exit_code == 1 and "which this command reads" in itself.output
    pictures = CliRunner().invoke(cli, ["ask", "annual budget?", "--index", str(index), "--save-evidence", str(index)])
    assert pictures.exit_code == 1 and "is an index folder" in pictures.output
    qa = index.parent / "qa.jsonl"
    qa.write_text('{"id": "1", "question": "annual budget", "gold_page": "docs/budget.pdf"}\n')
    base = ["eval", str(qa), "--root", str(index.parent), "--index", str(index), "--mode", "lexical"]
    for target in (index / "index.db", qa):
        result = CliRunner().invoke(cli, [*base, "--report", str(target)])
        assert result.exit_code == 2 and "--report" in result.output, result.output
    assert (index / "index.db").read_bytes() == before and qa.read_text().startswith('{"id": "1"')
    ok = CliRunner().invoke(cli, [*base, "--report", str(index.parent / "report.jsonl")])
    assert ok.exit_code == 0 and (index.parent / "report.jsonl").read_text()


# --- a conversation whose rows were changed by hand ---

@pytest.mark.slow
@pytest.mark.parametrize("damage, said", [
    ("sources = 'not json'", "is not JSON"),
    ("sources = '[1, 2]'", "sources is not a list of {n, path, page}"),
    ("sources = '[{\"n\": 1, \"path\": 5, \"page\": \"x\"}]'", "sources is not a list of {n, path, page}"),
    ("removed_citations = '{\"a\": 1}'", "removed_citations is not a list of numbers"),
    ("retrieval_seconds = 'abc'", "a duration is not a number"),
])
def test_a_damaged_conversation_row_is_named_everywhere(pdf_index, damage, said):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index
    from rag.conversations import ConversationStore, Turn

    index, pdfs = pdf_index
    cid, _ = ConversationStore(index).start("q", Turn("q", "q", "It was $27,500 [1].",
                                                       sources=[{"n": 1, "path": str(pdfs[0]), "page": 1,
                                                                 "image": True, "score": 0.5}]))
    with sqlite3.connect(index / "conversations.db") as db:
        db.execute(f"UPDATE turns SET {damage}")
    shown = CliRunner().invoke(cli, ["conversations", "show", cid, "--index", str(index)])
    asked = CliRunner().invoke(cli, ["ask", "--cid", cid, "and the parking lot?", "--index", str(index)])
    for result in (shown, asked):
        assert result.exit_code == 1 and f"conversation {cid}" in result.output and said in result.output
        assert "the answer was not saved" not in result.output  # nothing was asked
        assert result.exception is None or isinstance(result.exception, SystemExit)
    with TestClient(create_app(WebState(Index.open(index)))) as client:
        for url in (f"/conversations/{cid}.json", f"/conversations/{cid}/turns/1/sources/1.json"):
            reply = client.get(url)
            assert reply.status_code == 503 and said in reply.json()["error"], url


# --- the web app's snippets ---

def test_query_words_are_never_marked_inside_an_html_entity():
    from cli.web.filters import mark

    marked = str(mark("the children's wing & \"39\" <b>", "children 39 amp quot lt"))
    assert marked == ("the <mark>children</mark>&#39;s wing &amp; &#34;<mark>39</mark>&#34; &lt;b&gt;")


# --- serve, spoken to as a browser on another site would ---

def request(port: int, method: str, path: str, headers: dict, body: bytes | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers,
                     encode_chunked=headers.get("Transfer-Encoding") == "chunked")
        reply = conn.getresponse()
        data = reply.read()
        return reply.status, json.loads(data) if reply.getheader("content-type", "").startswith(JSON_TYPE) else {}
    finally:
        conn.close()


def chunked(total: int):
    block = b"a" * 65536
    for _ in range(total // len(block)):
        yield block


@pytest.mark.slow
def test_serve_refuses_other_hosts_other_origins_and_huge_bodies(pdf_index):
    index, _ = pdf_index
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--index", str(index), "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    try:
        line = proc.stderr.readline().decode()
        assert "Serving" in line, line
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        own = f"127.0.0.1:{port}"
        question = json.dumps({"question": "What was the annual budget?"}).encode()
        as_json = {"Content-Type": JSON_TYPE}
        status, body = request(port, "GET", "/search.json?q=budget", {"Host": f"evil.example:{port}"})
        assert status == 421 and "answers only to localhost" in body["error"]  # DNS rebinding
        for host in (own, f"localhost:{port}"):
            assert request(port, "GET", "/status.json", {"Host": host})[0] == 200
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:  # HTTP/1.0 without Host: no browser
            sock.sendall(b"GET /status.json HTTP/1.0\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
        status, body = request(port, "POST", "/chat/ask", {"Host": own, "Content-Type": "text/plain"}, question)
        assert status == 415 and "application/json" in body["error"]  # a cross-site form or no-cors fetch
        status, body = request(port, "POST", "/chat/ask", {"Host": own, "Origin": "http://evil.example",
                                                            **as_json}, question)
        assert status == 403 and "another site" in body["error"]
        # a length past the limit is refused on the headers (nothing of it read); a chunked body once past it
        assert request(port, "POST", "/chat/ask", {"Host": own, **as_json, "Content-Length": str(2 << 30)}, b"")[0] \
            == 413
        status, body = request(port, "POST", "/chat/ask", {"Host": own, **as_json, "Transfer-Encoding": "chunked"},
                               chunked((1 << 20) + (1 << 17)))
        assert status == 413 and "over 1048576 bytes" in body["error"]
        status, _ = request(port, "POST", "/chat/ask", {"Host": own, "Origin": f"http://{own}", **as_json}, question)
        assert status == 200  # the app's own page asking
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- question sets ---

@pytest.mark.parametrize("gold", ["docs/budget.pdf#page=0", "docs/budget.pdf#page=", "docs/budget.pdf#page=\u00b2"])
def test_a_gold_page_that_is_no_page_number_is_an_error(tmp_path, gold):
    from rag.evaluate import EvalDataError, load_questions

    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"id": "1", "question": "budget", "gold_page": gold}) + "\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"qa.jsonl, line 1: .* should end in #page=N"):
        load_questions(qa, tmp_path)


# --- queries far longer than a question ---

def test_only_the_start_of_a_huge_query_is_searched():
    from rag.query import MAX_QUERY_CHARS, clipped

    words = "budget " * 100_000
    assert clipped("annual budget") == "annual budget"
    cut = clipped(words)
    assert len(cut) <= MAX_QUERY_CHARS and cut.endswith("budget") and words.startswith(cut)
    assert len(clipped("x" * 10_000)) == MAX_QUERY_CHARS  # no space to cut at


@pytest.mark.slow
def test_a_huge_batch_line_is_searched_by_its_start_with_a_note(pdf_index):
    index, _ = pdf_index
    result = CliRunner().invoke(cli, ["search", "--batch", "--index", str(index), "-k", "1"],
                                input="annual budget " + "zqxjkv " * 200_000 + "\nparking\n")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 2
    assert json.loads(lines[0])[0]["path"].endswith("budget.pdf") and json.loads(lines[1])[0]["path"].endswith(
        "parking.pdf")
    assert "a query line is 1,400,013 characters long; its first 2,000 are searched" in result.stderr


@pytest.mark.slow
def test_only_the_first_absent_words_are_respelled(pdf_index):
    from index.spelling import MAX_RESPELLED, respell
    from index.store import Index

    index, _ = pdf_index
    # 20 different typos of 'budget', each one edit away from it
    typos = [f"budg{c}t" for c in "abcdfghijklmnopqrsuv"]
    found = respell(Index.open(index).db, typos)
    assert list(found) == typos[:MAX_RESPELLED] and set(found.values()) == {"budget"}


@pytest.mark.parametrize("option", [["--timeout", "nan"], ["--temperature", "NaN"], ["--min-score", "nan"]])
def test_nan_is_not_a_number_for_any_option(tmp_path, option):
    for command in (["ask", "question"], ["chat"], ["serve"]):
        result = CliRunner().invoke(cli, [*command, *option, "--index", str(tmp_path)])
        assert result.exit_code == 2 and f"Invalid value for '{option[0]}'" in result.output
        assert "is not a number" in result.output


@pytest.mark.slow
def test_a_stored_question_cannot_reorder_the_terminal_line(pdf_index):
    from rag.conversations import ConversationStore, Turn

    index, _ = pdf_index
    question = "What is the total? \u202egnp.exe"
    ConversationStore(index).start(question, Turn(question, question, "It is 42."))
    listed = CliRunner().invoke(cli, ["conversations", "--index", str(index)])
    assert "What is the total? \\u202egnp.exe" in listed.output and "\u202e" not in listed.output
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    with TestClient(create_app(WebState(Index.open(index)))) as client:
        page = client.get("/conversations").text
    assert "What is the total? \\u202egnp.exe" in page and "\u202e" not in page  # the web app alike


@pytest.mark.slow
def test_serve_in_limits_what_the_web_app_searches_and_shows(pdf_index, tmp_path):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    index, pdfs = pdf_index
    missing = CliRunner().invoke(cli, ["serve", "--index", str(index), "--in", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "nothing is indexed at or under" in missing.output
    idx = Index.open(index)
    with TestClient(create_app(WebState(idx, within=[str(pdfs[0])]))) as client:
        hits = client.get("/search.json?q=parking+lot+budget").json()["hits"]
        assert hits and {Path(h["path"]).name for h in hits} == {"budget.pdf"}
        other = idx.page(str(pdfs[1]), 1)["id"]
        for url in (f"/page/{other}.json", f"/page/{other}/image"):
            assert client.get(url).status_code == 404, url
        assert client.get(f"/page/{idx.page(str(pdfs[0]), 1)['id']}.json").status_code == 200


@pytest.mark.slow
def test_a_digit_that_int_refuses_is_no_source_number_in_chat(pdf_index):
    index, _ = pdf_index
    with Scripted("normal") as server:
        result = CliRunner().invoke(cli, ["chat", "--index", str(index), "--backend", "openai", "--base-url",
                                          server.url, "-m", "m", "--min-score", "-1"],
                                    input="What was the annual budget?\n/page \u00b2\n/page 1\n/exit\n")
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "Usage: /page N" in result.output and "The annual budget of $27,500 was approved." in result.output


def test_superscript_digits_are_no_page_numbers():
    from index.structure import label_facts, printed_numbers
    from index.words import Word

    header = [Word("Annual", 0.1, 0.02, 0.2, 0.04, 1, 0), Word("Report", 0.21, 0.02, 0.3, 0.04, 1, 0),
              Word("\u00b2", 0.9, 0.02, 0.92, 0.04, 1, 0), Word("Body", 0.1, 0.5, 0.2, 0.52, 1, 1)]
    assert printed_numbers(header) == [] and label_facts("\u00b2") == [("label", "\u00b2")]
    assert label_facts("14") == [("printed", "14")]


def test_a_proxy_password_is_not_printed(monkeypatch):
    from openai_server import closed_port_url

    dead = closed_port_url().replace("http://", "http://puser:proxy-pass-7@").rsplit("/v1", 1)[0]
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, dead)
    backend = OpenAIBackend("m", base_url="http://gpu-box.invalid:8000/v1", retries=0)
    with pytest.raises(ModelUnavailable) as info:
        "".join(backend.stream(MESSAGES, [], GenerationOptions(max_new_tokens=8, timeout=20)))
    assert "through the proxy http://puser:***@127.0.0.1" in str(info.value) and "proxy-pass-7" not in str(info.value)


@pytest.mark.slow
def test_searching_an_index_built_from_nothing_says_so(tmp_path):
    from index.builder import BuildOptions, build

    (tmp_path / "empty").mkdir()
    build(tmp_path / "index", [tmp_path / "empty"], BuildOptions(ocr="none"))
    for args, kw in ((["total"], {}), (["--batch"], {"input": "total\n"})):
        result = CliRunner().invoke(cli, ["search", *args, "--index", str(tmp_path / "index")], **kw)
        assert result.exit_code == 0 and "has no pages yet: build it" in result.stderr
        assert "No pages match" not in result.stderr
