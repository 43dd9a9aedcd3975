"""The OpenAI backend's failures put into words that say what to do: a library or transport error,
an error status (redirect, 401/403, 404 with the models the server does serve, 413, 429/5xx),
a deadline that passed.

    explain(backend, openai.APIConnectionError(...), "/chat/completions", pump, 120)
    -> ModelUnavailable("cannot reach the OpenAI-compatible server at http://localhost:11434/v1
       (connection refused) after 3 tries: start it (Ollama: `ollama serve`, ...")
"""
from __future__ import annotations

import json
import urllib.parse

from .base import ModelUnavailable
from .deadline import Pump
from .openai_config import LOAD_TIMEOUT, proxy_for, redact, shown_url
from .openai_replies import ServerReplyError, describe, is_transport_error, message_of, plain, sample


def timeout_message(base_url: str, timeout: float, response, received: int, path: str = "/chat/completions") -> str:
    """What ran out of time (the answer's --timeout, or the quick GET /models check) and what to do."""
    where = f"the server at {base_url}"
    if path == "/models":  # the quick reachability check, not bound by --timeout
        return (f"{where} did not answer GET {path} within {timeout:g} s: it may be overloaded, or "
                f"something that is not an OpenAI-compatible server listens at --base-url {base_url}")
    if response is None:
        what = f"{where} did not answer {path} within {timeout:g} s (--timeout {timeout:g})"
    elif not received:
        what = f"{where} sent no text within {timeout:g} s (--timeout {timeout:g}), only the start of a reply"
    else:
        what = (f"the answer from {where} was not finished within {timeout:g} s "
                f"(--timeout {timeout:g}; {received} characters so far)")
    return (f"{what}: the model may still be loading or be too slow for this machine; "
            f"raise --timeout or use a smaller model")


def explain(backend, err: Exception, path: str, pump: Pump, timeout: float) -> ModelUnavailable:
    """A library or transport error -> ModelUnavailable that says what to do; unknown errors re-raised."""
    import openai

    tries = f"{max(pump.requests, 1)} {'try' if pump.requests <= 1 else 'tries'}"
    if isinstance(err, ModelUnavailable):
        return err
    if isinstance(err, openai.APIStatusError):
        return explain_status(backend, err, path, tries)
    if isinstance(err, openai.APITimeoutError):  # a read timed out before our deadline (it rarely can)
        return ModelUnavailable(timeout_message(backend.base_url, timeout, None, 0, path))
    if isinstance(err, openai.APIConnectionError) or is_transport_error(err):
        reason, hint = describe(err)
        if reason.startswith("undecodable"):
            encoding = pump.response.headers.get("content-encoding", "?") if pump.response is not None else "?"
            return ServerReplyError(f"the reply from {backend.base_url} does not decode as its Content-Encoding "
                                    f"({encoding}) says ({reason[len('undecodable: '):]}); {hint}")
        proxy = proxy_for(backend.base_url)
        if pump.response is None and proxy:
            return ModelUnavailable(
                f"cannot reach {backend.base_url} through the proxy {shown_url(proxy[1])} (from {proxy[0]}; {reason}) "
                f"after {tries}: check that proxy, or add the host to NO_PROXY to reach it directly")
        if pump.response is not None:
            return ModelUnavailable(f"the connection to {backend.base_url} broke in the middle of the answer "
                                    f"({reason}); check the server's log")
        return ModelUnavailable(f"cannot reach the OpenAI-compatible server at {backend.base_url} ({reason}) "
                                f"after {tries}: {hint}")
    if isinstance(err, openai.APIResponseValidationError):
        return ServerReplyError(f"{backend.base_url}{path} answered something that is not a chat completion "
                                f"({err}); check the server's log")
    if isinstance(err, openai.APIError):  # an error event inside the stream, as vLLM sends
        return ModelUnavailable(f"the server at {backend.base_url} failed in the middle of the answer: "
                                f"{message_of(err.body) if err.body else err.message}")
    if isinstance(err, json.JSONDecodeError):  # a `data:` line that is not JSON
        return ServerReplyError(f"the server at {backend.base_url} sent an event that is not JSON "
                                f"({sample(err.doc)}); check the server's log")
    if unreadable_json(err):  # an event JSON cannot hold in Python: a number of 4300+ digits, nesting 1000 deep
        return ServerReplyError(f"the server at {backend.base_url} sent an event that cannot be read as JSON "
                                f"({err_text(err)}); check the server's log")
    if isinstance(err, UnicodeDecodeError):  # the event parser reads UTF-8 only, as the format says
        near = bytes(err.object[max(err.start - 40, 0):err.end]).decode("utf-8", errors="replace")
        return ServerReplyError(f"the server at {backend.base_url} sent text that is not UTF-8 ({err.reason} "
                                f"in {sample(near)}); check the server's log")
    raise err


