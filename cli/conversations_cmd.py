"""`pagerag conversations [show ID]`."""
from __future__ import annotations

import json
from dataclasses import asdict

import click

from .common import friendly_errors, index_option, open_index, shown, shown_text
from .main import WholeHelpGroup


@click.group(cls=WholeHelpGroup, invoke_without_command=True)
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
@friendly_errors
def conversations(ctx, index_dir, as_json):
    """List conversations, newest first (`pagerag conversations show ID` for one)."""
    if ctx.invoked_subcommand:
        return
    from rag.conversations import ConversationStore

    rows = ConversationStore(open_index(index_dir).folder).list()
    if as_json:
        click.echo(json.dumps([{**asdict(c), "n_turns": n} for c, n in rows], indent=2))
        return
    if not rows:
        click.echo("No conversations yet: `pagerag ask \"...\"` starts one.", err=True)
    for c, n in rows:
        click.echo(f"{c.id}  {c.updated}  {n} turn(s)  {shown(c.title)}")


@conversations.command("show")
@click.argument("cid")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@friendly_errors
def show(cid, index_dir, as_json):
    """Show a conversation: each question, answer and the pages shown."""
    from rag.conversations import ConversationStore

    conv = ConversationStore(open_index(index_dir).folder).get(cid)
    if as_json:
        click.echo(json.dumps(asdict(conv), indent=2, ensure_ascii=False))
        return
    click.echo(f"Conversation {conv.id}, started {conv.created}")
    for i, t in enumerate(conv.turns, 1):
        click.echo(f"\n[{i}] {t.at}  ({t.backend or '-'}: {t.model or '-'}; retrieval {t.retrieval_seconds or 0:.2f}s, "
                   f"generation {t.generation_seconds or 0:.2f}s)")
        click.echo(f"Q: {shown_text(t.question)}")
        if t.query != t.question:
            click.echo(f"   (searched: {shown_text(t.query)})")
        click.echo(f"A: {shown_text(t.answer)}")
        for s in t.sources:
            click.echo(f"   [{s['n']}] {shown(s['path'])}, page {s['page']}" + (" (image)" if s.get("image") else ""))
