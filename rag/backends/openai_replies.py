"""What an OpenAI-compatible server sent back, read and put into words: stream chunks, whole
completions, error bodies, connection failures; and the errors for replies that are not answers.

    delta(chunk) -> ("The", None, None)                a chat.completion.chunk's text and finish_reason
    delta(chunk) -> ("", None, "'response.created'")   an event that is not one: what it is
    message_of({"error": {"message": "model not found"}}) -> "model not found"
    describe(err) -> ("connection refused", "start it (Ollama: `ollama serve`, ...")
"""
from __future__ import annotations

import json
import re
import socket
import ssl

from .base import ModelUnavailable

EXTRA_CHUNKS = 16  # chunks a server may send beyond one per token (role, finish, usage) before we stop it
MAX_CHARS_PER_TOKEN = 64  # no tokenizer's token is longer; more text than this per max_tokens is runaway
START_HINT = ("start it (Ollama: `ollama serve`, then `ollama pull llama3.2-vision`; vLLM: `vllm serve MODEL`) "
              "or point --base-url (or PAGERAG_BASE_URL) at it")


class ServerReplyError(ModelUnavailable):
    """The server answered, but not with a usable chat completion: a web page, an empty or endless
    stream, broken JSON. The message says what came back and where to look."""


class StreamLimit:
    """Stops a stream that outgrows max_tokens: a server that ignores the limit would stream forever."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self.chunks = self.chars = 0

    def take(self, text: str, base_url: str) -> None:
        self.chunks += 1
        self.chars += len(text)
        if self.chunks > self.max_tokens + EXTRA_CHUNKS or self.chars > self.max_tokens * MAX_CHARS_PER_TOKEN:
            raise ServerReplyError(
                f"the server at {base_url} kept streaming past the {self.max_tokens}-token limit "
                f"(--max-new-tokens {self.max_tokens}; {self.chunks} chunks, {self.chars} characters): it ignores "
                f"max_tokens, so the answer was stopped and dropped; update or reconfigure the server")


BYTES_PER_TOKEN = 4096  # reply bytes a streamed token may take (event framing, JSON, logprobs) before we stop it


def cap_reply(response, limit: int, message: str) -> None:
    """Make reading `response` (an httpx-style streaming response) raise ServerReplyError(message) once more than
    `limit` bytes came: an event that never ends (no newline) would otherwise grow in memory until the deadline."""
    import sys

    stream = getattr(response, "stream", None)
    base = getattr(sys.modules.get(type(response).__module__.split(".")[0]), "SyncByteStream", None)
    if stream is None or base is None or not isinstance(stream, base):
        return

    class Capped(base):
        def __iter__(self):
            seen = 0
            for block in stream:
                seen += len(block)
                if seen > limit:
                    raise ServerReplyError(message)
                yield block

        def close(self):
            stream.close()

    response.stream = Capped()


TOOL_CALLS = "tool-call deltas"


def delta(chunk, base_url: str = "the server") -> tuple[str, str | None, str | None]:
    """A chat.completion.chunk -> (its text, its finish_reason, None); one without choices gives ("", None, None)
    (e.g. a final usage-only chunk). Tool-call deltas, or an event that is no chat chunk at all (another API's,
    such as /responses), give ("", None, what it is): TOOL_CALLS, or the event's type, else its start
    ({"type": "response.created", ...} -> "'response.created'"). An error object in the stream (vLLM's
    {"object": "error", "message": ...}, an {"type": "error", ...} event) raises ModelUnavailable."""
    if "error" in (getattr(chunk, "object", None), getattr(chunk, "type", None)) or getattr(chunk, "error", None):
        body = getattr(chunk, "error", None) or {"message": getattr(chunk, "message", None) or "no message"}
        raise ModelUnavailable(f"the server at {base_url} failed in the middle of the answer: {message_of(body)}")
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        return "", None, None if getattr(chunk, "object", None) == "chat.completion.chunk" else event_name(chunk)
    if not choices:
        return "", None, None
    said = getattr(choices[0], "delta", None)
    content, reason = getattr(said, "content", None), getattr(choices[0], "finish_reason", None)
    calls = getattr(said, "tool_calls", None) or getattr(said, "function_call", None)
    return ((content if isinstance(content, str) else ""), (reason if isinstance(reason, str) else None),
            TOOL_CALLS if calls else None)


def event_name(event) -> str:
    """An event's type (or object) quoted, else the start of its JSON: for messages."""
    name = getattr(event, "type", None) or getattr(event, "object", None)
    if isinstance(name, str) and name.strip():
        return repr(plain(name[:80]))
    try:
        fields = event.model_dump(exclude_unset=True)
    except Exception:  # noqa: BLE001 - not the client library's model: its text
        return sample(plain(event))
    return sample(json.dumps(fields, default=str))


