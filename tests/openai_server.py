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

Failures on demand: `fail_first=N` answers the first N chat requests with `fail_status`;
`api_key` requires `Authorization: Bearer KEY` on every request; `stall` waits that many
seconds before answering a chat request; `ignore_stream` answers one JSON object even when a
stream was asked for, as some servers do.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

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
        stall: float = 0.0,
        ignore_stream: bool = False,
    ):
        self.backend = backend
        self.models = list(models)
        self.api_key = api_key
        self.fail_first, self.fail_status = fail_first, fail_status
        self.stall = stall
        self.ignore_stream = ignore_stream
        self.requests: list[Request] = []
        self.calls: list[Call] = []
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


def from_openai_messages(messages: list[dict]) -> tuple[list[dict], list]:
    """OpenAI messages -> transformers-format messages and their images, in order.

    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}},
                                  {"type": "text", "text": "Total?"}]}]
    -> [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Total?"}]}], [<PIL image>]
    """
    converted, images = [], []
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        entries = []
        for part in content:
            if part["type"] == "text":
                entries.append({"type": "text", "text": part["text"]})
            elif part["type"] == "image_url":
                url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
                images.append(decode_data_url(url))
                entries.append({"type": "image"})
            else:
                raise _BadRequest(f"unsupported content part type {part['type']!r}")
        converted.append({"role": message["role"], "content": entries})
    return converted, images


def decode_data_url(url: str) -> Image.Image:
    """`data:image/png;base64,iVBOR...` -> the PIL image."""
    header, sep, data = url.partition(",")
    if not (sep and header.startswith("data:image/") and header.endswith(";base64")):
        raise _BadRequest(f"only base64 image data URLs are supported, not {url[:40]!r}")
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


class _BadRequest(Exception):
    pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: OpenAIServer

    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout tests) breaks the pipe; that is expected here


class _Handler(BaseHTTPRequestHandler):
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
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "pagerag-tests"} for m in app.models]
            return self._json(200, {"object": "list", "data": data})
        if self.command == "POST" and self.path == "/v1/chat/completions":
            return self._chat(app, body or {})
        return self._error(404, f"no route for {self.command} {self.path}", "not_found_error")

    def _chat(self, app: OpenAIServer, body: dict):
        if app._take_failure():
            return self._error(app.fail_status, "the server is overloaded, try again (injected failure)", "server_error")
        if app.stall:
            app._closing.wait(app.stall)
        if body.get("model") not in app.models:  # vLLM's flat error shape, unlike the nested one above
            return self._json(404, {"object": "error", "message": f"The model `{body.get('model')}` does not exist.",
                                    "type": "NotFoundError", "param": None, "code": 404})
        try:
            messages, images = from_openai_messages(body.get("messages") or [])
        except (_BadRequest, KeyError, TypeError, ValueError, OSError) as err:
            return self._error(400, f"bad messages: {err}", "invalid_request_error")
        options = GenerationOptions(
            max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 512),
            temperature=float(body.get("temperature", 0.0)),
        )
        with app._lock:
            app.calls.append(Call(messages, images, options))
        pieces = app.backend.stream(messages, images, options)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())
        try:  # the first piece before the status line, so that a backend failure is an HTTP error
            first = next(pieces, None)
        except Exception as err:  # noqa: BLE001 - any backend failure is the server's 500
            return self._error(500, f"{type(err).__name__}: {err}", "server_error")

        if not body.get("stream") or app.ignore_stream:
            text = (first or "") + "".join(pieces)
            return self._json(200, {
                "id": completion_id, "object": "chat.completion", "created": created, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            })

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        self._send_chunk(b": keep-alive\n\n")
        self._event(chunk({"role": "assistant", "content": ""}))
        try:
            if first is not None:
                self._event(chunk({"content": first}))
            for piece in pieces:
                self._event(chunk({"content": piece}))
            self._event(chunk({}, "stop"))
        except Exception as err:  # noqa: BLE001 - a failure mid-stream is reported in-band, as vLLM does
            self._event({"error": {"message": f"{type(err).__name__}: {err}", "type": "server_error", "code": 500}})
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")  # the zero-length chunk ends the body

    def _event(self, payload: dict):
        self._send_chunk(f"data: {json.dumps(payload)}\n\n".encode("utf-8"))

    def _send_chunk(self, data: bytes):
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: dict):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, code: str | int | None = None):
        """OpenAI's nested error shape: {"error": {"message", "type", "code"}}."""
        return self._json(status, {"error": {"message": message, "type": kind, "code": code if code is not None else status}})
