"""Every kind of reply a server (or whatever listens at the base URL) can give, over real HTTP
(tests/openai_server.py): each is a clear error, never an empty answer and never a hang."""
from __future__ import annotations

import threading
import time

import pytest

import openai  # noqa: F401 - imported once here, so that no timing below includes it
from openai_helpers import MODEL, OPTIONS, QUESTION, EchoBackend, client, clean_env, page, serve  # noqa: F401
from rag.backends import GenerationOptions, ModelUnavailable
from rag.backends.openai import OpenAIBackend
from rag.backends.openai_replies import ServerReplyError
from rag.settings import ModelSettings, create_backend

PAGES = [page(), page((60, 90))]


def run(backend: OpenAIBackend, options: GenerationOptions = OPTIONS) -> tuple[list[str], ModelUnavailable | None]:
    """The pieces streamed before the reply ended, and the error it ended with (None if it did not fail)."""
    pieces = []
    try:
        for piece in backend.stream(QUESTION, PAGES, options):
            pieces.append(piece)
    except ModelUnavailable as err:
        return pieces, err
    return pieces, None


def reply_threads() -> list[threading.Thread]:
    """The worker threads of rag.backends.deadline.Pump still running."""
    return [t for t in threading.enumerate() if t.name == "pagerag-reply"]


def wait_for(condition, seconds: float = 2.0) -> bool:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.02)
    return condition()


# --- a 200 that is not a chat completion ---

@pytest.mark.parametrize("reply, kind, message", [
    ("html", ServerReplyError,
     "{url}/chat/completions answered a web page titled 'Open WebUI', not an OpenAI-compatible reply: something "
     "else listens at --base-url {url}; the API usually lives at /v1, e.g. http://localhost:11434/v1 (Ollama)"),
    ("plain", ServerReplyError,
     "{url}/chat/completions answered Content-Type text/plain ('upstream says: busy'), not an OpenAI-compatible "
     "reply: something else listens at --base-url {url}; the API usually lives at /v1, e.g. "
     "http://localhost:11434/v1 (Ollama)"),
    ("json-garbage", ServerReplyError,
     "the server at {url} did not answer a chat completion ('{{\"result\": \"ok\"}}'); check --base-url {url}"),
    ("json-error", ModelUnavailable, "the server at {url} failed: model runner crashed"),
    ("empty", ServerReplyError,
     "the server at {url} sent no text: the stream ended with an empty answer; check the server's log "
     "(the model may have failed on the images)"),
    ("done-only", ServerReplyError,
     "the server at {url} sent no text: the stream ended with an empty answer; check the server's log "
     "(the model may have failed on the images)"),
    ("no-content", ServerReplyError,
     "the server at {url} sent no text: it finished (finish_reason 'stop') with an empty answer; check the "
     "server's log (the model may have failed on the images)"),
])
def test_a_reply_that_is_not_an_answer_is_an_error(serve, reply, kind, message):
    server = serve(reply=reply)
    pieces, error = run(client(server))
    assert pieces == [] and type(error) is kind
    assert str(error) == message.format(url=server.url)
    assert len(server.chat_requests()) == 1  # a wrong reply is not retried


NOT_CHAT = ("; it is not an OpenAI chat-completions stream. Check --base-url {url} (the server's chat-completions "
            "API, e.g. http://localhost:11434/v1 for Ollama) and that -m " + MODEL + " is a chat model the server "
            "serves")


