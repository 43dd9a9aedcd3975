"""Entry point: `pagerag index build|status|remove`, `search`, `ask`, `chat`, `conversations`, `show`, `eval`,
`serve`."""
from __future__ import annotations

import click

from .ask_cmds import ask, chat
from .conversations_cmd import conversations
from .eval_cmd import eval_command
from .index_cmds import index_group
from .search_cmd import search
from .serve_cmd import serve
from .show_cmd import show


class PageragGroup(click.Group):
    """Every command runs with working standard streams, and ends with exit 130 on Ctrl-C, SIGTERM or SIGHUP."""

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


@click.group(cls=PageragGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pagerag")
def cli():
    """Ask questions about scanned documents, answered from (and citing) their pages.

    Build an index with `pagerag index build FOLDER`, then `pagerag search "..."`.
    """


cli.add_command(index_group)
cli.add_command(search)
cli.add_command(ask)
cli.add_command(chat)
cli.add_command(conversations)
cli.add_command(show)
cli.add_command(eval_command)
cli.add_command(serve)
