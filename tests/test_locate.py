"""Finding the words that support a text on a page, and drawing them: rag.locate, rag.highlight, `pagerag show`."""
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.words import Word
from rag.fields import focus
from rag.fuzzy import digits, norm
from rag.highlight import colour, cited_statements, draw
from rag.locate import locate
from rag.spans import split_words

# A small form, as OCR reads it: (text, x0, y0, x1, y1) in page fractions; one line per row.
FORM = [
    [("ACME", 0.40, 0.05, 0.50, 0.07), ("SUPPLY", 0.52, 0.05, 0.64, 0.07), ("FORM", 0.66, 0.05, 0.74, 0.07)],
    [("Date:", 0.10, 0.20, 0.18, 0.22), ("9/3/9Z", 0.20, 0.20, 0.30, 0.22),
     ("Smoker?", 0.60, 0.20, 0.72, 0.22), ("Yes", 0.74, 0.20, 0.79, 0.22)],
    [("TOTAL", 0.10, 0.30, 0.20, 0.32), ("$1,234.5O", 0.22, 0.30, 0.36, 0.32),
     ("Married?", 0.60, 0.30, 0.72, 0.32), ("Yes", 0.74, 0.30, 0.79, 0.32)],
    [("SALES:___59,791", 0.10, 0.40, 0.40, 0.42)],
    [("Comments:", 0.10, 0.50, 0.25, 0.52), ("please", 0.30, 0.50, 0.40, 0.52), ("contact", 0.42, 0.50, 0.52, 0.52),
     ("Vendor:", 0.70, 0.50, 0.80, 0.52), ("Bluefin", 0.82, 0.50, 0.92, 0.52)],
    [("the", 0.30, 0.53, 0.35, 0.55), ("Quality", 0.37, 0.53, 0.47, 0.55), ("Council.", 0.49, 0.53, 0.60, 0.55)],
]
WORDS = [Word(t, x0, y0, x1, y1, 0.9, line) for line, row in enumerate(FORM) for t, x0, y0, x1, y1 in row]


def texts(region):
    return [WORDS[i].text for i in region.words]


def test_normalising_ignores_case_space_punctuation_and_folds_ocr_digit_slips():
    assert norm("9/ 3/ 92") == "9392" and norm("Date:") == "date"
    assert digits("$1,234.5O") == "123450" and digits("9/3/9Z") == "9392" and digits("Total") == ""


@pytest.mark.parametrize("answer, expected", [
    ("9/ 3/ 92", ["9/3/9Z"]),  # date split differently, Z read for 2
    ("$ 1234.50", ["$1,234.5O"]),  # amount: digits only, O read for 0
    ("acme supply", ["ACME", "SUPPLY"]),  # case
    ("please contact the Quality Council.", ["please", "contact", "the", "Quality", "Council."]),  # wrapped
])
def test_an_answer_is_found_as_a_run_of_words_despite_ocr_errors(answer, expected):
    [region] = locate(WORDS, answer, kind="answer")
    assert texts(region) == expected


def test_a_wrapped_value_gets_one_box_per_line_and_a_box_around_them():
    [region] = locate(WORDS, "please contact the Quality Council", kind="answer")
    assert region.lines == [(0.30, 0.50, 0.52, 0.52), (0.30, 0.53, 0.60, 0.55)]
    assert region.box == (0.30, 0.50, 0.60, 0.55)
    assert region.pixels(1000, 2000) == (300, 1000, 600, 1100)


def test_a_value_glued_to_its_key_by_ocr_is_cut_out_of_the_word():
    pieces, origin = split_words(WORDS)
    cut = [p.text for p, o in zip(pieces, origin) if WORDS[o].text == "SALES:___59,791"]
    assert cut == ["SALES:", "59,791"]
    [region] = locate(WORDS, "59, 791", kind="answer")
    assert region.text == "59,791" and region.box[0] == pytest.approx(0.22)  # from the blank on, not the key


def test_a_repeated_value_is_told_apart_by_the_question():
    [married] = locate(WORDS, "Yes", kind="answer", context="Is the applicant Married?")
    [smoker] = locate(WORDS, "Yes", kind="answer", context="Is the applicant a Smoker?")
    assert married.box[1] == 0.30 and smoker.box[1] == 0.20


