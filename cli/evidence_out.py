"""Writing an answer's evidence boxes out: PNGs of the cited pages (`ask --save-evidence`, `/page N --save`)
and the boxes in `--json`."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .common import overwrite_problem, shown

STDOUT = "-"  # `show -o -`: the PNG goes to standard output (not to a terminal)


def png_target(target: str | Path, what: str = "-o", inputs: tuple = ()) -> Path | None:
    """Where a PNG is to be written, checked before any work is done: None for '-' (standard output).
    Raises click.ClickException saying what is wrong (another image extension, a folder, a missing or
    unwritable folder)."""
    if str(target) == STDOUT:
        if sys.stdout.isatty():
            raise click.ClickException(f"{what} - writes the PNG to standard output, which is a terminal: "
                                       "redirect it (> page.png) or name a file")
        return None
    if not str(target).strip() or "\0" in str(target):
        raise click.ClickException(f"{what}: name the PNG file to write")
    path = Path(target).expanduser()
    if path.suffix and path.suffix.lower() != ".png" and not path.exists():
        raise click.ClickException(f"{what} {target}: the image is written as PNG; name a .png file")
    if path.is_dir():
        raise click.ClickException(f"{what} {target} is a folder; name a file in it, e.g. {path / 'page.png'}")
    folder = path.parent
    if not folder.is_dir():
        raise click.ClickException(f"cannot write {target}: the folder {folder} "
                                   + ("is not a folder" if folder.exists() else "does not exist"))
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise click.ClickException(f"cannot write {target}: permission denied")
    problem = overwrite_problem(path, inputs)
    if problem:
        raise click.ClickException(f"{what} {problem}")
    return path


def write_png(image, target: Path | None) -> None:
    """Save as PNG whatever the name's extension (/dev/null, a name without one); None: standard output."""
    if target is None:
        stream = sys.stdout.buffer
        image.save(stream, "PNG")
        stream.flush()
        return
    try:
        image.save(target, "PNG")
    except OSError as e:
        raise click.ClickException(f"cannot write {target}: {e.strerror or e}") from None


def evidence_folder(folder: Path) -> Path:
    """The --save-evidence folder, made if missing (with its parents), checked writable before any answer."""
    if folder.exists() and not folder.is_dir():
        raise click.ClickException(f"--save-evidence {folder} is a file; name a folder")
    if (folder / "index.db").is_file():
        raise click.ClickException(f"--save-evidence {shown(folder)} is an index folder: name another folder for "
                                   "the pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.ClickException(f"cannot make the folder {folder} for --save-evidence: {e.strerror or e}") \
            from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.ClickException(f"cannot write in {folder} (--save-evidence): permission denied")
    return folder


def evidence_for(index, answer, only: int | None = None) -> list:
    from rag.highlight import answer_evidence

    return [ev for ev in answer_evidence(index, answer) if only is None or ev.n == only]


def evidence_json(index, answer) -> list[dict]:
    """One entry per source: its citation number, page size in pixels, and the boxes of its supporting words."""
    return [ev.to_json() for ev in evidence_for(index, answer)]


def save_page(index, ev, target: Path) -> Path:
    from rag.highlight import draw, page_image_by_id

    image = page_image_by_id(index, ev.page_id)
    write_png(draw(image, [(ev.regions, ev.n or 1)]), target)
    return target


def message(e: Exception) -> str:
    return e.format_message() if isinstance(e, click.ClickException) else str(e)


def save_evidence(index, answer, folder: Path) -> list[Path]:
    """A PNG per page the answer cites (every source, when nothing is cited), words boxed in its [n]'s colour."""
    from index.stored_paths import fs_path

    evidence_folder(folder)
    evidence = evidence_for(index, answer)
    cited = [ev for ev in evidence if ev.n in set(answer.cited)] or evidence
    written = []
    for ev in cited:
        target = folder / f"{ev.n}-{Path(fs_path(ev.path)).stem}-p{ev.page}.png"
        try:
            written.append(save_page(index, ev, target))
        except Exception as e:  # the file moved or became unreadable since indexing
            click.echo(f"Could not draw [{ev.n}] {shown(ev.path)}, page {ev.page}: {message(e)}", err=True)
    return written
