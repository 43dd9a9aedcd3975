"""A backend for any OpenAI-compatible chat-completions server that takes images: Ollama, vLLM,
LM Studio, llama.cpp's server. Built on the official `openai` client, imported on first use.

    backend = OpenAIBackend(model="llama3.2-vision", base_url="http://localhost:11434/v1")
    for piece in backend.stream(messages, images, GenerationOptions(max_new_tokens=200, timeout=120)):
        print(piece, end="")

On the wire, `POST {base_url}/chat/completions` with

    {"model": "llama3.2-vision", "stream": true, "temperature": 0.0, "max_tokens": 200,
     "messages": [{"role": "user", "content": [
         {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ..."}},
         {"type": "text", "text": "What is the total?"}]}]}

is answered by Server-Sent Events, one `data: {"object": "chat.completion.chunk", "choices":
[{"delta": {"content": "The"}}], ...}` line per piece, ending with `data: [DONE]`.

The client library does the HTTP, the event parsing, the retries (connection errors, 408, 409,
429 and 5xx, with backoff and the server's Retry-After) and types the errors. This module adds
what a user of a local server needs: one deadline on the whole answer (`timeout`, which
keep-alive comments or a trickle of bytes do not extend), a stop for a server that ignores
max_tokens, a check that a reply is a chat completion at all (a web page, an empty stream or
broken JSON is an error, never an empty answer), and messages that say what to do.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import urllib.parse
from typing import Iterator

from .base import Backend, GenerationOptions, ModelUnavailable
from .deadline import DeadlinePassed, Pump, on_request
from .openai_messages import image_data_url, to_openai_messages
from .openai_replies import (
    BYTES_PER_TOKEN, ServerReplyError, StreamLimit, cap_reply, completion_text, content_type, delta, describe,
    is_transport_error, message_of, plain, sample, web_page,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:11434/v1"  # Ollama's OpenAI-compatible API
BASE_URL_ENV = ("PAGERAG_BASE_URL", "OPENAI_BASE_URL")  # first one set wins
API_KEY_ENV = ("PAGERAG_API_KEY", "OPENAI_API_KEY")
NO_KEY = "no-key"  # sent when no key is set: local servers ignore it, one that checks says 401
LOAD_TIMEOUT = 10.0  # seconds for the GET /models reachability check
MAX_BODY = 16 * 1024 * 1024  # bytes of a whole-JSON reply read at most


class OpenAIBackend(Backend):
    """Talks to an OpenAI-compatible server; images travel as data URLs inside the messages.

    Options: base_url (else $PAGERAG_BASE_URL, else $OPENAI_BASE_URL, else Ollama's local URL),
    api_key (else $PAGERAG_API_KEY, else $OPENAI_API_KEY, else a placeholder local servers
    ignore), retries (extra tries the client library makes on connection errors, 408/409/429 and
    5xx), max_image_side (long side in pixels, None for no limit), image_format ("jpeg" or
    "png"), max_images (images one request may carry, None for no limit; see rag.settings).
    GenerationOptions.timeout bounds the whole answer: the wait, the model loading, the streaming.
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
        max_image_side: int | None = 1600,
        image_format: str = "jpeg",
        max_images: int | None = None,
    ):
        super().__init__(model, base_url=base_url, api_key=api_key, retries=retries, max_image_side=max_image_side,
                         image_format=image_format, max_images=max_images)
        self.base_url = (base_url or _first_env(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self._check_base_url()
        self.api_key = api_key or _first_env(API_KEY_ENV)
        if self.api_key and not (self.api_key.isascii() and self.api_key.isprintable()):
            raise ModelUnavailable("the API key (PAGERAG_API_KEY or OPENAI_API_KEY) holds characters an HTTP header "
                                   "cannot carry (outside printable ASCII): set it to the key alone")
        if not _is_unicode(self.model):
            raise ModelUnavailable(f"the model name {self.model!r} (-m or PAGERAG_MODEL) is not valid UTF-8")
        if int(retries) < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        self.retries = int(retries)
        self.max_image_side = max_image_side
        if image_format.lower() not in ("jpeg", "jpg", "png"):
            raise ValueError(f"image_format must be 'jpeg' or 'png', not {image_format!r}")
        self.image_format = "png" if image_format.lower() == "png" else "jpeg"
        self.max_images = max_images
        self._client = None  # openai.OpenAI, made on first use: importing it takes ~1 s

    def stream(self, messages: list[dict], images: list, options: GenerationOptions) -> Iterator[str]:
        if self.max_images is not None and len(images) > self.max_images:
            raise ModelUnavailable(
                f"model '{self.model}' takes at most {self.max_images} image(s) per request on this kind of server, "
                f"but {len(images)} were to be sent (--images {len(images)}): use --images {self.max_images}; "
                f"the other pages still reach the model as text")
        request = {
            "model": self.model,
            "messages": to_openai_messages(messages, images, self._encode),
            "stream": True,
            "temperature": float(options.temperature),
            "max_tokens": int(options.max_new_tokens),
        }
        client = self._openai()
        deadline = options.deadline or time.monotonic() + options.timeout
        pump = Pump(lambda p: self._reply(client, p, request, options.timeout), deadline)
        limit = StreamLimit(options.max_new_tokens)
        received, finish = 0, None
        self.finish_reason = None
        try:
            for text, reason in pump:
                limit.take(text, self.base_url)
                finish = reason or finish
                if text:
                    received += len(text)
                    yield text
        except DeadlinePassed:
            raise ModelUnavailable(self._timeout_message(options.timeout, pump.response, received)) from None
        except Exception as err:  # noqa: BLE001 - _explain re-raises what it does not know
            raise self._explain(err, "/chat/completions", pump, options.timeout) from None
        finally:
            pump.close()
        if finish == "content_filter":  # what came before the filter stopped it is not the answer
            raise ServerReplyError(
                f"the server at {self.base_url} stopped the answer with its content filter (finish_reason "
                f"'content_filter') after {received} characters; the partial answer was dropped")
        if not received:
            ending = f"it finished (finish_reason {finish!r})" if finish else "the stream ended"
            why = ("the model asked to call a tool, and pagerag offers none: check the model's chat template on "
                   "the server" if finish in ("tool_calls", "function_call") else
                   "check the server's log (the model may have failed on the images)")
            raise ServerReplyError(f"the server at {self.base_url} sent no text: {ending} with an empty answer; {why}")
        self.finish_reason = finish

    def load(self) -> None:
        """Check that the server answers GET /models (with our key, if any); quick, loads nothing."""
        self.served_models()

    def ready(self, options: GenerationOptions) -> GenerationOptions:
        """load(), within the answer's --timeout: the check and the answer share one deadline."""
        deadline = time.monotonic() + options.timeout
        self.served_models(min(LOAD_TIMEOUT, options.timeout), given=options.timeout)
        return dataclasses.replace(options, deadline=deadline)

    def served_models(self, timeout: float = LOAD_TIMEOUT, given: float | None = None) -> list[str]:
        """The model ids the server lists at GET /models, e.g. ["llama3.2-vision:latest"]. `given`: the
        --timeout of the answer this check is part of, named when it is what ran out."""
        client = self._openai()
        pump = Pump(lambda p: self._listing(client, p, timeout), time.monotonic() + timeout)
        try:
            return next(iter(pump))
        except DeadlinePassed:
            message = self._timeout_message(timeout, pump.response, 0, "/models")
            if given is not None and given <= timeout:
                message = message.replace(f"within {timeout:g} s", f"within {timeout:g} s (--timeout {given:g})")
            raise ModelUnavailable(message) from None
        except Exception as err:  # noqa: BLE001 - _explain re-raises what it does not know
            raise self._explain(err, "/models", pump, timeout) from None
        finally:
            pump.close()

    # --- in the worker thread (see deadline.Pump) ---

    def _reply(self, client, pump: Pump, request: dict, timeout: float) -> Iterator[tuple[str, str | None]]:
        """(text, finish_reason) for each chunk of the reply to `request`."""
        raw = client.chat.completions.with_raw_response.create(**request, timeout=timeout)
        response = pump.response = raw.http_response
        limit = MAX_BODY + request["max_tokens"] * BYTES_PER_TOKEN
        cap_reply(response, limit, f"the server at {self.base_url} sent more than {limit} bytes for a "
                                   f"{request['max_tokens']}-token answer (--max-new-tokens): an event that never "
                                   "ends, or a reply that is not an answer; it was stopped, check the server")
        kind = content_type(response)
        if kind.endswith("json"):  # a server that ignores stream=true answers one chat.completion
            yield completion_text(self._json_body(response, "/chat/completions"), self.base_url)
            return
        if kind not in ("text/event-stream", ""):
            raise self._not_an_api(response, "/chat/completions")
        with raw.parse() as events:
            for chunk in events:
                yield delta(chunk, self.base_url)

    def _listing(self, client, pump: Pump, timeout: float) -> Iterator[list[str]]:
        raw = client.models.with_raw_response.list(timeout=timeout)
        response = pump.response = raw.http_response
        if not content_type(response).endswith("json"):
            raise self._not_an_api(response, "/models")
        listing = self._json_body(response, "/models")
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            raise ServerReplyError(
                f"{self.base_url}/models did not answer an OpenAI model list ({sample(json.dumps(listing))}); "
                f"check --base-url {self.base_url}")
        yield [plain(entry["id"]) for entry in listing["data"] if isinstance(entry, dict) and "id" in entry]

    def _json_body(self, response, path: str):
        data = bytearray()
        for block in response.iter_bytes():
            data += block
            if len(data) > MAX_BODY:
                raise ServerReplyError(f"{self.base_url}{path} answered more than {MAX_BODY} bytes of JSON; "
                                       f"check --base-url {self.base_url}")
        text = data.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ServerReplyError(
                f"{self.base_url}{path} answered broken or cut-off JSON ({sample(text)}); check the server's log"
            ) from None

    def _not_an_api(self, response, path: str) -> ServerReplyError:
        head = b""
        for block in response.iter_bytes():
            head += block
            if len(head) >= 4096:
                break
        kind, text = content_type(response), head.decode("utf-8", errors="replace")
        what = web_page(text) if "html" in kind else f"Content-Type {kind} ({sample(text)})"
        return ServerReplyError(
            f"{self.base_url}{path} answered {what}, not an OpenAI-compatible reply: something else listens at "
            f"--base-url {self.base_url}; the API usually lives at /v1, e.g. http://localhost:11434/v1 (Ollama)")

    # --- the client and its errors ---

    def _openai(self):
        if self._client is not None:
            return self._client
        import openai

        try:
            # a server on this machine is reached directly, even when HTTP(S)_PROXY is set for the outside
            # redirects are not followed: a 301/302 turns the POST into a GET, and any redirect would send the
            # question and the page images to another server unasked; _explain_status names the new location
            http = openai.DefaultHttpxClient(trust_env=not _is_loopback(self.base_url), follow_redirects=False,
                                             event_hooks={"request": [on_request]})
            self._client = openai.OpenAI(api_key=self.api_key or NO_KEY, base_url=self.base_url,
                                         max_retries=self.retries, http_client=http)
        except Exception as err:  # noqa: BLE001 - the HTTP library's many kinds of bad URL or proxy setting
            proxies = [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]
            raise ModelUnavailable(
                f"cannot use --base-url {self.base_url} ({err})"
                + (f"; check the proxy settings too ({', '.join(proxies)})"
                   if proxies and not _is_loopback(self.base_url) else "")) from None
        return self._client

    def _encode(self, image) -> str:
        return image_data_url(image, self.max_image_side, self.image_format)

    def _check_base_url(self) -> None:
        example = "e.g. http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)"
        if not _is_unicode(self.base_url):
            raise ModelUnavailable(f"the base URL {self.base_url!r} (--base-url) is not valid UTF-8, {example}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ModelUnavailable(f"the base URL {self.base_url!r} (--base-url) must start with http:// or "
                                   f"https://, {example}")
        try:
            parts = urllib.parse.urlsplit(self.base_url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError as err:
            raise ModelUnavailable(f"the base URL {self.base_url!r} (--base-url) is not a valid URL ({err}), "
                                   f"{example}") from None
        if not parts.hostname:
            raise ModelUnavailable(f"the base URL {self.base_url!r} (--base-url) names no host, {example}")

    def _timeout_message(self, timeout: float, response, received: int, path: str = "/chat/completions") -> str:
        where = f"the server at {self.base_url}"
        if path == "/models":  # the quick reachability check, not bound by --timeout
            return (f"{where} did not answer GET {path} within {timeout:g} s: it may be overloaded, or "
                    f"something that is not an OpenAI-compatible server listens at --base-url {self.base_url}")
        if response is None:
            what = f"{where} did not answer {path} within {timeout:g} s (--timeout {timeout:g})"
        elif not received:
            what = f"{where} sent no text within {timeout:g} s (--timeout {timeout:g}), only the start of a reply"
        else:
            what = (f"the answer from {where} was not finished within {timeout:g} s "
                    f"(--timeout {timeout:g}; {received} characters so far)")
        return (f"{what}: the model may still be loading or be too slow for this machine; "
                f"raise --timeout or use a smaller model")

    def _explain(self, err: Exception, path: str, pump: Pump, timeout: float) -> ModelUnavailable:
        """A library or transport error -> ModelUnavailable that says what to do; unknown errors re-raised."""
        import openai

        tries = f"{max(pump.requests, 1)} {'try' if pump.requests <= 1 else 'tries'}"
        if isinstance(err, ModelUnavailable):
            return err
        if isinstance(err, openai.APIStatusError):
            return self._explain_status(err, path, tries)
        if isinstance(err, openai.APITimeoutError):  # a read timed out before our deadline (it rarely can)
            return ModelUnavailable(self._timeout_message(timeout, None, 0, path))
        if isinstance(err, openai.APIConnectionError) or is_transport_error(err):
            reason, hint = describe(err)
            if reason.startswith("undecodable"):
                encoding = pump.response.headers.get("content-encoding", "?") if pump.response is not None else "?"
                return ServerReplyError(f"the reply from {self.base_url} does not decode as its Content-Encoding "
                                        f"({encoding}) says ({reason[len('undecodable: '):]}); {hint}")
            proxy = self._proxy()
            if pump.response is None and proxy:
                return ModelUnavailable(
                    f"cannot reach {self.base_url} through the proxy {proxy[1]} (from {proxy[0]}; {reason}) after "
                    f"{tries}: check that proxy, or add the host to NO_PROXY to reach it directly")
            if pump.response is not None:
                return ModelUnavailable(f"the connection to {self.base_url} broke in the middle of the answer "
                                        f"({reason}); check the server's log")
            return ModelUnavailable(f"cannot reach the OpenAI-compatible server at {self.base_url} ({reason}) "
                                    f"after {tries}: {hint}")
        if isinstance(err, openai.APIResponseValidationError):
            return ServerReplyError(f"{self.base_url}{path} answered something that is not a chat completion "
                                    f"({err}); check the server's log")
        if isinstance(err, openai.APIError):  # an error event inside the stream, as vLLM sends
            return ModelUnavailable(f"the server at {self.base_url} failed in the middle of the answer: "
                                    f"{message_of(err.body) if err.body else err.message}")
        if isinstance(err, json.JSONDecodeError):  # a `data:` line that is not JSON
            return ServerReplyError(f"the server at {self.base_url} sent an event that is not JSON "
                                    f"({sample(err.doc)}); check the server's log")
        if isinstance(err, UnicodeDecodeError):  # the event parser reads UTF-8 only, as the format says
            near = bytes(err.object[max(err.start - 40, 0):err.end]).decode("utf-8", errors="replace")
            return ServerReplyError(f"the server at {self.base_url} sent text that is not UTF-8 ({err.reason} "
                                    f"in {sample(near)}); check the server's log")
        raise err

    def _proxy(self) -> tuple[str, str] | None:
        """(variable, proxy URL) of the proxy the client goes through for --base-url, None when it goes direct."""
        if _is_loopback(self.base_url) or not any(k.lower().endswith("_proxy") for k in os.environ):
            return None
        import urllib.request

        parts = urllib.parse.urlsplit(self.base_url)
        if urllib.request.proxy_bypass_environment(parts.hostname or "", urllib.request.getproxies_environment()):
            return None
        for scheme in (parts.scheme, "all"):
            for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
                if os.environ.get(name):
                    return name, os.environ[name]
        return None

    def _explain_status(self, err, path: str, tries: str) -> ModelUnavailable:
        """An error status -> a message that says what to do about it."""
        code = err.status_code
        said = f"HTTP {code}: {message_of(err.body)}" if err.body else f"HTTP {code}"
        if 300 <= code < 400:
            where = err.response.headers.get("location")
            target = plain(urllib.parse.urljoin(f"{self.base_url}{path}", where)) if where else None
            base = target[: -len(path)] if target and target.endswith(path) else target
            return ModelUnavailable(
                f"the server at {self.base_url} redirects {path} (HTTP {code}) to {target or 'nowhere said'}; "
                "pagerag does not follow redirects (they would send the question and the pages elsewhere): "
                + (f"if that is the server you mean, use --base-url {base}" if base else "check --base-url"))
        if code == 413:
            return ModelUnavailable(
                f"the server at {self.base_url} refused the request as too large ({said}): the page images make "
                "it big; use --images 1 (or 0), or raise the server's request size limit")
        if code in (401, 403):
            which = "was refused" if self.api_key else "was not set"
            return ModelUnavailable(
                f"the server at {self.base_url} refused the request ({said}); the API key {which}: "
                f"set PAGERAG_API_KEY (or OPENAI_API_KEY) to a key the server accepts")
        if code == 404 and path == "/models":
            return ModelUnavailable(
                f"no OpenAI-compatible API at {self.base_url} ({said}): check --base-url; "
                f"it usually ends in /v1, e.g. http://localhost:11434/v1 or http://localhost:8000/v1")
        if code == 404:
            try:
                served = self.served_models(timeout=LOAD_TIMEOUT)
            except ModelUnavailable as listing_failed:  # most often: no API at this URL at all
                return ModelUnavailable(f"{self.base_url}/chat/completions answered {said}; {listing_failed}")
            listing = (", ".join(served[:20]) + (f" (and {len(served) - 20} more)" if len(served) > 20 else "")
                       if served else "none")
            return ModelUnavailable(
                f"model '{self.model}' not found at {self.base_url} ({said}); the server serves: {listing}. "
                f"Pass one of those with -m, or load the model into the server (Ollama: `ollama pull {self.model}`)")
        if code in (408, 409, 429) or code >= 500:
            wait = plain(err.response.headers.get("retry-after") or "")[:40]
            return ModelUnavailable(
                f"the server at {self.base_url} answered {said} after {tries}; "
                + (f"it asks to wait {wait} s before trying again" if wait else "check its log, or try again later"))
        return ModelUnavailable(f"the server at {self.base_url} rejected the request ({said})")


def _is_unicode(text: str) -> bool:
    """False for text holding lone surrogates: bytes that were not UTF-8, from argv or the environment."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_loopback(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.") or host.endswith(".localhost")


def _first_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