@pytest.mark.parametrize("reply, message", [
    ("responses", "the server at {url} sent no text: it streamed 4 event(s) that are not chat-completion chunks "
                  "('response.created', 'response.output_text.delta' x2, 'response.completed')" + NOT_CHAT),
    ("bare-error", "the server at {url} sent no text: it streamed 1 event(s) that are not chat-completion chunks "
                   "('{{\"message\": \"upstream timed out\"}}')" + NOT_CHAT),
    ("error-event", "the server at {url} failed in the middle of the answer: the model runner crashed"),
    ("tool-deltas", "the server at {url} sent no text: it finished (finish_reason 'stop') with tool calls instead "
                    "of an answer; the model asked to call a tool, and pagerag offers none: check the model's chat "
                    "template on the server"),
])
def test_a_stream_of_other_events_says_what_came_not_images(serve, reply, message):
    """Events that are no chat chunks (another API's, an error event, tool-call deltas) ended with 'the model may
    have failed on the images': the message says what was streamed instead, and where to look."""
    server = serve(reply=reply)
    pieces, error = run(client(server))
    assert pieces == [] and isinstance(error, ModelUnavailable)
    assert str(error) == message.format(url=server.url)


def test_cut_off_json_is_an_error(serve):
    server = serve(reply="json-truncated")
    pieces, error = run(client(server))
    assert pieces == [] and isinstance(error, ServerReplyError)
    assert str(error).startswith(f"{server.url}/chat/completions answered broken or cut-off JSON ('{{\"id\": ")


def test_a_stream_without_done_still_gives_the_whole_answer(serve):
    server = serve(reply="no-done")
    assert client(server).generate(QUESTION, PAGES, OPTIONS) == EchoBackend().generate(QUESTION, PAGES, OPTIONS)


# --- streams that go wrong part way ---

def test_an_event_that_is_not_json_ends_the_answer_with_an_error(serve):
    server = serve(reply="chunk-truncated")
    pieces, error = run(client(server))
    assert pieces == ["The total"] and isinstance(error, ServerReplyError)
    assert str(error).startswith(f"the server at {server.url} sent an event that is not JSON ('{{\"id\": ")


def test_a_dropped_connection_mid_stream_keeps_the_pieces_so_far(serve):
    server = serve(reply="disconnect")
    pieces, error = run(client(server, retries=2))
    assert pieces == ["The total", " is"]
    assert str(error) == (f"the connection to {server.url} broke in the middle of the answer (the server closed "
                          f"the connection before the reply was complete); check the server's log")
    assert len(server.chat_requests()) == 1  # half an answer is never asked for again


@pytest.mark.parametrize("reply", ["hangup", "not-http"])
def test_a_server_that_hangs_up_before_answering(serve, reply):
    server = serve(reply=reply)
    pieces, error = run(client(server, retries=1))
    assert pieces == []
    assert str(error) == (f"cannot reach the OpenAI-compatible server at {server.url} (the server closed the "
                          f"connection without answering) after 2 tries: check the server's log, and that "
                          f"--base-url points at an OpenAI-compatible server")
    assert len(server.chat_requests()) == 2


def test_text_that_is_not_utf8_is_an_error(serve):
    server = serve(reply="bad-utf8")
    pieces, error = run(client(server))
    assert pieces == [] and isinstance(error, ServerReplyError)
    assert str(error).startswith(f"the server at {server.url} sent text that is not UTF-8 (invalid continuation "
                                 f"byte in '")
    assert str(error).endswith('"content": "caf\ufffd\'); check the server\'s log')


def test_https_to_a_plain_http_server_says_to_use_http(serve):
    server = serve()
    url = server.url.replace("http://", "https://")
    pieces, error = run(OpenAIBackend(MODEL, base_url=url, retries=0))
    assert str(error).startswith(f"cannot reach the OpenAI-compatible server at {url} (TLS failed: ")
    assert str(error).endswith("after 1 try: if the server speaks plain HTTP, use http:// in --base-url; else "
                               "check its certificate")


# --- the deadline holds whatever the server sends ---

def test_keep_alive_comments_do_not_stop_the_timeout(serve):
    server = serve(reply="keepalive")
    started = time.monotonic()
    pieces, error = run(client(server), GenerationOptions(max_new_tokens=7, timeout=0.5))
    assert 0.5 <= time.monotonic() - started < 0.5 + 1.5  # not forever
    assert pieces == []
    assert str(error) == (
        f"the server at {server.url} sent no text within 0.5 s (--timeout 0.5), only the start of a reply: the "
        f"model may still be loading or be too slow for this machine; raise --timeout or use a smaller model")
    assert wait_for(lambda: server.broken_pipes == 1)  # we hung up: the server stops working for nobody
    assert wait_for(lambda: not reply_threads())  # and the thread that read the reply has ended


