"""The query side under hostile input and misbehaving servers, as a new user meets them: each case
one clear line (no traceback), a consistent exit code, nothing empty or wrong saved as a turn.

Real parts throughout: a scripted HTTP server on 127.0.0.1 that answers the chat request with the raw
bytes a case needs (a redirect, an in-stream error object, a content filter, a lying Content-Encoding,
control characters), real indexes of text PDFs, real SQLite files damaged or locked by another
connection, the CLI in a subprocess where stdin has to be closed.
"""
from __future__ import annotations

import codecs
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.errors import BadArgument, NotIndexed
from openai_helpers import clean_env  # noqa: F401 - no PAGERAG_*/OPENAI_* or proxy variables leak in
from rag.backends import GenerationOptions, ModelUnavailable
from rag.backends.openai import OpenAIBackend
from rag.conversations import ConversationStore, ConversationsUnavailable, Turn

REPO = Path(__file__).resolve().parents[1]
QUESTION = "What was the annual budget that was approved?"
MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "What is the total?"}]}]


def chunk(content=None, finish=None, **delta) -> bytes:
    if content is not None:
        delta["content"] = content
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def completion(content, finish="stop") -> bytes:
    return json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}]}).encode()


def sse(*events: bytes) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "text/event-stream"}, b"".join(events) + b"data: [DONE]\n\n"


# the chat replies of the cases: (status, headers, body)
REPLIES = {
    "normal": sse(chunk("The budget was "), chunk("$27,500 [1]."), chunk(None, "stop")),
    "redirect-301": (301, {"Location": "http://127.0.0.2:{port}/v1/chat/completions"}, b""),
    "redirect-307": (307, {"Location": "/elsewhere/v1/chat/completions"}, b""),
    "error-object": sse(chunk("The "), b'data: {"object": "error", "message": "backend overloaded", "code": 503}\n\n'),
    "content-filter": sse(chunk("The budget"), chunk(None, "content_filter")),
    "length": sse(chunk("The budget was"), chunk(None, "length")),
    "tool-calls": sse(chunk(None, None, tool_calls=[{"index": 0, "id": "t", "type": "function",
                                                     "function": {"name": "f", "arguments": "{}"}}]),
                      chunk(None, "tool_calls")),
    "gzip-lie": (200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, completion("The total [1].")),
    "gzip-real": (200, {"Content-Type": "application/json", "Content-Encoding": "gzip"},
                  gzip.compress(completion("The total [1]."))),
    "content-parts": (200, {"Content-Type": "application/json"}, json.dumps({"choices": [
        {"message": {"content": [{"type": "text", "text": "Part one [1]."}]}, "finish_reason": "stop"}]}).encode()),
    "escapes-in-error": (500, {"Content-Type": "application/json"},
                         b'{"error": {"message": "overloaded\\u001b[2J\\u001b[31m now\\nreally"}}'),
    "too-large": (413, {"Content-Type": "application/json"}, b'{"error": {"message": "request entity too large"}}'),
    "control-chars": sse(chunk("The budget\x00 was \x1b[31m$27,500\x1b[0m\r\n [1]."), chunk(None, "stop")),
}


class Scripted(ThreadingHTTPServer):
    """An OpenAI-compatible server on 127.0.0.1 that answers every chat request with REPLIES[reply]."""

    daemon_threads = True

    def __init__(self, reply: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.reply = reply
        self.chat_requests = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def log_message(self, *args):
        pass

    def _send(self, status: int, headers: dict, body: bytes):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value.replace("{port}", str(self.server.server_address[1])))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(200, {"Content-Type": "application/json"}, b'{"object": "list", "data": [{"id": "m"}]}')

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.chat_requests += 1
        if self.server.reply == "endless-line":  # one event that never ends: no newline, ever
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(b"data: ")
                while True:
                    self.wfile.write(b"a" * 65536)
            except OSError:  # the client stopped reading
                return
        self._send(*REPLIES[self.server.reply])


def answer(reply: str, **backend_options) -> tuple[str, OpenAIBackend, Scripted]:
    with Scripted(reply) as server:
        backend = OpenAIBackend("m", base_url=server.url, retries=0, **backend_options)
        text = "".join(backend.stream(MESSAGES, [], GenerationOptions(max_new_tokens=64, timeout=20)))
    return text, backend, server


