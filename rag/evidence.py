"""Turning retrieved pages into what the model is shown: labelled text, and the best page image(s).

How several pages reach a model that prefers one image: the `images` best pages go as
images (default 1: Llama 3.2-Vision is tuned for one image per prompt and shrinks each
to at most 1120x1120 px), and the text of all top-k pages goes as text, labelled [1]..[k].
On the eval sets, the best page is the right page for 0.83 (receipts), 0.82 (forms) and
0.48 (long reports) of the questions, and the top 5 hold it for 0.92 / 0.92 / 0.73; so
the text of the others recovers much of what one image misses (README, "Evidence").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from index.errors import BadInput
from index.orient import upright
from index.sources import read_image
from index.stored_paths import fs_path

from . import prompts
from .retrieve import Hit

MAX_TEXT_CHARS = 2500  # per page; long pages are cut (the image still shows all of it)
IMAGE_DPI = 150  # PDF pages rendered for the model; ~1275x1650 px for a letter page


@dataclass
class Source:
    """One page shown to the model, with its citation number."""

    n: int
    path: str
    page: int
    title: str
    text: str
    image: bool  # whether its image was sent too
    score: float = 0.0


@dataclass
class Evidence:
    sources: list[Source] = field(default_factory=list)
    images: list = field(default_factory=list)  # PIL images, in the order of the sources that have one

    def text(self) -> str:
        items, i = [], 0
        for s in self.sources:
            note = ""
            if s.image:
                i += 1
                note = prompts.IMAGE_NOTE.format(i=i)
            body = s.text.strip() or prompts.NO_TEXT
            if len(body) > MAX_TEXT_CHARS:
                body = body[:MAX_TEXT_CHARS].rsplit(" ", 1)[0] + prompts.TEXT_CUT
            items.append(prompts.EVIDENCE_ITEM.format(n=s.n, name=Path(s.path).name, page=s.page,
                                                      image_note=note, text=body))
        return prompts.EVIDENCE_HEADER + "\n\n" + "\n\n".join(items)


def page_image(index, path: str, page: int, dpi: int = IMAGE_DPI):
    """The page as a PIL image, read from the file as indexed and turned upright as OCR found it."""
    row = index.page(path, page)
    file = Path(fs_path(row["path"]))  # the file, not its key
    if not file.is_file():
        raise BadInput(gone_message(path))
    try:
        image = read_image(file, row["kind"], page, dpi)
    except BadInput:
        raise
    except (OSError, RuntimeError, ValueError, IndexError) as e:  # pymupdf's errors for a damaged PDF
        raise BadInput(f"{path}, page {page}: cannot be read ({e}); if it was replaced, re-run "
                       "`pagerag index build` on its folder") from None
    return upright(image, row["rotation"])


def gone_message(path: str) -> str:
    return (f"{path} is gone or was moved since it was indexed: re-run `pagerag index build FOLDER --prune` "
            "on its folder to drop it (or index it where it is now)")


def gather(index, hits: list[Hit], images: int = 1) -> Evidence:
    """Evidence from the hits, best first: text for all, images for the first `images` readable ones."""
    ev = Evidence()
    for n, hit in enumerate(hits, 1):
        row = index.page(hit.path, hit.page)
        text = row["text"] or ""
        if row["caption"]:
            text = (text + "\n" if text else "") + f"(Description: {row['caption']})"
        src = Source(n, hit.path, hit.page, hit.title, text, image=False, score=hit.score)
        if len(ev.images) < images:
            try:
                ev.images.append(page_image(index, hit.path, hit.page))
                src.image = True
            except Exception:  # file moved or unreadable since indexing: its text still serves
                pass
        ev.sources.append(src)
    return ev
