"""Queries typed by a person: argv and stdin bytes that are not UTF-8 become U+FFFD, with a warning.

Python hands such bytes over as lone surrogates ('\\udcff' for b'\\xff', PEP 383), which every
encoder, tokenizer and SQLite refuses later with a traceback:

    clean_text("parking \\udcff lot") -> "parking \\ufffd lot"   (and a warning on stderr)
"""
from __future__ import annotations

import io
import sys

import click


def clean_text(text: str, what: str = "the query") -> str:
    """`text` unchanged if it is valid Unicode, else with each undecodable byte replaced by U+FFFD."""
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
