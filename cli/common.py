"""Options and error handling shared by the commands."""
from __future__ import annotations

import functools
from pathlib import Path

import click

DEFAULT_INDEX = ".pagerag"

# exit codes besides click's 1 (error) and 2 (usage)
EXIT_SKIPPED = 3  # a build finished but some files were skipped for an error
EXIT_NO_MODEL = 4  # `ask`: no model could be loaded; evidence shown instead
EXIT_INTERRUPTED = 130

index_option = click.option(
    "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), envvar="PAGERAG_INDEX",
    default=DEFAULT_INDEX, show_default=True, show_envvar=True, help="Index folder.")

within_option = click.option(
    "--in", "within", multiple=True, type=click.Path(path_type=Path), metavar="PATH",
    help="Search only the documents at or under PATH, a file or folder as indexed (repeatable).")


def friendly_errors(fn):
    """Turn the library's named errors into one-line messages (exit 1) instead of tracebacks."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from index.errors import PageragError

        try:
            return fn(*args, **kwargs)
        except PageragError as e:
            raise click.ClickException(str(e)) from None
    return wrapper


def open_index(index_dir: Path):
    from index.store import Index

    return Index.open(index_dir)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
