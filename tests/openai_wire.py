"""The OpenAI wire format as tests/openai_server.py reads and writes it: request messages with data-URL
images back to the transformers format, and replies (chat.completion objects, event-stream chunks in
chunked transfer encoding, OpenAI's nested error shape) written by `WireHandler`.

    from_openai_messages([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:..."}}]}])
    -> ([{"role": "user", "content": [{"type": "image"}]}], [<PIL image>])
"""
from __future__ import annotations

import base64
import io
import json
import time
from http.server import BaseHTTPRequestHandler

from PIL import Image


class BadRequest(Exception):
    pass


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
                raise BadRequest(f"unsupported content part type {part['type']!r}")
        converted.append({"role": message["role"], "content": entries})
    return converted, images


def decode_data_url(url: str) -> Image.Image:
    """`data:image/png;base64,iVBOR...` -> the PIL image."""
    header, sep, data = url.partition(",")
    if not (sep and header.startswith("data:image/") and header.endswith(";base64")):
        raise BadRequest(f"only base64 image data URLs are supported, not {url[:40]!r}")
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return image


class WireHandler(BaseHTTPRequestHandler):
    """Writes replies on the wire; the server's handler builds on it."""

    @staticmethod
    def _completion(body: dict, text: str) -> dict:
        return {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }

    @staticmethod
    def _chunk(body: dict, delta: dict, finish_reason: str | None = None) -> dict:
        return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, payload: dict):
        self._send_chunk(f"data: {json.dumps(payload)}\n\n".encode("utf-8"))

    def _send_chunk(self, data: bytes):
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: dict):
        return self._send(status, "application/json", json.dumps(payload).encode("utf-8"))

    def _send(self, status: int, content_type: str, data: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, code: str | int | None = None):
        """OpenAI's nested error shape: {"error": {"message", "type", "code"}}."""
        return self._json(status, {"error": {"message": message, "type": kind, "code": code if code is not None else status}})
