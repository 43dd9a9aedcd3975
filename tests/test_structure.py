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
    ([("2", 0.156), ("Commodity distribution", 0.2), ("programs", 0.5)], ["2"]),  # a book scan's wide margin
    ([("Intro text", 0.3), ("42", 0.5), ("more text", 0.7)], []),  # a number between lines is not one
    ([("Case 2:18-cv-12857 ECF No.1 filed 09/13/18 PageID.12 Page 12 of 16", 0.02)], ["12"]),  # not the total
    ([("Annual Report 2023 3 of 16", 0.02)], ["3"]),
    ([("4 Graduate Studies Graduate Studies 5", 0.97)], ["4", "5"]),  # a two-page spread's footers as one line
])
def test_printed_page_numbers(lines, want):
    assert printed_numbers(page(*lines)) == want


def test_captions_open_a_line():
    words = page(("Figure 10: Results by year", 0.3), ("as shown in Figure 3 the", 0.4), ("TABLE II", 0.5),
                 ("Appendix E. Methods", 0.6), ("Table a lists the", 0.7))
    assert captions(words) == [("figure", "10"), ("table", "ii"), ("table", "2"), ("appendix", "e")]
    # roman numerals as OCR misreads them: 'TABLE IL', 'Fig. |.'; a lone letter L stays a letter
    assert captions(page(("TABLE IL", 0.1), ("Fig. |. Gash", 0.3), ("Figure L shows", 0.5))) == [
        ("table", "ii"), ("table", "2"), ("figure", "i"), ("figure", "1")]


def test_printed_numbers_that_ocr_missed_follow_the_run():
    from index.structure import running_numbers

    # places 6..12 printed 2..8, the numbers of places 5 (unnumbered first page) and 9 not read
    pages = {p: (p, [] if p in (5, 9) else [str(p - 4)]) for p in range(5, 13)}
    pages[1] = (1, [])
    pages[3] = (3, ["7"])  # a stray number (a date, a footnote) is outvoted
    assert running_numbers(pages) == {5: "1", 9: "5"}
    assert running_numbers({1: (1, ["3"]), 2: (2, ["4"]), 3: (3, [])}) == {}  # two pages agreeing are not a run
    assert running_numbers({p: (p, [str(p + 10 * (p % 2))]) for p in range(1, 9)}) == {}  # no majority


def test_numbered_headings():
    from index.structure import headings

    words = page(("3.3 Post-hoc Correction", 0.1), ("2.1. Data sources", 0.2), ("Chapter 7", 0.3), ("3.50 USD", 0.4),
                 ("12 Apples", 0.5), ("SECTION 4: Methods", 0.6), ("1.5 kg of flour", 0.7), ("see 4.1 Prior", 0.8))
    assert headings(words) == [("section", "3.3"), ("section", "2.1"), ("section", "7"), ("section", "4")]


def test_a_question_naming_a_section_ranks_its_page_first(tmp_path):
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    text_pdf(tmp_path / "docs" / "survey.pdf", [
        "1 Introduction\nWe surveyed the harbor.",
        "3.3 Sampling Results\nLead was found in two harbor samples.",
        "3.4 Sampling Methods\nSampling of harbor samples: sampling bottles, sampling depth, sampling times."])
    text_pdf(tmp_path / "docs" / "notes.pdf", ["Minutes of the library committee."])
    build(tmp_path / "idx", [tmp_path / "docs"], BuildOptions(ocr="none", jobs=1))
    idx = Index.open(tmp_path / "idx")
    assert idx.db.execute("SELECT p.page_no FROM page_facts f JOIN pages p ON p.id = f.page_id"
                          " WHERE f.kind = 'section' AND f.value = '3.3'").fetchall() == [(2,)]
    retriever = Retriever(idx)
    assert retriever.search("What does it say about harbor sampling?", k=1)[0].page == 3  # the words alone
    assert retriever.search("What does Section 3.3 say about harbor sampling?", k=1)[0].page == 2


def test_blank_pages_are_not_counted_as_inked():
    from index.structure import inked_places

    # cover, its blank back, the title page, a blank, the summary: the title page is also the second page
    pages = {11: (1, False), 12: (2, True), 13: (3, False), 14: (4, True), 15: (5, False)}
    assert inked_places(pages) == {13: "2", 15: "3"}
    assert inked_places({1: (1, False), 2: (2, False)}) == {}


