"""OpenAIBackend against a real HTTP server on 127.0.0.1 (tests/openai_server.py).

The fast tests serve EchoBackend, a stand-in for the model behind a remote server; the slow
test serves the tiny Mllama through TransformersBackend, so every layer is real.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from PIL import Image

import openai  # noqa: F401 - imported once here, so that no timing below includes it
from openai_helpers import MODEL, OPTIONS, QUESTION, EchoBackend, client, clean_env, noise, page, serve  # noqa: F401
from openai_server import closed_port_url
from openai_wire import decode_data_url
from rag.backends import GenerationOptions, ModelUnavailable, get_backend
from rag.backends.openai import DEFAULT_BASE_URL, OpenAIBackend

# --- answers ---

def test_stream_yields_the_pieces_the_served_model_produced(serve):
    images = [page((120, 80)), page((60, 90), "gray")]
    expected = list(EchoBackend().stream(QUESTION, images, OPTIONS))
    server = serve()
    assert list(client(server).stream(QUESTION, images, OPTIONS)) == expected
    assert len(expected) == 11
    assert "".join(expected) == "Wie hoch ist die Summe – in €?| Answer briefly. images=120x80 60x90 max=7 t=0"


def test_a_json_answer_to_a_stream_request_is_read_whole(serve):
    images = [page(), page((60, 90))]
    server = serve(ignore_stream=True)
    assert client(server).generate(QUESTION, images, OPTIONS) == EchoBackend().generate(QUESTION, images, OPTIONS)


def test_the_client_library_is_imported_on_first_use_only():
    """`import openai` takes about a second: the CLI and a backend not yet used must not pay it."""
    code = ("import sys; from rag.settings import ModelSettings, create_backend; "
            "create_backend(ModelSettings(backend='openai')); print('openai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registry_finds_the_backend():
    assert get_backend("openai") is OpenAIBackend
    assert OpenAIBackend.name == "openai"


# --- the request on the wire ---

def test_request_carries_images_as_data_urls_and_texts_in_order(serve):
    server = serve()
    client(server).generate(QUESTION, [page((120, 80)), page((60, 90))], OPTIONS)
    (request,) = server.chat_requests()
    body = request.body
    assert (body["model"], body["stream"], body["max_tokens"], body["temperature"]) == (MODEL, True, 7, 0.0)
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text", "image_url", "text"]
    assert [p["text"] for p in parts if p["type"] == "text"] == ["Wie hoch ist die Summe – in €?", " Answer briefly."]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert all(url.startswith("data:image/jpeg;base64,") for url in urls)
    assert [decode_data_url(url).size for url in urls] == [(120, 80), (60, 90)]
    assert server.calls[0].messages == QUESTION  # the server's round trip gives back what we sent
    assert request.headers["authorization"] == "Bearer no-key"  # a placeholder: local servers need no key


def test_messages_without_images_are_sent_as_strings(serve):
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Total?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is "}, {"type": "text", "text": "42."}]},
        {"role": "user", "content": [{"type": "text", "text": "Why?"}]},
    ]
    server = serve()
    client(server).generate(conversation, [page()], OPTIONS)
    sent = server.chat_requests()[0].body["messages"]
    sent[1]["content"][0]["image_url"]["url"] = "DATA"
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "DATA"}},
                                     {"type": "text", "text": "Total?"}]},
        {"role": "assistant", "content": "It is 42."},
        {"role": "user", "content": "Why?"},
    ]


@pytest.mark.parametrize("env, header", [
    ({}, "Bearer no-key"),
    ({"OPENAI_API_KEY": "sk-openai"}, "Bearer sk-openai"),
    ({"PAGERAG_API_KEY": "sk-pagerag", "OPENAI_API_KEY": "sk-openai"}, "Bearer sk-pagerag"),
])
def test_authorization_header_comes_from_the_environment(serve, monkeypatch, env, header):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server = serve()
    client(server).generate(QUESTION, [page(), page()], OPTIONS)
    assert server.chat_requests()[0].headers.get("authorization") == header


@pytest.mark.parametrize("option, env, expected", [
    (None, {}, DEFAULT_BASE_URL),
    (None, {"OPENAI_BASE_URL": "http://gpu-box:8000/v1"}, "http://gpu-box:8000/v1"),
    (None, {"PAGERAG_BASE_URL": "http://a:1/v1/", "OPENAI_BASE_URL": "http://b:2/v1"}, "http://a:1/v1"),
    ("http://flag:3/v1", {"PAGERAG_BASE_URL": "http://a:1/v1"}, "http://flag:3/v1"),
])
def test_base_url_resolution_order(monkeypatch, option, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert OpenAIBackend(base_url=option).base_url == expected


def test_a_base_url_without_scheme_is_refused_at_once():
    with pytest.raises(ModelUnavailable, match="must start with http:// or https://"):
        OpenAIBackend(base_url="localhost:11434/v1")


@pytest.mark.parametrize("url, said", [
    ("http://localhost:11434x/v1", "is not a valid URL"),
    ("http://localhost:99999/v1", "is not a valid URL"),
    ("http:///v1", "names no host"),
])
def test_a_bad_base_url_is_refused_at_once(url, said):
    with pytest.raises(ModelUnavailable, match=rf"the base URL '{url}' \(--base-url\) {said}"):
        OpenAIBackend(base_url=url)


def test_a_local_server_is_reached_past_the_proxy_settings(serve, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", closed_port_url().removesuffix("/v1"))
    monkeypatch.setenv("http_proxy", closed_port_url().removesuffix("/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server = serve()
    assert client(server).served_models() == [MODEL]


@pytest.mark.parametrize("max_side, size, expected", [
    (1600, (3200, 1000), (1600, 500)),
    (800, (3200, 1000), (800, 250)),
    (1600, (1000, 1600), (1000, 1600)),
    (None, (3200, 1000), (3200, 1000)),
])
def test_images_are_downscaled_to_the_long_side(serve, max_side, size, expected):
    server = serve()
    question = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}]
    client(server, max_image_side=max_side).generate(question, [page(size)], OPTIONS)
    assert server.calls[0].images[0].size == expected


def test_png_keeps_every_pixel(serve):
    server = serve()
    image = noise()
    question = [{"role": "user", "content": [{"type": "image"}]}]
    client(server, image_format="png").generate(question, [image], OPTIONS)
    assert server.chat_requests()[0].body["messages"][0]["content"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,")
    assert server.calls[0].images[0].tobytes() == image.tobytes()


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_a_16_bit_scan_is_scaled_not_clipped_to_white(serve, mode):
    scan = Image.new(mode, (3, 1))
    for x, value in enumerate((20000, 40000, 60000)):  # paper and ink both far above 255
        scan.putpixel((x, 0), value)
    server = serve()
    client(server, image_format="png").generate([{"role": "user", "content": [{"type": "image"}]}], [scan], OPTIONS)
    sent = server.calls[0].images[0]
    assert sent.mode == "L" and [sent.getpixel((x, 0)) for x in range(3)] == [0, 127, 255]


def test_transparent_parts_become_white_in_jpeg(serve):
    server = serve()
    question = [{"role": "user", "content": [{"type": "image"}]}]
    client(server).generate(question, [Image.new("RGBA", (32, 32), (0, 0, 0, 0))], OPTIONS)
    assert server.calls[0].images[0].convert("L").getextrema()[0] >= 250


@pytest.mark.parametrize("placeholders, n_images, message", [
    (1, 2, "2 images given but the messages have 1 image entries"),
    (2, 1, "more image entries than the 1 images given"),
])
def test_image_count_must_match_the_placeholders(placeholders, n_images, message):
    question = [{"role": "user", "content": [{"type": "image"}] * placeholders}]
    backend = OpenAIBackend(base_url=closed_port_url())
    with pytest.raises(ValueError, match=message):
        backend.generate(question, [page()] * n_images, OPTIONS)


# --- failures ---

@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_after_server_errors_then_succeeds(serve, status):
    images = [page(), page()]
    server = serve(fail_first=2, fail_status=status)
    assert client(server, retries=2).generate(QUESTION, images, OPTIONS) == EchoBackend().generate(
        QUESTION, images, OPTIONS)
    assert len(server.chat_requests()) == 3


def test_the_servers_retry_after_is_honoured(serve):
    server = serve(fail_first=2, retry_after_ms=300)
    started = time.monotonic()
    client(server, retries=2).generate(QUESTION, [page(), page()], OPTIONS)
    assert time.monotonic() - started >= 0.3 + 0.3
    assert len(server.chat_requests()) == 3


def test_gives_up_after_the_retries(serve):
    server = serve(fail_first=10)
    with pytest.raises(ModelUnavailable) as caught:
        client(server, retries=2).generate(QUESTION, [page(), page()], OPTIONS)
    assert str(caught.value) == (
        f"the server at {server.url} answered HTTP 503: the server is overloaded, try again (injected failure) "
        f"after 3 tries; check its log, or try again later"
    )
    assert len(server.chat_requests()) == 3


@pytest.mark.parametrize("key, said", [(None, "was not set"), ("sk-wrong", "was refused")])
def test_a_refused_key_is_explained_and_not_retried(serve, key, said):
    server = serve(api_key="sk-right")
    with pytest.raises(ModelUnavailable) as caught:
        client(server, api_key=key, retries=3).generate(QUESTION, [page(), page()], OPTIONS)
    assert str(caught.value) == (
        f"the server at {server.url} refused the request (HTTP 401: Incorrect API key provided.); "
        f"the API key {said}: set PAGERAG_API_KEY (or OPENAI_API_KEY) to a key the server accepts"
    )
    assert len(server.requests) == 1


def test_the_right_key_is_accepted(serve, monkeypatch):
    monkeypatch.setenv("PAGERAG_API_KEY", "sk-right")
    server = serve(api_key="sk-right")
    assert client(server).generate(QUESTION, [page(), page()], OPTIONS).startswith("Wie hoch")


@pytest.mark.parametrize("retries", [0, 1])
def test_server_down_fails_fast_with_what_to_do(retries):
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        OpenAIBackend(base_url=url, retries=retries).generate(QUESTION, [page(), page()], OPTIONS)
    assert time.monotonic() - started < 0.8 + retries * 1.0  # the library's backoff: 0.5 s, less jitter
    assert str(caught.value) == (
        f"cannot reach the OpenAI-compatible server at {url} (connection refused) after {retries + 1} "
        f"{'try' if retries == 0 else 'tries'}: start it (Ollama: `ollama serve`, then `ollama pull "
        f"llama3.2-vision`; vLLM: `vllm serve MODEL`) or point --base-url (or PAGERAG_BASE_URL) at it"
    )


def test_unknown_model_lists_the_served_models(serve):
    server = serve(models=["llava-tiny", "mllama-tiny"])
    with pytest.raises(ModelUnavailable) as caught:
        client(server, model="gpt-4o").generate(QUESTION, [page(), page()], OPTIONS)
    assert str(caught.value) == (
        f"model 'gpt-4o' not found at {server.url} (HTTP 404: The model `gpt-4o` does not exist.); "
        f"the server serves: llava-tiny, mllama-tiny. Pass one of those with -m, or load the model "
        f"into the server (Ollama: `ollama pull gpt-4o`)"
    )
    assert len(server.chat_requests()) == 1


def test_a_base_url_without_the_api_root_is_explained(serve):
    server = serve()
    backend = OpenAIBackend(model=MODEL, base_url=server.root)  # forgot the /v1
    with pytest.raises(ModelUnavailable) as caught:
        backend.generate(QUESTION, [page(), page()], OPTIONS)
    assert str(caught.value) == (
        f"{server.root}/chat/completions answered HTTP 404: no route for POST /chat/completions; no "
        f"OpenAI-compatible API at {server.root} (HTTP 404: no route for GET /models): check --base-url; it "
        f"usually ends in /v1, e.g. http://localhost:11434/v1 or http://localhost:8000/v1")


def test_a_silent_server_times_out_and_is_not_asked_again(serve):
    server = serve(stall=5.0)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        client(server).generate(QUESTION, [page(), page()], GenerationOptions(timeout=0.3))
    assert time.monotonic() - started < 0.3 + 1.5  # not the server's 5 s
    assert str(caught.value) == (
        f"the server at {server.url} did not answer /chat/completions within 0.3 s (--timeout 0.3): the model "
        f"may still be loading or be too slow for this machine; raise --timeout or use a smaller model")
    time.sleep(1.2)  # past the client library's read timeout and first retry delay: a retry would be here
    assert len(server.chat_requests()) == 1
    end = time.monotonic() + 3  # the reader gives up too, once the library is done with its (refused) retries
    while [t for t in threading.enumerate() if t.name == "pagerag-reply"] and time.monotonic() < end:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "pagerag-reply"]
    assert len(server.chat_requests()) == 1


def test_a_failure_in_the_middle_of_the_stream_keeps_the_pieces_so_far(serve):
    server = serve(EchoBackend(fail_after=2))
    pieces = []
    with pytest.raises(ModelUnavailable, match="failed in the middle of the answer: RuntimeError: the model crashed"):
        for piece in client(server).stream(QUESTION, [page(), page()], OPTIONS):
            pieces.append(piece)
    assert pieces == ["Wie hoc", "h ist d"]


def test_load_checks_the_server_answers(serve):
    server = serve()
    client(server).load()
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models")]
    assert client(server).served_models() == [MODEL]
    with pytest.raises(ModelUnavailable, match="cannot reach"):
        OpenAIBackend(base_url=closed_port_url()).load()
    with pytest.raises(ModelUnavailable, match="HTTP 401"):
        client(serve(api_key="sk-right")).load()


# --- the whole path with a real (tiny) model ---

@pytest.mark.slow
def test_tiny_mllama_answers_through_the_server(serve, tmp_path):
    hf = pytest.importorskip("rag.backends.hf", reason="rag/backends/hf.py (TransformersBackend) is not there yet")
    from tiny_models import build_tiny_mllama

    served = hf.TransformersBackend(model=str(build_tiny_mllama(tmp_path / "mllama")))
    server = serve(served, models=["tiny-mllama"])
    question = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is the total?"}]}]
    image, options = noise((90, 60)), GenerationOptions(max_new_tokens=6)

    # PNG: the model behind the server sees our exact pixels, so its answer is the direct one
    pieces = list(client(server, model="tiny-mllama", image_format="png").stream(question, [image], options))
    assert server.calls[0].images[0].tobytes() == image.tobytes()
    assert "".join(pieces) == served.generate(question, [image], options)
    assert pieces and all(pieces)

    # JPEG (the default): the answer is the model's on the image the server decoded
    answer = client(server, model="tiny-mllama").generate(question, [image], options)
    call = server.calls[1]
    assert call.messages == question
    assert answer == served.generate(call.messages, call.images, options)
