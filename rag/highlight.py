"""Evidence boxes for whole pages and answers, and drawing them on the page image.

    ev = page_evidence(index, page_id, "parking lot", kind="query")   # PageEvidence
    draw(page_image_by_id(index, page_id), [(ev.regions, 1)]).save("page.png")
    for ev in answer_evidence(index, answer): ...                      # one per cited page, colour = its [n]

Box coordinates in JSON: `box` in page fractions, `pixels` in the page's pixels as indexed
(`width` x `height`: an image's own size, a PDF page at the build's DPI).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import NotIndexed
from index.given_paths import not_indexed_hint, path_key

from .fields import focus
from .locate import LABEL_WEIGHT, locate
from .regions import Region, scale

# one colour per citation number, [1] first; distinct on white paper and for common colour blindness
PALETTE = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0), (86, 180, 233),
           (120, 94, 240), (160, 60, 60)]


def colour(n: int) -> tuple[int, int, int]:
    """The colour of citation [n] (1-based), also used by the web app: colour(1) -> (0, 114, 178)."""
    return PALETTE[(n - 1) % len(PALETTE)]


def hex_colour(n: int) -> str:
    return "#%02x%02x%02x" % colour(n)


@dataclass
class PageEvidence:
    """What supports a text on one page: its regions, best first."""

    page_id: int
    path: str
    page: int
    width: int
    height: int
    regions: list[Region] = field(default_factory=list)
    n: int | None = None  # the citation number, when the page is an answer's source
    text: str = ""  # what was looked for

    def to_json(self) -> dict:
        return {"n": self.n, "path": self.path, "page": self.page, "page_id": self.page_id,
                "width": self.width, "height": self.height, "looked_for": self.text,
                "regions": [region_json(r, self.width, self.height) for r in self.regions]}


def region_json(r: Region, width: int, height: int) -> dict:
    """A region as JSON; `how`: 'span' (the text read as a run of words), 'terms' (its words found one by
    one), 'field' (the value beside `label`, the label of the field a question names) or 'cell' (a table's
    cell, in the column headed `label` and the row holding `row`, words the question names)."""
    out = {"text": r.text, "score": r.score, "how": r.how, "box": [round(v, 5) for v in r.box],
           "pixels": list(r.pixels(width, height)), "lines": [list(scale(b, width, height)) for b in r.lines]}
    if r.label is not None:
        out["label"] = r.label
    if r.row is not None:
        out["row"] = r.row
    return out


def find_page(index, file: str, page: int = 1):
    """The indexed page of a file given as a path (absolute or relative), or as a bare file name (no folder
    part) that only one indexed file has; raises NotIndexed with what to do (the candidates, when several)."""
    path = str(Path(file).expanduser().resolve())
    doc = index.find_document(path)
    if doc is None:
        bare = "/" not in file and Path(file).name == file
        matches = [d["path"] for d in index.documents() if path_key(Path(d["path"]).name) == path_key(file)] \
            if bare else []
        if len(matches) != 1:
            if len(matches) > 1:
                hint = "several indexed files have that name: give its path, one of " + ", ".join(
                    repr(m) for m in sorted(matches)[:10]) + (f" (and {len(matches) - 10} more)" if len(matches) > 10 else "")
            else:
                hint = not_indexed_hint(path, [d["path"] for d in index.documents()], f"pagerag index build {file}")
            raise NotIndexed(f"{file!r} is not in the index at {index.folder}: {hint}")
        return index.page(matches[0], page)
    return index.page(doc["path"], page)


REREAD_BELOW = 0.8  # an answer read as a span less similar than this is looked for in a second reading
HOLD_BESIDE = 0.35  # ... and so is one this far from the label of the field asked for (11 line heights right)


def find(index, page_id: int, text: str, kind: str = "query", context: str | None = None, limit: int = 3,
         reread: bool = True) -> list[Region]:
    """`locate` over the page's stored words; for an answer or a statement the stored words do not hold
    well (no span as similar as REREAD_BELOW; for a statement, nothing), also over a second reading
    by the other OCR engine (rag.reread), keeping the better."""
    regions = locate(index.page_words(page_id), text, kind=kind, context=context, limit=limit)
    if not reread or kind == "query" or _holds(regions, kind, context):
        return regions
    from .reread import second_reading

    words = second_reading(index, page_id)
    again = locate(words, text, kind=kind, context=context, limit=limit) if words else []
    if again and (not regions or _rank(again[0]) > _rank(regions[0])):
        return again
    return regions


def _holds(regions: list[Region], kind: str, context: str | None = None) -> bool:
    """Whether the stored words hold what was looked for well enough: for a statement, anything; for an
    answer, a span as similar as REREAD_BELOW that, when the question (`context`) names a field, sits
    beside that field's label (`rag.fields.beside` at least HOLD_BESIDE) — a label the stored words do
    not hold at all is looked for in the second reading too."""
    if kind == "statement":
        return bool(regions)
    if not regions or regions[0].how != "span" or regions[0].score < REREAD_BELOW:
        return False
    r = regions[0]
    if r.fit is None:
        return focus(context) is None
    return r.fit - r.score >= LABEL_WEIGHT * HOLD_BESIDE


def _rank(r: Region) -> tuple:
    return (r.how == "span", r.fit if r.fit is not None else r.score)


def page_evidence(index, page_id: int, text: str | None, kind: str = "query", context: str | None = None,
                  limit: int = 3, n: int | None = None) -> PageEvidence:
    row = index.page_by_id(page_id)
    regions = find(index, page_id, text, kind=kind, context=context, limit=limit) if text else []
    return PageEvidence(page_id, row["path"], row["page_no"], row["width"], row["height"], regions, n, text or "")


_CITED = re.compile(r"\[(\s*\d+(?:\s*[,;]\s*\d+)*\s*)\]")


def cited_statements(answer: str) -> dict[int, list[str]]:
    """Each citation number -> the statements that cite it: the clause before each [n] (text after a
    sentence's last citation goes with it), citations removed.

    cited_statements("Paid on 9/3/92 [1], due in May [2]. Late fee 5% [1, 2].")
    -> {1: ['Paid on 9/3/92', 'Late fee 5%'], 2: ['due in May', 'Late fee 5%']}
    """
    out: dict[int, list[str]] = {}
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", answer):
        parts = _CITED.split(sentence)  # text, numbers, text, numbers, ..., text
        texts, groups = parts[0::2], parts[1::2]
        for i, group in enumerate(groups):
            clause = texts[i] + (" " + texts[i + 1] if i == len(groups) - 1 else "")
            plain = " ".join(clause.split()).strip(" .,;:")
            for num in dict.fromkeys(int(x) for x in re.findall(r"\d+", group)):
                if plain:
                    out.setdefault(num, []).append(plain)
    return out


def answer_evidence(index, answer, limit: int = 3) -> list[PageEvidence]:
    """For each source of an answer (`rag.assistant.Answer`), the words that support what cites it."""
    return sources_evidence(index, answer.question, answer.text, [(s.n, s.path, s.page) for s in answer.sources],
                            answer.abstained, limit)


def sources_evidence(index, question: str, answer: str, sources: list[tuple[int, str, int]],
                     abstained: bool = False, limit: int = 3) -> list[PageEvidence]:
    """Evidence for each source (n, path, page) of an answer: the words supporting the statements that cite
    [n]; a source nothing cites, or every source of an abstention or a model-less answer, gets the
    question's words."""
    statements = cited_statements(answer) if answer and not abstained else {}
    out = []
    for n, path, page in sources:
        try:
            row = index.page(path, page)
        except NotIndexed:  # removed since the answer was given
            continue
        regions: list[Region] = []
        for st in statements.get(n, []):
            regions += find(index, row["id"], st, kind="statement", limit=1)
        if not regions:
            regions = find(index, row["id"], question, kind="query", limit=limit)
        looked_for = " / ".join(statements.get(n, [])) or question
        out.append(PageEvidence(row["id"], path, page, row["width"], row["height"], _dedupe(regions)[:limit],
                                n, looked_for))
    return out


def _dedupe(regions: list[Region]) -> list[Region]:
    seen, out = set(), []
    for r in regions:
        if tuple(r.words) not in seen:
            seen.add(tuple(r.words))
            out.append(r)
    return out


def page_image_by_id(index, page_id: int, dpi: int = 150):
    """The page as a PIL image, upright as OCR read it (PDFs rendered at `dpi`)."""
    from .evidence import page_image

    row = index.page_by_id(page_id)
    return page_image(index, row["path"], row["page_no"], dpi)


def draw(image, marks: list[tuple[list[Region], int]], label: bool = True):
    """The image with each mark's regions boxed (a box per line, translucent) in the colour of its number,
    labelled [n] when `label`. Returns a new RGB image."""
    from PIL import Image, ImageDraw, ImageFont

    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    pen = ImageDraw.Draw(overlay)
    w, h = base.size
    width = max(2, round(min(w, h) / 400))
    pad = width + 1
    font = ImageFont.load_default(size=max(12, round(min(w, h) / 60)))
    for regions, n in marks:
        rgb = colour(n)
        for r in regions:
            for line in r.lines:
                x0, y0, x1, y1 = scale(line, w, h)
                pen.rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), fill=(*rgb, 50), outline=(*rgb, 255),
                              width=width)
            if label and r.lines:  # in the page's left margin beside the first line, else above it
                x0, y0, _, y1 = scale(r.lines[0], w, h)
                tag = f"[{n}]"
                tw, th = pen.textbbox((0, 0), tag, font=font)[2:]
                left, top = 2, (y0 + y1 - th) // 2 - 2
                if min(x0 for x0, *_ in (scale(b, w, h) for b in r.lines)) - pad < left + tw + 10:
                    left, top = x0 - pad, max(0, y0 - pad - th - 6)  # the box reaches the margin
                pen.rectangle((left, top, left + tw + 6, top + th + 4), fill=(*rgb, 230))
                pen.text((left + 3, top + 1), tag, fill=(255, 255, 255, 255), font=font)
    return Image.alpha_composite(base, overlay).convert("RGB")
