import pytest

from index.chunking import chunk_words
from index.words import Word, page_text, union_box


def words(n, per_line=10):
    return [Word(f"w{i}", (i % per_line) / per_line, (i // per_line) / 100, (i % per_line + 1) / per_line,
                 (i // per_line + 1) / 100, 0.9, i // per_line) for i in range(n)]


def test_windows_overlap_and_cover_all_words():
    chunks = chunk_words(words(250, per_line=25), size=100, overlap=25)
    assert [(c.start, c.end) for c in chunks] == [(0, 100), (75, 175), (150, 250)]
    assert chunks[0].text.splitlines()[0] == " ".join(f"w{i}" for i in range(25))


def test_window_ends_at_a_line_break_when_one_is_near():
    chunks = chunk_words(words(200, per_line=7), size=100, overlap=20)
    assert chunks[0].end == 98  # 14 lines of 7 words; 100 would split line 15
    assert all(c.end % 7 == 0 or c.end == 200 for c in chunks)


def test_box_is_union_of_words():
    ws = words(30)
    (chunk,) = chunk_words(ws, size=100, overlap=10)
    assert chunk.box == union_box(ws) == (0.0, 0.0, 1.0, 0.03)


def test_empty_and_bad_sizes():
    assert chunk_words([]) == []
    with pytest.raises(ValueError):
        chunk_words(words(5), size=10, overlap=10)


def test_page_text_joins_lines():
    assert page_text(words(4, per_line=2)) == "w0 w1\nw2 w3"
