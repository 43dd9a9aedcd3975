"""Page structure as searchable facts: page numbers, captions and positions a question may name.

    page_facts(words, page_no=3, n_pages=12)
    -> [("page", "3"), ("printed", "14"), ("figure", "10"), ("table", "2")]

A fact is (kind, value), both lower case:
- ("page", N): the page's place in its document: the page number of a multi-page file, or
  the number a page image's file name ends in (scans/p014.jpg is page 14 of scans/);
- ("inked", N): the page's place counting only the pages with text, where a blank page comes
  before it (the blank back of a cover: the title page after it is also the "second page");
  added after a build (`inked_places`);
- ("printed", N): the page number printed in its header or footer ("14", "Page 14", "- 14 -",
  "14 of 30", "xii"), which often differs from the place (covers and front matter are unnumbered);
  pages whose number OCR missed get it from the run of their document's other pages
  (`running_numbers`, after a build);
- ("figure" | "table" | "appendix" | "exhibit" | "chart", ID): a caption starting a line
  ("Figure 10: ...", "TABLE II", "Appendix E"); roman numerals also as digits;
- ("position", "first" | "last" | "second-last"): where the page sits in its document;
- ("label", L): a PDF page label other than a plain number ("iv", "a-3"; a numeric label is a
  ("printed", N), a roman one also); from the PDF's /PageLabels, read by PyMuPDF;
- ("section", N): a numbered heading opening a line ("3.3 Post-hoc Correction", "2.1. Data",
  "Section 4", "Chapter 7"): a number with a dot inside followed by a capitalised word, or
  a number after "Section" / "Chapter" (a bare "3 Methods" is too often a list item or a row);
- ("title", KEY): a slide's title, as lower-case words ("quarterly revenue outlook"): on a
  slide-shaped page (landscape), the tallest line starting in its top part, with the lines of
  the same height right below it (a two-line title). Text-layer word boxes are as tall as
  their font, OCR boxes as the printed letters, so one rule serves both.

`rag.query.structure_refs` reads the same kinds out of a question ("the figure on page 6",
"Appendix E", "the cover", "the last page"), and retrieval ranks the pages holding them up.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

KINDS = ("page", "inked", "printed", "figure", "table", "appendix", "exhibit", "chart", "position", "label", "title", "section")
HEADER, FOOTER = 0.10, 0.88  # page fractions: lines above / below these are header / footer
_ROMAN = re.compile(r"^(?=[ivxlc]+$)c{0,3}(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$")
_CAPTION = re.compile(r"^(figure|fig|table|tab|appendix|exhibit|chart)\.?\s*([0-9]{1,3}(?:\.[0-9]{1,2})?|[ivxl|]{1,5}|[a-z])"
                      r"(?=$|[\s.:,)\-–—|])", re.IGNORECASE)
_KIND = {"fig": "figure", "tab": "table"}
_PAGE_LINE = re.compile(r"^(?:[-–—]\s*)?(?:page|p\.?|pg\.?)?\s*([0-9]{1,4}|[ivxlc]{1,6})\s*(?:[-–—]|(?:of|/)\s*[0-9]{1,4})?$",
                        re.IGNORECASE)
_PAGE_IN_LINE = re.compile(r"\bpage\s+([0-9]{1,4})(?:\s+of\s+[0-9]{1,4})?\b(?![.,:/-]?[0-9])|"
                           r"\b([0-9]{1,4})\s+(?:of|/)\s+[0-9]{1,4}$", re.IGNORECASE)
_SEQUENCE = re.compile(r"^(.*?)(\d{1,5})$")
_WORD = re.compile(r"\w+", re.UNICODE)
SLIDE_ASPECT = 1.2  # width / height from which a page is slide-shaped (4:3 is 1.33, 16:9 1.78, paper 0.71-0.77)
TITLE_TOP = 0.35  # a slide's title starts within this top share of the page
TITLE_SCALE = 1.25  # and is at least this much taller than the slide's median line
TITLE_WORDS = 12  # longer "titles" are body text set large


def is_number(token: str) -> bool:
    """Digits 0-9 only: str.isdigit() is also true of '²' and '①', which int() refuses."""
    return token.isascii() and token.isdigit()


def roman_to_int(s: str) -> int | None:
    """'xii' -> 12; None if `s` is not a (lower-case) roman numeral."""
    if not s or not _ROMAN.match(s):
        return None
    values = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
    total = 0
    for a, b in zip(s, s[1:] + " "):
        total += -values[a] if values.get(b, 0) > values[a] else values[a]
    return total


def _lines(words) -> list[tuple[str, float, float]]:
    """(text, top, bottom) of each line, in reading order."""
    return [(text, top, bottom) for text, top, bottom, _ in _line_boxes(words)]


def printed_numbers(words) -> list[str]:
    """Page numbers printed in the header or footer: a line that is only a number ('14', 'Page 14',
    '- 14 -', '14 of 30', 'xii'), or a number that opens or closes a header/footer line
    ('Annual Report | 14', '14 Introduction'; both ends of '4 Studies ... Studies 5', the footers of a
    two-page spread read as one line; not the total of '... of 16'), or 'Page 12 (of 16)' inside such
    a line (a court filing's header), years (1900-2099) left out there. Only the two
    candidates nearest the page's edge count (a reference list running into the footer has many)."""
    found = []  # (distance to the edge, value)
    lines = [ln for ln in _lines(words) if ln[0]]
    outer = _apart(lines)
    for text, top, bottom in lines:
        edge = top if top < 1 - bottom else 1 - bottom
        m = _PAGE_LINE.match(text)
        if bottom > HEADER and top < FOOTER:
            # only a page number, as the first or last line of a page with wide margins (a book scan:
            # '2' at 16% of the height), set apart from the text
            if m and (text, top, bottom) in outer:
                found.append((edge, _page_value(m.group(1))))
            continue
        if m:
            found.append((edge, _page_value(m.group(1))))
            continue
        m = _PAGE_IN_LINE.search(text)
        if m:  # 'Case 2:18-cv-12857 ... filed 09/13/18 Page 12 of 16': 12, not the 16 that ends the line
            found.append((edge, str(int(m.group(1) or m.group(2)))))
            continue
        tokens = text.split()
        ends = [tokens[0]] + ([tokens[-1]] if len(tokens) > 1 and tokens[-2].lower() not in ("of", "/") else [])
        for tok in ends:  # both ends: a two-page spread read as one line
            tok = tok.strip("|·•-–—")
            if is_number(tok) and len(tok) <= 4 and not (1900 <= int(tok) <= 2099):
                found.append((edge, str(int(tok))))
    values = [v for _, v in sorted(found) if v and v != "0"]
    return list(dict.fromkeys(values))[:2]


def _apart(lines: list[tuple[str, float, float]]) -> set[tuple[str, float, float]]:
    """The first and the last line of a page (by position) when a gap at least their own height
    separates them from every other line."""
    out = set()
    if len(lines) < 2:
        return out
    first, last = min(lines, key=lambda ln: ln[1]), max(lines, key=lambda ln: ln[2])
    if min(ln[1] for ln in lines if ln is not first) - first[2] >= first[2] - first[1]:
        out.add(first)
    if last[1] - max(ln[2] for ln in lines if ln is not last) >= last[2] - last[1]:
        out.add(last)
    return out


def _page_value(token: str) -> str:
    """'14' -> '14', 'xii' -> '12', anything else -> ''."""
    token = token.lower()
    return token if is_number(token) else str(roman_to_int(token) or "")


def _roman_read(ident: str) -> str:
    """A caption's roman numeral as OCR misreads it, repaired: 'il' (TABLE IL) -> 'ii', '|' -> 'i'."""
    if roman_to_int(ident) or ident == "l" or not set(ident) <= set("ivxl|"):
        return ident  # a lone 'l' is a letter ('Figure L' is rare, but not a misread)
    repaired = ident.replace("l", "i").replace("|", "i")
    return repaired if roman_to_int(repaired) else ident


def captions(words) -> list[tuple[str, str]]:
    """(kind, id) of the captions opening a line: 'Figure 10: Results' -> ('figure', '10'),
    'TABLE II' -> ('table', 'ii') and ('table', '2'), 'Appendix E' -> ('appendix', 'e')."""
    out = []
    for text, _, _ in _lines(words):
        m = _CAPTION.match(text)
        if not m:
            continue
        kind = _KIND.get(m.group(1).lower(), m.group(1).lower())
        ident = _roman_read(m.group(2).lower())
        if len(ident) == 1 and ident.isalpha() and kind != "appendix" and ident not in "iv":
            continue  # 'Table A' is rare; 'Figure a' is usually text ('Table a lists ...')
        out.append((kind, ident))
        number = roman_to_int(ident)
        if number and kind != "appendix":
            out.append((kind, str(number)))
    return list(dict.fromkeys(out))


_HEADING = re.compile(r"^(?:(?i:section|chapter|§)\s*(\d{1,2}(?:\.\d{1,2}){0,2})(?![\d.]*\d)|"
                      r"(\d{1,2}(?:\.\d{1,2}){1,2})\.?\s+[A-Z][a-z])")


def headings(words) -> list[tuple[str, str]]:
    """("section", N) of the numbered headings opening a line: '3.3 Post-hoc Correction' -> ('section', '3.3'),
    'Chapter 7' -> ('section', '7'); not '3.50 USD', '1.5 kg' nor '12 Apples' (see the module docstring)."""
    out = []
    for text, _, _ in _lines(words):
        m = _HEADING.match(text)
        if m:
            out.append(("section", m.group(1) or m.group(2)))
    return list(dict.fromkeys(out))


def sequence(path: str | Path) -> tuple[int, int, int] | None:
    """(number, first, last) of a page image named like its siblings with an unbroken running number:
    scans/p014.jpg beside p001.jpg ... p030.jpg -> (14, 1, 30); None for a lone or unnumbered file."""
    path = Path(path)
    m = _SEQUENCE.match(path.stem)
    if not m:
        return None
    numbers = _numbered(str(path.parent)).get((m.group(1), path.suffix.lower()))
    if not numbers or numbers[2] < 2 or numbers[2] != numbers[1] - numbers[0] + 1:
        return None  # a lone file, or numbers with gaps (receipt ids, not the pages of one scan)
    return int(m.group(2)), numbers[0], numbers[1]


@functools.lru_cache(maxsize=64)
def _numbered(folder: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(name prefix, suffix) -> (lowest number, highest number, count) of the numbered files in a folder;
    read once per folder (a build asks for every page image in it)."""
    out: dict[tuple[str, str], tuple[int, int, int]] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for name in names:
        stem, suffix = os.path.splitext(name)
        m = _SEQUENCE.match(stem)
        if m:
            n, key = int(m.group(2)), (m.group(1), suffix.lower())
            lo, hi, count = out.get(key, (n, n, 0))
            out[key] = (min(lo, n), max(hi, n), count + 1)
    return out


RUN_AGREE = 3  # pages whose printed number agrees with one offset from their place, before it is trusted


def running_numbers(pages: dict[int, tuple[int, list[str]]]) -> dict[int, str]:
    """The printed page numbers that OCR missed, from the run the document's other pages show.

    `pages`: page id -> (its place in the document, the printed numbers read on it). When at
    least RUN_AGREE pages, and more than half of those with a number, agree on one offset
    (place - printed), every page whose number was not read gets place - offset (when >= 1):
    places 6..20 printed 2..16 with 11 missing -> {page 15: '11', page 5: '1'} (the unnumbered
    first page of the hearing is 'page 1'). Roman front matter and stray numbers are outvoted."""
    votes: dict[int, int] = {}
    numbered = 0
    for place, printed in pages.values():
        offsets = {place - int(v) for v in printed if is_number(v)}
        numbered += bool(offsets)
        for off in offsets:
            votes[off] = votes.get(off, 0) + 1
    if not votes:
        return {}
    offset, agree = max(votes.items(), key=lambda kv: (kv[1], -abs(kv[0])))
    if agree < RUN_AGREE or 2 * agree <= numbered:
        return {}
    return {pid: str(place - offset) for pid, (place, printed) in pages.items()
            if place - offset >= 1 and str(place - offset) not in printed}


def inked_places(pages: dict[int, tuple[int, bool]]) -> dict[int, str]:
    """The place of each page among its document's pages that hold text, for the pages after a blank one.

    `pages`: page id -> (its place in the document, whether it is blank). A reader does not count
    the blank back of a cover: cover, blank, title page, blank, summary -> {title page: '2', summary: '3'}."""
    out, n = {}, 0
    for pid in sorted(pages, key=lambda pid: pages[pid][0]):
        place, blank = pages[pid]
        if not blank:
            n += 1
            if n != place:
                out[pid] = str(n)
    return out


def title_key(text: str) -> str:
    """A title as it is stored and looked up: its words, folded and lower-cased, one space apart;
    '' when it holds no word of two letters. 'Q3 Revenue — Outlook!' -> 'q3 revenue outlook'."""
    from .words import fold

    tokens = _WORD.findall(fold(text).lower())
    if len(tokens) > TITLE_WORDS or not any(sum(c.isalpha() for c in t) >= 2 for t in tokens):
        return ""
    return " ".join(tokens)


def _line_boxes(words) -> list[tuple[str, float, float, float]]:
    """(text, top, bottom, height) of each line in reading order; height = its words' median height."""
    lines: dict[int, list] = {}
    for w in words:
        lines.setdefault(w[6], []).append(w)
    out = []
    for ws in lines.values():
        heights = sorted(w[4] - w[2] for w in ws)
        out.append((" ".join(w[0] for w in ws).strip(), min(w[2] for w in ws), max(w[4] for w in ws),
                    heights[len(heights) // 2]))
    return out


def slide_title(words, width: float, height: float) -> str:
    """The title of a slide-shaped page (width / height >= SLIDE_ASPECT) as title_key, or '':
    the tallest line starting in the top TITLE_TOP of the page, TITLE_SCALE x taller than the
    median line (or the only line), joined by the lines right below it of nearly its height."""
    if not words or not height or width / height < SLIDE_ASPECT:
        return ""
    lines = [ln for ln in _line_boxes(words) if ln[0] and ln[3] > 0]
    top = [i for i, ln in enumerate(lines) if ln[1] < TITLE_TOP]
    if not top:
        return ""
    best = max(top, key=lambda i: lines[i][3])
    size = lines[best][3]
    median = sorted(ln[3] for ln in lines)[len(lines) // 2]
    if len(lines) > 1 and size < TITLE_SCALE * median:
        return ""
    parts, bottom = [lines[best][0]], lines[best][2]
    for text, y0, y1, h in lines[best + 1:]:
        if h < 0.85 * size or y0 - bottom > size:
            break
        parts.append(text)
        bottom = y1
    return title_key(" ".join(parts))


def label_facts(label: str | None) -> list[tuple[str, str]]:
    """Facts of a PDF page label: '14' -> [('printed', '14')]; 'iv' -> [('label', 'iv'), ('printed', '4')];
    'A-3' -> [('label', 'a-3')]; '' -> []."""
    label = " ".join((label or "").split()).lower()
    if not label or len(label) > 24:
        return []
    if is_number(label):
        return [("printed", str(int(label)))] if int(label) else []
    roman = roman_to_int(label)
    return [("label", label)] + ([("printed", str(roman))] if roman else [])


def page_facts(words, page_no: int, n_pages: int, path: str | Path | None = None,
               size: tuple[float, float] | None = None, label: str | None = None) -> list[tuple[str, str]]:
    """Every fact of one page (see the module docstring), without repeats; `size` (width, height,
    any unit) tells a slide-shaped page, `label` is its PDF page label."""
    place, first, last = page_no, 1, n_pages
    if n_pages == 1 and path is not None:
        seq = sequence(path)
        if seq:
            place, first, last = seq
    facts = [("page", str(place))] if last > first else []
    if last > first:
        if place == first:
            facts.append(("position", "first"))
        if place == last:
            facts.append(("position", "last"))
        if place == last - 1:
            facts.append(("position", "second-last"))
    facts += label_facts(label)
    facts += [("printed", n) for n in printed_numbers(words)]
    facts += captions(words)
    facts += headings(words)
    title = slide_title(words, *size) if size else ""
    if title:
        facts.append(("title", title))
    return list(dict.fromkeys(facts))
