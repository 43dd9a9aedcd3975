"""A question about a table boxes the cell in the row it names and the column its field heads (rag.tables):
`pagerag show`, the web app's page view and an answer's citations, over real files (OCR'd images, a PDF's text
layer); key-value forms and receipts keep the value beside their label."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.words import Word
from rag.locate import locate

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
TABLE = [("Item", "Qty", "Price"), ("Oak barrel", "2", "140.00"), ("Walnut barrel", "1", "215.50"),
         ("Pine crate", "12", "18.25")]
COLUMNS = (100, 600, 900, 1250)  # x of the rules, in pixels of the drawn page


def drawn_page(path: Path, lines: list[tuple[int, int, str]], rules: bool = False) -> Path:
    """A page image with text at (x, y) and, when `rules`, the TABLE's grid."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (1400, 800), "white")
    pen = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 34) if Path(FONT).exists() else ImageFont.load_default(size=34)
    for x, y, text in lines:
        pen.text((x, y), text, fill="black", font=font)
    if rules:
        for r in range(len(TABLE) + 1):
            pen.line((COLUMNS[0], 160 + 80 * r, COLUMNS[-1], 160 + 80 * r), fill="black", width=3)
        for x in COLUMNS:
            pen.line((x, 160, x, 160 + 80 * len(TABLE)), fill="black", width=3)
    img.save(path)
    return path


