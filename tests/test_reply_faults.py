"""The OpenAI-compatible backend and `pagerag ask` over replies that are not plain answers (tests/scripted_server.py):
each case one clear line (no traceback), a consistent exit code, nothing empty or wrong saved as a turn."""
from __future__ import annotations

import json

import pytest

from openai_helpers import clean_env  # noqa: F401 - no PAGERAG_*/OPENAI_* or proxy variables leak in
from rag.backends import GenerationOptions, ModelUnavailable
from rag.backends.openai import OpenAIBackend
from rag.conversations import ConversationStore
from scripted_server import MESSAGES, Scripted, answer, ask_with, failure

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
