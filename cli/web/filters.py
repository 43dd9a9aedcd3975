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


def install(env) -> None:
    from rag.highlight import hex_colour

    env.filters["mark"] = mark
    env.filters["cite"] = cite
    env.filters["name"] = lambda p: Path(p).name
    env.filters["colour"] = hex_colour
