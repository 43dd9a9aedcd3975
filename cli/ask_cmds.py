"""`pagerag ask` and `pagerag chat`: grounded answers with sources."""
from __future__ import annotations

import json
import shlex
from dataclasses import asdict

import click

from . import model_options as mo
from .common import (EXIT_NO_MODEL, GivenPath, Number, friendly_errors, index_option, open_index, shown,
                     within_option)
from .text_input import QUERY, clean_text, lenient_stdin, require_stdin

RETRIEVAL_OPTIONS = [
    click.option("-k", "k", type=click.IntRange(1, 50), default=5, show_default=True,
                 help="Pages retrieved and shown to the model as text."),
    click.option("--images", type=click.IntRange(0, 8), default=1, show_default=True,
                 help="How many of the best pages are also shown as images."),
    click.option("--min-score", type=Number(-1, 1), default=None,
                 help="Abstain without calling the model when the best passage's cosine is below this [0.43] "
                      "and no page holds --min-lexical of the question's words (-1: never abstain)."),
    click.option("--min-lexical", type=Number(0, 2), default=None,
                 help="Share of the question's word weight (rarer words weigh more) one retrieved page must "
                      "hold to be answered whatever the cosine [0.50] (above 1: the cosine alone decides)."),
    within_option,
]


def ask_settings(kw, within=None):
    """AskSettings from the RETRIEVAL_OPTIONS and GENERATION_OPTIONS in `kw` (taken out of it)."""
    from rag.assistant import AskSettings
    from rag.support import MIN_LEXICAL, MIN_SCORE

    min_score, min_lexical = kw.pop("min_score"), kw.pop("min_lexical")
    return AskSettings(k=kw.pop("k"), images=kw.pop("images"),
                       min_score=MIN_SCORE if min_score is None else min_score,
                       min_lexical=MIN_LEXICAL if min_lexical is None else min_lexical,
                       generation=mo.generation_options(kw), within=within)


def _assistant(index_dir, kw, few_queries=False):
    from rag.assistant import Assistant
    from rag.conversations import ConversationStore
    from rag.retrieve import Retriever
    from rag.settings import create_backend

    idx = open_index(index_dir)
    settings = ask_settings(kw, list(kw.pop("within")) or None)
    backend = create_backend(mo.model_settings(kw))
    return Assistant(idx, backend, ConversationStore(idx.folder), settings, Retriever(idx, few_queries=few_queries))


def print_sources(answer) -> None:
    from rag.query import snippet

    if not answer.sources:
        return
    header = "Evidence found:" if answer.model_error else "Closest pages:" if answer.abstained else "Sources:"
    click.echo("\n" + header)
    for s in answer.sources:
        mark = "*" if answer.model_error is None and s.n in answer.cited else " "
        click.echo(f" {mark}[{s.n}] {shown(s.path)}, page {s.page}" + (" (image shown)" if s.image else ""))
        if answer.model_error or answer.abstained:
            click.echo("      " + snippet(s.text, answer.question, width=200))
    if answer.removed_citations:
        click.echo("Removed citation(s) to pages the model was not shown: "
                   + ", ".join(f"[{n}]" for n in answer.removed_citations), err=True)


def answer_json(answer) -> dict:
    data = asdict(answer)
    data = {"answer": data.pop("text"), **data}
    from index.stored_paths import shown as printable

    for s in data["sources"]:
        s.pop("text")
        s["path"] = printable(s["path"])  # bytes that are not UTF-8 as \xNN, as `search --json` gives them
    return data


def run_turn(assistant, question, cid, as_json=False):
    """Ask, streaming to the terminal; returns the Answer."""
    streamed = []

    def on_text(piece):
        streamed.append(piece)
        if not as_json:
            click.echo(piece, nl=False)

    from rag.conversations import ConversationDamaged, ConversationsUnavailable

    try:
        answer = assistant.ask(question, cid, on_text=on_text)
    except ConversationDamaged:  # found on reading the conversation, before anything was asked
        raise
    except ConversationsUnavailable as e:  # answered, but the turn could not be saved
        if streamed and not as_json:
            click.echo()  # the answer keeps its own line; the error gets one
        raise ConversationsUnavailable(f"the answer was not saved: {e}") from None
    if as_json:
        from .evidence_out import evidence_json

        data = {**answer_json(answer), "evidence": evidence_json(assistant.index, answer)}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return answer
    if answer.model_error:
        if streamed and not as_json:
            click.echo()  # the pieces before the failure stay on screen; the error gets its own line
        click.echo(f"No answer: the model could not be used. {answer.model_error}", err=True)
    elif answer.abstained or not streamed:
        click.echo(answer.text)
    elif answer.text != "".join(streamed).strip():
        click.echo("\n\n(with invalid citations removed:)\n" + answer.text)
    else:
        click.echo()
    if answer.truncated:
        limit = assistant.settings.generation.max_new_tokens
        click.echo(f"(The answer was cut off at the {limit}-token limit: raise --max-new-tokens for the rest.)",
                   err=True)
    print_sources(answer)
    return answer


