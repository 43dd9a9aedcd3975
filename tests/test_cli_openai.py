"""The commands against servers that reply badly, and queries that are not UTF-8: one clear line,
a non-zero exit where nothing was answered, no traceback, and no empty answer saved as a turn."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from cli.main import cli
from openai_helpers import EchoBackend, FixedReply, clean_env  # noqa: F401
from openai_server import OpenAIServer
from rag.conversations import ConversationStore

pytestmark = pytest.mark.slow
Q_PARKING = "What did the library board decide about the parking lot?"
NOT_UTF8 = "parking \udcff lot"  # what Python makes of b"parking \xff lot" on argv (PEP 383)
REPLACED = "Warning: {what} is not valid UTF-8; the bytes that are not were replaced by U+FFFD."


@pytest.fixture
def index_copy(tmp_path, sample_index):
    dest = tmp_path / "index"
    shutil.copytree(sample_index, dest, ignore=shutil.ignore_patterns("conversations.db*", "write.lock"))
    return dest


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def ask(server, index, *extra):
    return invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "pagerag-test",
                  "--index", index, *extra)


@pytest.mark.parametrize("reply, said", [
    ("html", "answered a web page titled 'Open WebUI', not an OpenAI-compatible reply"),
    ("empty", "sent no text: the stream ended with an empty answer"),
    ("no-content", "sent no text: it finished (finish_reason 'stop') with an empty answer"),
    ("endless", "kept streaming past the 16-token limit (--max-new-tokens 16; 33 chunks"),
])
def test_a_bad_reply_is_one_line_exit_4_and_no_saved_turn(index_copy, reply, said):
    with OpenAIServer(EchoBackend(), reply=reply) as server:
        result = ask(server, index_copy, "--max-new-tokens", 16)
    assert result.exit_code == 4
    (line,) = [line for line in result.output.splitlines() if line.startswith("No answer:")]
    assert said in line and "Traceback" not in result.output
    assert "Evidence found:" in result.output
    assert ConversationStore(index_copy).list() == []


def test_timeout_fires_on_a_keep_alive_stream(index_copy):
    with OpenAIServer(EchoBackend(), reply="keepalive") as server:
        started = time.monotonic()
        result = ask(server, index_copy, "--timeout", 3)  # the model list and the headers fit in 3 s on a busy machine
        elapsed = time.monotonic() - started
    assert result.exit_code == 4 and elapsed < 3 + 10  # retrieval (a few s on this machine) plus the deadline
    assert f"the server at {server.url} sent no text within 3 s (--timeout 3), only the start of a reply" in result.output
    assert ConversationStore(index_copy).list() == []


def test_more_images_than_ollamas_llama_vision_takes_is_refused(index_copy):
    with OpenAIServer(EchoBackend(), models=["llama3.2-vision"]) as server:
        result = invoke("ask", Q_PARKING, "--backend", "openai", "--base-url", server.url, "-m", "llama3.2-vision",
                        "--images", 2, "--index", index_copy)
        assert server.chat_requests() == []
    assert result.exit_code == 4 and "(--images 2): use --images 1" in result.output


# --- queries that are not UTF-8 ---

def test_search_with_bytes_that_are_not_utf8(index_copy):
    plain = invoke("search", "parking lot", "--json", "--index", index_copy)
    result = invoke("search", NOT_UTF8, "--json", "--index", index_copy)
    assert result.exit_code == 0
    assert result.output.startswith(REPLACED.format(what="the query") + "\n")
    hits = json.loads(result.output.split("\n", 1)[1])
    assert hits[0]["path"] == json.loads(plain.output)[0]["path"]


def test_search_batch_with_a_line_that_is_not_utf8(index_copy):
    result = CliRunner().invoke(cli, ["search", "--batch", "--index", str(index_copy)],
                                input=b"parking \xff lot\nwater report\n", catch_exceptions=False)
    lines = result.output.splitlines()
    assert result.exit_code == 0 and lines[0] == REPLACED.format(what="a query line")
    assert [len(json.loads(line)) for line in lines[1:]] == [5, 5]


def test_ask_and_chat_with_bytes_that_are_not_utf8(index_copy):
    with OpenAIServer(FixedReply()) as server:
        asked = invoke("ask", NOT_UTF8, "--backend", "openai", "--base-url", server.url, "-m", "pagerag-test",
                       "--min-score", -1, "--index", index_copy)
        chatted = CliRunner().invoke(cli, ["chat", "--backend", "openai", "--base-url", server.url, "-m",
                                           "pagerag-test", "--min-score", "-1", "--index", str(index_copy)],
                                     input=b"parking \xff lot\n", catch_exceptions=False)
        questions = [call.messages[-1]["content"][-1]["text"] for call in server.calls]
    assert asked.exit_code == 0 and REPLACED.format(what="the question") in asked.output
    assert chatted.exit_code == 0 and REPLACED.format(what="that line") in chatted.output
    assert len(questions) == 2 and all(q.endswith("Question: parking \ufffd lot") for q in questions)
    assert [n for _, n in ConversationStore(index_copy).list()] == [1, 1]  # one turn each, both saved


def test_a_real_argv_that_is_not_utf8(index_copy):
    done = subprocess.run([sys.executable, "-m", "cli", "search", b"parking \xff lot", "--index", str(index_copy)],
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and b"not valid UTF-8" in done.stderr
    assert b"minutes-2024-q1.tif" in done.stdout
