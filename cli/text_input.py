"""Queries typed by a person: argv and stdin bytes that are not UTF-8 become U+FFFD, with a warning.

Python hands such bytes over as lone surrogates ('\\udcff' for b'\\xff', PEP 383), which every
encoder, tokenizer and SQLite refuses later with a traceback:

    clean_text("parking \\udcff lot") -> "parking \\ufffd lot"   (and a warning on stderr)
"""
from __future__ import annotations

import codecs
import io
import sys

import click


def clean_text(text: str, what: str = "the query") -> str:
    """`text` unchanged if it is valid Unicode, else with each undecodable byte replaced by U+FFFD; a note when
    it is longer than what is searched of it."""
    from rag.query import MAX_QUERY_CHARS

    if len(text) > MAX_QUERY_CHARS:
        click.echo(f"Note: {what} is {len(text):,} characters long; its first {MAX_QUERY_CHARS:,} are searched.",
                   err=True)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # back to the bytes that were given
    except UnicodeEncodeError:  # surrogates no decoder made: nothing to recover
        raw = text.encode("utf-8", "replace")
    click.echo(f"Warning: {what} is not valid UTF-8; the bytes that are not were replaced by U+FFFD.", err=True)
    return raw.decode("utf-8", "replace")


class QueryText(click.ParamType):
    """A click argument type for query text: clean_text on the way in."""

    name = "text"

    def convert(self, value, param, ctx):
        return clean_text(value, f"the {param.name}" if param is not None and param.name else "the query")


QUERY = QueryText()


def lenient_stdin() -> None:
    """Let stdin hand over bytes that are not UTF-8 (as surrogates, for clean_text) instead of raising."""
    if isinstance(sys.stdin, io.TextIOWrapper) and sys.stdin.errors == "strict":
        sys.stdin.reconfigure(errors="surrogateescape")


def require_stdin(purpose: str) -> None:
    """A one-line error when standard input is closed (`<&-`: Python then has no sys.stdin at all)."""
    if sys.stdin is None or getattr(sys.stdin, "closed", False):
        raise click.ClickException(f"standard input is closed: {purpose}")


def stdin_lines(purpose: str):
    """The lines of standard input as text, for reading queries one a line (each without its line end).

    UTF-8 (a leading BOM dropped); UTF-16 when it starts with a UTF-16 BOM (Windows editors and
    PowerShell's `>` write it), so that line N is still the Nth question; bytes that are not UTF-8
    come through as surrogates, for clean_text. Lines end at "\n" only ("\r\n" is stripped by the caller).
    """
    require_stdin(purpose)
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text stream without bytes under it (embedding, tests): already decoded
        yield from (line.rstrip("\n") for line in sys.stdin)
        return
    if not hasattr(buffer, "peek"):
        buffer = io.BufferedReader(buffer)
    head = buffer.peek(2)[:2]
    utf16 = head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    text = io.TextIOWrapper(buffer, encoding="utf-16" if utf16 else "utf-8-sig",
                            errors="replace" if utf16 else "surrogateescape", newline="\n")
    for line in text:
        yield line.rstrip("\n")