def test_the_timeout_bounds_the_whole_answer_not_each_piece(serve):
    server = serve(EchoBackend(delay=0.1))  # a new piece every 0.1 s, 11 pieces: 1.1 s in all
    started = time.monotonic()
    pieces, error = run(client(server), GenerationOptions(max_new_tokens=7, timeout=0.55))
    assert time.monotonic() - started < 0.55 + 1.0
    assert 1 <= len(pieces) <= 6 and "".join(pieces) == EchoBackend().generate(QUESTION, PAGES, OPTIONS)[:7 * len(pieces)]
    assert str(error).startswith(f"the answer from the server at {server.url} was not finished within 0.55 s "
                                 f"(--timeout 0.55; {7 * len(pieces)} characters so far): ")


def test_a_server_that_ignores_max_tokens_is_stopped(serve):
    server = serve(reply="endless")
    pieces, error = run(client(server), GenerationOptions(max_new_tokens=7, timeout=10))
    assert pieces == ["and on "] * (7 + 16)
    assert isinstance(error, ServerReplyError) and str(error) == (
        f"the server at {server.url} kept streaming past the 7-token limit (--max-new-tokens 7; 24 chunks, 168 "
        f"characters): it ignores max_tokens, so the answer was stopped and dropped; update or reconfigure the "
        f"server")
    assert wait_for(lambda: server.broken_pipes == 1)


def test_a_stopped_stream_closes_its_connection(serve):
    """A caller that stops reading (Ctrl-C in chat) hangs up: the server stops generating."""
    server = serve(reply="endless")
    pieces = client(server).stream(QUESTION, PAGES, GenerationOptions(max_new_tokens=500, timeout=10))
    assert next(pieces) == "and on "
    pieces.close()
    assert wait_for(lambda: server.broken_pipes == 1) and wait_for(lambda: not reply_threads())


# --- error statuses and their bodies ---

@pytest.mark.parametrize("body, said", [
    ("openai", "HTTP 400: the server is overloaded, try again (injected failure)"),
    ("flat", "HTTP 400: the server is overloaded, try again (injected failure)"),
    ("text", "HTTP 400: the server is overloaded, try again (injected failure)"),
    ("html", "HTTP 400: a web page titled '502 Bad Gateway', not an API error"),
    ("empty", "HTTP 400"),
])
def test_an_error_status_shows_the_servers_message(serve, body, said):
    server = serve(fail_first=1, fail_status=400, fail_body=body)
    pieces, error = run(client(server))
    assert pieces == [] and str(error) == f"the server at {server.url} rejected the request ({said})"


def test_a_long_retry_after_is_reported_not_slept(serve):
    server = serve(fail_first=5, fail_status=429, retry_after_ms=300_000)
    started = time.monotonic()
    pieces, error = run(client(server, retries=2))
    assert time.monotonic() - started < 5.0  # the client library retries at its own pace, or not at all
    tries = len(server.chat_requests())
    assert str(error) == (f"the server at {server.url} answered HTTP 429: the server is overloaded, try again "
                          f"(injected failure) after {tries} {'try' if tries == 1 else 'tries'}; check its log, "
                          f"or try again later")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_with_a_web_page_is_retried_then_explained(serve, status):
    server = serve(fail_first=5, fail_status=status, fail_body="html", retry_after_ms=1)
    pieces, error = run(client(server, retries=1))
    assert str(error) == (f"the server at {server.url} answered HTTP {status}: a web page titled '502 Bad Gateway', "
                          f"not an API error after 2 tries; check its log, or try again later")
    assert len(server.chat_requests()) == 2


# --- GET /models ---

