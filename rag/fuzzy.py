"""Comparing OCR'd text tolerantly: letters and digits only, OCR's letter-for-digit slips folded, edit distance.

    norm('Date:') -> 'date'; digits('$1,234.5O') -> '123450'; similarity('invoices', 'lnvoice') -> 0.75
"""
from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import Levenshtein

# OCR's usual letter-for-digit slips, folded when a token is mostly digits
_DIGIT_FOLD = str.maketrans({"o": "0", "O": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "i": "1", "|": "1",
                             "!": "1", "Z": "2", "z": "2", "S": "5", "s": "5", "B": "8", "g": "9", "G": "6"})
_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def norm(text: str) -> str:
    """Lower-case letters and digits only: 'Date:' -> 'date', '9/ 3/ 92' -> '9392'."""
    return _ALNUM.sub("", unicodedata.normalize("NFKC", text).lower())


def digits(text: str) -> str:
    """The digits of a mostly-numeric text, OCR slips folded: '$1,234.5O' -> '123450'; 'Total' -> ''."""
    text = unicodedata.normalize("NFKC", text)
    n_digits = sum(ch.isdigit() for ch in text)
    n_alpha = sum(ch.isalpha() for ch in text)
    if n_digits == 0 or n_alpha > n_digits:
        return ""
    return "".join(ch for ch in text.translate(_DIGIT_FOLD) if ch.isdigit())


def similarity(a: str, b: str) -> float:
    """1 - edit distance / longer length, on normalised text: ('invoices', 'lnvoice') -> 0.75."""
    return Levenshtein.normalized_similarity(a, b)
