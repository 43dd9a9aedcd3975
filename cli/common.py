"""Options and error handling shared by the commands."""
from __future__ import annotations

import errno
import functools
import os
import re
import stat
from pathlib import Path

import click

DEFAULT_INDEX = ".pagerag"

# exit codes besides click's 1 (error) and 2 (usage)
EXIT_SKIPPED = 3  # a build finished but some files were skipped for an error
EXIT_NO_MODEL = 4  # `ask`: no model could be loaded; evidence shown instead
EXIT_INTERRUPTED = 130

class IndexDir(click.ParamType):
    """An index folder location: not empty, no NUL byte, not an existing file or device."""

    name = "folder"

    def convert(self, value, param, ctx):
        if isinstance(value, Path):
            return value
        source = "PAGERAG_INDEX" if ctx and param and ctx.get_parameter_source(param.name) and \
            ctx.get_parameter_source(param.name).name == "ENVIRONMENT" else "--index"
        if not str(value).strip():
            self.fail(f"{source} is empty; give the index folder (default {DEFAULT_INDEX})", param, ctx)
        if "\0" in str(value):
            self.fail(f"{source} contains a NUL byte", param, ctx)
        path = Path(value).expanduser()
        try:
            is_folder = stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            return path  # a build creates it
        except OSError as e:  # a name too long, a loop of links, a folder on the way not searchable
            if e.errno == errno.ENOTDIR:
                self.fail(f"{source} {shown(value)!r} lies under a file, not a folder; point it at a folder",
                          param, ctx)
            self.fail(f"{source} {shown(value)!r} cannot be used: {e.strerror}", param, ctx)
        if not is_folder:
            self.fail(f"{source} {value!r} exists and is not a folder; point it at a folder", param, ctx)
        return path


class Number(click.FloatRange):
    """click.FloatRange that also refuses nan: every comparison with nan is false, so FloatRange lets it through
    (`--timeout nan` then failed deep inside, `--min-score nan` abstained on everything)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


class GivenPath(click.ParamType):
    """A path argument kept as given: an empty or blank one is refused, not read as the current folder."""

    name = "path"

    def convert(self, value, param, ctx):
        if isinstance(value, Path):
            return value
        if not str(value).strip():
            self.fail("an empty path was given; it would mean the current folder. Name the file or folder",
                      param, ctx)
        if "\0" in str(value):
            self.fail("the path contains a NUL byte", param, ctx)
        return Path(value)


def overwrite_problem(target: Path, inputs: tuple = ()) -> str | None:
    """Why writing `target` must not happen, or None: it would overwrite a file of a pagerag index (any
    folder holding an index.db), or one of the command's own input files."""
    folder = target.parent if str(target.parent) else Path(".")
    if (folder / "index.db").is_file():
        return (f"{shown(target)} is in the index folder {shown(folder)}: writing there could overwrite the "
                "index; name a file in another folder")
    for given in inputs:
        try:
            same = target.exists() and os.path.samefile(target, given)
        except OSError:
            same = False
        if same:
            return f"{shown(target)} is {shown(given)}, which this command reads; name another file"
    return None


index_option = click.option(
    "--index", "index_dir", type=IndexDir(), envvar="PAGERAG_INDEX",
    default=DEFAULT_INDEX, show_default=True, show_envvar=True, help="Index folder.")

within_option = click.option(
    "--in", "within", multiple=True, type=GivenPath(), metavar="PATH",
    help="Search only the documents at or under PATH, a file or folder as indexed (repeatable).")


def friendly_errors(fn):
    """Turn the library's named errors into one-line messages (exit 1) instead of tracebacks.

    SQLite and OS errors that escape the library (a file damaged or a disk filled under
    us) get one line too: what happened, and that `pagerag index verify` can check.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import sqlite3

        from index.errors import PageragError, database_error

        try:
            return fn(*args, **kwargs)
        except PageragError as e:
            raise click.ClickException(str(e)) from None
        except sqlite3.DatabaseError as e:
            folder = kwargs.get("index_dir", "the index")
            if "readonly" in str(e) or "unable to open" in str(e):
                raise click.ClickException(f"cannot write in {folder} ({e}): it is read-only for this user or on "
                                           "this mount; searching it works, changing it does not") from None
            raise click.ClickException(str(database_error(folder, e))) from None
        except OSError as e:
            if e.errno == errno.ENOSPC:
                where = e.filename or kwargs.get("index_dir") or "the index"
                raise click.ClickException(f"the disk holding {where} is full; free some space and "
                                           "run the command again") from None
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise click.ClickException(f"{e.strerror}: {e.filename} (a read-only or protected location)") \
                    from None
            if e.errno == errno.EPIPE:
                raise  # click's own handling: the reader of our output went away
            where = f": {shown(e.filename)}" if e.filename else ""
            raise click.ClickException(f"{e.strerror or e}{where}") from None
    return wrapper


def open_index(index_dir: Path, check: bool | str = False):
    from index.store import Index

    return Index.open(index_dir, check=check)


BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"  # embeddings, overrides, isolates: they reorder what follows
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


def shown(path) -> str:
    """A path (or name) as printed on one line: control characters escaped (a newline in a file name would
    split the line), bytes that are not UTF-8 as \\xNN (index.stored_paths.shown), whether a stored key or a path.
    shown("a\\nb.pdf") -> 'a\\\\nb.pdf'."""
    from index.stored_paths import shown as printable

    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], printable(str(path)))


_CONTROL_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


def shown_text(text: str) -> str:
    r"""Free text stored from a person or a model (a conversation's title, a question, an answer) as
    printed: control characters escaped (a terminal escape sequence's ESC or CSI, a carriage return that
    would overwrite the line, a bidi override that would show the rest reversed), newlines and tabs kept. shown_text("a\x1b[2Jb\nc") -> 'a\\x1b[2Jb\nc'."""
    return _CONTROL_IN_TEXT.sub(lambda m: repr(m.group())[1:-1], str(text))


def quoted(text: str, limit: int = 200) -> str:
    """A query echoed back in a message: repr() (controls escaped), cut at `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
