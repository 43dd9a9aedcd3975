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
broken JSON is an error, never an empty answer), and messages that say what to do. Where each lives:
openai_config (URL, key, proxy), openai_messages (the request's messages), openai_transport (the
requests, in the deadline's worker thread), openai_replies (reading what came back), openai_errors
(failures put into words).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Iterator

from .base import Backend, GenerationOptions, ModelUnavailable
from .deadline import DeadlinePassed, Pump
from .openai_config import (
    API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, LOAD_TIMEOUT, check_base_url, first_env, is_unicode, redact,
    secrets_of, shown_url,
)
from .openai_errors import explain, timeout_message
from .openai_messages import image_data_url, to_openai_messages
from .openai_replies import ServerReplyError, StreamLimit, no_text
from .openai_transport import make_client, model_ids, reply_chunks

log = logging.getLogger(__name__)


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
        self.base_url = (base_url or first_env(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        check_base_url(self.base_url)
        self.api_key = api_key or first_env(API_KEY_ENV)
        self.secrets = secrets_of(self.base_url, self.api_key)  # never printed: see safe()
        if self.api_key and not (self.api_key.isascii() and self.api_key.isprintable()):
            raise ModelUnavailable("the API key (PAGERAG_API_KEY or OPENAI_API_KEY) holds characters an HTTP header "
                                   "cannot carry (outside printable ASCII): set it to the key alone")
        if not is_unicode(self.model):
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
        pump = Pump(lambda p: reply_chunks(client, p, request, options.timeout, self.base_url), deadline)
        limit = StreamLimit(options.max_new_tokens)
        received, finish, others = 0, None, {}  # others: what else came instead of text -> how many times
        self.finish_reason = None
        try:
            for text, reason, other in pump:
                limit.take(text, self.base_url)
                finish = reason or finish
                if other:
                    others[other] = others.get(other, 0) + 1
                if text:
                    received += len(text)
                    yield text
        except DeadlinePassed:
            raise self.safe(ModelUnavailable(timeout_message(self.base_url, options.timeout, pump.response,
                                                             received))) from None
        except Exception as err:  # noqa: BLE001 - explain re-raises what it does not know
            raise self.safe(explain(self, err, "/chat/completions", pump, options.timeout)) from None
        finally:
            pump.close()
        if finish == "content_filter":  # what came before the filter stopped it is not the answer
            raise self.safe(ServerReplyError(
                f"the server at {self.base_url} stopped the answer with its content filter (finish_reason "
                f"'content_filter') after {received} characters; the partial answer was dropped"))
        if not received:
            raise self.safe(ServerReplyError(no_text(self.base_url, self.model, finish, others)))
        self.finish_reason = finish

    def load(self) -> None:
        """Check that the server answers GET /models (with our key, if any); quick, loads nothing."""
        self.served_models()

    def ready(self, options: GenerationOptions) -> GenerationOptions:
        """load(), within the answer's --timeout: the check and the answer share one deadline (which starts
        once the client is made: importing the HTTP library is this process's time, not the server's)."""
        self._openai()
        deadline = time.monotonic() + options.timeout
        self.served_models(min(LOAD_TIMEOUT, options.timeout), given=options.timeout)
        return dataclasses.replace(options, deadline=deadline)

    def served_models(self, timeout: float = LOAD_TIMEOUT, given: float | None = None) -> list[str]:
        """The model ids the server lists at GET /models, e.g. ["llama3.2-vision:latest"]. `given`: the
        --timeout of the answer this check is part of, named when it is what ran out."""
        client = self._openai()
        pump = Pump(lambda p: model_ids(client, p, timeout, self.base_url), time.monotonic() + timeout)
        try:
            return next(iter(pump))
        except DeadlinePassed:
            message = timeout_message(self.base_url, timeout, pump.response, 0, "/models")
            if given is not None and given <= timeout:
                message = message.replace(f"within {timeout:g} s", f"within {timeout:g} s (--timeout {given:g})")
            raise self.safe(ModelUnavailable(message)) from None
        except Exception as err:  # noqa: BLE001 - explain re-raises what it does not know
            raise self.safe(explain(self, err, "/models", pump, timeout)) from None
        finally:
            pump.close()

    def safe(self, err: Exception) -> Exception:
        """`err` with its message fit to print: the API key, and a password or query values in the base URL,
        replaced by *** (a server may echo the Authorization header in its error message)."""
        if not isinstance(err, ModelUnavailable):
            return err
        text = redact(str(err).replace(self.base_url, shown_url(self.base_url)), self.secrets)
        return err if text == str(err) else type(err)(text)

    # --- the client ---

    def _openai(self):
        if self._client is None:
            try:
                self._client = make_client(self.base_url, self.api_key, self.retries)
            except ModelUnavailable as err:
                raise self.safe(err) from None
        return self._client

    def _encode(self, image) -> str:
        return image_data_url(image, self.max_image_side, self.image_format)