# A form where one value occurs twice: under 'Project Type' (right of its label) and in the next row,
# under another label; and a table whose cell holds two values stacked in a column.
FORM2 = [
    [("Project", 0.10, 0.10, 0.20, 0.12), ("Type:", 0.21, 0.10, 0.28, 0.12),
     ("Product", 0.35, 0.10, 0.45, 0.12), ("Test", 0.46, 0.10, 0.52, 0.12)],
    [("Purpose:", 0.10, 0.13, 0.22, 0.15), ("(Product", 0.30, 0.13, 0.41, 0.15), ("Test,", 0.42, 0.13, 0.48, 0.15)],
    [("TAR", 0.60, 0.30, 0.66, 0.32), ("NIC", 0.70, 0.30, 0.76, 0.32)],
    [("9.1", 0.60, 0.33, 0.64, 0.35), ("0.8", 0.70, 0.33, 0.74, 0.35)],
    [("5.5", 0.60, 0.39, 0.64, 0.41), ("0.4", 0.70, 0.39, 0.74, 0.41)],
    [("Cost:", 0.10, 0.50, 0.17, 0.52), ("$__-0-", 0.20, 0.50, 0.30, 0.52)],
    [("TypeEQPR", 0.10, 0.60, 0.26, 0.62)],
    [("Remarks:", 0.10, 0.70, 0.22, 0.72), ("needs", 0.30, 0.70, 0.38, 0.72), ("review", 0.39, 0.70, 0.48, 0.72)],
    [("by", 0.30, 0.725, 0.33, 0.745), ("Friday", 0.34, 0.725, 0.42, 0.745)],
    [("Signed:", 0.13, 0.75, 0.25, 0.77), ("Ann", 0.30, 0.75, 0.36, 0.77)],
]
WORDS2 = [Word(t, x0, y0, x1, y1, 0.9, line) for line, row in enumerate(FORM2) for t, x0, y0, x1, y1 in row]


def test_the_field_a_question_asks_for_is_what_follows_what_is_the():
    assert focus('On the form headed "Request, urgent", what is the "Date"?') == "Date"
    assert focus('On the form where "To" is "Mr. A", what is the "R&D Group"?') == "R&D Group"
    assert focus("Who is the payee?") == "payee" and focus('what is the "TO"?') == "TO"
    assert focus("What did the board decide?") is None and focus("Where is it?") is None


def test_a_value_read_twice_goes_to_the_one_beside_the_label_asked_for():
    question = 'On the form headed "Purpose", what is the "Project Type"?'
    [region] = locate(WORDS2, "Product Test", kind="answer", context=question)
    assert [WORDS2[i].text for i in region.words] == ["Product", "Test"]
    assert region.fit > region.score  # its place beside the label counted
    [other] = locate(WORDS2, "Product Test", kind="answer", context='what is the "Purpose"?')
    assert other.box[1] == 0.13


def test_a_question_alone_boxes_the_value_beside_its_label():
    value, *rest = locate(WORDS2, 'On this form, what is the "Project Type"?', kind="query")
    assert value.how == "field" and value.text == "Product Test"
    below = locate(WORDS2, "what is the NIC?", kind="query")[0]  # nothing right of the label: the value below
    assert below.how == "field" and below.text == "0.8"
    assert locate(WORDS2, "project purpose", kind="query")[0].how == "terms"  # a search, not a question
    wrapped = locate(WORDS2, 'what are the "Remarks"?', kind="query")[0]  # on its next line, not the next field
    assert wrapped.text == "needs review by Friday" and len(wrapped.lines) == 2
    owned = locate(WORDS2, "What is the form's project type for this study?", kind="query")[0]
    assert owned.text == "Product Test" and owned.label == "Project Type:"  # by its name, owner and 'for ...' dropped


def test_values_stacked_in_a_table_cell_are_one_span_and_punctuation_breaks_ties():
    [region] = locate(WORDS2, "9.1 5. 5", kind="answer", context="what is the TAR?")
    assert region.text == "9.1 5.5" and region.box == (0.60, 0.33, 0.64, 0.41)
    [amount] = locate(WORDS2, "$ -0-", kind="answer")
    assert amount.text == "$ -0-" and len(amount.lines) == 1 and amount.lines[0][0] == 0.20  # the "$" boxed too


def test_a_value_glued_to_its_label_inside_one_word_is_cut_out_by_characters():
    [region] = locate(WORDS2, "EQPR", kind="answer")
    assert region.text == "EQPR" and region.box[0] == pytest.approx(0.18) and region.box[2] == pytest.approx(0.26)
    assert region.score == pytest.approx(0.95)  # a whole word reading the same would come first


def test_query_words_are_boxed_by_line_best_region_first():
    regions = locate(WORDS, "acme supply total", kind="query")
    assert [texts(r) for r in regions] == [["ACME", "SUPPLY"], ["TOTAL"]]
    assert locate(WORDS, "nothing like it here", kind="query") == []


def test_a_cited_statement_boxes_its_numbers_and_names():
    regions = locate(WORDS, "The vendor Bluefin was paid 1,234.50 in total", kind="statement")
    found = {WORDS[i].text for r in regions for i in r.words}
    assert {"Bluefin", "$1,234.5O"} <= found


