"""Page structure as facts: extraction from words, references in questions, retrieval that uses them."""
import pytest

from index.structure import captions, page_facts, printed_numbers, roman_to_int, sequence
from index.words import Word
from rag.query import structure_refs


def page(*lines):
    """Words from (text, top) lines; each line 0.02 high."""
    words = []
    for n, (text, top) in enumerate(lines):
        for i, t in enumerate(text.split()):
            words.append(Word(t, 0.1 + 0.05 * i, top, 0.14 + 0.05 * i, top + 0.02, 0.9, n))
    return words


@pytest.mark.parametrize("lines, want", [
    ([("Annual report 2023", 0.03), ("Body text 7 here", 0.5), ("14", 0.95)], ["14"]),
    ([("Page 3 of 12", 0.96)], ["3"]),
    ([("- 27 -", 0.95)], ["27"]),
    ([("xii", 0.95)], ["12"]),
    ([("Harbor City Water | 9", 0.02)], ["9"]),
    ([("Copyright 2023 Harbor City", 0.96)], []),  # a year is not a page number
    ([("Results 2019", 0.5), ("42", 0.5)], []),  # in the body: not printed page numbers
])
def test_printed_page_numbers(lines, want):
    assert printed_numbers(page(*lines)) == want


def test_captions_open_a_line():
    words = page(("Figure 10: Results by year", 0.3), ("as shown in Figure 3 the", 0.4), ("TABLE II", 0.5),
                 ("Appendix E. Methods", 0.6), ("Table a lists the", 0.7))
    assert captions(words) == [("figure", "10"), ("table", "ii"), ("table", "2"), ("appendix", "e")]


def test_roman_numerals():
    assert [roman_to_int(s) for s in ("i", "iv", "xii", "xc", "abc", "")] == [1, 4, 12, 90, None, None]


def test_page_facts_of_a_multi_page_file():
    facts = page_facts(page(("Figure 2 Sales", 0.4), ("5", 0.95)), page_no=7, n_pages=8)
    assert facts == [("page", "7"), ("position", "second-last"), ("printed", "5"), ("figure", "2")]
    assert ("position", "first") in page_facts([], 1, 8) and page_facts([], 1, 1) == []


def test_a_numbered_page_image_is_a_page_of_its_folder(tmp_path):
    for n in range(1, 6):
        (tmp_path / "scan" / f"p{n:03d}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "scan" / f"p{n:03d}.jpg").write_bytes(b"")
    (tmp_path / "receipts").mkdir()
    for n in (8, 12, 40):
        (tmp_path / "receipts" / f"{n:03d}.jpg").write_bytes(b"")
    assert sequence(tmp_path / "scan" / "p004.jpg") == (4, 1, 5)
    assert page_facts([], 1, 1, tmp_path / "scan" / "p005.jpg") == [("page", "5"), ("position", "last")]
    assert sequence(tmp_path / "receipts" / "012.jpg") is None  # numbers with gaps: separate documents


@pytest.mark.parametrize("question, refs", [
    ("In figure 3 on page 6, how many icons?", [("page", "6"), ("printed", "6"), ("figure", "3")]),
    ("What is the FAX No on page fourteen?", [("page", "14"), ("printed", "14")]),
    ("What type of court is noted on the cover page?", [("position", "first")]),
    ("Is there a signature on the last page?", [("position", "last")]),
    ("In the figure at the second last page, who stands?", [("position", "second-last")]),
    ("What date is mentioned on the second page?", [("page", "2")]),
    ("According to table II, which datasets?", [("table", "2")]),
    ("What does Appendix E describe?", [("appendix", "e")]),
    ("What is the total amount on the receipt from ACME?", []),
    ("What share of the pages is 50%?", []),
])
def test_structure_refs_in_questions(question, refs):
    assert structure_refs(question) == refs


@pytest.mark.slow
def test_a_question_naming_structure_ranks_that_page_first(tmp_path, make_page):
    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    body = ["Harbor water quality survey", "Samples were taken at the north pier"]
    make_page("scan/p001.png", ["Harbor Water Survey 2023", "Annual results"])
    make_page("scan/p002.png", body + ["Figure 2: Lead levels by month"], size=(1200, 1000))
    make_page("scan/p003.png", body + ["Table 4: Sampling sites"], size=(1200, 1000))
    make_page("other/p001.png", body + ["Figure 4: Rainfall"], size=(1200, 1000))
    make_page("other/p002.png", body + ["Closing remarks"], size=(1200, 1000))
    report = build(tmp_path / "idx", [tmp_path / "scan", tmp_path / "other"], BuildOptions(ocr="auto", jobs=1))
    assert report.errors == 0
    idx = Index.open(tmp_path / "idx")
    rows = idx.db.execute("SELECT d.path, f.kind, f.value FROM page_facts f JOIN pages p ON p.id = f.page_id"
                          " JOIN documents d ON d.id = p.doc_id").fetchall()
    facts = {("/".join(path.rsplit("/", 2)[1:]), kind, value) for path, kind, value in rows}
    assert {("scan/p003.png", "position", "last"), ("scan/p002.png", "figure", "2"),
            ("scan/p003.png", "table", "4"), ("other/p001.png", "position", "first")} <= facts
    retriever = Retriever(idx)

    def first(question, **kw):
        hit = retriever.search(question, k=1, **kw)[0]
        return "/".join(hit.path.rsplit("/", 2)[1:])

    assert first("What does Figure 2 show about the harbor water samples?") == "scan/p002.png"
    assert first("Which sampling sites are in table 4?") == "scan/p003.png"
    assert first("What is written on the last page of the survey?", within=[tmp_path / "scan"]) == "scan/p003.png"
    assert first("What is written on the last page of the survey?", within=[tmp_path / "other"]) == "other/p002.png"
    assert first("What is on page 2 of the survey?", within=[tmp_path / "scan"]) == "scan/p002.png"
