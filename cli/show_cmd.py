"""`pagerag show`: an indexed page as a PNG, with the words that match a text boxed."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .common import friendly_errors, index_option, open_index


@click.command()
@click.argument("file")
@click.argument("page", type=click.IntRange(1), default=1)
@click.option("--highlight", "text", help="Box the words that match this text (a query, a name, an amount).")
@click.option("--kind", type=click.Choice(["query", "answer"]), default="query", show_default=True,
              help="query: box each matching word; answer: box the best run of words reading like TEXT.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="PNG to write [default: FILE-pPAGE.png in the current folder].")
@click.option("--width", type=click.IntRange(100, 10000), help="Scale the PNG to this many pixels wide.")
@click.option("--json", "as_json", is_flag=True, help="Print the boxes (page pixels and fractions) as JSON.")
@index_option
@friendly_errors
def show(file, page, text, kind, output, width, as_json, index_dir):
    """Draw PAGE (default 1) of indexed FILE, with the words matching --highlight boxed."""
    from rag.highlight import draw, find_page, page_evidence, page_image_by_id

    idx = open_index(index_dir)
    row = find_page(idx, file, page)
    ev = page_evidence(idx, row["id"], text, kind=kind)
    output = output or Path(f"{Path(row['path']).stem}-p{page}.png")
    image = page_image_by_id(idx, row["id"])
    if width and width != image.width:
        image = image.resize((width, max(1, round(image.height * width / image.width))))
    draw(image, [(ev.regions, 1)], label=False).save(output)
    if as_json:
        click.echo(json.dumps({**ev.to_json(), "image": str(output)}, ensure_ascii=False, indent=2))
        return
    click.echo(f"Wrote {output}: page {page} of {row['path']}")
    if text and not ev.regions:
        click.echo(f"No words on this page match {text!r}.", err=True)
    for i, r in enumerate(ev.regions, 1):
        click.echo(f" {i}. {r.text!r} at {list(r.pixels(ev.width, ev.height))} (score {r.score})")