def unreadable_json(err: Exception) -> bool:
    """Whether `err` is json's refusal of valid JSON that Python cannot hold (not a JSON syntax error)."""
    return isinstance(err, RecursionError) or (isinstance(err, ValueError) and "integer string conversion" in str(err))


def err_text(err: Exception) -> str:
    return "nested too deep" if isinstance(err, RecursionError) else str(err).split(";")[0]


def retry_wait(value: str | None) -> float | None:
    """The seconds a Retry-After header asks to wait: a number of seconds, or an HTTP date; None for anything
    else (nan, a negative number, words), which is not quoted to the user as a wait."""
    import math
    from email.utils import parsedate_to_datetime

    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        import datetime

        seconds = round((when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def duration(seconds: float) -> str:
    """'30 s', '5 min', '3 h', '2 days', 'more than a year'."""
    for unit, size, up_to in (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800), ("days", 86400, 366 * 86400)):
        if seconds < up_to:
            return f"{seconds / size:.0f} {unit}"
    return "more than a year"


def scrubbed(body, secrets: list[str]):
    """An error body (text, or JSON as parsed) with the secrets in it replaced by ***."""
    if not secrets or body is None:
        return body
    if isinstance(body, str):
        return redact(body, secrets)
    try:
        return json.loads(redact(json.dumps(body, ensure_ascii=False), secrets))
    except (TypeError, ValueError):  # not JSON-able, or a secret held a quote: its text, scrubbed
        return redact(str(body), secrets)


def explain_status(backend, err, path: str, tries: str) -> ModelUnavailable:
    """An error status -> a message that says what to do about it."""
    code = err.status_code
    body = scrubbed(err.body, getattr(backend, "secrets", []))  # before message_of cuts it: no key half shown
    said = f"HTTP {code}: {message_of(body)}" if body else f"HTTP {code}"
    if 300 <= code < 400:
        where = err.response.headers.get("location")
        target = plain(urllib.parse.urljoin(f"{backend.base_url}{path}", where)) if where else None
        base = target[: -len(path)] if target and target.endswith(path) else target
        return ModelUnavailable(
            f"the server at {backend.base_url} redirects {path} (HTTP {code}) to {target or 'nowhere said'}; "
            "pagerag does not follow redirects (they would send the question and the pages elsewhere): "
            + (f"if that is the server you mean, use --base-url {base}" if base else "check --base-url"))
    if code == 413:
        return ModelUnavailable(
            f"the server at {backend.base_url} refused the request as too large ({said}): the page images make "
            "it big; use --images 1 (or 0), or raise the server's request size limit")
    if code in (401, 403):
        which = "was refused" if backend.api_key else "was not set"
        return ModelUnavailable(
            f"the server at {backend.base_url} refused the request ({said}); the API key {which}: "
            f"set PAGERAG_API_KEY (or OPENAI_API_KEY) to a key the server accepts")
    if code == 404 and path == "/models":
        return ModelUnavailable(
            f"no OpenAI-compatible API at {backend.base_url} ({said}): check --base-url; "
            f"it usually ends in /v1, e.g. http://localhost:11434/v1 or http://localhost:8000/v1")
    if code == 404:
        try:
            served = backend.served_models(timeout=LOAD_TIMEOUT)
        except ModelUnavailable as listing_failed:  # most often: no API at this URL at all
            return ModelUnavailable(f"{backend.base_url}/chat/completions answered {said}; {listing_failed}")
        listing = (", ".join(served[:20]) + (f" (and {len(served) - 20} more)" if len(served) > 20 else "")
                   if served else "none")
        return ModelUnavailable(
            f"model '{backend.model}' not found at {backend.base_url} ({said}); the server serves: {listing}. "
            f"Pass one of those with -m, or load the model into the server (Ollama: `ollama pull {backend.model}`)")
    if code in (408, 409, 429) or code >= 500:
        wait = retry_wait(err.response.headers.get("retry-after"))
        return ModelUnavailable(
            f"the server at {backend.base_url} answered {said} after {tries}; "
            + (f"it asks to wait {duration(wait)} before trying again" if wait is not None
               else "check its log, or try again later"))
    return ModelUnavailable(f"the server at {backend.base_url} rejected the request ({said})")
