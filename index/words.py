"""The unit every reader and OCR engine produces: a word with its box on the page."""
from __future__ import annotations

from typing import NamedTuple


class Word(NamedTuple):
    """A word; box corners are fractions of the page width/height (0..1), so DPI-independent."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    conf: float  # 0..1; 1.0 for a PDF text layer
    line: int  # words with the same value are on one line, lines in reading order


def page_text(words: list[Word]) -> str:
    """Words joined by spaces within a line and newlines between lines."""
    lines: list[str] = []
    current = None
    for w in words:
        if w.line != current:
            lines.append(w.text)
            current = w.line
        else:
            lines[-1] += " " + w.text
    return "\n".join(lines)


def union_box(words: list[Word]) -> tuple[float, float, float, float] | None:
    if not words:
        return None
    return (min(w.x0 for w in words), min(w.y0 for w in words),
            max(w.x1 for w in words), max(w.y1 for w in words))


# letters that Unicode does not decompose into a base letter + accent, so neither NFKD
# nor FTS5's remove_diacritics maps them to what people type without them
_FOLD = str.maketrans({"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
                       "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "ı": "i"})


def fold(text: str) -> str:
    """Text as the full-text index sees it, on both the page and the query side: accents
    dropped in every script, ligatures and special letters spelled out.

    'Straße, café, Ἀθῆναι, ﬁle' -> 'Strasse, cafe, Αθηναι, file'
    """
    import unicodedata

    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return unicodedata.normalize("NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch)))
