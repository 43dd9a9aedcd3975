"""Question words the index has never seen, respelled as the nearest word it has.

People misspell ("question-guidue reasoning", "TABULUAR", "demoncratic") and OCR misreads, so
a question word that no page holds finds nothing in bm25. `respell(db, words)` maps each such
word (of at least MIN_LETTERS letters, no digits) to the indexed term one edit away (a letter
dropped, added, changed, or two swapped) that the most pages hold:

    respell(db, ["guidue", "reasoning"]) -> {"guidue": "guid"}   # 'guided', 'guide' as FTS5 stems them

Terms are compared as the index's tokenizer stores them (porter stems: 'guidue' -> 'guidu',
'guided' -> 'guid'): the stem is read back from a scratch in-memory FTS5 table with the same
tokenizer, so nothing is written to the index and a read-only index works. Each of the ~30
edits per letter of a word is an exact term lookup in the FTS5 vocabulary, never a scan of it;
only the edits the index holds have their pages counted. The word's own edits are stemmed as well (one
scratch table for all of them), so that a typo in a suffix the stemmer strips is found:

    respell(db, ["parkng"]) -> {"parkng": "park"}   # 'parking' is one edit away; two from the stem 'park'
"""
from __future__ import annotations

import functools
import re
import sqlite3
import string
from pathlib import Path

MIN_LETTERS = 5  # shorter words and stems have too many neighbours one edit away ('howm' -> 'how', 'hom', 'hm')
# absent words of one question looked at (~50 ms each): a question holds a typo or two; hundreds of unknown
# words (a pasted text in another language, garbage) would cost seconds each query for nothing
MAX_RESPELLED = 12
_ALPHABET = string.ascii_lowercase


def _vocab(db: sqlite3.Connection) -> None:
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.pagerag_vocab USING fts5vocab(main, 'pages_fts', 'row')")


def stems(db: sqlite3.Connection, words: list[str]) -> dict[str, str]:
    """word -> the term the index's tokenizer makes of it ('guided' -> 'guid'); words it splits or drops are left out.
    Read back from a scratch FTS5 table in a connection of its own (nothing shared with other threads)."""
    sql = db.execute("SELECT sql FROM main.sqlite_master WHERE name = 'pages_fts'").fetchone()[0]
    tokenize = re.search(r"tokenize\s*=\s*'([^']*)'", sql)  # the index's own tokenizer, as its schema says
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute("CREATE VIRTUAL TABLE s USING fts5(t, tokenize = '"
                        + (tokenize.group(1) if tokenize else "unicode61") + "')")
        scratch.execute("CREATE VIRTUAL TABLE v USING fts5vocab(s, 'instance')")
        scratch.executemany("INSERT INTO s (rowid, t) VALUES (?, ?)", list(enumerate(words, 1)))
        made: dict[int, list[str]] = {}
        for row, term in scratch.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
            made.setdefault(row, []).append(term)
    finally:
        scratch.close()
    return {w: made[i][0] for i, w in enumerate(words, 1) if len(made.get(i, ())) == 1}


def page_counts(db: sqlite3.Connection, terms: list[str]) -> dict[str, int]:
    """term (as stored) -> how many pages hold it, for the terms the index has."""
    _vocab(db)
    out = {}
    for term in dict.fromkeys(terms):
        row = db.execute("SELECT doc FROM temp.pagerag_vocab WHERE term = ?", (term,)).fetchone()
        if row and row[0]:
            out[term] = row[0]
    return out


def edits(word: str) -> list[str]:
    """Every string one edit from `word`: a letter dropped, two neighbours swapped, one changed, one added."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = [a + b[1:] for a, b in splits if b]
    out += [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
    out += [a + c + b[1:] for a, b in splits if b for c in _ALPHABET if c != b[0]]
    out += [a + c + b for a, b in splits for c in _ALPHABET]
    return list(dict.fromkeys(out))


def respell(db: sqlite3.Connection, words: list[str], known: frozenset[str] = frozenset()) -> dict[str, str]:
    """word -> the stored term to search for it instead, for the words no page holds (see the module docstring;
    the first MAX_RESPELLED of them); words in `known` (a language model's whole words: `vocabulary`) are not
    misspelt, only absent."""
    words = [w for w in dict.fromkeys(words)
             if len(w) >= MIN_LETTERS and w.isalpha() and w.isascii() and w not in known]
    if not words:
        return {}
    stem = stems(db, words)
    held = page_counts(db, list(stem.values()))
    out = {}
    absent = [w for w in words if w in stem and len(stem[w]) >= MIN_LETTERS and stem[w] not in held][:MAX_RESPELLED]
    # typos keep the first letter; the word's own edits that the tokenizer stems are looked up as their stems:
    # 'parkng' is two edits from the stored 'park' but one from 'parking' (-> 'park'); the edits it leaves alone
    # are the stem's own edits for most misspellings (their stem is themselves), and would double the lookups
    variants = {w: [e for e in edits(w) if e[:1] == w[:1]] for w in absent}
    stemmed = stems(db, list(dict.fromkeys(e for es in variants.values() for e in es)))
    for word in absent:
        found = page_counts(db, [e for e in edits(stem[word]) if e[:1] == word[:1]]
                            + [stemmed[e] for e in variants[word]
                               if e in stemmed and stemmed[e] != e and stemmed[e][:1] == word[:1]])
        if found:
            out[word] = max(sorted(found), key=lambda t: found[t])
    return out


@functools.lru_cache(maxsize=4)
def vocabulary(folder: str | None) -> frozenset[str]:
    """The whole words of a WordPiece model's vocabulary (its vocab.txt: 'decimal', 'scarf'; not '##al', not
    'guidue'); empty when the folder has none."""
    try:
        lines = (Path(folder) / "vocab.txt").read_text(encoding="utf-8").split("\n") if folder else []
    except OSError:
        return frozenset()
    return frozenset(w for w in (ln.strip() for ln in lines) if w.isalpha() and w.isascii())