def test_cited_statements_split_an_answer_by_citation():
    got = cited_statements("Paid on 9/3/92 [1]. Due in May [1, 2].\nNo other terms.")
    assert got == {1: ["Paid on 9/3/92", "Due in May"], 2: ["Due in May"]}
    got = cited_statements("Voted 4-0 in May [1], at a cost of $27,500 [2] or less. Held in the hall [1]")
    assert got == {1: ["Voted 4-0 in May", "Held in the hall"], 2: ["at a cost of $27,500 or less"]}


def test_drawing_boxes_each_line_in_the_citation_colour():
    from PIL import Image

    [region] = locate(WORDS, "please contact the Quality Council", kind="answer")
    img = draw(Image.new("RGB", (1000, 1000), "white"), [([region], 2)])
    r, g, b = colour(2)
    assert img.getpixel((300 - 3, 510)) == (r, g, b)  # outline left of the first line
    inside = img.getpixel((450, 510))
    assert inside != (255, 255, 255) and inside[0] > inside[2]  # translucent orange fill
    assert img.getpixel((200, 540)) == (255, 255, 255)  # left of the second line: untouched


@pytest.mark.slow
def test_show_draws_the_page_with_matching_words_boxed(sample_index, sample_corpus, tmp_path):
    """Real OCR words from the sample index, the real page image, the command line."""
    from PIL import Image

    out = tmp_path / "page.png"
    result = CliRunner().invoke(cli, ["show", str(sample_corpus / "invoices/cedar-ridge-landscaping-invoice.jpg"),
                                      "--highlight", "CRL-1182", "-o", str(out), "--json",
                                      "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "CRL-1182" in data["regions"][0]["text"]
    x0, y0, x1, y1 = data["regions"][0]["pixels"]
    image = Image.open(out)
    assert image.size == (data["width"], data["height"])
    assert image.getpixel((x0 - 3, (y0 + y1) // 2)) == colour(1)

    by_name = CliRunner().invoke(cli, ["show", "cedar-ridge-landscaping-invoice.jpg", "-o", str(tmp_path / "b.png"),
                                       "--index", str(sample_index)], catch_exceptions=False)
    assert by_name.exit_code == 0 and (tmp_path / "b.png").exists()
    missing = CliRunner().invoke(cli, ["show", "nope.pdf", "--index", str(sample_index)])
    assert missing.exit_code == 1 and "not in the index" in missing.output and "Traceback" not in missing.output


@pytest.mark.slow
def test_a_value_the_stored_words_miss_is_found_in_a_second_reading(make_page, tmp_path):
    """A page indexed without OCR has no words; the evidence for an answer comes from reading it again
    (real Tesseract), once: the reading is cached in the index folder."""
    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.highlight import find
    from rag.reread import DB_NAME

    page = make_page("form.png", ["Invoice number: 40-1182", "Total due: $2,650.56"])
    build(tmp_path / "index", [page], BuildOptions(ocr="none"))
    idx = Index.open(tmp_path / "index")
    [row] = idx.db.execute("SELECT id FROM pages").fetchall()
    assert idx.page_words(row[0]) == []
    assert find(idx, row[0], "$2650.56", kind="answer", reread=False) == []
    [region] = find(idx, row[0], "$2650.56", kind="answer")
    assert region.how == "span" and region.text == "$2,650.56"
    assert 60 / 1200 < region.box[0] and 120 / 900 < region.box[1] < region.box[3] < 200 / 900
    assert (tmp_path / "index" / DB_NAME).exists()
    assert find(idx, row[0], "40-1182", kind="answer")[0].text == "40-1182"  # from the cache
    assert find(idx, row[0], "Total", kind="query") == []  # search highlighting never reads again


def test_the_second_reading_is_asked_for_when_the_field_s_label_is_not_in_the_stored_words():
    from rag.highlight import _holds

    [far] = locate(WORDS2, "Product Test", kind="answer", context='what is the "Purpose"?')
    [near] = locate(WORDS2, "Product Test", kind="answer", context='what is the "Project Type"?')
    [unlabelled] = locate(WORDS2, "Product Test", kind="answer", context='what is the "Test Kind"?')
    assert _holds([near], "answer", 'what is the "Project Type"?')
    assert not _holds([unlabelled], "answer", 'what is the "Test Kind"?')  # no such label read: read again
    assert _holds([unlabelled], "answer", "Which product?") and _holds([unlabelled], "answer")  # no field named
    assert far.fit is not None and _holds([far], "answer", 'what is the "Purpose"?')  # just below its label