@pytest.mark.parametrize("reply, message", [
    ("html", "{url}/models answered a web page titled 'Open WebUI', not an OpenAI-compatible reply: "),
    ("plain", "{url}/models answered Content-Type text/plain ('pong'), not an OpenAI-compatible reply: "),
    ("not-a-list", "{url}/models did not answer an OpenAI model list ('{{\"models\": []}}'); check --base-url {url}"),
    ("truncated", "{url}/models answered broken or cut-off JSON ('{{\"object\": \"list\", \"data\": [{{\"id\": "),
])
def test_load_explains_a_listing_that_is_not_one(serve, reply, message):
    server = serve(models_reply=reply)
    with pytest.raises(ServerReplyError) as caught:
        client(server).load()
    assert str(caught.value).startswith(message.format(url=server.url))


def test_load_gives_up_on_a_listing_that_never_ends(serve):
    server = serve(models_reply="stall")
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        client(server).served_models(timeout=0.5)
    assert time.monotonic() - started < 0.5 + 1.5  # not forever
    assert str(caught.value) == (
        f"the server at {server.url} did not answer GET /models within 0.5 s: it may be overloaded, or something "
        f"that is not an OpenAI-compatible server listens at --base-url {server.url}")


# --- what a server accepts: Ollama's llama3.2-vision takes one image ---

@pytest.mark.parametrize("model, max_images", [
    ("llama3.2-vision", 1), ("llama3.2-vision:11b", 1), ("x/llama3.2-vision:90b-instruct-q4_K_M", 1),
    ("meta-llama/Llama-3.2-11B-Vision-Instruct", None), ("qwen2.5vl:7b", None), (None, 1),
])
def test_settings_know_how_many_images_a_served_model_takes(model, max_images):
    assert create_backend(ModelSettings(backend="openai", model=model)).max_images == max_images


def test_too_many_images_for_the_model_is_refused_before_any_request(serve):
    server = serve(models=["llama3.2-vision"])
    backend = create_backend(ModelSettings(backend="openai", model="llama3.2-vision", base_url=server.url))
    with pytest.raises(ModelUnavailable) as caught:
        backend.generate(QUESTION, PAGES, OPTIONS)
    assert str(caught.value) == (
        "model 'llama3.2-vision' takes at most 1 image(s) per request on this kind of server, but 2 were to be "
        "sent (--images 2): use --images 1; the other pages still reach the model as text")
    assert server.requests == []
    one = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Total?"}]}]
    assert backend.generate(one, [page()], OPTIONS) == "Total? images=120x80 max=7 t=0"


# --- settings a request could not carry ---

@pytest.mark.parametrize("options, env, message", [
    ({"api_key": "sk-\u2013pasted"}, {}, "the API key (PAGERAG_API_KEY or OPENAI_API_KEY) holds characters an HTTP "
                                         "header cannot carry (outside printable ASCII): set it to the key alone"),
    ({}, {"PAGERAG_API_KEY": "sk-\udcff"}, "the API key (PAGERAG_API_KEY or OPENAI_API_KEY) holds characters"),
    ({"model": "llava\udcff"}, {}, "the model name 'llava\\udcff' (-m or PAGERAG_MODEL) is not valid UTF-8"),
    ({"base_url": "http://gpu\udcffbox:8000/v1"}, {}, "the base URL 'http://gpu\\udcffbox:8000/v1' (--base-url) is "
                                                       "not valid UTF-8"),
])
def test_settings_that_cannot_go_on_the_wire_are_refused_at_once(monkeypatch, options, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ModelUnavailable) as caught:
        OpenAIBackend(options.pop("model", MODEL), **options)
    assert str(caught.value).startswith(message)


def test_a_broken_proxy_setting_is_named(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:port-missing")
    backend = OpenAIBackend(MODEL, base_url="http://192.0.2.10:8000/v1")  # TEST-NET: never reached
    pieces, error = run(backend)
    assert str(error).startswith("cannot use --base-url http://192.0.2.10:8000/v1 (")
    assert str(error).endswith("); check the proxy settings too (HTTP_PROXY)")
