import pytest

from rag.query import fts_match, snippet, terms


def test_terms_drop_stopwords_and_repeats():
    assert terms("What is the total on the ACME invoice? Total!") == ["total", "acme", "invoice"]


def test_fts_match_quotes_terms():
    assert fts_match('total of "invoice" 2024-07?') == '"total" OR "invoice" OR "2024" OR "07" OR "2024 07"'
    assert fts_match("what is the") is None


def test_snippet_centres_on_query_words():
    text = " ".join(["filler"] * 100 + ["the", "capital", "budget", "was", "large"] + ["tail"] * 100)
    s = snippet(text, "capital budget", width=80)
    assert "capital budget" in s and s.startswith("… ") and s.endswith(" …")
    assert snippet("short text", "anything") == "short text"


@pytest.mark.parametrize("question", ["Who is Bjorn?", "Who is Björn?"])
def test_snippet_finds_words_as_the_search_does_accents_folded(question):
    text = " ".join(["filler"] * 100 + ["Björn", "Åkesson", "reported"] + ["tail"] * 100)
    assert "Björn Åkesson reported" in snippet(text, question, width=80)
    straße = " ".join(["filler"] * 100 + ["Straße", "Bjorn"] + ["tail"] * 100)  # folding would shift positions
    assert "Straße Bjorn" in snippet(straße, "Bjorn", width=80)


def test_phrases_keep_dates_and_amounts_together():
    from rag.query import phrases

    assert phrases("total on 12/02/2018 of RM 112.45? 112.45") == ["12 02 2018", "112 45"]


@pytest.mark.parametrize("question, kept", [
    ("What is the gap? Please write the answer in float format, e.g. 1.5", "What is the gap?"),
    ("Revenue in 2023? Answer in USD millions. Base your judgement on the income statement.",
     "Revenue in 2023? income statement."),
    ("What is the FY2019 capex of 3M? Round your answer to two decimal places. Address the question by using the"
     " line items and information shown within the balance sheet and the P&L statement.",
     "What is the FY2019 capex of 3M? balance sheet and the P&L statement."),
    ("When did tweets exceed 200,000? Your report time should be in CET time, like '17:05 CET'.",
     "When did tweets exceed 200,000?"),
    ("Which is greater? Foreign born Latinos, or the Latinos interviewed by cellphone?",
     "Which is greater? Foreign born Latinos, or the Latinos interviewed by cellphone?"),
    ("List the areas. Round your answer to the nearest integer.", "List the areas."),
])
def test_answer_instructions_are_dropped_but_the_source_they_name_stays(question, kept):
    from rag.query import content

    assert content(question) == kept
