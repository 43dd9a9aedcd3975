"""The replies an OpenAI-compatible server (or what sits at a wrong URL) gives besides a good one, for
tests/openai_server.py: `reply=` picks one of REPLIES, `fail_body=` one of ERROR_BODIES.
"""
from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

from openai_wire import WireHandler

if TYPE_CHECKING:
    from openai_server import OpenAIServer

HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Open WebUI</title></head>"
             b"<body><div id=app>Loading...</div></body></html>")
# the chat replies a server can give besides a good one; "normal" streams (or answers JSON) properly
REPLIES = (
    "normal",
    "json",            # one chat.completion object although a stream was asked for (some servers)
    "html",            # 200 with a web page: a UI or proxy at the base URL instead of the API
    "plain",           # 200 text/plain that is neither JSON nor events
    "json-garbage",    # 200 application/json that is not a chat completion
    "json-truncated",  # 200 application/json cut off in the middle
    "json-error",      # 200 application/json carrying {"error": ...}
    "empty",           # 200 event stream that ends at once: no events, no [DONE]
    "done-only",       # 200 event stream with only `data: [DONE]`
    "no-content",      # role and finish chunks, no text, [DONE]
    "keepalive",       # 200 event stream of `: keep-alive` comments, forever
    "endless",         # text chunks forever, ignoring max_tokens
    "chunk-truncated", # one good chunk, then a `data:` line cut off in the middle of its JSON
    "disconnect",      # two good chunks, then the connection drops (no end of the chunked body)
    "hangup",          # the connection is closed before any status line
    "not-http",        # a banner that is not HTTP (an SSH or database port), then the connection closes
    "bad-utf8",        # an event whose bytes are not UTF-8
    "no-done",         # the whole answer and a finish chunk, but no `data: [DONE]`
    "responses",       # the Responses API's named events (response.created, ...): another API's stream
    "tool-deltas",     # chat chunks of tool-call deltas and a 'stop', no text (a model that only calls tools)
    "error-event",     # `event: error` with a Responses-style {"type": "error", "message": ...}
    "bare-error",      # `event: error` whose data is only {"message": ...}
)
NAMED_EVENTS = {  # reply -> the (event name, data) it streams
    "responses": [("response.created", {"type": "response.created", "response": {"id": "resp_1", "status":
                                                                                  "in_progress"}}),
                  *[("response.output_text.delta", {"type": "response.output_text.delta", "delta": word})
                    for word in ("The", " total")],
                  ("response.completed", {"type": "response.completed", "response": {"id": "resp_1"}})],
    "error-event": [("error", {"type": "error", "code": "server_error", "message": "the model runner crashed"})],
    "bare-error": [("error", {"message": "upstream timed out"})],
}
ERROR_BODIES = ("openai", "flat", "html", "text", "empty")


class OddReplies(WireHandler):
    """The odd replies (REPLIES), written by the server's handler."""

    def _reply_body(self, app, body):
        kinds = {"html": ("text/html; charset=utf-8", HTML_PAGE), "plain": ("text/plain", b"upstream says: busy"),
                 "json-garbage": ("application/json", b'{"result": "ok"}'),
                 "json-truncated": ("application/json", json.dumps(self._completion(body, "The total"))[:60].encode()),
                 "json-error": ("application/json", b'{"error": {"message": "model runner crashed", "code": 500}}')}
        return self._send(200, *kinds[app.reply])

    def _reply_stream(self, app, body):
        """The event-stream replies: they differ in what follows the status line."""
        self._start_stream()
        if app.reply == "done-only":
            self._send_chunk(b"data: [DONE]\n\n")
        elif app.reply == "no-content":
            self._event(self._chunk(body, {"role": "assistant", "content": ""}))
            self._event(self._chunk(body, {}, "stop"))
            self._send_chunk(b"data: [DONE]\n\n")
        elif app.reply == "keepalive":
            while not app._closing.wait(0.05):
                self._send_chunk(b": keep-alive\n\n")
        elif app.reply == "endless":
            while not app._closing.wait(0.001):
                self._event(self._chunk(body, {"content": "and on "}))
        elif app.reply == "chunk-truncated":
            self._event(self._chunk(body, {"content": "The total"}))
            self._send_chunk(f"data: {json.dumps(self._chunk(body, {'content': ' is'}))[:40]}\n\n".encode())
            self._send_chunk(b"data: [DONE]\n\n")
        elif app.reply in NAMED_EVENTS:
            for name, data in NAMED_EVENTS[app.reply]:
                self._send_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        elif app.reply == "tool-deltas":
            call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "search", "arguments": ""}}
            self._event(self._chunk(body, {"role": "assistant", "tool_calls": [call]}))
            self._event(self._chunk(body, {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
            self._event(self._chunk(body, {}, "stop"))
            self._send_chunk(b"data: [DONE]\n\n")
        elif app.reply == "bad-utf8":
            self._send_chunk(b'data: {"choices": [{"index": 0, "delta": {"content": "caf\xe9"}}]}\n\n')
            self._send_chunk(b"data: [DONE]\n\n")
        elif app.reply == "disconnect":
            self._event(self._chunk(body, {"content": "The total"}))
            self._event(self._chunk(body, {"content": " is"}))
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send_chunk(b"")

    def _hangup(self, app, body):
        if app.reply == "not-http":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
            self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _failure(self, app: OpenAIServer):
        message = "the server is overloaded, try again (injected failure)"
        bodies = {
            "openai": ("application/json", json.dumps(
                {"error": {"message": message, "type": "server_error", "code": app.fail_status}}).encode()),
            "flat": ("application/json", json.dumps(
                {"object": "error", "message": message, "type": "ServerError", "code": app.fail_status}).encode()),
            "html": ("text/html", b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
                                  b"Gateway</h1></center><hr><center>nginx</center></body></html>"),
            "text": ("text/plain; charset=utf-8", message.encode()),
            "empty": ("text/plain", b""),
        }
        headers = {} if app.retry_after_ms is None else {"retry-after-ms": str(app.retry_after_ms)}
        return self._send(app.fail_status, *bodies[app.fail_body], headers)


ODD_REPLIES = {
    **{kind: OddReplies._reply_body for kind in ("html", "plain", "json-garbage", "json-truncated", "json-error")},
    **{kind: OddReplies._reply_stream for kind in ("empty", "done-only", "no-content", "keepalive", "endless",
                                                   "chunk-truncated", "disconnect", "bad-utf8", "tool-deltas",
                                                   *NAMED_EVENTS)},
    "hangup": OddReplies._hangup,
    "not-http": OddReplies._hangup,
}
