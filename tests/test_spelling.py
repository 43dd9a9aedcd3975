"""A misspelt question word that no page holds is searched as the indexed word one edit away."""
import pytest

from rag.query import lower_words


@pytest.fixture(scope="module")
def survey_index(tmp_path_factory):
    """Two text PDFs (no OCR), real FTS5 and embeddings."""
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build

    root = tmp_path_factory.mktemp("spelling")
    text_pdf(root / "docs" / "methods.pdf", ["Figure 1: tabular listing of the harbor sampling sites"])
    text_pdf(root / "docs" / "summary.pdf", ["Figure 2: results of the harbor survey by month"])
    for name, text in [("parking", "The parking lot will be resurfaced in May."),
                       ("budget", "The annual budget of $27,500 was approved."),
                       ("minutes", "Minutes of the meeting of the library committee."),
                       ("notice", "Notice by Dr. Schultz: scarce parking on Elm Street.")]:
        text_pdf(root / "docs" / f"{name}.pdf", [text])  # so that bm25 weighs the words (FTS5 idf)
    report = build(root / "index", [root / "docs"], BuildOptions(ocr="none"))
    assert report.errors == 0
    return root / "index"


def test_a_misspelt_word_finds_the_page_that_spells_it_right(survey_index, monkeypatch):
    import rag.retrieve
    from index.store import Index
    from rag.retrieve import Retriever

    question = "Where are the tabuluar results?"
    retriever = Retriever(Index.open(survey_index))
    assert retriever.respell(question) == {"tabuluar": "tabular"}
    found = {h.path.rsplit("/", 1)[1] for h in retriever.search(question, k=5, mode="lexical")}
    assert found == {"methods.pdf", "summary.pdf"}
    hits = retriever.search("Where are the tabuluar listings?", k=5, mode="hybrid")
    assert hits[0].path.endswith("methods.pdf")
    monkeypatch.setattr(rag.retrieve, "RESPELL", False)  # the mechanism off: only 'results' is found
    found = {h.path.rsplit("/", 1)[1] for h in Retriever(Index.open(survey_index)).search(question, k=5, mode="lexical")}
    assert found == {"summary.pdf"}


def test_names_real_words_and_held_words_are_not_respelt(survey_index):
    from index.embed_models import model_folder
    from index.spelling import respell, stems, vocabulary
    from index.store import Index
    from rag.retrieve import Retriever

    retriever = Retriever(Index.open(survey_index))
    db = retriever.index.db
    assert stems(db, ["guided", "results", "tabuluar"]) == {"guided": "guid", "results": "result", "tabuluar": "tabuluar"}
    # 'Schulz' is a name (another document's Schultz is someone else); 'scarf' is a word the
    # language model knows (the index's 'scarce' is not what was asked); 'results' is held
    assert retriever.respell("Did Dr. Schulz report a scarf in the results?") == {}
    assert respell(db, ["schulz"]) == {"schulz": "schultz"}  # lower case, it would be respelt
    known = vocabulary(str(model_folder(retriever.index.meta["embed_model"])))
    assert {"scarf", "results"} <= known and "tabuluar" not in known and vocabulary(None) == frozenset()
    assert respell(db, ["scarf"], known=frozenset({"scarf"})) == {} and respell(db, ["scarf"]) == {"scarf": "scarc"}
    assert respell(db, ["tabuluar2", "howm", "xabular"]) == {}  # digits, too short, first letter changed


def test_a_misspelt_word_whose_stem_is_two_edits_away_is_respelt(survey_index):
    """'parkng' is two edits from the stored stem 'park' but one from 'parking': it found nothing lexically."""
    from index.spelling import respell
    from index.store import Index
    from rag.retrieve import Retriever

    retriever = Retriever(Index.open(survey_index))
    assert respell(retriever.index.db, ["parkng", "meetng"]) == {"parkng": "park", "meetng": "meet"}
    assert retriever.respell("how much is the parkng lot?") == {"parkng": "park"}
    hits = retriever.search("how much is the parkng lot?", k=5, mode="lexical")
    assert hits and hits[0].path.endswith("parking.pdf"), [h.path for h in hits]
    found = {h.path.rsplit("/", 1)[1] for h in retriever.search("meetng", k=5, mode="lexical")}
    assert found == {"minutes.pdf"}


def test_a_word_capitalised_as_a_sentence_opens_is_respelt_a_name_is_not(survey_index):
    from index.store import Index
    from rag.retrieve import Retriever

    retriever = Retriever(Index.open(survey_index))
    assert retriever.respell("Parkng lot cost?") == {"parkng": "park"}
    assert retriever.respell("Who chaired it? Meetng of the committee.") == {"meetng": "meet"}
    assert retriever.respell("Where did Schulz park?") == {}  # a name mid-sentence: another document's Schultz
    assert retriever.respell("Schulz wrote it; who read Schulz?") == {}  # capitalised elsewhere too: a name
    assert retriever.respell("Did Dr. Schulz sign?") == {}  # 'Dr.' ends no sentence


def test_lower_words():
    assert lower_words("Dr. Schulz signed the protocopying order?") == ["signed", "protocopying", "order"]
    assert lower_words("WHAT IS THE LAST YEAR IN THE TABULUAR COLUMN?") == ["last", "year", "tabuluar", "column"]
    assert lower_words("Parkng fees? Tabuluar data. Schulz said Parkng") == ["fees", "tabuluar", "data", "schulz", "said"]
