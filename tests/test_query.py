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


def test_phrases_keep_dates_and_amounts_together():
    from rag.query import phrases

    assert phrases("total on 12/02/2018 of RM 112.45? 112.45") == ["12 02 2018", "112 45"]
