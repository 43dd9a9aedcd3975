"""`pagerag search`: ranked pages for a query, as text or JSON."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from .common import friendly_errors, index_option, open_index, quoted, shown, within_option
from .text_input import QUERY, clean_text, stdin_lines


def hit_json(hit) -> dict:
    """The stable --json contract: path, page, score, snippet (plus informative extras). A path's bytes that
    are not UTF-8 are \\xNN, as printed (the stored form would give a private-use character per byte)."""
    from index.stored_paths import shown as printable

    return {**asdict(hit), "path": printable(hit.path)}


@click.command()
@click.argument("query", required=False, type=QUERY)
@click.option("-k", "k", type=click.IntRange(1, 1000), default=5, show_default=True, help="Pages to return.")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "lexical"]), default="hybrid", show_default=True,
              help="Fused dense+full-text ranking, or one of them alone.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits, best first.")
@click.option("--batch", is_flag=True,
              help="Read one query per line from stdin; print one JSON array per line (JSON Lines).")
@within_option
@index_option
@friendly_errors
def search(query, k, mode, as_json, batch, within, index_dir):
    """Find the pages that best match QUERY."""
    from rag.retrieve import Retriever

    if not batch and not (query or "").strip():
        raise click.UsageError("give a QUERY (not blank), or --batch to read queries from stdin")
    if batch and query is not None:
        raise click.UsageError("--batch reads the queries from stdin: give no QUERY with it")
    idx = open_index(index_dir)
    if "embed_model" not in idx.meta:  # built from nothing yet: say so, not 'No pages match' query after query
        from rag.prompts import ABSTAIN_EMPTY

        click.echo(ABSTAIN_EMPTY.format(index=shown(idx.folder)), err=True)
    retriever = Retriever(idx, few_queries=not batch)
    if batch:
        lines = stdin_lines("--batch reads one query per line from it, e.g. `pagerag search --batch < questions.txt`")
        for line in lines:  # output line N answers input line N: a blank line gets []
            text = line.strip()
            hits = retriever.search(clean_text(text, "a query line"), k=k, mode=mode, within=within) if text else []
            click.echo(json.dumps([hit_json(h) for h in hits], ensure_ascii=False))
            sys.stdout.flush()
        return
    hits = retriever.search(query, k=k, mode=mode, within=within)
    if as_json:
        click.echo(json.dumps([hit_json(h) for h in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        if "embed_model" in idx.meta:
            click.echo(f"No pages match {quoted(query)}.", err=True)
        return
    for rank, h in enumerate(hits, 1):
        click.echo(click.style(f"{rank:>2}. {shown(h.path)}", bold=True) + f"  page {h.page}  (score {h.score:.4f})")
        click.echo(f"    {h.snippet}")
