"""Writing an answer's evidence boxes out: PNGs of the cited pages (`ask --save-evidence`, `/page N --save`)
and the boxes in `--json`."""
from __future__ import annotations

from pathlib import Path

import click


def evidence_for(index, answer, only: int | None = None) -> list:
    from rag.highlight import answer_evidence

    return [ev for ev in answer_evidence(index, answer) if only is None or ev.n == only]


def evidence_json(index, answer) -> list[dict]:
    """One entry per source: its citation number, page size in pixels, and the boxes of its supporting words."""
    return [ev.to_json() for ev in evidence_for(index, answer)]


def save_page(index, ev, target: Path) -> Path:
    from rag.highlight import draw, page_image_by_id

    image = page_image_by_id(index, ev.page_id)
    draw(image, [(ev.regions, ev.n or 1)]).save(target)
    return target


def save_evidence(index, answer, folder: Path) -> list[Path]:
    """A PNG per page the answer cites (every source, when nothing is cited), words boxed in its [n]'s colour."""
    folder.mkdir(parents=True, exist_ok=True)
    evidence = evidence_for(index, answer)
    cited = [ev for ev in evidence if ev.n in set(answer.cited)] or evidence
    written = []
    for ev in cited:
        target = folder / f"{ev.n}-{Path(ev.path).stem}-p{ev.page}.png"
        try:
            written.append(save_page(index, ev, target))
        except Exception as e:  # the file moved or became unreadable since indexing
            click.echo(f"Could not draw [{ev.n}] {ev.path}, page {ev.page}: {e}", err=True)
    return written
