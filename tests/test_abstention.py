"""Abstention on both signals of the search: a question whose words the pages hold is answered even when
MiniLM's cosine is low (names, codes); an off-topic question still abstains. Real index, MiniLM, FTS5."""
import json

import pytest
from click.testing import CliRunner
from fault_kit import text_pdf

from cli.main import cli
from index.builder import BuildOptions, build
from index.store import Index
from rag.retrieve import Retriever
from rag.support import MIN_LEXICAL, MIN_SCORE, measure

DOCS = {
    "q3-nordics.pdf": ["Quarterly meeting, regional offices\n"
                       "Björn Åkesson reported the quarterly figures for the Malmö office.\n"
                       "Heat pump sales 4.2 MSEK, service contracts 1.9 MSEK, warehouse costs 0.7 MSEK.\n"
                       "The Göteborg office moved to a new building in May; the lease runs until 2027.\n"
                       "Staff: 27 in Malmö, 14 in Göteborg, 9 in Lund. Two vacancies in sales.\n"
                       "Next meeting 14 November, 10:00, meeting room B."],
    "invoice.pdf": ["Northwind Traders, 14 Harbour Road, Leith\nInvoice INV-7731-QX\nIssued 2024-07-12, payable within "
                    "30 days\nSeven crates of glazed ceramic floor tiles, delivered to the site in Portobello\n"
                    "Amount due 1,240.00 EUR\nBank transfer to account 4021 8876 0031"],
    "bakery.pdf": ["Bakery order: twelve loaves of rye bread and forty butter croissants."],
    "ferry.pdf": ["Ferry timetable: the harbour ferry leaves at 07:15 and 19:40 every weekday."],
}
OLD_MIN_SCORE = 0.30  # the rule before rag/support.py: abstain on the cosine alone
BJORN = "What did Björn Åkesson report?"
CODE = "INV-7731-QX"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("abstention")
    for name, pages in DOCS.items():
        text_pdf(root / "corpus" / name, pages)
    build(root / "index", [root / "corpus"], BuildOptions(ocr="none", jobs=1))
    return root / "index"


def ask(index_dir, question, *extra):
    """`pagerag ask --json` with no model available (a folder that is not one): answered questions stop at the
    model stage (exit 4, the evidence listed), abstentions before it (exit 0)."""
    result = CliRunner().invoke(cli, ["ask", question, "--json", "-m", str(index_dir / "no-such-model"),
                                      "--index", str(index_dir), *extra], catch_exceptions=False)
    return result.exit_code, json.loads(result.output)


def support(index_dir, question):
    idx = Index.open(index_dir)
    retriever = Retriever(idx)
    try:
        return measure(retriever, question, retriever.search(question, k=5))
    finally:
        idx.close()


@pytest.mark.parametrize("question, page", [(BJORN, "q3-nordics.pdf"), (CODE, "invoice.pdf")])
def test_a_question_whose_words_a_page_holds_is_answered_despite_a_low_cosine(index_dir, question, page):
    s = support(index_dir, question)
    assert s.dense < OLD_MIN_SCORE <= MIN_SCORE  # MiniLM alone abstained (and would now): the case this is about
    assert s.lexical == 1.0 and set(s.found) == set(s.words) and s.words
    code, data = ask(index_dir, question)
    assert code == 4 and data["abstained"] is False and data["model_error"]
    assert data["sources"][0]["path"].endswith(page)
    assert data["support"]["lexical"] == 1.0 and data["support"]["dense"] == s.dense


def test_the_measure_weighs_distinctive_words(index_dir):
    s = support(index_dir, BJORN)
    assert s.words == ["bjorn", "akesson", "report"]  # folded; 'report' found as 'reported' (stemmed)
    assert support(index_dir, "What is Björn's report about?").words == ["bjorn", "report"]  # no 'bjorn s'
    partial = support(index_dir, "Which bakery sells banana bread?")
    assert "bread" in partial.found and "banana" not in partial.found and 0 < partial.lexical < MIN_LEXICAL


def test_off_topic_still_abstains_and_says_what_both_signals_found(index_dir):
    code, data = ask(index_dir, "How do I bake banana bread?")
    assert code == 0 and data["abstained"] is True
    assert data["answer"].startswith("The indexed pages do not seem to contain this: I searched 4 page(s) for "
                                     "'How do I bake banana bread?'. By meaning, the best match scored ")
    assert "(--min-score); by words, the best page holds bread but not bake, banana: " in data["answer"]
    assert "(--min-lexical)" in data["answer"]
    code, data = ask(index_dir, "Who won the 2018 FIFA World Cup?")
    assert code == 0 and data["abstained"] is True
    assert "by words, no page found holds its distinctive words (won, 2018, fifa, world)" in data["answer"]


def test_thresholds_are_options(index_dir):
    code, data = ask(index_dir, BJORN, "--min-lexical", "1.01")  # the words alone no longer suffice
    assert code == 0 and data["abstained"] is True
    code, data = ask(index_dir, "How do I bake banana bread?", "--min-lexical", "0.1")
    assert code == 4 and data["abstained"] is False
    code, data = ask(index_dir, "How do I bake banana bread?", "--min-score", "-1")
    assert code == 4 and data["abstained"] is False


