"""The OpenAI backend's requests, run in deadline.Pump's worker thread: the client, the chat
completion as (text, finish_reason) pieces, the model list, and the checks that a reply is the
API's at all (a JSON body within MAX_BODY bytes, not a web page or another service).

    client = make_client("http://localhost:11434/v1", None, retries=2)
    Pump(lambda p: reply_chunks(client, p, request, 120, base_url), deadline)   # -> ("The", None, None), ...
"""
from __future__ import annotations

import json
import os
from typing import Iterator

from .base import ModelUnavailable
from .deadline import Pump, on_request
from .openai_config import is_loopback
from .openai_errors import err_text
from .openai_replies import (
    BYTES_PER_TOKEN, ServerReplyError, cap_reply, completion_text, content_type, delta, plain, sample, web_page,
)

NO_KEY = "no-key"  # sent when no key is set: local servers ignore it, one that checks says 401
MAX_BODY = 16 * 1024 * 1024  # bytes of a whole-JSON reply read at most


def make_client(base_url: str, api_key: str | None, retries: int):
    """The openai.OpenAI client for a server (importing openai takes ~1 s: called on first use)."""
    import openai

    try:
        # a server on this machine is reached directly, even when HTTP(S)_PROXY is set for the outside
        # redirects are not followed: a 301/302 turns the POST into a GET, and any redirect would send the
        # question and the page images to another server unasked; openai_errors.explain_status names the new location
        http = openai.DefaultHttpxClient(trust_env=not is_loopback(base_url), follow_redirects=False,
                                         event_hooks={"request": [on_request]})
        return openai.OpenAI(api_key=api_key or NO_KEY, base_url=base_url, max_retries=retries,
                             http_client=http)
    except Exception as err:  # noqa: BLE001 - the HTTP library's many kinds of bad URL or proxy setting
        proxies = [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]
        raise ModelUnavailable(
            f"cannot use --base-url {base_url} ({err})"
            + (f"; check the proxy settings too ({', '.join(proxies)})"
               if proxies and not is_loopback(base_url) else "")) from None


def reply_chunks(client, pump: Pump, request: dict, timeout: float, base_url: str
                 ) -> Iterator[tuple[str, str | None, str | None]]:
    """(text, finish_reason, what else it is) for each chunk of the reply to `request` (openai_replies.delta)."""
    raw = client.chat.completions.with_raw_response.create(**request, timeout=timeout)
    response = pump.response = raw.http_response
    limit = MAX_BODY + request["max_tokens"] * BYTES_PER_TOKEN
    cap_reply(response, limit, f"the server at {base_url} sent more than {limit} bytes for a "
                               f"{request['max_tokens']}-token answer (--max-new-tokens): an event that never "
                               "ends, or a reply that is not an answer; it was stopped, check the server")
    kind = content_type(response)
    if kind.endswith("json"):  # a server that ignores stream=true answers one chat.completion
        yield *completion_text(json_body(response, base_url, "/chat/completions"), base_url), None
        return
    if kind not in ("text/event-stream", ""):
        raise not_an_api(response, base_url, "/chat/completions")
    with raw.parse() as events:
        for chunk in events:
            yield delta(chunk, base_url)


def model_ids(client, pump: Pump, timeout: float, base_url: str) -> Iterator[list[str]]:
    """The model ids of GET /models, as one item."""
    raw = client.models.with_raw_response.list(timeout=timeout)
    response = pump.response = raw.http_response
    if not content_type(response).endswith("json"):
        raise not_an_api(response, base_url, "/models")
    listing = json_body(response, base_url, "/models")
    if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
        raise ServerReplyError(
            f"{base_url}/models did not answer an OpenAI model list ({sample(json.dumps(listing))}); "
            f"check --base-url {base_url}")
    yield [plain(entry["id"]) for entry in listing["data"] if isinstance(entry, dict) and "id" in entry]


def json_body(response, base_url: str, path: str):
    """A whole-JSON reply, parsed; at most MAX_BODY bytes are read."""
    data = bytearray()
    for block in response.iter_bytes():
        data += block
        if len(data) > MAX_BODY:
            raise ServerReplyError(f"{base_url}{path} answered more than {MAX_BODY} bytes of JSON; "
                                   f"check --base-url {base_url}")
    text = data.decode("utf-8-sig", errors="replace")  # a BOM some Windows servers write is no reason to fail
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ServerReplyError(
            f"{base_url}{path} answered broken or cut-off JSON ({sample(text)}); check the server's log"
        ) from None
    except (ValueError, RecursionError) as err:  # valid JSON Python cannot hold: 4300+ digits, 1000 deep
        raise ServerReplyError(
            f"{base_url}{path} answered JSON that cannot be read ({err_text(err)}: {sample(text)}); check the "
            "server's log") from None


def not_an_api(response, base_url: str, path: str) -> ServerReplyError:
    """The error for a reply that is not the API's (a web page, another service): names what answered."""
    head = b""
    for block in response.iter_bytes():
        head += block
        if len(head) >= 4096:
            break
    kind, text = content_type(response), head.decode("utf-8", errors="replace")
    what = web_page(text) if "html" in kind else f"Content-Type {kind} ({sample(text)})"
    return ServerReplyError(
        f"{base_url}{path} answered {what}, not an OpenAI-compatible reply: something else listens at "
        f"--base-url {base_url}; the API usually lives at /v1, e.g. http://localhost:11434/v1 (Ollama)")
