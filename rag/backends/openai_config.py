"""Where the OpenAI backend connects: the base URL and key from options or the environment, checked
before any request; whether a URL is this machine; which proxy a request to it goes through.

    first_env(BASE_URL_ENV) or DEFAULT_BASE_URL   # $PAGERAG_BASE_URL, else $OPENAI_BASE_URL, else Ollama's
    is_loopback("http://127.0.0.1:8000/v1") -> True
    proxy_for("http://gpu-box:8000/v1") -> ("HTTP_PROXY", "http://proxy:3128")   # None when it goes direct
"""
from __future__ import annotations

import os
import re
import urllib.parse

from .base import ModelUnavailable

DEFAULT_BASE_URL = "http://localhost:11434/v1"  # Ollama's OpenAI-compatible API
BASE_URL_ENV = ("PAGERAG_BASE_URL", "OPENAI_BASE_URL")  # first one set wins
API_KEY_ENV = ("PAGERAG_API_KEY", "OPENAI_API_KEY")
LOAD_TIMEOUT = 10.0  # seconds for the GET /models reachability check


def check_base_url(base_url: str) -> None:
    """Raise ModelUnavailable, saying what a good one looks like, unless `base_url` is an http(s) URL with a host."""
    example = "e.g. http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)"
    if not is_unicode(base_url):
        raise ModelUnavailable(f"the base URL {base_url!r} (--base-url) is not valid UTF-8, {example}")
    if not base_url.startswith(("http://", "https://")):
        raise ModelUnavailable(f"the base URL {base_url!r} (--base-url) must start with http:// or "
                               f"https://, {example}")
    try:
        parts = urllib.parse.urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as err:
        raise ModelUnavailable(f"the base URL {shown_url(base_url)!r} (--base-url) is not a valid URL ({err}), "
                               f"{example}") from None
    if not parts.hostname:
        raise ModelUnavailable(f"the base URL {shown_url(base_url)!r} (--base-url) names no host, {example}")
    if parts.query or parts.fragment or base_url.rstrip("/").endswith(("?", "#")):
        # the client appends /chat/completions to the URL as written: after a query it is no path at all
        raise ModelUnavailable(f"the base URL {shown_url(base_url)!r} (--base-url) has a query or fragment "
                               f"(?... or #...), which requests cannot carry: give the API's root alone, {example}")


def shown_url(url: str) -> str:
    """The URL as it may be printed: a password in it (http://user:PASSWORD@host) and the values of its
    query replaced by ***."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # not even a URL: hide what looks like a password all the same
        return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
    netloc, query = parts.netloc, parts.query
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}{':***' if colon else ''}@{host}"
    if query:
        query = "&".join(f"{k}=***" if v else k for k, _, v in (q.partition("=") for q in query.split("&")))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_of(base_url: str, api_key: str | None) -> list[str]:
    """What must never be printed: the API key, a password in the base URL or a proxy's URL (and its Basic-auth
    form), the values of the base URL's query. Longest first, so that a secret holding another is replaced whole."""
    import base64

    found = [api_key or ""]
    proxies = [v for k, v in os.environ.items() if k.lower().endswith("_proxy") and k.lower() != "no_proxy"]
    for url in (base_url, *proxies):  # a proxy's password too: an error may quote the proxy URL
        try:
            parts = urllib.parse.urlsplit(url)
            password = parts.password
        except ValueError:
            continue
        if password:
            userinfo = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(password)}"
            found += [password, urllib.parse.unquote(password),
                      base64.b64encode(userinfo.encode("utf-8", "replace")).decode()]
        if url == base_url:
            found += [v for _, v in urllib.parse.parse_qsl(parts.query)]
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    """`text` with each secret replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def proxy_for(base_url: str) -> tuple[str, str] | None:
    """(variable, proxy URL) of the proxy the client goes through for --base-url, None when it goes direct."""
    if is_loopback(base_url) or not any(k.lower().endswith("_proxy") for k in os.environ):
        return None
    import urllib.request

    parts = urllib.parse.urlsplit(base_url)
    if urllib.request.proxy_bypass_environment(parts.hostname or "", urllib.request.getproxies_environment()):
        return None
    for scheme in (parts.scheme, "all"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            if os.environ.get(name):
                return name, os.environ[name]
    return None


def is_unicode(text: str) -> bool:
    """False for text holding lone surrogates: bytes that were not UTF-8, from argv or the environment."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_loopback(url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1", "0.0.0.0") or host.startswith("127.") or host.endswith(".localhost")


def first_env(names: tuple[str, ...]) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
