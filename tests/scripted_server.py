"""A scripted OpenAI-compatible server for the fault tests: it answers every chat request with the raw
bytes a case needs (a redirect, an in-stream error object, a content filter, a lying Content-Encoding,
control characters), from REPLIES by name.

    with Scripted("content-filter") as server:
        result = ask_with(server, index)        # `pagerag ask` against it, in process
    text, backend, server = answer("normal")    # OpenAIBackend.stream against it
"""
from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from cli.main import cli
from rag.backends import GenerationOptions, ModelUnavailable
from rag.backends.openai import OpenAIBackend

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
    # JSON that Python cannot hold: an integer past 4300 digits (ValueError), nesting 100,000 deep (RecursionError)
    "json-big-int": (200, {"Content-Type": "application/json"}, b'{"created": ' + b"9" * 5000 + b', "choices": []}'),
    "sse-big-int": sse(b'data: {"created": ' + b"9" * 5000 + b'}\n\n'),
    "json-deep": (200, {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000),
    "sse-deep": sse(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n"),
    # servers that echo the request's Authorization header ({auth}) in their error
    "echo-401": (401, {"Content-Type": "application/json"},
                 b'{"error": {"message": "Incorrect API key provided: {auth}"}}'),
    "echo-500": (500, {"Content-Type": "text/plain"}, b"crashed; headers were {'authorization': '{auth}'}"),
    "retry-nan": (429, {"Content-Type": "application/json", "Retry-After": "nan"},
                  b'{"error": {"message": "slow down"}}'),
    "retry-date": (429, {"Content-Type": "application/json", "Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"},
                   b'{"error": {"message": "slow down"}}'),
    "huge-header": (200, {"Content-Type": "application/json", "X-Padding": "a" * 200_000}, completion("The total.")),
    "json-bom": (200, {"Content-Type": "application/json"}, b"\xef\xbb\xbf" + completion("The total [1].")),
    "bidi": sse(chunk("The total is \u202e24\u202c [1].", "stop")),
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
        status, headers, body = REPLIES[self.server.reply]
        self._send(status, headers, body.replace(b"{auth}", (self.headers.get("Authorization") or "").encode()))


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


def ask_with(server, index, *extra):
    return CliRunner().invoke(cli, ["ask", QUESTION, "--backend", "openai", "--base-url", server.url, "-m", "m",
                                    "--index", str(index), *map(str, extra)], catch_exceptions=False)