def no_text(base_url: str, model: str, finish: str | None, others: dict[str, int]) -> str:
    """Why a reply that streamed no text is not an answer, from how it finished and the other events it held
    (what `delta` found: name -> how many)."""
    stray = {name: n for name, n in others.items() if name != TOOL_CALLS}
    if stray:
        total = sum(stray.values())
        kinds = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in list(stray.items())[:4])
        return (f"the server at {base_url} sent no text: it streamed {total} event(s) that are not chat-completion "
                f"chunks ({kinds}{', ...' if len(stray) > 4 else ''}); it is not an OpenAI chat-completions stream. "
                f"Check --base-url {base_url} (the server's chat-completions API, e.g. http://localhost:11434/v1 "
                f"for Ollama) and that -m {model} is a chat model the server serves")
    ending = f"it finished (finish_reason {finish!r})" if finish else "the stream ended"
    if TOOL_CALLS in others or finish in ("tool_calls", "function_call"):
        got = "tool calls instead of an answer" if TOOL_CALLS in others else "an empty answer"
        return (f"the server at {base_url} sent no text: {ending} with {got}; the model asked to call a tool, and "
                "pagerag offers none: check the model's chat template on the server")
    return (f"the server at {base_url} sent no text: {ending} with an empty answer; check the server's log "
            f"(the model may have failed on the images)")


def completion_text(completion, base_url: str) -> tuple[str, str | None]:
    if isinstance(completion, dict) and "error" in completion:
        raise ModelUnavailable(f"the server at {base_url} failed: {message_of(completion)}")
    try:
        choice = completion["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ServerReplyError(f"the server at {base_url} did not answer a chat completion "
                               f"({sample(json.dumps(completion))}); check --base-url {base_url}") from None
    if isinstance(content, list):  # content parts, as some servers send: [{"type": "text", "text": "..."}]
        content = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
    return (content if isinstance(content, str) else ""), (reason if isinstance(reason, str) else None)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text) -> str:
    """Text from a server made safe to print: control characters (terminal escapes, newlines) as \\xNN."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))


def message_of(body) -> str:
    """The message in an error body: OpenAI's {"error": {"message"}}, vLLM's {"message"}, or the text;
    control characters escaped (it is printed to a terminal)."""
    if isinstance(body, str) and body.lstrip()[:1] == "<":
        return f"{web_page(body)}, not an API error"
    if not isinstance(body, dict):
        return plain(str(body)[:300])
    error = body.get("error", body)
    if isinstance(error, dict):
        said = error.get("message") or error.get("detail")
        return plain(str(said)[:300]) if said else sample(json.dumps(error))  # JSON as sent, not a Python dict
    return plain(str(error)[:300])


def describe(err: BaseException) -> tuple[str, str]:
    """The root cause of a connection error, in words, and what to do about it."""
    causes, seen = [], err
    while seen is not None and len(causes) < 8:
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " / ".join(str(c) for c in causes).lower()
    root = causes[-1]
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
        return "connection refused", START_HINT
    if any(isinstance(c, socket.gaierror) for c in causes) or "name or service not known" in text:
        return f"no such host: {root}", "check the host name in --base-url (or PAGERAG_BASE_URL)"
    if "decompress" in text or any(type(c).__name__ == "DecodingError" for c in causes):
        return f"undecodable: {root}", "the server, or a proxy in front of it, labels its replies wrongly"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return f"TLS failed: {root}", "if the server speaks plain HTTP, use http:// in --base-url; else check its certificate"
    if "without sending a response" in text or "disconnected" in text:
        return ("the server closed the connection without answering",
                "check the server's log, and that --base-url points at an OpenAI-compatible server")
    if "incomplete" in text or "peer closed" in text:
        return "the server closed the connection before the reply was complete", "check the server's log"
    if any(type(c).__name__ == "RemoteProtocolError" for c in causes):  # e.g. headers past the HTTP library's limit
        return (f"the reply is not valid HTTP: {root}",
                "check that --base-url points at an OpenAI-compatible server, and the server's log")
    return str(root) or type(root).__name__, START_HINT


def is_transport_error(err: BaseException) -> bool:
    return isinstance(err, OSError) or type(err).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore",
                                                                              "httpcore2", "h11")


def content_type(response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def web_page(html: str) -> str:
    """'a web page titled '502 Bad Gateway'' (or its start when it has no title), for messages."""
    title = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
    return f"a web page titled {sample(title.group(1))}" if title else f"a web page ({sample(html)})"


def sample(text: str) -> str:
    text = " ".join(text.split())
    return repr(text[:120] + ("..." if len(text) > 120 else ""))
