"""What the web app refuses before any view runs: requests that a web page in the user's browser
could make on another site's behalf, and bodies too large to read.

    app = Guard(starlette_app, local_only=True)

- DNS rebinding: a page at evil.example whose name is made to resolve to 127.0.0.1 reaches the
  server with `Host: evil.example`. A server bound to loopback answers only Host names that are
  loopback (localhost, 127.x, [::1]): anything else is 421, so no other site can read the pages.
- Cross-site writes: a POST must carry `Content-Type: application/json` (which a browser sends to
  another origin only after a CORS preflight, which this server never grants), and an `Origin`,
  when present, must be this server's own; else 415 / 403. A plain HTML form or a no-cors fetch
  from another site therefore cannot ask the model (with the user's API key) or write a conversation.
- A body over MAX_BODY bytes is 413, without reading it whole.
"""
from __future__ import annotations

import json
import urllib.parse

MAX_BODY = 1 << 20  # bytes of a request body: a question is a few hundred
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def host_name(value: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:80' -> '::1', 'LocalHost.' -> 'localhost'."""
    try:
        return (urllib.parse.urlsplit(f"//{value}").hostname or "").rstrip(".")
    except ValueError:
        return ""


def is_loopback_name(name: str) -> bool:
    return name in ("localhost", "::1") or name.endswith(".localhost") or (
        name.startswith("127.") and name.replace(".", "").isdigit())


def too_big(limit: int) -> str:
    return f"the body is over {limit} bytes: send a question, not a file"


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Guard:
    """ASGI middleware: the checks above, answered as JSON {"error", "status"} like the app's own errors."""

    def __init__(self, app, local_only: bool, body_paths: tuple[str, ...], max_body: int = MAX_BODY):
        self.app = app
        self.local_only = local_only
        self.body_paths = body_paths  # the routes that read a body (others answer 405 to a POST, as before)
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            self.check(scope["method"], scope["path"], headers)
        except Refused as refused:
            return await self.refuse(send, refused)
        if scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)
        await self.app(scope, self.capped(receive), send)

    def check(self, method: str, path: str, headers: dict) -> None:
        host = headers.get("host", "")
        if self.local_only and host and not is_loopback_name(host_name(host)):  # no Host (HTTP/1.0): no browser
            raise Refused(421, f"this server answers only to localhost or 127.0.0.1, not to the host name "
                               f"{host[:100]!r} (a web page of another site can point a name at this machine)")
        if method in SAFE_METHODS:
            return
        origin = headers.get("origin")
        if origin is not None and urllib.parse.urlsplit(origin).netloc.lower() != host.lower():
            raise Refused(403, f"a request from another site ({origin[:100]}) is refused: use the app's own pages")
        if path not in self.body_paths:
            return
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Refused(415, f"{kind or 'a body without Content-Type'} is not accepted: send JSON with "
                               "Content-Type: application/json")
        length = headers.get("content-length")
        if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > self.max_body):
            raise Refused(413, too_big(self.max_body))

    def capped(self, receive):
        """`receive` that stops a body sent without a length (chunked) past max_body."""
        seen = 0

        async def wrapped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # raised in the view that reads it: answered by the app's error handler
                    from starlette.exceptions import HTTPException

                    raise HTTPException(413, too_big(self.max_body))
            return message

        return wrapped

    @staticmethod
    async def refuse(send, refused: Refused) -> None:
        body = json.dumps({"error": str(refused), "status": refused.status}).encode()
        await send({"type": "http.response.start", "status": refused.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