def test_the_second_page_after_a_blank_back_of_the_cover(tmp_path):
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    pdf = text_pdf(tmp_path / "docs" / "survey.pdf", [
        "Hamilton County Historic Buildings Survey", "", "Prepared for the State Historical Society, July 2009",
        "Executive summary of the survey of historic buildings, July 2009"])
    build(tmp_path / "idx", [tmp_path / "docs"], BuildOptions(ocr="none", jobs=1))
    idx = Index.open(tmp_path / "idx")
    assert idx.db.execute("SELECT p.page_no, f.value FROM page_facts f JOIN pages p ON p.id = f.page_id"
                          " WHERE f.kind = 'inked' ORDER BY p.page_no").fetchall() == [(3, "2"), (4, "3")]
    hits = Retriever(idx).search("What date is mentioned on the second page?", k=2, within=[pdf])
    assert [h.page for h in hits] == [3, 2]  # the title page, then the blank page 2


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
    ("In figure 3 on page 6, how many icons?", [("page", "6"), ("printed", "6"), ("inked", "6"), ("figure", "3")]),
    ("What is the FAX No on page fourteen?", [("page", "14"), ("printed", "14"), ("inked", "14")]),
    ("What type of court is noted on the cover page?", [("position", "first")]),
    ("Is there a signature on the last page?", [("position", "last")]),
    ("In the figure at the second last page, who stands?", [("position", "second-last")]),
    ("What date is mentioned on the second page?", [("page", "2"), ("inked", "2")]),
    ("According to table II, which datasets?", [("table", "2")]),
    ("What does Appendix E describe?", [("appendix", "e")]),
    ("What is the total amount on the receipt from ACME?", []),
    ("What share of the pages is 50%?", []),
    ("Does Section 3.3 cite more papers than Section 3.1?", [("section", "3.3"), ("section", "3.1")]),
    ("Which hospitals are named in chapter 5?", [("section", "5")]),
    ("What is the price of 3.50 sections of pipe?", []),
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


def sized(*lines):
    """Words from (text, top, height) lines."""
    words = []
    for n, (text, top, height) in enumerate(lines):
        for i, t in enumerate(text.split()):
            words.append(Word(t, 0.1 + 0.06 * i, top, 0.15 + 0.06 * i, top + height, 0.9, n))
    return words


def test_a_slide_title_is_its_tallest_line_near_the_top():
    from index.structure import slide_title

    slide = sized(("Acme Corp", 0.03, 0.02), ("Quarterly Revenue", 0.12, 0.07), ("Outlook", 0.2, 0.065),
                  ("North grew 4 percent", 0.45, 0.03), ("South grew 2 percent", 0.5, 0.03), ("7", 0.95, 0.02))
    assert slide_title(slide, 1600, 900) == "quarterly revenue outlook"  # a two-line title, logo line left out
    assert slide_title(slide, 900, 1600) == ""  # a portrait page is not a slide
    flat = sized(("Body text here", 0.1, 0.03), ("More body text", 0.2, 0.03), ("And more", 0.3, 0.03))
    assert slide_title(flat, 1600, 900) == ""  # no line stands out
    low = sized(("Small", 0.1, 0.03), ("Big words at the bottom", 0.7, 0.09), ("x y", 0.8, 0.03))
    assert slide_title(low, 1600, 900) == ""  # the tallest line near the top must be taller than the rest


def test_page_label_facts():
    from index.structure import label_facts

    assert label_facts("iv") == [("label", "iv"), ("printed", "4")]
    assert label_facts("A-3") == [("label", "a-3")]
    assert label_facts("14") == [("printed", "14")]
    assert label_facts("") == [] and label_facts(None) == []
    facts = page_facts([], 2, 5, size=(600, 800), label="ii")
    assert ("label", "ii") in facts and ("printed", "2") in facts


def test_a_page_number_is_the_place_or_the_printed_number():
    from rag.query import ref_groups

    assert ref_groups(structure_refs("In figure 3 on page 6, what?")) == [
        {("page", "6"), ("printed", "6"), ("inked", "6")}, {("figure", "3")}]
    assert ref_groups(structure_refs("What is on page iv?")) == [{("label", "iv"), ("printed", "4")}]
    assert structure_refs("Among figures 1-3, which?") == [("figure", "1"), ("figure", "2"), ("figure", "3")]


@pytest.mark.parametrize("question, refs", [
    ("What is on page iv of the manual?", [("label", "iv"), ("printed", "4")]),
    ("Which parts are listed on page A-3?", [("label", "a-3")]),
    ("Is the page civil in tone?", []),
])
def test_page_label_refs_in_questions(question, refs):
    assert structure_refs(question) == refs


def test_title_candidates():
    from rag.query import longest_titles, title_candidates

    runs = title_candidates('On the slide titled "Revenue Outlook", what grew? Answer in CET.')
    assert "revenue outlook" in runs and "revenue" in runs and "cet" not in runs
    assert "revenue" not in title_candidates("How did revenue outlook change?")  # single words need a cue
    assert longest_titles(["revenue", "revenue outlook", "outlook x"]) == ["revenue outlook", "outlook x"]