def test_the_web_chat_decides_alike_and_says_what_each_signal_found(index_dir):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from rag.assistant import AskSettings
    from rag.settings import ModelSettings

    state = WebState(Index.open(index_dir), ModelSettings(model=str(index_dir / "no-such-model")), AskSettings())
    with TestClient(create_app(state)) as client:
        done = [json.loads(line) for line in client.post("/chat/ask", json={"question": CODE}).text.splitlines()][-1]
        off = [json.loads(line) for line in
               client.post("/chat/ask", json={"question": "Who won the 2018 FIFA World Cup?"}).text.splitlines()][-1]
    assert done["abstained"] is False and done["model_error"].startswith("No answer: the model could not be used.")
    assert done["support"]["lexical"] == 1.0 and done["support"]["found"][:3] == ["inv", "7731", "qx"]
    assert off["abstained"] is True and off["support"]["found"] == [] and "no page found holds" in off["answer"]


def test_word_counts_on_a_large_index_are_estimated_as_counts(index_dir, monkeypatch):
    """Past COMMON_MIN_PAGES the pages holding a word are estimated from windows of pages (no full count of a
    common word): with windows covering the 4 pages, the estimate is the count."""
    from index import lexical

    idx = Index.open(index_dir)
    matches = ['"bread"', '"office"', '"heat" OR "harbour"', '"zzzz"']
    try:
        exact = idx.page_counts(matches)
        monkeypatch.setattr(lexical, "COMMON_MIN_PAGES", 2)
        monkeypatch.setattr(lexical, "COMMON_WINDOWS", 2)
        monkeypatch.setattr(lexical, "COMMON_WINDOW", 2)
        assert idx.page_counts(matches) == exact == {'"bread"': 1, '"office"': 1, '"heat" OR "harbour"': 3,
                                                     '"zzzz"': 0}
    finally:
        idx.close()


def test_chat_answers_the_name_question_and_abstains_on_the_off_topic_one(index_dir):
    result = CliRunner().invoke(cli, ["chat", "-m", str(index_dir / "no-such-model"), "--index", str(index_dir)],
                                input=f"{BJORN}\nWho won the 2018 FIFA World Cup?\nAnd who won in 2022?\n/exit\n",
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    name, off, follow_up = result.output.split("\n> ")[1:4]  # what each question got, after chat's prompt
    assert name.startswith("No answer: the model could not be used.") and "do not seem to contain" not in name
    assert "Evidence found:\n  [1] " in name and "q3-nordics.pdf, page 1" in name
    assert off.startswith("The indexed pages do not seem to contain this: I searched 4 page(s) for 'Who won")
    assert "no page found holds its distinctive words (won, 2018, fifa, world)" in off and "Closest pages:" in off
    # the follow-up's search folded the previous question in; the message quotes what the user asked
    assert "I searched 4 page(s) for 'And who won in 2022?' (with the previous question)." in follow_up, follow_up


def test_a_follow_up_is_weighed_by_its_own_words(index_dir):
    """The previous question folded into the search is no support for a new subject; a follow-up with no word
    of its own is weighed by the folded query's."""
    from rag.assistant import retrieval_queries
    from rag.conversations import Turn

    idx = Index.open(index_dir)
    retriever = Retriever(idx)
    history = [Turn("What did Björn Åkesson report for the Malmö office?", "", "He reported the figures [1].", [])]
    try:
        for asked, words, share in (("And bananas?", ["bananas"], 0.0), ("And then?", None, 1.0)):
            queries = retrieval_queries(asked, history)
            hits = retriever.search_combined(queries, k=5)
            s = measure(retriever, queries[-1][0], hits, asked=asked)
            assert s.lexical == share and s.words == (words or ["bjorn", "akesson", "report", "malmo", "office"])
        folded = measure(retriever, queries[-1][0].replace("then", "bananas"), hits)
        assert folded.lexical > MIN_LEXICAL  # weighed by the folded words, the new subject would pass
    finally:
        idx.close()


def test_a_huge_question_is_weighed_by_what_the_search_read_of_it(index_dir):
    from rag.query import MAX_QUERY_CHARS

    question = " ".join(f"w{i}" for i in range(100_000))  # 600 kB: one FTS5 count per word would take minutes
    s = support(index_dir, question)
    assert s.words[0] == "w0" and 0 < len(s.words) <= MAX_QUERY_CHARS // 3 and s.lexical == 0.0


def test_the_word_weights_count_the_pages_left_after_removals(tmp_path):
    """Pages removed (or files read again) leave gaps in the page ids: 2 pages left of 32 weighed every word as on
    one page of 32 (the ids' span), rare, so a question holding only common words passed the word measure."""
    corpus = tmp_path / "corpus"
    text_pdf(corpus / "a-bakery.pdf", DOCS["bakery.pdf"])
    text_pdf(corpus / "z-ferry.pdf", DOCS["ferry.pdf"])
    fresh = tmp_path / "fresh"
    build(fresh, [corpus], BuildOptions(ocr="none", jobs=1))
    for i in range(30):
        text_pdf(corpus / f"m-{i:02d}.pdf", [f"Filler page {i}: a note on the weather at the harbour."])
    churned = tmp_path / "churned"
    build(churned, [corpus], BuildOptions(ocr="none", jobs=1))
    removed = CliRunner().invoke(cli, ["index", "remove", *(str(p) for p in sorted(corpus.glob("m-*.pdf"))),
                                       "--index", str(churned)], catch_exceptions=False)
    assert removed.exit_code == 0, removed.output
    question = "When does the harbour ferry leave for Lisbon and Porto?"
    assert support(churned, question).lexical == support(fresh, question).lexical < MIN_LEXICAL
    idx = Index.open(churned)
    try:
        assert idx.page_id_span()[1] > 2 and idx.page_count() == 2
    finally:
        idx.close()
