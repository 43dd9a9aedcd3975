"""A backend for any OpenAI-compatible chat-completions server that takes images: vLLM, Ollama,
LM Studio, llama.cpp's server. Standard library only.

    backend = OpenAIBackend(model="llama3.2-vision", base_url="http://localhost:11434/v1")
    for piece in backend.stream(messages, images, GenerationOptions(max_new_tokens=200)):
        print(piece, end="")

On the wire, `POST {base_url}/chat/completions` with

    {"model": "llama3.2-vision", "stream": true, "temperature": 0.0, "max_tokens": 200,
     "messages": [{"role": "user", "content": [
         {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ..."}},
         {"type": "text", "text": "What is the total?"}]}]}

is answered by Server-Sent Events, one `data: {"object": "chat.completion.chunk", "choices":
[{"delta": {"content": "The"}}], ...}` line per piece, ending with `data: [DONE]`.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Iterable, Iterator

from .base import Backend, GenerationOptions, ModelUnavailable

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:11434/v1"  # Ollama's OpenAI-compatible API
BASE_URL_ENV = ("PAGERAG_BASE_URL", "OPENAI_BASE_URL")  # first one set wins
API_KEY_ENV = ("PAGERAG_API_KEY", "OPENAI_API_KEY")
LOAD_TIMEOUT = 10.0  # seconds for the GET /models reachability check
MAX_RETRY_AFTER = 30.0  # seconds: never sleep longer than this on a server's Retry-After
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error response read for its message
START_HINT = "start it (e.g. `ollama serve`, `vllm serve MODEL`) or pass --base-url (or set PAGERAG_BASE_URL)"


class OpenAIBackend(Backend):
    """Talks to an OpenAI-compatible server; images travel as data URLs inside the messages.

    Options: base_url (else $PAGERAG_BASE_URL, else $OPENAI_BASE_URL, else Ollama's local URL),
    api_key (else $PAGERAG_API_KEY, else $OPENAI_API_KEY; sent as a Bearer token when set),
    retries (extra tries on connection errors, 429 and 5xx, with exponential backoff from
    `backoff` seconds; never on other 4xx), max_image_side (long side in pixels, None for no
    limit), image_format ("jpeg" or "png"). GenerationOptions.timeout bounds the connection and
    every wait for the next bytes, not the whole reply, so a long answer can keep streaming.
    A server on this machine (localhost, 127.x, ::1) is reached directly, past HTTP(S)_PROXY.
    """

    name = "openai"
    default_model = "llama3.2-vision"  # Ollama's name for Llama 3.2 11B Vision

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        retries: int = 2,
        backoff: float = 0.5,
        max_image_side: int | None = 1600,
        image_format: str = "jpeg",
    ):
        super().__init__(model, base_url=base_url, api_key=api_key, retries=retries, backoff=backoff,
                         max_image_side=max_image_side, image_format=image_format)
        self.base_url = (base_url or _first_env(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ModelUnavailable(
                f"the base URL {self.base_url!r} must start with http:// or https://, "
                f"e.g. http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)"
            )
        self.api_key = api_key or _first_env(API_KEY_ENV)
        # a server on this machine is reached directly, even when HTTP(S)_PROXY is set for the outside
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        local = host in ("localhost", "::1") or host.startswith("127.")
        self._opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if local else []))
        if int(retries) < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_image_side = max_image_side
        if image_format.lower() not in ("jpeg", "jpg", "png"):
            raise ValueError(f"image_format must be 'jpeg' or 'png', not {image_format!r}")
        self.image_format = "png" if image_format.lower() == "png" else "jpeg"

    def stream(self, messages: list[dict], images: list, options: GenerationOptions) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": to_openai_messages(messages, images, self._encode),
            "stream": True,
            "temperature": float(options.temperature),
            "max_tokens": int(options.max_new_tokens),
        }
        try:
            response = self._open("POST", "/chat/completions", body, options.timeout)
        except _HTTPStatus as err:
            raise self._explain(err, "/chat/completions") from None
        with response:
            if response.headers.get_content_type() == "application/json":  # a server that ignores stream=true
                yield from _completion_text(self._read_json(response, options.timeout), self.base_url)
            else:  # text/event-stream, whatever the server calls it
                yield from self._read_stream(response, options.timeout)

    def load(self) -> None:
        """Check that the server answers GET /models (with our key, if any); quick, loads nothing."""
        self.served_models()

    def served_models(self, timeout: float = LOAD_TIMEOUT) -> list[str]:
        """The model ids the server lists at GET /models, e.g. ["llama3.2-vision:latest"]."""
        try:
            response = self._open("GET", "/models", None, timeout)
        except _HTTPStatus as err:
            raise self._explain(err, "/models") from None
        with response:
            listing = self._read_json(response, timeout)
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            raise ModelUnavailable(f"{self.base_url}/models did not answer an OpenAI model list; check the base URL")
        return [entry["id"] for entry in listing["data"] if isinstance(entry, dict) and "id" in entry]

    # --- HTTP ---

    def _open(self, method: str, path: str, body: dict | None, timeout: float) -> http.client.HTTPResponse:
        """Send one request, retrying connection errors, 429 and 5xx with exponential backoff.

        Raises _HTTPStatus for an error status (after the retries when it is retryable),
        ModelUnavailable when the server cannot be reached or does not answer in time.
        """
        url = self.base_url + path
        headers = {"Accept": "text/event-stream, application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        tries = self.retries + 1
        for attempt in range(tries):
            delay = self.backoff * 2**attempt
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method=method)
                return self._opener.open(request, timeout=timeout)
            except http.client.InvalidURL as err:  # a bad port, an empty host
                raise ModelUnavailable(f"the base URL {self.base_url!r} is not a valid URL ({err})") from None
            except urllib.error.HTTPError as err:
                status = _HTTPStatus(err.code, _error_message(err), attempt + 1)
                retry_after = _retry_after(err.headers.get("Retry-After"))
                err.close()
                if not (err.code == 429 or err.code >= 500) or attempt == tries - 1:
                    raise status from None
                delay = retry_after if retry_after is not None else delay
                log.info("%s %s answered HTTP %d; retrying in %.2g s", method, url, err.code, delay)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                reason = err.reason if isinstance(err, urllib.error.URLError) else err
                if isinstance(reason, TimeoutError):
                    raise ModelUnavailable(self._timeout_message(timeout)) from None
                if attempt == tries - 1:
                    raise ModelUnavailable(
                        f"cannot reach the OpenAI-compatible server at {self.base_url} ({_describe(reason)}) "
                        f"after {tries} {'try' if tries == 1 else 'tries'}: {START_HINT}"
                    ) from None
                log.info("cannot reach %s (%s); retrying in %.2g s", url, _describe(reason), delay)
            time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises on its last try

    def _read_stream(self, response: http.client.HTTPResponse, timeout: float) -> Iterator[str]:
        """Yield choices[0].delta.content of each chunk until `data: [DONE]`."""
        done = False
        for payload in _guard_reads(sse_data(response), self, timeout):
            if payload == "[DONE]":
                done = True
                break
            chunk = _parse_json(payload, self.base_url)
            if isinstance(chunk, dict) and "error" in chunk:
                raise ModelUnavailable(
                    f"the server at {self.base_url} failed in the middle of the answer: {_message_of(chunk)}"
                )
            choices = chunk.get("choices") if isinstance(chunk, dict) else None
            if not choices:
                continue  # e.g. a final usage-only chunk
            piece = (choices[0].get("delta") or {}).get("content")
            if piece:
                yield piece
        if not done:
            log.warning("the stream from %s ended without `data: [DONE]`; the answer may be cut short", self.base_url)

    def _read_json(self, response: http.client.HTTPResponse, timeout: float):
        raw = b"".join(_guard_reads(iter(lambda: response.read(65536), b""), self, timeout))
        return _parse_json(raw.decode("utf-8", errors="replace"), self.base_url)

    # --- messages ---

    def _encode(self, image) -> str:
        return image_data_url(image, self.max_image_side, self.image_format)

    def _timeout_message(self, timeout: float) -> str:
        return (
            f"no answer from the server at {self.base_url} within {timeout:g} s: the model may still be "
            f"loading or be too slow for this machine; raise the timeout (GenerationOptions.timeout) "
            f"or use a smaller model"
        )

    def _explain(self, err: _HTTPStatus, path: str) -> ModelUnavailable:
        """Turn an error status into a message that says what to do about it."""
        said = f"HTTP {err.code}: {err.message}" if err.message else f"HTTP {err.code}"
        if err.code in (401, 403):
            which = "was refused" if self.api_key else "was not sent"
            return ModelUnavailable(
                f"the server at {self.base_url} refused the request ({said}); the API key {which}: "
                f"set PAGERAG_API_KEY (or OPENAI_API_KEY) to a key the server accepts"
            )
        if err.code == 404 and path == "/models":
            return ModelUnavailable(
                f"no OpenAI-compatible API at {self.base_url} ({said}): check the base URL; "
                f"it usually ends in /v1, e.g. http://localhost:11434/v1 or http://localhost:8000/v1"
            )
        if err.code == 404:
            try:
                served = self.served_models(timeout=LOAD_TIMEOUT)
            except ModelUnavailable as listing_failed:
                return ModelUnavailable(f"model '{self.model}' not found at {self.base_url} ({said}); {listing_failed}")
            listing = ", ".join(served) if served else "none"
            return ModelUnavailable(
                f"model '{self.model}' not found at {self.base_url} ({said}); the server serves: {listing}. "
                f"Pass one of those as the model, or load the model into the server (e.g. `ollama pull {self.model}`)"
            )
        if err.code == 429 or err.code >= 500:
            return ModelUnavailable(
                f"the server at {self.base_url} answered {said} after {err.tries} "
                f"{'try' if err.tries == 1 else 'tries'}; check its log, or try again later"
            )
        return ModelUnavailable(f"the server at {self.base_url} rejected the request ({said})")


class _HTTPStatus(Exception):
    """An error status from the server, with the message its body carried."""

    def __init__(self, code: int, message: str, tries: int):
        super().__init__(code, message)
        self.code, self.message, self.tries = code, message, tries


def to_openai_messages(messages: list[dict], images: list, encode: Callable[[object], str]) -> list[dict]:
    """transformers chat messages and their images -> OpenAI messages with the images in place.

    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Total?"}]}], [page]
    -> [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": encode(page)}},
                                      {"type": "text", "text": "Total?"}]}]

    A message without images gets its text as one string, the form every server accepts.
    """
    converted, used = [], 0
    for message in messages:
        content = message.get("content", "")
        if isinstance(content, str):
            converted.append({"role": message["role"], "content": content})
            continue
        parts = []
        for entry in content:
            kind = entry.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": entry["text"]})
            elif kind == "image":
                if used >= len(images):
                    raise ValueError(f"the messages have more image entries than the {len(images)} images given")
                parts.append({"type": "image_url", "image_url": {"url": encode(images[used])}})
                used += 1
            else:
                raise ValueError(f"unknown content entry type {kind!r}; expected 'image' or 'text'")
        if all(part["type"] == "text" for part in parts):
            converted.append({"role": message["role"], "content": "".join(part["text"] for part in parts)})
        else:
            converted.append({"role": message["role"], "content": parts})
    if used != len(images):
        raise ValueError(f"{len(images)} images given but the messages have {used} image entries")
    return converted


def image_data_url(image, max_side: int | None = 1600, image_format: str = "jpeg") -> str:
    """A PIL image as a data URL, its long side at most `max_side`: 3200x1000 -> a 1600x500 JPEG."""
    from PIL import Image

    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if image_format == "png":
        if image.mode not in ("1", "L", "LA", "RGB", "RGBA", "P"):
            image = image.convert("RGBA" if has_alpha else "RGB")
        buffer, mime = io.BytesIO(), "image/png"
        image.save(buffer, format="PNG")
    else:
        if has_alpha:  # JPEG has no alpha: put transparent parts on white paper, not black
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, "white")
            image.paste(rgba, mask=rgba.getchannel("A"))
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        buffer, mime = io.BytesIO(), "image/jpeg"
        image.save(buffer, format="JPEG", quality=90)
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def sse_data(lines: Iterable[bytes]) -> Iterator[str]:
    """The `data:` payloads of a Server-Sent Events stream, one per line; comments and other fields skipped.

    [b'data: {"a": 1}\\n', b'\\n', b': keep-alive\\n', b'data: [DONE]\\n'] -> '{"a": 1}', '[DONE]'
    OpenAI-compatible servers put each JSON chunk on one `data:` line, so no joining is needed.
    """
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line.startswith("data:"):
            yield line[5:].removeprefix(" ")


def _guard_reads(reads: Iterator, backend: OpenAIBackend, timeout: float) -> Iterator:
    """Pass `reads` through, turning a timeout or a dropped connection while reading into ModelUnavailable."""
    try:
        yield from reads
    except TimeoutError:
        raise ModelUnavailable(backend._timeout_message(timeout)) from None
    except (OSError, http.client.HTTPException) as err:
        raise ModelUnavailable(
            f"the connection to {backend.base_url} broke in the middle of the answer ({_describe(err)}); "
            f"check the server's log"
        ) from None


def _completion_text(completion, base_url: str) -> Iterator[str]:
    if isinstance(completion, dict) and "error" in completion:
        raise ModelUnavailable(f"the server at {base_url} failed: {_message_of(completion)}")
    try:
        content = completion["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ModelUnavailable(f"the server at {base_url} did not answer a chat completion") from None
    if content:
        yield content


def _parse_json(text: str, base_url: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ModelUnavailable(
            f"the server at {base_url} answered something that is not OpenAI-compatible JSON "
            f"({text[:120]!r}); check the base URL"
        ) from None


def _error_message(err: urllib.error.HTTPError) -> str:
    """The message in an error body: OpenAI's {"error": {"message"}}, vLLM's {"message"}, or the text."""
    try:
        text = err.read(ERROR_BODY_LIMIT).decode("utf-8", errors="replace").strip()
    except (OSError, http.client.HTTPException):
        return ""
    try:
        return _message_of(json.loads(text))
    except json.JSONDecodeError:
        return text[:300]


def _message_of(body) -> str:
    if not isinstance(body, dict):
        return str(body)[:300]
    error = body.get("error", body)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)[:300]
    return str(error)[:300]


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER) if value else None
    except ValueError:  # an HTTP date: rare from these servers; use our own backoff
        return None


def _describe(reason) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    return str(reason) or type(reason).__name__


def _first_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