def table_pdf(path: Path) -> Path:
    """The TABLE as a PDF page with a text layer (no rules: columns by position alone)."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Order summary", fontsize=14)
    for r, row in enumerate(TABLE):
        for x, cell in zip((72, 300, 420), row):
            page.insert_text((x, 120 + 24 * r), cell, fontsize=11)
    doc.save(path)
    return path


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """An index of a drawn table (OCR), the same table as a PDF, a key-value form and a receipt."""
    from index.builder import BuildOptions, build

    root = tmp_path_factory.mktemp("tables")
    docs = root / "docs"
    docs.mkdir()
    cells = [(COLUMNS[c] + 20, 180 + 80 * r, text) for r, row in enumerate(TABLE) for c, text in enumerate(row)]
    drawn_page(docs / "order.png", [(100, 60, "Order summary"), *cells], rules=True)
    table_pdf(docs / "order.pdf")
    drawn_page(docs / "invoice.png", [(100, 60, "ACME Cooperage"), (100, 200, "Invoice No: 4471"),
                                      (100, 280, "Date: 12/03/2024"), (100, 360, "Ship to: Harbour Inn")])
    drawn_page(docs / "receipt.png", [(100, 60, "CORNER CAFE"), (100, 160, "Coffee"), (700, 160, "3.20"),
                                      (100, 220, "Bagel"), (700, 220, "9.20"), (100, 300, "TOTAL"),
                                      (700, 300, "12.40")])
    build(root / "index", [docs], BuildOptions(ocr="auto"))
    return root / "index", docs


def show_json(index, file, text) -> list[dict]:
    result = CliRunner().invoke(cli, ["show", str(file), "--highlight", text, "--json", "-o", "/dev/null",
                                      "--index", str(index)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["regions"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["order.png", "order.pdf"])
@pytest.mark.parametrize("question, value, row", [
    ("What is the price of the walnut barrel?", "215.50", "Walnut barrel"),
    ("price of a walnut barrel?", "215.50", "Walnut barrel"),  # no question words: a query naming both
    ("What is the walnut barrel's price?", "215.50", "Walnut barrel"),
    ("For the pine crate, what is the qty?", "12", "Pine crate"),
    ("What is the price of the oak barrel?", "140.00", "Oak barrel"),
])
def test_a_table_question_boxes_the_cell_of_the_row_it_names(pages, name, question, value, row):
    index, docs = pages
    first = show_json(index, docs / name, question)[0]
    assert (first["text"], first["how"], first["row"]) == (value, "cell", row)
    assert first["label"] in ("Price", "Qty")


@pytest.mark.slow
def test_a_table_question_naming_no_row_keeps_the_value_under_the_header(pages):
    index, docs = pages
    first = show_json(index, docs / "order.png", "What is the price?")[0]
    assert (first["text"], first["how"], first["label"]) == ("140.00", "field", "Price")
    assert [r["how"] for r in show_json(index, docs / "order.png", "walnut barrel")] == ["terms", "terms"]


@pytest.mark.slow
@pytest.mark.parametrize("name, question, value", [
    ("invoice.png", "What is the invoice no?", "4471"),
    ("invoice.png", "What is the date?", "12/03/2024"),
    ("invoice.png", "What is the date of invoice 4471?", "12/03/2024"),  # a row-like word, but a form
    ("receipt.png", "What is the total?", "12.40"),
    ("receipt.png", "What is the total of the bagel receipt?", "12.40"),
])
def test_forms_and_receipts_keep_the_value_beside_the_label(pages, name, question, value):
    index, docs = pages
    first = show_json(index, docs / name, question)[0]
    assert (first["text"], first["how"]) == (value, "field")


@pytest.mark.slow
def test_the_web_page_view_and_an_answers_citations_box_the_same_cell(pages):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index
    from rag.assistant import AskSettings
    from rag.highlight import sources_evidence
    from rag.settings import ModelSettings

    folder, docs = pages
    question = "What is the price of the walnut barrel?"
    index = Index.open(folder)
    path = str(docs / "order.png")
    page_id = index.page(path, 1)["id"]
    client = TestClient(create_app(WebState(index, ModelSettings(model=str(folder / "no-model")), AskSettings(k=2))))
    data = client.get(f"/page/{page_id}.json", params={"q": question}).json()
    assert data["evidence"]["regions"][0]["text"] == "215.50"
    assert "of the “Walnut barrel” row" in client.get(f"/page/{page_id}", params={"q": question}).text
    [abstained] = sources_evidence(index, question, "", [(1, path, 1)], abstained=True)
    assert abstained.regions[0].text == "215.50"
    [cited] = sources_evidence(index, question, "It costs 215.50 [1].", [(1, path, 1)])
    assert "215.50" in [r.text for r in cited.regions]


# A table whose Qty column holds the same value in two rows, as OCR reads it: (text, x0, y0, x1, y1).
REPEATED = [
    [("Item", 0.08, 0.20, 0.14, 0.23), ("Qty", 0.44, 0.20, 0.48, 0.23), ("Price", 0.66, 0.20, 0.72, 0.23)],
    [("Oak", 0.08, 0.30, 0.13, 0.33), ("barrel", 0.14, 0.30, 0.21, 0.33), ("2", 0.44, 0.30, 0.46, 0.33),
     ("140.00", 0.66, 0.30, 0.74, 0.33)],
    [("Pine", 0.08, 0.40, 0.13, 0.43), ("crate", 0.14, 0.40, 0.21, 0.43), ("2", 0.44, 0.40, 0.46, 0.43),
     ("18.25", 0.66, 0.40, 0.73, 0.43)],
]
REPEATED_WORDS = [Word(t, x0, y0, x1, y1, 0.9, line) for line, row in enumerate(REPEATED) for t, x0, y0, x1, y1 in row]


def test_an_answer_repeated_in_a_column_is_boxed_in_the_row_the_question_names():
    [pine] = locate(REPEATED_WORDS, "2", kind="answer", context="What is the qty of the pine crate?")
    [oak] = locate(REPEATED_WORDS, "2", kind="answer", context="What is the qty of the oak barrel?")
    assert (pine.box[1], oak.box[1]) == (0.40, 0.30)


@pytest.mark.parametrize("question, how", [
    ("What is the qty of the pine crate?", "cell"),
    # a question mostly about something else, one of whose words happens to name a row: the header's value
    ("On the form headed Pine Valley Cooperage order summary, what is the qty?", "field"),
    ("What is the Item?", "field"),  # no row named
    ("What is the qty of the Item?", "field"),  # the header row names no row
])
def test_only_a_question_naming_a_row_and_little_else_gets_a_cell(question, how):
    assert locate(REPEATED_WORDS, question, kind="query")[0].how == how


# A table whose Pine crate row has no price (an empty cell), its Price column not the last.
EMPTY_CELL = [
    [("Item", 0.08, 0.20, 0.14, 0.23), ("Price", 0.44, 0.20, 0.50, 0.23), ("Qty", 0.66, 0.20, 0.70, 0.23)],
    [("Oak", 0.08, 0.30, 0.13, 0.33), ("barrel", 0.14, 0.30, 0.21, 0.33), ("140.00", 0.44, 0.30, 0.52, 0.33),
     ("2", 0.66, 0.30, 0.68, 0.33)],
    [("Pine", 0.08, 0.40, 0.13, 0.43), ("crate", 0.14, 0.40, 0.21, 0.43), ("12", 0.66, 0.40, 0.69, 0.43)],
]
EMPTY_CELL_WORDS = [Word(t, x0, y0, x1, y1, 0.9, line) for line, row in enumerate(EMPTY_CELL)
                    for t, x0, y0, x1, y1 in row]


@pytest.mark.parametrize("kind, text, context", [
    ("query", "What is the price of the pine crate?", None),
    ("answer", "unknown", "What is the price of the pine crate?"),
])
def test_a_named_rows_empty_cell_boxes_no_value_beside_the_header(kind, text, context):
    """The pine crate's price cell is empty: no value is boxed (it boxed the next header, 'Qty', as the price)."""
    regions = locate(EMPTY_CELL_WORDS, text, kind=kind, context=context)
    assert all(r.how != "field" and r.text != "Qty" for r in regions), regions
    oak = locate(EMPTY_CELL_WORDS, "What is the price of the oak barrel?", kind="query")[0]
    assert (oak.text, oak.how) == ("140.00", "cell")


