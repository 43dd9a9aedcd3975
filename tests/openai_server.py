"""A real OpenAI-compatible chat-completions server over any pagerag Backend, for tests.

    with OpenAIServer(backend, models=["tiny"]) as server:
        OpenAIBackend(model="tiny", base_url=server.url).generate(messages, images, GenerationOptions())
        server.requests[-1].body["messages"]  # what the client sent
        server.calls[-1].images               # what the served backend was given

It listens on 127.0.0.1 (a free port) in a background thread and speaks the wire format of
vLLM and Ollama: `GET /v1/models`; `POST /v1/chat/completions`, answered with one
`chat.completion` object, or with `"stream": true` by Server-Sent Events (a keep-alive comment,
a role chunk, one `chat.completion.chunk` per piece the backend yields, a finish chunk, then
`data: [DONE]`) in chunked transfer encoding. Data-URL images are decoded back to PIL images and
the messages turned back into the transformers format before `backend.stream` is called.

Failures on demand, each a reply some real server (or what sits at a wrong URL) gives:
`fail_first=N` answers the first N chat requests with `fail_status` and a `fail_body` of one
of ERROR_BODIES (plus `retry_after_ms`, if given, as vLLM-style hint); `api_key` requires
`Authorization: Bearer KEY` on every request; `stall` waits that many seconds before answering
a chat request; `reply` picks a chat reply from REPLIES and `models_reply` the GET /models
one ("html", "plain", "not-a-list", "truncated", "stall"); `ignore_stream` is `reply="json"`.
The odd replies are written in openai_odd_replies.py, the wire format in openai_wire.py.
"""
from __future__ import annotations

import itertools
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from openai_odd_replies import ERROR_BODIES, HTML_PAGE, ODD_REPLIES, REPLIES, OddReplies
from openai_wire import BadRequest, from_openai_messages

from rag.backends import Backend, GenerationOptions


@dataclass
class Request:
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None


@dataclass
class Call:
    """One call the server made to the served backend."""

    messages: list[dict]
    images: list = field(default_factory=list)  # PIL images, decoded from the data URLs
    options: GenerationOptions = field(default_factory=GenerationOptions)


class OpenAIServer:
    """Serves `backend` under the OpenAI chat-completions API until the `with` block ends."""

    def __init__(
        self,
        backend: Backend,
        *,
        models: list[str] | tuple[str, ...] = ("pagerag-test",),
        api_key: str | None = None,
        fail_first: int = 0,
        fail_status: int = 503,
        fail_body: str = "openai",
        retry_after_ms: int | None = None,
        stall: float = 0.0,
        ignore_stream: bool = False,
        reply: str = "normal",
        models_reply: str = "normal",
    ):
        if reply not in REPLIES or fail_body not in ERROR_BODIES:
            raise ValueError(f"unknown reply {reply!r} or fail_body {fail_body!r}")
        self.backend = backend
        self.models = list(models)
        self.api_key = api_key
        self.fail_first, self.fail_status, self.fail_body = fail_first, fail_status, fail_body
        self.retry_after_ms = retry_after_ms
        self.stall = stall
        self.reply = "json" if ignore_stream else reply
        self.models_reply = models_reply
        self.requests: list[Request] = []
        self.calls: list[Call] = []
        self.broken_pipes = 0  # replies cut short because the client went away
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The API root to give a client as base_url, e.g. http://127.0.0.1:40123/v1."""
        return f"{self.root}/v1"

    @property
    def root(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "OpenAIServer":
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.app = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes stalled handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/chat/completions"]

    def _take_failure(self) -> bool:
        with self._lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return True
            return False


def closed_port_url() -> str:
    """An API root on a local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: OpenAIServer

    def handle_error(self, request, client_address):
        # a client that gave up (timeout tests) breaks the pipe: expected here, and counted
        with self.app._lock:
            self.app.broken_pipes += 1


class _Handler(OddReplies):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, as uvicorn-based servers do
    server: _HTTPServer

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._route()

    def do_POST(self):
        self._route()

    def _route(self):
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return self._error(400, "the body is not JSON", "invalid_request_error")
        with app._lock:
            app.requests.append(Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))

        if app.api_key and self.headers.get("Authorization") != f"Bearer {app.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key")
        if self.command == "GET" and self.path == "/v1/models":
            return self._models(app)
        if self.command == "POST" and self.path == "/v1/chat/completions":
            return self._chat(app, body or {})
        return self._error(404, f"no route for {self.command} {self.path}", "not_found_error")

    def _models(self, app: OpenAIServer):
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "pagerag-tests"} for m in app.models]
        listing = json.dumps({"object": "list", "data": data}).encode()
        replies = {"normal": ("application/json", listing), "html": ("text/html; charset=utf-8", HTML_PAGE),
                   "plain": ("text/plain", b"pong"), "not-a-list": ("application/json", b'{"models": []}'),
                   "truncated": ("application/json", listing[: len(listing) // 2])}
        if app.models_reply == "stall":  # the headers and half the body, then nothing until the server stops
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(listing)))
            self.end_headers()
            self.wfile.write(listing[:10])
            self.wfile.flush()
            app._closing.wait()
            return
        return self._send(200, *replies[app.models_reply])

    def _chat(self, app: OpenAIServer, body: dict):
        if app._take_failure():
            return self._failure(app)
        if app.stall:
            app._closing.wait(app.stall)
        if body.get("model") not in app.models:  # vLLM's flat error shape, unlike the nested one above
            return self._json(404, {"object": "error", "message": f"The model `{body.get('model')}` does not exist.",
                                    "type": "NotFoundError", "param": None, "code": 404})
        try:
            messages, images = from_openai_messages(body.get("messages") or [])
        except (BadRequest, KeyError, TypeError, ValueError, OSError) as err:
            return self._error(400, f"bad messages: {err}", "invalid_request_error")
        options = GenerationOptions(
            max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 512),
            temperature=float(body.get("temperature", 0.0)),
        )
        with app._lock:
            app.calls.append(Call(messages, images, options))
        if app.reply in ODD_REPLIES:
            return ODD_REPLIES[app.reply](self, app, body)
        pieces = app.backend.stream(messages, images, options)
        try:  # the first piece before the status line, so that a backend failure is an HTTP error
            first = next(pieces, None)
        except Exception as err:  # noqa: BLE001 - any backend failure is the server's 500
            return self._error(500, f"{type(err).__name__}: {err}", "server_error")
        texts = itertools.chain([] if first is None else [first], pieces)

        if not body.get("stream") or app.reply == "json":
            return self._json(200, self._completion(body, "".join(texts)))
        self._start_stream()
        self._send_chunk(b": keep-alive\n\n")
        self._event(self._chunk(body, {"role": "assistant", "content": ""}))
        try:
            for piece in texts:
                self._event(self._chunk(body, {"content": piece}))
            self._event(self._chunk(body, {}, "stop"))
        except Exception as err:  # noqa: BLE001 - a failure mid-stream is reported in-band, as vLLM does
            self._event({"error": {"message": f"{type(err).__name__}: {err}", "type": "server_error", "code": 500}})
        if app.reply != "no-done":
            self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")  # the zero-length chunk ends the body
