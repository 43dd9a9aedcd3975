"""Splitting a page's words into overlapping passages sized for the embedding model."""
from __future__ import annotations

from dataclasses import dataclass

from .words import Word, page_text, union_box

# all-MiniLM-L6-v2 was trained on passages of up to 128 word pieces and truncates at
# 256; ~100 words is ~130-150 pieces for typical English.
CHUNK_WORDS = 100
OVERLAP_WORDS = 25


@dataclass
class Chunk:
    text: str
    start: int  # index of the first word in the page's word list
    end: int  # one past the last word
    box: tuple[float, float, float, float] | None  # union of the words' boxes (page fractions)


def chunk_words(words: list[Word], size: int = CHUNK_WORDS, overlap: int = OVERLAP_WORDS) -> list[Chunk]:
    """Windows of `size` words stepping by `size - overlap`, each ending at a line break when one is near.

    words=250, size=100, overlap=25 -> windows [0,100) [75,175) [150,250)
    """
    if not words:
        return []
    if size <= overlap:
        raise ValueError("chunk size must be larger than the overlap")
    chunks, start, n = [], 0, len(words)
    while True:
        end = min(start + size, n)
        if end < n:  # prefer to stop at the end of a line within the last quarter
            for cut in range(end, start + size * 3 // 4, -1):
                if words[cut].line != words[cut - 1].line:
                    end = cut
                    break
        span = words[start:end]
        chunks.append(Chunk(page_text(span), start, end, union_box(span)))
        if end >= n:
            return chunks
        start = max(end - overlap, start + 1)