# Two like tables on a page, each under its title; the Walnut row is in both.
TWO_TABLES = [
    [("Prices", 0.08, 0.10, 0.16, 0.13), ("2023", 0.17, 0.10, 0.23, 0.13)],
    [("Item", 0.08, 0.16, 0.14, 0.19), ("Price", 0.44, 0.16, 0.50, 0.19), ("Qty", 0.66, 0.16, 0.70, 0.19)],
    [("Walnut", 0.08, 0.22, 0.17, 0.25), ("12.50", 0.44, 0.22, 0.51, 0.25), ("1", 0.66, 0.22, 0.67, 0.25)],
    [("Almond", 0.08, 0.28, 0.17, 0.31), ("9.80", 0.44, 0.28, 0.50, 0.31), ("3", 0.66, 0.28, 0.67, 0.31)],
    [("Prices", 0.08, 0.45, 0.16, 0.48), ("2024", 0.17, 0.45, 0.23, 0.48)],
    [("Item", 0.08, 0.51, 0.14, 0.54), ("Price", 0.44, 0.51, 0.50, 0.54), ("Qty", 0.66, 0.51, 0.70, 0.54)],
    [("Walnut", 0.08, 0.57, 0.17, 0.60), ("14.75", 0.44, 0.57, 0.51, 0.60), ("2", 0.66, 0.57, 0.67, 0.60)],
]
TWO_TABLES_WORDS = [Word(t, x0, y0, x1, y1, 0.9, line) for line, row in enumerate(TWO_TABLES)
                    for t, x0, y0, x1, y1 in row]


@pytest.mark.parametrize("question, value", [
    ("What is the price of walnut in 2024?", "14.75"),  # it boxed 2023's 12.50: the first table with the row
    ("What is the price of walnut in 2023?", "12.50"),
    ("What is the price of walnut?", "12.50"),  # no table named: the first
    ("What is the qty of walnut in 2024?", "2"),
])
def test_a_row_in_two_tables_is_boxed_in_the_table_whose_title_the_question_names(question, value):
    first = locate(TWO_TABLES_WORDS, question, kind="query")[0]
    assert (first.text, first.how) == (value, "cell")
    [answer] = locate(TWO_TABLES_WORDS, value, kind="answer", context=question)
    assert answer.text == value and answer.box == first.box