def _deck(path):
    """A text-layer slide deck (16:9) whose second slide is titled 'Regional Sales Outlook', and a
    third slide whose body talks about regional sales outlooks more than the second's does."""
    import pymupdf as fitz

    slides = [("Company Overview", ["Founded in 1990, we sell pumps.", "Offices in four regions."]),
              ("Regional Sales Outlook", ["North: up 4 percent.", "South: up 2 percent."]),
              ("Hiring Plan", ["Regional sales outlook drives hiring: regional sales teams grow",
                               "where the outlook for regional sales is best."])]
    doc = fitz.open()
    for title, body in slides:
        page = doc.new_page(width=960, height=540)
        page.insert_text((48, 80), title, fontsize=36)
        for i, line in enumerate(body):
            page.insert_text((48, 200 + 30 * i), line, fontsize=16)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def _labelled(path):
    """A PDF of six pages labelled i, ii, iii, iv, A-3, A-4, each about the same pump."""
    import pymupdf as fitz

    doc = fitz.open()
    for n in range(6):
        page = doc.new_page()
        page.insert_text((72, 100), f"Heat pump service notes, sheet {'abcdef'[n]}: check the valves and filters.",
                         fontsize=11)
    doc.set_page_labels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
                         {"startpage": 4, "prefix": "A-", "style": "D", "firstpagenum": 3}])
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def _numbered(path):
    """A report: an unnumbered cover, then pages printed 1..6 in the footer, but page 4 (the
    5th) without its number."""
    import pymupdf as fitz

    doc = fitz.open()
    for n in range(7):
        page = doc.new_page()
        page.insert_text((72, 100), f"Inspection report section {n}: the valves and filters were checked.", fontsize=11)
        if n and n != 4:
            page.insert_text((300, 800), str(n), fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def test_pdf_page_labels_and_slide_titles_are_searchable(tmp_path):
    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    deck, manual = _deck(tmp_path / "docs" / "deck.pdf"), _labelled(tmp_path / "docs" / "manual.pdf")
    _numbered(tmp_path / "docs" / "report.pdf")
    report = build(tmp_path / "idx", [tmp_path / "docs"], BuildOptions(ocr="none", jobs=1))
    assert report.errors == 0
    idx = Index.open(tmp_path / "idx")
    facts = {(path.rsplit("/", 1)[1], page_no, kind, value) for path, page_no, kind, value in idx.db.execute(
        "SELECT d.path, p.page_no, f.kind, f.value FROM page_facts f JOIN pages p ON p.id = f.page_id"
        " JOIN documents d ON d.id = p.doc_id")}
    assert {("manual.pdf", 4, "label", "iv"), ("manual.pdf", 4, "printed", "4"), ("manual.pdf", 5, "label", "a-3"),
            ("deck.pdf", 2, "title", "regional sales outlook"), ("deck.pdf", 3, "title", "hiring plan"),
            ("report.pdf", 4, "printed", "3"), ("report.pdf", 5, "printed", "4")} <= facts  # 4: from the run
    assert not any(kind == "title" for name, _, kind, _ in facts if name == "manual.pdf")  # portrait pages
    retriever = Retriever(idx)

    def first(question):
        hit = retriever.search(question, k=1)[0]
        return hit.path.rsplit("/", 1)[1], hit.page

    assert first("What do the heat pump service notes on page iv say?") == ("manual.pdf", 4)
    assert first("What do the heat pump service notes on page A-3 say?") == ("manual.pdf", 5)
    assert first("On the slide Regional Sales Outlook, which region's sales outlook grows most?") == ("deck.pdf", 2)
    assert first("Which region's sales outlook grows most?") == ("deck.pdf", 3)  # the body alone favours slide 3


@pytest.mark.slow
def test_a_scanned_slide_title_is_read_from_its_word_boxes(tmp_path, font_path):
    from PIL import Image, ImageDraw, ImageFont

    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    def slide(name, title, body):
        img = Image.new("RGB", (1600, 900), "white")
        draw = ImageDraw.Draw(img)
        big, small = (ImageFont.truetype(font_path, s) if font_path else ImageFont.load_default(size=s) for s in (72, 32))
        draw.text((80, 60), title, fill="black", font=big)
        for i, line in enumerate(body):
            draw.text((80, 300 + 60 * i), line, fill="black", font=small)
        path = tmp_path / "deck" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)

    slide("s01.png", "Quarterly Revenue Outlook", ["North region: up 4 percent", "South region: up 2 percent"])
    slide("s02.png", "Hiring Plan", ["Quarterly revenue outlook per region sets hiring:",
                                     "the revenue outlook of each region decides."])
    report = build(tmp_path / "idx", [tmp_path / "deck"], BuildOptions(ocr="auto", jobs=1))
    assert report.errors == 0
    idx = Index.open(tmp_path / "idx")
    titles = {path.rsplit("/", 1)[1]: value for path, value in idx.db.execute(
        "SELECT d.path, f.value FROM page_facts f JOIN pages p ON p.id = f.page_id JOIN documents d"
        " ON d.id = p.doc_id WHERE f.kind = 'title'")}
    assert titles == {"s01.png": "quarterly revenue outlook", "s02.png": "hiring plan"}
    hit = Retriever(idx).search("In the slide Quarterly Revenue Outlook, what is each region's revenue outlook?", k=1)[0]
    assert hit.path.endswith("s01.png")