def failure(reply: str) -> tuple[str, Scripted]:
    with Scripted(reply) as server:
        backend = OpenAIBackend("m", base_url=server.url, retries=0)
        with pytest.raises(ModelUnavailable) as info:
            "".join(backend.stream(MESSAGES, [], GenerationOptions(max_new_tokens=64, timeout=20)))
    return str(info.value), server


# --- the OpenAI-compatible backend: replies that are not plain answers ---

def test_an_event_that_never_ends_is_stopped_at_a_byte_limit_not_held_in_memory():
    import time

    started = time.monotonic()
    message, _ = failure("endless-line")  # max_new_tokens 64: 16 MiB + 64 x 4 KiB
    assert "sent more than 17039360 bytes for a 64-token answer" in message
    assert time.monotonic() - started < 15  # long before the 20 s timeout


def test_a_redirect_is_not_followed_and_names_the_new_base_url():
    message, server = failure("redirect-301")
    port = server.server_address[1]
    assert "redirects /chat/completions (HTTP 301)" in message
    assert f"use --base-url http://127.0.0.2:{port}/v1" in message
    assert server.chat_requests == 1  # not re-sent anywhere (a 301 would have turned the POST into a GET)


def test_a_relative_307_redirect_is_reported_with_its_full_target():
    message, server = failure("redirect-307")
    assert f"use --base-url http://127.0.0.1:{server.server_address[1]}/elsewhere/v1" in message
    assert server.chat_requests == 1


def test_an_error_object_inside_the_stream_is_an_error_not_the_end_of_the_answer():
    message, _ = failure("error-object")
    assert "failed in the middle of the answer: backend overloaded" in message


def test_a_content_filter_stop_drops_the_partial_answer():
    message, _ = failure("content-filter")
    assert "content filter" in message and "dropped" in message


def test_a_stop_at_max_tokens_is_told_by_finish_reason():
    text, backend, _ = answer("length")
    assert text == "The budget was" and backend.finish_reason == "length"
    text, backend, _ = answer("normal")
    assert backend.finish_reason == "stop"


def test_a_tool_call_instead_of_text_says_so():
    message, _ = failure("tool-calls")
    assert "finish_reason 'tool_calls'" in message and "asked to call a tool" in message


def test_a_body_that_does_not_decode_as_its_content_encoding_says_is_named():
    message, _ = failure("gzip-lie")
    assert "does not decode as its Content-Encoding (gzip)" in message
    assert answer("gzip-real")[0] == "The total [1]."  # a real gzip body is read as usual


def test_content_given_as_parts_is_read():
    assert answer("content-parts")[0] == "Part one [1]."


def test_a_servers_error_message_cannot_drive_the_terminal():
    message, _ = failure("escapes-in-error")
    assert "overloaded\\x1b[2J\\x1b[31m now\\nreally" in message and "\x1b" not in message and "\n" not in message


def test_a_413_says_to_send_fewer_images():
    message, _ = failure("too-large")
    assert "too large" in message and "--images 1" in message


def test_a_dead_proxy_is_named_not_the_server(monkeypatch):
    import socket

    with socket.socket() as sock:  # a local port nothing listens on: the "proxy" refuses at once
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    backend = OpenAIBackend("m", base_url="http://192.0.2.1:8000/v1", retries=0)  # TEST-NET: reached via the proxy
    with pytest.raises(ModelUnavailable) as info:
        "".join(backend.stream(MESSAGES, [], GenerationOptions(max_new_tokens=8, timeout=20)))
    assert f"through the proxy {dead} (from HTTP_PROXY" in str(info.value) and "NO_PROXY" in str(info.value)


def test_the_reachability_check_counts_against_the_answers_timeout():
    """A server that accepts and never answers: `ready` (GET /models) and the answer share one --timeout."""
    import socket
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", retries=0)
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match=r"did not answer GET /models within 1 s \(--timeout 1\)"):
            backend.ready(GenerationOptions(timeout=1))
        assert time.monotonic() - started < 3  # not the 10 s the check takes on its own
    with Scripted("normal") as server:
        backend = OpenAIBackend("m", base_url=server.url, retries=0)
        options = backend.ready(GenerationOptions(timeout=30))
        assert options.deadline is not None and options.timeout == 30
        assert "".join(backend.stream(MESSAGES, [], options)) == "The budget was $27,500 [1]."


# --- ask over those replies: exit codes, what is printed and what is saved ---

