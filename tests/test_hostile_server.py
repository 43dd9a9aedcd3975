"""The model server side against a hostile (or broken) server and careless settings: JSON that
Python cannot hold, a reply that is not HTTP, servers that echo the API key, credentials in the base
URL or the proxy, nonsense Retry-After, bidi overrides in an answer.

Real parts: a scripted HTTP server on 127.0.0.1 answering raw bytes, a real index of text PDFs for
the web chat.
"""
from __future__ import annotations

import pytest

from openai_helpers import clean_env  # noqa: F401 - no PAGERAG_*/OPENAI_* or proxy variables leak in
from rag.backends import GenerationOptions, ModelUnavailable
from rag.backends.openai import OpenAIBackend
from scripted_server import Scripted
from scripted_server import failure as scripted_failure

KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "user", "content": [{"type": "text", "text": "What is the total?"}]}]


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


def test_a_proxy_password_is_not_printed(monkeypatch):
    from openai_server import closed_port_url

    dead = closed_port_url().replace("http://", "http://puser:proxy-pass-7@").rsplit("/v1", 1)[0]
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, dead)
    backend = OpenAIBackend("m", base_url="http://gpu-box.invalid:8000/v1", retries=0)
    with pytest.raises(ModelUnavailable) as info:
        "".join(backend.stream(MESSAGES, [], GenerationOptions(max_new_tokens=8, timeout=20)))
    assert "through the proxy http://puser:***@127.0.0.1" in str(info.value) and "proxy-pass-7" not in str(info.value)


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