@click.command()
@click.argument("question", type=QUERY)
@mo.apply(RETRIEVAL_OPTIONS)
@mo.apply(mo.MODEL_OPTIONS)
@mo.apply(mo.GENERATION_OPTIONS)
@click.option("-c", "--continue", "cont", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", help="Continue the conversation with this id (or a unique prefix).")
@click.option("--json", "as_json", is_flag=True, help="Print answer, sources, ids and evidence boxes as JSON.")
@click.option("--save-evidence", type=GivenPath(),
              help="Write PNGs of the cited pages into this folder, supporting words boxed per citation.")
@index_option
@friendly_errors
def ask(question, cont, cid, as_json, save_evidence, index_dir, **kw):
    """Answer QUESTION from the indexed pages, citing them."""
    if not question.strip():
        raise click.UsageError("give a QUESTION (it is blank)")
    if save_evidence:
        from .evidence_out import evidence_folder

        evidence_folder(save_evidence)  # before the model runs: a bad folder is said at once
    assistant = _assistant(index_dir, kw, few_queries=True)
    if cont and not cid:
        cid = assistant.store.last_id()
        if cid is None:
            raise click.ClickException("no conversation to continue yet: ask without -c first")
    elif cid is not None:  # an empty id is an error (BadArgument), not a new conversation
        cid = assistant.store.resolve(cid)
    answer = run_turn(assistant, question, cid, as_json)
    if save_evidence:
        from .evidence_out import save_evidence as save

        for path in save(assistant.index, answer, save_evidence):
            click.echo(f"Saved {shown(path)}", err=True)
    if answer.model_error:
        raise SystemExit(EXIT_NO_MODEL)


CHAT_HELP = """Commands: /sources (pages behind the last answer), /page N [--save FILE] (text of source N,
or save its image with the evidence boxed), /in [PATH ...] (search only these files or folders; alone:
everything), /new (start over), /exit (or Ctrl-D). Ctrl-C stops an answer."""


@click.command()
@mo.apply(RETRIEVAL_OPTIONS)
@mo.apply(mo.MODEL_OPTIONS)
@mo.apply(mo.GENERATION_OPTIONS)
@click.option("-c", "--continue", "cont", is_flag=True, help="Continue the last conversation.")
@click.option("--cid", help="Continue the conversation with this id (or a unique prefix).")
@index_option
@friendly_errors
def chat(cont, cid, index_dir, **kw):
    """Talk with your documents: a conversation grounded on the indexed pages."""
    from index.errors import PageragError
    from index.location import db_identity

    require_stdin("chat reads your questions from it; run it in a terminal, or pipe the questions in, one a line")
    assistant = _assistant(index_dir, kw)
    if cont:
        cid = assistant.store.last_id()
    elif cid is not None:  # an empty id is an error (BadArgument), not a new conversation
        cid = assistant.store.resolve(cid)
    click.echo(f"Chatting with {assistant.backend.model} ({assistant.backend.name}) over {assistant.index.folder}"
               + (f", continuing {cid}" if cid else "") + ".\n" + CHAT_HELP, err=True)
    last = None
    lenient_stdin()
    served = db_identity(assistant.index.folder)
    while True:
        try:
            line = clean_text(input("\n> "), "that line").strip()
        except EOFError:
            click.echo(err=True)
            return
        except KeyboardInterrupt:
            click.echo("\n(Ctrl-D or /exit to leave)", err=True)
            continue
        if not line:
            continue
        searches = not line.startswith("/") or line.split()[0].lower() in ("/page", "/in")
        if searches and db_identity(assistant.index.folder) != served:  # the index deleted, or built again
            try:
                assistant = _reopened(assistant)
            except PageragError as e:
                click.echo(f"Error: {e}", err=True)
                continue
            served, cid, last = db_identity(assistant.index.folder), None, None
        if line.startswith("/"):
            try:
                cmd, *args = shlex.split(line)
            except ValueError as e:  # an unclosed quote
                click.echo(f"Error: {e}", err=True)
                continue
            cmd = cmd.lower()  # /Exit, /NEW: a shift key is no reason to be misunderstood
            if cmd in ("/new", "/sources", "/exit", "/quit") and args:
                click.echo(f"Note: {cmd} takes no argument; {shown(' '.join(args))} was ignored.", err=True)
            if cmd in ("/exit", "/quit"):
                return
            if cmd == "/new":
                cid, last = None, None
                click.echo("New conversation.", err=True)
            elif cmd == "/sources":
                print_sources(last) if last else click.echo("No answer yet.", err=True)
            elif cmd in ("/page", "/in"):
                try:
                    _page_command(assistant, last, args) if cmd == "/page" else _in_command(assistant, args)
                except PageragError as e:  # a page removed from the index since: chat goes on
                    click.echo(f"Error: {e}", err=True)
            else:  # /help, or a command chat does not know: say which, then what it knows
                if cmd not in ("/help", "/?"):
                    click.echo(f"Unknown command {shown(cmd)}.", err=True)
                click.echo(CHAT_HELP, err=True)
            continue
        try:
            last = run_turn(assistant, line, cid)
        except KeyboardInterrupt:
            click.echo("\n(answer stopped)", err=True)
            continue
        except PageragError as e:
            click.echo(f"Error: {e}", err=True)
            continue
        if last.model_error:
            click.echo("Fix the model settings and start `pagerag chat` again, or use /page to read the pages.",
                       err=True)
        cid = last.conversation_id or cid


def _reopened(assistant):
    """The assistant on the index now in `assistant`'s folder (deleted and built again, or restored), its
    backend (a loaded model) kept; IndexGone when there is none. Said, with the new conversation it starts."""
    from index.errors import IndexGone
    from index.location import db_identity, gone_message
    from rag.assistant import Assistant
    from rag.conversations import ConversationStore
    from rag.retrieve import Retriever

    folder = assistant.index.folder
    if db_identity(folder) is None:
        raise IndexGone(gone_message(folder, "chat"))
    idx = open_index(folder)
    click.echo(f"The index at {shown(folder)} was replaced since chat started (built again, or "
               "restored): searching the new one, in a new conversation.", err=True)
    return Assistant(idx, assistant.backend, ConversationStore(idx.folder), assistant.settings, Retriever(idx))


def _in_command(assistant, args) -> None:
    from index.errors import NotIndexed

    if any(not a.strip() or "\0" in a for a in args):
        click.echo("Error: /in got an empty path (it would mean the current folder): name the files or folders, "
                   "or give /in alone to search everything", err=True)
        return
    try:
        n = len(assistant.index.documents_under(args)) if args else 0
    except NotIndexed as e:
        click.echo(f"Error: {e}", err=True)
        return
    assistant.settings.within = list(args) or None
    click.echo(f"Searching {n} document(s) under {', '.join(args)}." if args else "Searching all documents.", err=True)


def _page_command(assistant, last, args) -> None:
    from index.errors import PageragError
    from index.stored_paths import fs_path

    from .evidence_out import evidence_for, message, png_target, save_page

    if not last or not args or not (args[0].isascii() and args[0].isdigit()):  # not '²', which int() refuses
        click.echo("Usage: /page N [--save FILE], N a source number of the last answer.", err=True)
        return
    source = next((s for s in last.sources if s.n == int(args[0])), None)
    if source is None:
        click.echo(f"No source [{args[0]}] in the last answer.", err=True)
        return
    if len(args) > 1:
        if args[1] != "--save" or len(args) != 3:
            click.echo("Usage: /page N --save FILE.png (one file name; quote it if it has spaces).", err=True)
            return
        try:
            target = png_target(args[2], "--save", inputs=(fs_path(source.path),))
            if target is None:
                raise click.ClickException("--save - is not for chat: name a .png file")
            for ev in evidence_for(assistant.index, last, only=source.n):
                save_page(assistant.index, ev, target)
                click.echo(f"Saved page {source.page} of {shown(source.path)} to {shown(target)}, evidence boxed.",
                           err=True)
        except (click.ClickException, PageragError) as e:  # chat goes on: the conversation is not lost
            click.echo(f"Error: {message(e)}", err=True)
        return
    row = assistant.index.page(source.path, source.page)
    click.echo(f"[{source.n}] {shown(source.path)}, page {source.page}\n\n{row['text'] or '(no text)'}")
