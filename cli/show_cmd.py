"""`pagerag show`: an indexed page as a PNG, with the words that match a text boxed."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .common import friendly_errors, index_option, open_index, quoted, shown


@click.command()
@click.argument("file")
@click.argument("page", type=click.IntRange(1), default=1)
@click.option("--highlight", "text", help="Box the words that match this text (a query, a name, an amount).")
@click.option("--kind", type=click.Choice(["query", "answer"]), default="query", show_default=True,
              help="query: box each matching word; answer: box the best run of words reading like TEXT.")
@click.option("-o", "--output", metavar="FILE",
              help="PNG to write (a .png name, or one without an extension such as /dev/null; '-': standard "
                   "output, not a terminal) [default: FILE-pPAGE.png in the current folder].")
@click.option("--width", type=click.IntRange(100, 10000),
              help="Scale the PNG to this many pixels wide (box coordinates printed are the PNG's).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the boxes as JSON: `pixels` in the indexed page's pixels, `png_pixels` in the PNG's.")
@index_option
@friendly_errors
def show(file, page, text, kind, output, width, as_json, index_dir):
    """Draw PAGE (default 1) of indexed FILE, with the words matching --highlight boxed.

    FILE is a path, or a bare file name that only one indexed file has."""
    from index.stored_paths import fs_path
    from rag.highlight import draw, find_page, page_evidence, page_image_by_id

    from .evidence_out import png_target, write_png

    if output is not None and as_json and output == "-":
        raise click.UsageError("-o - writes the PNG to standard output, where --json goes too: choose one")
    idx = open_index(index_dir)
    row = find_page(idx, file, page)
    target = png_target(output if output is not None else f"{Path(fs_path(row['path'])).stem}-p{page}.png",
                        inputs=(fs_path(row["path"]),))
    ev = page_evidence(idx, row["id"], text, kind=kind)
    image = page_image_by_id(idx, row["id"])
    if width and width != image.width:
        image = image.resize((width, max(1, round(image.height * width / image.width))))
    write_png(draw(image, [(ev.regions, 1)], label=False), target)
    name = "standard output" if target is None else str(target)
    if as_json:
        data = ev.to_json()
        for r, out in zip(ev.regions, data["regions"]):
            out["png_pixels"] = list(r.pixels(image.width, image.height))
        click.echo(json.dumps({**data, "image": name, "png_width": image.width, "png_height": image.height},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"Wrote {shown(name)} ({image.width}x{image.height} px): page {page} of {shown(row['path'])}",
               err=target is None)
    if text and not ev.regions:
        click.echo(f"No words on this page match {quoted(text)}.", err=True)
    for i, r in enumerate(ev.regions, 1):
        beside = f" (the {r.label!r} of the {r.row!r} row)" if r.row else \
            f" (the value beside {r.label!r})" if r.label else ""
        click.echo(f" {i}. {r.text!r}{beside} at {list(r.pixels(image.width, image.height))} px of the PNG "
                   f"(score {r.score})", err=target is None)
