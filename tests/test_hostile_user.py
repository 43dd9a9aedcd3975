"""The query side against what a hostile new user (or a web page in their browser) does: an
indexed image swapped for a bomb, output paths that would overwrite the index, conversations
damaged row by row, a `serve` reached with another Host name, from another origin or with a huge
body, gold pages and page numbers that are no numbers, queries far longer than a question or full
of misspellings, NaN options, stored questions that would reorder the terminal line, and an index
built from nothing. A hostile model server and leaked secrets: test_hostile_server.py.

Real parts: real indexes of text PDFs and an image, real SQLite files, a scripted HTTP server on
127.0.0.1 for the chat, `pagerag serve` in a subprocess spoken to over real sockets.
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
from scripted_server import Scripted

REPO = Path(__file__).resolve().parents[1]
JSON_TYPE = "application/json"


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


@pytest.mark.slow
def test_searching_an_index_built_from_nothing_says_so(tmp_path):
    from index.builder import BuildOptions, build

    (tmp_path / "empty").mkdir()
    build(tmp_path / "index", [tmp_path / "empty"], BuildOptions(ocr="none"))
    for args, kw in ((["total"], {}), (["--batch"], {"input": "total\n"})):
        result = CliRunner().invoke(cli, ["search", *args, "--index", str(tmp_path / "index")], **kw)
        assert result.exit_code == 0 and "has no pages yet: build it" in result.stderr
        assert "No pages match" not in result.stderr
