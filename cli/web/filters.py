"""Jinja filters: query words marked in snippets, [n] citations turned into links in their colour."""
from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup, escape

_CITED = re.compile(r"\[(\s*\d+(?:\s*[,;]\s*\d+)*\s*)\]")


def mark(text: str, query: str | None) -> Markup:
    """The text, escaped, with the query's content words wrapped in <mark>."""
    from rag.query import terms

    text = text or ""
    words = [re.escape(t) for t in terms(query or "") if len(t) > 1]
    if not words:
        return escape(text)
    # marked on the text, each piece escaped after: a word never matches inside an entity (&#39; for "39")
    pieces = re.split(r"\b(" + "|".join(words) + r")", text, flags=re.IGNORECASE)
    return Markup("").join(Markup("<mark>%s</mark>") % p if i % 2 else escape(p) for i, p in enumerate(pieces))


def cite(text: str, links: dict) -> Markup:
    """An answer, escaped, its [n] citations made links to their evidence: {n: url}."""
    from rag.highlight import hex_colour

    def link(m: re.Match) -> str:
        parts = []
        for num in re.findall(r"\d+", m.group(1)):
            n = int(num)
            url = links.get(n) or links.get(str(n))
            style = f' style="--c:{hex_colour(n)}"'
            parts.append(f'<a class="cite" href="{escape(url)}"{style}>{n}</a>' if url
                         else f'<span class="cite"{style}>{n}</span>')
        return "[" + ", ".join(parts) + "]"

    return Markup(_CITED.sub(link, str(escape(text or ""))).replace("\n", "<br>"))


_CODE = re.compile(r"`([^`\n]+)`")


def code(text: str) -> Markup:
    """A message, escaped, its `quoted commands` set as <code>: pagerag's messages quote what to type in
    backticks, which a web page would otherwise show as they are ("run `pagerag index build`")."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(text or ""))))


_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def visible_bidi(value):
    """Every value a template prints: bidi embedding/override/isolate controls shown as \\u202e, as on the
    command line, so a stored question cannot show its text reversed ('gnp.exe' as 'exe.png')."""
    if isinstance(value, str) and _BIDI.search(value):
        shown = _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
        return Markup(shown) if isinstance(value, Markup) else shown  # already escaped: plain ASCII added
    return value


def install(env) -> None:
    from rag.highlight import hex_colour

    env.finalize = visible_bidi

    env.filters["mark"] = mark
    env.filters["cite"] = cite
    env.filters["code"] = code
    env.filters["name"] = lambda p: Path(p).name
    env.filters["colour"] = hex_colour
