"""Entry point: `pagerag index build|status|remove`, `search`, `ask`, `chat`, `conversations`, `show`, `eval`,
`serve`.

Each command's module is imported when that command runs (or when --help lists them all):
`pagerag search` does not import ask's, serve's or eval's options and their libraries
(bench/cold_start.py: the imports of the other commands were ~0.1 s of every search).
"""
from __future__ import annotations

import importlib

import click

COMMANDS = {  # name -> "module:attribute"
    "index": "cli.index_cmds:index_group",
    "search": "cli.search_cmd:search",
    "ask": "cli.ask_cmds:ask",
    "chat": "cli.ask_cmds:chat",
    "conversations": "cli.conversations_cmd:conversations",
    "show": "cli.show_cmd:show",
    "eval": "cli.eval_cmd:eval_command",
    "serve": "cli.serve_cmd:serve",
}


class WholeHelpGroup(click.Group):
    """A group whose --help lists each command with its first sentence whole: click cuts it to the
    width left on an 80-column line ("Talk with your documents: a conversation grounded on the...")."""

    def format_commands(self, ctx, formatter):
        rows = [(name, cmd.get_short_help_str(limit=200)) for name in self.list_commands(ctx)
                if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class PageragGroup(WholeHelpGroup):
    """Every command runs with working standard streams, and ends with exit 130 on Ctrl-C, SIGTERM or SIGHUP.

    Subcommands are imported on first use (`lazy`: name -> "module:attribute"); `commands` fills as they are."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx):
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.lazy:
            module, attr = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return self.commands.get(name)

    def main(self, *args, **kwargs):
        from .process import standard_streams, stop_signals

        standard_streams()
        with stop_signals():
            return super().main(*args, **kwargs)

    def invoke(self, ctx):
        from .common import EXIT_INTERRUPTED
        from .process import Stopped

        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, Stopped) as e:
            why = f" ({e.args[0]})" if isinstance(e, Stopped) and e.args else ""
            click.echo(f"\nInterrupted{why}.", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None


@click.group(cls=PageragGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pagerag")
def cli():
    """Ask questions about scanned documents, answered from (and citing) their pages.

    Build an index with `pagerag index build FOLDER`, then `pagerag search "..."`.
    """
