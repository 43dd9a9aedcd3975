"""Search over the sample corpus: real OCR, real embeddings, real FAISS and FTS5."""
import json
import sqlite3

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.store import Index
from rag.retrieve import Retriever

pytestmark = pytest.mark.slow


def questions(sample_corpus):
    path = sample_corpus.parent / "sample-questions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_sample_question_finds_its_page_first(sample_index, sample_corpus):
    retriever = Retriever(Index.open(sample_index))
    misses = []
    for q in questions(sample_corpus):
        hits = retriever.search(q["question"], k=5)
        want = (str(sample_corpus / q["path"]), q["page"])
        if (hits[0].path, hits[0].page) != want:
            misses.append((q["question"], want, [(h.path.rsplit("/", 1)[1], h.page) for h in hits]))
    assert misses == []


def test_large_index_searches_its_lexical_half_in_a_thread_with_the_same_results(sample_index, sample_corpus,
                                                                                    monkeypatch):
    from index import lexical

    monkeypatch.setattr(lexical, "COMMON_MIN_PAGES", 5)  # the sample's 15 pages count as large
    threaded, one = Retriever(Index.open(sample_index), parallel=True), Retriever(Index.open(sample_index), parallel=False)
    for q in questions(sample_corpus)[:6]:
        assert threaded.search_modes(q["question"], k=5) == one.search_modes(q["question"], k=5)
    assert threaded._lexical_index is not None and one._lexical_index is None  # it took the threaded path
    threaded._lexical_index.close()
    with pytest.raises(sqlite3.ProgrammingError):  # an error in the lexical thread reaches the caller
        threaded.search("parking lot")


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_single_modes_rank_an_exact_question(sample_index, sample_corpus, mode):
    hits = Retriever(Index.open(sample_index)).search(
        "In the 2023 water authority annual report, what was the capital budget?", k=3, mode=mode)
    assert (hits[0].path, hits[0].page) == (str(sample_corpus / "reports/harbor-city-water-annual-report-2023.pdf"), 3)


def test_json_contract(sample_index, sample_corpus):
    result = CliRunner().invoke(cli, ["search", "parking lot resurfacing", "-k", "3", "--json",
                                      "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0
    hits = json.loads(result.output)
    assert len(hits) == 3
    for h in hits:
        assert {"path", "page", "score", "snippet"} <= h.keys()
        assert h["path"].startswith("/") and isinstance(h["page"], int) and h["page"] >= 1
        assert isinstance(h["score"], float) and isinstance(h["snippet"], str)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert (hits[0]["path"], hits[0]["page"]) == (str(sample_corpus / "reports/minutes-2024-q1.tif"), 2)
    assert "parking" in hits[0]["snippet"].lower()


def test_plain_output_and_batch(sample_index, sample_corpus):
    runner = CliRunner()
    plain = runner.invoke(cli, ["search", "rent increase notice", "-k", "2", "--index", str(sample_index)],
                          catch_exceptions=False)
    first = plain.output.splitlines()[0]
    assert first.startswith(" 1. " + str(sample_corpus / "letters/pinecrest-rent-increase-notice.jpg"))
    assert "page 1" in first and "score" in first
    batch = runner.invoke(cli, ["search", "--batch", "-k", "1", "--index", str(sample_index)],
                          input="rent increase\n\n   \nheat pump warranty terms\n", catch_exceptions=False)
    lines = [json.loads(line) for line in batch.output.splitlines()]
    assert lines[1:3] == [[], []]  # a blank line keeps its place: output line N answers input line N
    assert [h[0]["path"].rsplit("/", 1)[1] for h in lines[::3]] == ["pinecrest-rent-increase-notice.jpg",
                                                                   "thermavale-heat-pump-warranty.pdf"]


@pytest.mark.parametrize("command", ["search", "ask"])
def test_blank_query_is_a_usage_error(sample_index, command):
    for blank in ("", "   "):
        result = CliRunner().invoke(cli, [command, blank, "--index", str(sample_index)])
        assert result.exit_code == 2 and "blank" in result.output, (blank, result.output)


def test_status_reports_contents(sample_index):
    result = CliRunner().invoke(cli, ["index", "status", "--json", "--index", str(sample_index)],
                                catch_exceptions=False)
    data = json.loads(result.output)
    assert (data["documents"], data["pages"], data["incomplete"]) == (9, 15, 0)
    assert data["embed_model"] == "sentence-transformers/all-MiniLM-L6-v2" and data["embed_dim"] == 384
    assert data["ocr_pages"] == 9  # 3 scanned images + 1 form + 3 TIFF frames + 2 image-only PDF pages
    assert data["skipped"] == [] and data["size_bytes"] > 0


def test_search_on_missing_index_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["search", "anything", "--index", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "no index at" in result.output and "pagerag index build" in result.output