def run_cli(*args, input: bytes | None = None, close_stdin=False, timeout=180):
    """The CLI in a subprocess; `close_stdin`: file descriptor 0 closed, as `<&-` in a shell does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGERAG_", "OPENAI_"))}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    stdin = None if input is not None else subprocess.DEVNULL
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], input=input, stdin=stdin,
                          capture_output=True, env=env, timeout=timeout,
                          preexec_fn=(lambda: os.close(0)) if close_stdin else None)


def ask_with(server, index, *extra):
    return CliRunner().invoke(cli, ["ask", QUESTION, "--backend", "openai", "--base-url", server.url, "-m", "m",
                                    "--index", str(index), *map(str, extra)], catch_exceptions=False)


@pytest.mark.slow
def test_control_characters_from_the_model_reach_neither_terminal_nor_conversation(pdf_index):
    index, _ = pdf_index
    with Scripted("control-chars") as server:
        result = ask_with(server, index)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first == "The budget was [31m$27,500[0m", repr(result.output)
    assert "invalid citations removed" not in result.output  # a NUL no longer confuses the citation check
    ((conv, _),) = ConversationStore(index).list()
    saved = ConversationStore(index).get(conv.id).turns[0].answer
    assert "\x00" not in saved and "\x1b" not in saved and "\r" not in saved and "[1]" in saved


@pytest.mark.slow
@pytest.mark.parametrize("reply", ["error-object", "content-filter"])
def test_a_failed_answer_is_exit_4_and_not_saved(pdf_index, reply):
    index, _ = pdf_index
    with Scripted(reply) as server:
        result = ask_with(server, index)
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output and "No answer: the model could not be used." in result.output
    assert ConversationStore(index).list() == []


@pytest.mark.slow
def test_an_answer_cut_at_the_token_limit_is_kept_and_said(pdf_index):
    index, _ = pdf_index
    with Scripted("length") as server:
        result = ask_with(server, index, "--max-new-tokens", 40)
        as_json = ask_with(server, index, "--json")
    assert result.exit_code == 0
    assert "cut off at the 40-token limit: raise --max-new-tokens" in result.output
    assert json.loads(as_json.output)["truncated"] is True
    assert len(ConversationStore(index).list()) == 2


# --- standard input: closed, UTF-16 ---

@pytest.mark.slow
@pytest.mark.parametrize("command", [["search", "--batch"], ["chat"]])
def test_a_closed_stdin_reads_as_empty(pdf_index, command):
    """`<&-` (cron, a daemon): stdin is /dev/null (cli.process), so a batch has no queries and chat ends."""
    index, _ = pdf_index
    done = run_cli(*command, "--index", index, close_stdin=True)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "Traceback" not in err and done.stdout.decode().strip() in ("", ">")


@pytest.mark.slow
def test_a_utf16_batch_answers_line_for_line(pdf_index):
    index, _ = pdf_index
    data = "annual budget\r\nparking lot resurfaced\r\n".encode("utf-16")
    assert data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    done = run_cli("search", "--batch", "-k", "1", "--index", index, input=data)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stderr.decode()
    assert json.loads(lines[0])[0]["path"].endswith("budget.pdf")
    assert json.loads(lines[1])[0]["path"].endswith("parking.pdf")
    assert "not valid UTF-8" not in done.stderr.decode()


# --- paths and numbers that would mean something else ---

@pytest.mark.slow
def test_an_empty_path_is_refused_not_read_as_the_current_folder(pdf_index):
    from index.store import Index

    index, _ = pdf_index
    runner = CliRunner()
    search = runner.invoke(cli, ["search", "budget", "--in", "", "--index", str(index)])
    assert search.exit_code == 2 and "empty path" in search.output
    ask = runner.invoke(cli, ["ask", "budget?", "--save-evidence", "", "--index", str(index)])
    assert ask.exit_code == 2 and "empty path" in ask.output
    with pytest.raises(BadArgument):
        Index.open(index).documents_under([""])


@pytest.mark.slow
def test_page_numbers_past_sqlite_integers_are_not_in_the_index(pdf_index):
    from index.store import Index

    index, pdfs = pdf_index
    idx = Index.open(index)
    for call in (lambda: idx.page(str(pdfs[0]), 10**20), lambda: idx.page_by_id(10**20),
                 lambda: idx.page(str(pdfs[0]), -(10**20))):
        with pytest.raises(NotIndexed):
            call()
    result = CliRunner().invoke(cli, ["show", str(pdfs[0]), str(10**20), "--index", str(index)])
    assert result.exit_code == 1 and "is not in the index" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- eval question files ---

def write_qa(folder: Path, *lines: str, corpus: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qa.jsonl").write_text("".join(line + "\n" for line in lines))
    if corpus is not None:
        (folder / "corpus.jsonl").write_bytes(corpus)
    return folder / "qa.jsonl"


GOOD = '{"id": "%s", "question": "annual budget", "gold_page": "docs/budget.pdf", "doc_id": "d"}'


@pytest.mark.parametrize("lines, corpus, said", [
    (['{"id": "a", "question": 5, "gold_page": "docs/budget.pdf"}'], None, '"question" should be text, got 5'),
    ([GOOD % "a", GOOD % "a"], None, "line 2: id 'a' is already used on line 1"),
    ([GOOD % "a"], b'{"page": "docs/budget.pdf", "doc_id": "d"\n', "corpus.jsonl, line 1: not JSON"),
    ([GOOD % "a"], b"[1]\n", "corpus.jsonl, line 1: each line should be an object"),
    ([GOOD % "a"], "{}".encode("utf-16"), "corpus.jsonl is not UTF-8 JSON lines"),
])
def test_a_malformed_question_set_is_named_by_file_and_line(tmp_path, lines, corpus, said):
    from rag.evaluate import EvalDataError, load_questions

    qa = write_qa(tmp_path / "set", *lines, corpus=corpus)
    with pytest.raises(EvalDataError) as info:
        load_questions(qa)
    assert said in str(info.value)


@pytest.mark.slow
def test_gold_pages_the_index_lacks_are_warned_about(pdf_index):
    index, pdfs = pdf_index
    root = pdfs[0].parent.parent
    qa = write_qa(root / "set", '{"id": "1", "question": "annual budget", "gold_page": "docs/budget.pdf#page=99"}',
                  '{"id": "2", "question": "parking lot", "gold_page": "docs/parking.pdf"}')
    result = CliRunner().invoke(cli, ["eval", str(qa), "--root", str(root), "--index", str(index),
                                      "--mode", "lexical", "--scope", "corpus"])
    assert result.exit_code == 0, result.output
    assert "1 gold page(s) are not in the index (e.g. question 1:" in result.output
    assert "budget.pdf#page=99" in result.output


# --- conversations.db: damaged, a folder, locked ---

def test_a_damaged_conversations_file_is_named_and_the_index_is_not_blamed(tmp_path):
    (tmp_path / "conversations.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConversationsUnavailable) as info:
        ConversationStore(tmp_path)
    assert "the conversations file" in str(info.value) and "is damaged" in str(info.value)
    assert "the index itself is fine" in str(info.value) and "Rebuild" not in str(info.value)


def test_damage_inside_a_conversations_file_is_found_on_opening(tmp_path):
    store = ConversationStore(tmp_path)
    for i in range(60):
        store.start(f"question {i} " + "x" * 500, Turn(f"q{i}", f"q{i}", "answer " * 100))
    store.db.close()
    with open(tmp_path / "conversations.db", "r+b") as f:
        f.seek(8192)
        f.write(b"\xde\xad" * 4000)
    with pytest.raises(ConversationsUnavailable, match="is damaged"):
        ConversationStore(tmp_path)


def test_a_conversations_folder_is_named(tmp_path):
    (tmp_path / "conversations.db").mkdir()
    with pytest.raises(ConversationsUnavailable, match="is a folder"):
        ConversationStore(tmp_path)


def test_a_locked_conversations_file_waits_a_bounded_time_then_says_locked(tmp_path, monkeypatch):
    import rag.conversations as conversations

    store = ConversationStore(tmp_path)
    monkeypatch.setattr(conversations, "LOCK_WAIT", 0.3)
    store.db.execute("PRAGMA busy_timeout = 300")
    other = sqlite3.connect(tmp_path / "conversations.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ConversationsUnavailable, match="locked by another process"):
            store.start("q", Turn("q", "q", "a"))
    finally:
        other.execute("ROLLBACK")
    assert store.list() == []  # nothing half-saved: no conversation without its turn
    cid, n = store.start("q", Turn("q", "q", "a"))
    assert n == 1 and store.get(cid).turns[0].answer == "a"


@pytest.mark.slow
def test_ask_with_a_damaged_conversations_file_stops_before_the_model(pdf_index):
    index, _ = pdf_index
    (index / "conversations.db").write_bytes(b"garbage" * 1000)
    with Scripted("normal") as server:
        result = ask_with(server, index)
        assert server.chat_requests == 0
    assert result.exit_code == 1 and "the conversations file" in result.output and "damaged" in result.output


# --- the web app and serve ---

def test_deeply_nested_json_to_chat_ask_is_400(pdf_index):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    index, _ = pdf_index
    with TestClient(create_app(WebState(Index.open(index)))) as client:
        reply = client.post("/chat/ask", content=b"[" * 100_000 + b"]" * 100_000,
                            headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "nested too deep" in reply.json()["error"]


def test_a_method_a_route_does_not_take_is_405_with_allow(pdf_index):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    index, _ = pdf_index
    with TestClient(create_app(WebState(Index.open(index)))) as client:
        for method, path, allowed in [("POST", "/search", "GET"), ("DELETE", "/search.json", "GET"),
                                      ("GET", "/chat/ask", "POST")]:
            reply = client.request(method, path)
            assert reply.status_code == 405 and allowed in reply.headers["allow"], (method, path)


@pytest.mark.slow
def test_serve_refuses_a_bad_base_url_before_serving(pdf_index):
    index, _ = pdf_index
    done = run_cli("serve", "--index", index, "--backend", "openai", "--base-url", "junk", timeout=60)
    assert done.returncode == 1 and "must start with http:// or https://" in done.stderr.decode()
    assert "Serving" not in done.stderr.decode()


@pytest.mark.slow
def test_a_long_lived_reader_sees_pages_built_after_it_loaded(pdf_index):
    """`serve` (or `chat`) keeps one Index open; a build by another process must not leave its dense
    search on the vectors it loaded first."""
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    index, pdfs = pdf_index
    reader = Retriever(Index.open(index))
    query = "orchard irrigation pump replacement"
    assert all(not h.path.endswith("orchard.pdf") for h in reader.search(query, k=3, mode="dense"))
    new = text_pdf(pdfs[0].parent / "orchard.pdf", ["The orchard irrigation pump replacement cost $4,100."])
    build(index, [new], BuildOptions(ocr="none"))  # its own Index handle, as another process would have
    hits = reader.search(query, k=3, mode="dense")
    assert hits and hits[0].path.endswith("orchard.pdf")
    fresh = Retriever(Index.open(index)).search(query, k=3, mode="dense")
    assert [(h.path, h.page) for h in hits] == [(h.path, h.page) for h in fresh]


# --- the transformers backend: a damaged model folder ---

@pytest.mark.slow
@pytest.mark.parametrize("damage, said", [
    ("truncate-weights", "SafetensorError"),
    ("garbage-config", "config.json"),
    ("file", "is a file, not a folder"),
])
def test_a_damaged_model_folder_is_one_line(tiny_folders, tmp_path, damage, said):
    import shutil

    from rag.backends.hf import TransformersBackend

    folder = tmp_path / "model"
    shutil.copytree(tiny_folders["mllama"], folder)
    if damage == "truncate-weights":
        with open(folder / "model.safetensors", "r+b") as f:
            f.truncate(5000)
    elif damage == "garbage-config":
        (folder / "config.json").write_text("{garbage")
    else:
        folder = folder / "config.json"
    with pytest.raises(ModelUnavailable, match=said):
        TransformersBackend(str(folder)).load()


@pytest.mark.slow
def test_an_eval_report_that_cannot_be_written_is_named(pdf_index):
    index, pdfs = pdf_index
    root = pdfs[0].parent.parent
    qa = write_qa(root / "set", '{"id": "1", "question": "annual budget", "gold_page": "docs/budget.pdf"}')
    base = ["eval", str(qa), "--root", str(root), "--index", str(index), "--mode", "lexical", "--scope", "corpus"]
    empty = CliRunner().invoke(cli, [*base, "--report", ""])
    assert empty.exit_code == 2 and "is a folder; name the file to write" in empty.output
    assert empty.exception is None or isinstance(empty.exception, SystemExit)
    if os.path.exists("/dev/full"):
        full = CliRunner().invoke(cli, [*base, "--report", "/dev/full"])
        assert full.exit_code == 1 and "cannot write --report /dev/full: No space left on device" in full.output
        assert "R@1" in full.output  # the table is still printed
