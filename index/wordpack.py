"""A page's words and boxes as a compact binary blob (pages.words), versioned.

    blob = pack_words(words, text)          # text: the page text stored beside it
    unpack_words(blob, text) == words       # boxes and confidences to within 1/65535

Layout: b"W", a version byte, then zlib of
    n (uint32) | flags (uint8) | x0 y0 x1 y1 conf as uint16 fractions of 65535 (5n) | line (int32, n)
    | [only when flags & OWN_TEXTS] the word texts, UTF-8, joined by NUL.
A page's words are its text's lines split on single spaces (`page_text`), so the texts are
normally taken from `text` and not stored twice; a word that would not round-trip that way
(a space inside it, an empty word) makes the blob carry its own texts.
JSON took ~35% of index.db; this takes about a fifth of the JSON's bytes.
"""
from __future__ import annotations

import struct
import zlib

from .words import Word, page_text

MAGIC = b"W"
VERSION = 1
OWN_TEXTS = 1
_SCALE = 65535


class WordsFormatError(ValueError):
    """A words blob this version cannot read (another format version, or damaged)."""


def _split(text: str) -> list[str]:
    return [w for line in text.split("\n") for w in line.split(" ")] if text else []


def pack_words(words: list[Word], text: str) -> bytes:
    import numpy as np

    n = len(words)
    own = page_text(words) != text or _split(text) != [w.text for w in words]
    boxes = np.array([w[1:6] for w in words], dtype="float64").reshape(n, 5)
    q = np.rint(np.clip(boxes, 0.0, 1.0) * _SCALE).astype("<u2")
    lines = np.array([w.line for w in words], dtype="<i4")
    body = struct.pack("<IB", n, OWN_TEXTS if own else 0) + q.tobytes() + lines.tobytes()
    if own:
        body += "\0".join(w.text for w in words).encode("utf-8")
    return MAGIC + bytes([VERSION]) + zlib.compress(body, 6)


def unpack_words(blob: bytes, text: str) -> list[Word]:
    """The words of a page from its blob and its stored text."""
    import numpy as np

    if blob[:1] != MAGIC or len(blob) < 2:
        raise WordsFormatError("not a pagerag words blob")
    if blob[1] != VERSION:
        raise WordsFormatError(f"words blob version {blob[1]}, this pagerag reads {VERSION}")
    try:
        body = zlib.decompress(blob[2:])
        n, flags = struct.unpack_from("<IB", body)
        off = 5
        q = np.frombuffer(body, dtype="<u2", count=5 * n, offset=off).reshape(n, 5) / _SCALE
        off += 10 * n
        lines = np.frombuffer(body, dtype="<i4", count=n, offset=off)
        off += 4 * n
    except (zlib.error, struct.error, ValueError) as e:
        raise WordsFormatError(f"damaged words blob: {e}") from None
    texts = body[off:].decode("utf-8").split("\0") if flags & OWN_TEXTS else _split(text)
    if len(texts) != n:
        raise WordsFormatError(f"words blob holds {n} boxes but {len(texts)} words")
    return [Word(t, *map(float, b[:5]), int(line)) for t, b, line in zip(texts, q.tolist(), lines.tolist())]
