"""Turning a free-text question into an FTS5 query and picking a snippet for a hit."""
from __future__ import annotations

import re

from index.words import fold

STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most
my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves tell show find give list please according page pages
document documents many much
""".split())

# characters of a query that are searched: real questions are far shorter (the eval sets' longest is 333), the
# embedding sees at most 256 tokens anyway, and a query of megabytes would cost minutes and a gigabyte (title
# n-grams, phrase scoring, snippets) for nothing more found
MAX_QUERY_CHARS = 2000
_TOKEN = re.compile(r"\w+", re.UNICODE)


_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[\"'(\[]?[A-Za-z])")
_INSTRUCTION = re.compile(
    r"^\s*(?:please\b|kindly\b|(?:write|give|return|save|round|express|provide|format|present|enumerate|"
    r"answer|respond|reply|output|state|put|keep|use|list|address|base|ground|calculate|compute|utili[sz]e|rely|"
    r"assume|consider|refer|look|consult|focus|extract|derive|determine)\b|(?:directly|just|only)\s+answer\b|"
    r"(?:your|the)\s+(?:final\s+)?(?:answer|response|result|report|output)\b|(?:for\s+example|e\.\s?g\.)|"
    r"(?:make\s+sure|note\s+that)\b)",
    re.IGNORECASE)
# an instruction may name where to look: 'Base your judgement on the income statement.', 'Address
# the question by using the line items shown within the balance sheet and the P&L statement.':
# what follows its last 'in / within / from / on / using the' stays ('balance sheet and the P&L
# statement'), the rest goes ('address', 'question', 'judgement': rare words, heavy in bm25)
_SOURCE = re.compile(r".*\b(?:in|within|from|on|upon|using|utili[sz]ing|to)\s+the\s+(.+)$", re.IGNORECASE)
_FORM = re.compile(r"\b(?:format|decimal|answer|response|form|digits?|places?|nearest|integer|float)\b", re.IGNORECASE)
_EXAMPLE_TAIL = re.compile(r",?\s*(?:e\.\s?g\.|for\s+example)[\s,:].*$", re.IGNORECASE)


def content(question: str) -> str:
    """The question without the instructions on the answer's form that follow it: they name no page.

    'What is the gap? Please write the answer in float format, e.g. 1.5' -> 'What is the gap?'
    'Revenue in 2023? Answer in USD millions. Base your judgement on the income statement.'
      -> 'Revenue in 2023? income statement.'
    A later sentence that starts 'Please ...' or tells how to answer is an instruction; only
    the source it names stays ('... shown within the balance sheet' -> 'balance sheet'). The first sentence always stays (it
    may itself be the request: 'List the areas ...').
    """
    sentences = _SENTENCE.split(question.strip())
    kept = sentences[:1]
    for s in sentences[1:]:
        if not _INSTRUCTION.match(s):
            kept.append(s)
            continue
        source = _SOURCE.match(s)
        if source and not _FORM.search(source.group(1)):
            kept.append(source.group(1))
    return " ".join(_EXAMPLE_TAIL.sub("", s) or s for s in kept)


def terms(question: str) -> list[str]:
    """Content words, lower-cased, in order, without repeats.

    'What is the total on the ACME invoice?' -> ['total', 'acme', 'invoice']
    """
    seen, out = set(), []
    for tok in _TOKEN.findall(question.lower()):
        if tok in STOPWORDS or tok in seen or (len(tok) == 1 and not tok.isdigit()):
            continue
        seen.add(tok)
        out.append(tok)
    return out


def phrases(question: str) -> list[str]:
    """Multi-part tokens kept together: dates, amounts, codes.

    'total on 12/02/2018 of RM 112.45?' -> ['12 02 2018', '112 45']
    """
    out = []
    for raw in question.split():
        pieces = _TOKEN.findall(raw.lower())
        if len(pieces) >= 2 and " ".join(pieces) not in out:
            out.append(" ".join(pieces))
    return out


def fts_match(question: str, respelt: dict[str, str] | None = None) -> str | None:
    """An FTS5 MATCH expression that ORs the content words and the multi-part tokens as phrases.

    bm25 then rewards pages with more of the words, and much more those that hold a
    date or amount exactly as asked (on receipts this lifts Recall@1 from 0.61 to 0.86):
    'total of invoice 2024-07?' -> '"total" OR "invoice" OR "2024" OR "07" OR "2024 07"'
    `respelt` (index.spelling.respell of `match_words`) adds the indexed term for a word no page holds.
    """
    parts = match_words(question)
    parts += [respelt[t] for t in parts if respelt and t in respelt and respelt[t] not in parts]
    question = content(fold(question))
    parts += phrases(question)
    if not parts:
        return None
    return " OR ".join('"' + p.replace('"', "") + '"' for p in parts)


def match_words(question: str) -> list[str]:
    """The content words `fts_match` searches for: folded as the index folded the pages
    ('Straße' finds 'STRASSE'), without the answer instructions (`content`)."""
    return terms(content(fold(question)))


def lower_words(question: str) -> list[str]:
    """The content words written in lower case (`match_words`), the ones a misspelling can be
    respelt in: a capitalised word is a name ('Schulz', 'Enloe'), which other documents spell
    otherwise. A question in capitals throughout counts as lower case, and so does a word capitalised
    only because it opens a sentence ('Parkng lot cost?'), unless the question capitalises it elsewhere too.
    'Dr. Schulz signed the protocopying order?' -> ['signed', 'protocopying', 'order']"""
    shouting = not any(c.islower() for c in question)
    text = content(question)
    written, opening, names = set(), set(), set()
    for m in _TOKEN.finditer(text):
        t, word = m.group(), fold(m.group()).lower()
        if shouting or t.islower():
            written.add(word)
        elif t.istitle() and not _abbreviation(text, m) and _opens_sentence(text, m.start()):
            opening.add(word)
        else:
            names.add(word)
    written |= opening - names
    return [t for t in match_words(question) if t in written]


def _abbreviation(text: str, m: re.Match) -> bool:
    """'Dr.', 'Mr.', 'St.', 'J.': a short capitalised word with a full stop after it."""
    return m.group()[:1].isupper() and len(m.group()) <= 4 and text.startswith(".", m.end())


def _opens_sentence(text: str, at: int) -> bool:
    """Whether the word at `at` begins the question or follows a sentence's end ('?', '!', a '.' not of an
    abbreviation: 'Dr. Schulz' opens nothing)."""
    before = text[:at].rstrip(" \t\r\n\"'([“‘")
    if not before or before[-1] in "?!":
        return True
    if before[-1] != ".":
        return False
    prev = None
    for prev in _TOKEN.finditer(before):
        pass
    return prev is None or prev.end() != len(before) - 1 or not _abbreviation(before, prev)


def snippet(text: str, question: str, width: int = 220) -> str:
    """The `width`-character window of `text` holding the most query words (accents folded on both sides, as the
    search folds them), on one line."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    folded = fold(flat)  # the words as the search matched them: 'Bjorn' finds 'Björn'
    if len(folded) == len(flat):  # positions carry over ('ß' -> 'ss' would shift them)
        words, lower = terms(fold(question)), folded.lower()
    else:
        words, lower = terms(question), flat.lower()
    positions = sorted(m.start() for w in words for m in re.finditer(r"\b" + re.escape(w), lower))
    best, best_count = 0, -1
    for p in positions:
        start = max(0, p - width // 4)
        count = sum(start <= q < start + width for q in positions)
        if count > best_count:
            best, best_count = start, count
    start = best
    if start > 0:  # begin at a word boundary
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = flat[start:start + width]
    if start + width < len(flat):
        piece = piece.rsplit(" ", 1)[0] + " …"
    return ("… " if start > 0 else "") + piece


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_ORDINALS = {w: i for i, w in enumerate(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth".split()) if i}
_PAGE_REF = re.compile(r"\b(?:page|p\.|pg\.?)\s*\(?\s*(\d{1,5}|" + "|".join(_NUMBER_WORDS) + r")\b(?!\s*%)")
_ORDINAL_PAGE = re.compile(r"\b(" + "|".join(_ORDINALS) + r")\s+page\b")
_CAPTION_REF = re.compile(r"\b(figure|fig\.?|table|appendix|exhibit|chart)s?\s+(\d{1,3}(?:\.\d{1,2})?|[a-h]\b|[ivx]{1,5}\b)"
                          r"(?:\s*(?:-|–|to|through)\s*(\d{1,3})\b)?")
RANGE_MOST = 10  # 'figures 1-4' names each of them; a longer range is read as its first
_LABEL_REF = re.compile(r"\b(?:page|p\.|pg\.?)\s*\(?\s*([ivxlc]{1,6}|[a-z]{1,3}-\d{1,4})\b(?!-)")
_SECTION_REF = re.compile(r"(?:\bsections?|\bchapters?|§)\s*(\d{1,2}(?:\.\d{1,2}){0,2})\b(?!\.\d)")
_TITLE_CUE = re.compile(r"\b(?:slides?|titled|title|heading|headed|section)\b|[\"“”]")
TITLE_WORDS = 12  # as index.structure.TITLE_WORDS
_LAST = re.compile(r"\b(?:second|2nd)[\s-]+(?:to[\s-]+)?last\b|\bpenultimate\b")


def structure_refs(question: str) -> list[tuple[str, str]]:
    """The page-structure facts a question names (index/structure.py's kinds), in order.

    'In figure 3 on page 6, ...' -> [('page', '6'), ('printed', '6'), ('figure', '3')]
    'What is on the cover page?' -> [('position', 'first')]; 'the last page' -> [('position', 'last')]
    A page number may be the place in the document or the number printed on the page: both are asked.
    """
    from index.structure import roman_to_int

    text = question.lower()
    refs: list[tuple[str, str]] = []
    for m in _PAGE_REF.finditer(text):
        n = m.group(1)
        n = str(_NUMBER_WORDS[n]) if n in _NUMBER_WORDS else str(int(n))
        refs += [("page", n), ("printed", n), ("inked", n)]
    for m in _LABEL_REF.finditer(text):  # a PDF page label: 'page iv', 'page A-3'
        label, roman = m.group(1), roman_to_int(m.group(1))
        if roman:
            refs += [("label", label), ("printed", str(roman))]
        elif "-" in label:
            refs.append(("label", label))
    for m in _ORDINAL_PAGE.finditer(text):
        refs += [("page", str(_ORDINALS[m.group(1)])), ("inked", str(_ORDINALS[m.group(1)]))]
    if _LAST.search(text):
        refs.append(("position", "second-last"))
    elif re.search(r"\blast\s+page\b", text):
        refs.append(("position", "last"))
    if re.search(r"\b(?:cover|front|title)\s+page\b|\bthe\s+cover\b", text):
        refs.append(("position", "first"))
    for m in _CAPTION_REF.finditer(text):
        kind = {"fig": "figure", "fig.": "figure"}.get(m.group(1), m.group(1))
        ident = m.group(2)
        roman = roman_to_int(ident)
        refs.append((kind, str(roman) if roman and kind != "appendix" else ident))
        if m.group(3) and ident.isdigit() and 0 < int(m.group(3)) - int(ident) < RANGE_MOST:
            refs += [(kind, str(n)) for n in range(int(ident) + 1, int(m.group(3)) + 1)]
    refs += [("section", m.group(1)) for m in _SECTION_REF.finditer(text)]
    return list(dict.fromkeys(refs))


def ref_groups(refs: list[tuple[str, str]]) -> list[set[tuple[str, str]]]:
    """The things a question names, each as the facts that satisfy it: 'page 6' is the sixth page
    or the one printed '6', 'page iv' the one labelled 'iv' or printed '4'.
    [('page', '6'), ('printed', '6'), ('figure', '3')] -> [{('page', '6'), ('printed', '6')}, {('figure', '3')}]"""
    from index.structure import roman_to_int

    def key(ref):
        kind, value = ref
        if kind in ("page", "printed", "inked"):
            return "number", value
        roman = roman_to_int(value) if kind == "label" else None
        return ("number", str(roman)) if roman else ref

    groups: dict[tuple[str, str], set] = {}
    for ref in refs:
        groups.setdefault(key(ref), set()).add(ref)
    return list(groups.values())


def title_candidates(question: str) -> list[str]:
    """The runs of the question's words that could be a slide title it names, as
    index.structure.title_key spells titles: runs of up to TITLE_WORDS words holding a content
    word; single words only when the question speaks of a slide, title, heading or section or
    quotes something (in double quotes); its answer instructions are left out (`content`).
    'On the slide "Revenue Outlook", what?' -> [..., 'revenue outlook', ...]."""
    question = content(question)  # 'Report the time in CET' names no slide 'CET'
    tokens = _TOKEN.findall(fold(question).lower())
    single = bool(_TITLE_CUE.search(question.lower()))
    out = []
    for i in range(len(tokens)):
        for j in range(i + 1, min(i + TITLE_WORDS, len(tokens)) + 1):
            run = tokens[i:j]
            if (j - i > 1 or single) and any(t not in STOPWORDS and not t.isdigit() and len(t) > 1 for t in run):
                out.append(" ".join(run))
    return list(dict.fromkeys(out))


def longest_titles(found: list[str]) -> list[str]:
    """The matched titles not inside a longer matched one: ['revenue', 'revenue outlook'] -> ['revenue outlook']."""
    return [t for t in found if not any(t != u and f" {t} " in f" {u} " for u in found)]


def clipped(question: str) -> str:
    """The part of `question` that is searched: its first MAX_QUERY_CHARS characters, cut at a space when
    there is one in the last fifth."""
    if len(question) <= MAX_QUERY_CHARS:
        return question
    cut = question[:MAX_QUERY_CHARS]
    space = cut.rfind(" ")
    return cut[:space] if space > MAX_QUERY_CHARS * 4 // 5 else cut
