"""Pages in other languages: read with the language asked for, recorded per page, found by a query in that language."""
import pytest
from click.testing import CliRunner

from cli.main import cli
from index.words import fold
from rag.query import fts_match

PAGES = {  # name: (--lang, lines)
    "brief-de": ("deu+eng", ["Die Straße zum Bahnhof wird im Frühjahr gesperrt.",
                             "Müller und Söhne übernehmen die Bauarbeiten für 48.000 Euro."]),
    "lettre-fr": ("fra", ["Le café de la gare ouvrira à côté de l'hôpital.",
                          "Les élèves déjeuneront à la cantine municipale."]),
    "pismo-ru": ("rus+eng", ["Заседание городского совета состоится в Москве.",
                             "Бюджет на ремонт школы утверждён единогласно."]),
}


@pytest.mark.parametrize("text, folded", [
    ("Straße", "Strasse"), ("café", "cafe"), ("Ἀθῆναι", "Αθηναι"), ("Ёлка", "Елка"),
    ("ﬁnal Œuvre", "final OEuvre"), ("plain ascii", "plain ascii")])
def test_fold(text, folded):
    assert fold(text) == folded


def test_query_is_folded_like_the_pages():
    assert fts_match("Straße café") == '"strasse" OR "cafe"'


def _installed(codes):
    import pytesseract

    return set(codes) <= set(pytesseract.get_languages(config=""))


@pytest.fixture(scope="module")
def multilingual_index(tmp_path_factory, font_path):
    """One index, one `index build --lang ...` per language (PAGERAG_OCR_LANG for one of them)."""
    from PIL import Image, ImageDraw, ImageFont

    if not _installed({"deu", "fra", "rus"}):
        pytest.skip("Tesseract packs deu, fra, rus are not installed (make tesseract installs them)")
    root = tmp_path_factory.mktemp("langs")
    font = ImageFont.truetype(font_path, 32)
    index = root / "index"
    for name, (lang, lines) in PAGES.items():
        img = Image.new("RGB", (1200, 500), "white")
        draw = ImageDraw.Draw(img)
        for i, line in enumerate(lines):
            draw.text((50, 60 + i * 60), line, fill="black", font=font)
        img.save(root / f"{name}.png")
        args = ["index", "build", str(root / f"{name}.png"), "--index", str(index), "-j", "1"]
        env = {"PAGERAG_OCR_LANG": lang} if name == "lettre-fr" else {}
        result = CliRunner().invoke(cli, args + ([] if env else ["--lang", lang]), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return root, index


@pytest.mark.slow
def test_each_page_keeps_its_language(multilingual_index):
    from index.store import Index

    root, index = multilingual_index
    idx = Index.open(index)
    for name, (lang, lines) in PAGES.items():
        row = idx.page(str(root / f"{name}.png"), 1)
        assert row["lang"] == lang
        assert lines[0].split()[1] in row["text"]  # 'Straße', 'café', 'городского': the pack read them


@pytest.mark.slow
@pytest.mark.parametrize("query, page", [
    ("Straße zum Bahnhof gesperrt", "brief-de"), ("Strasse Bahnhof", "brief-de"), ("Muller Sohne", "brief-de"),
    ("café à côté de l'hôpital", "lettre-fr"), ("cafe hopital eleves", "lettre-fr"),
    ("бюджет на ремонт школы", "pismo-ru"), ("заседание совета", "pismo-ru")])
def test_query_in_the_page_language_finds_it(multilingual_index, query, page):
    from index.store import Index
    from rag.retrieve import Retriever

    root, index = multilingual_index
    hits = Retriever(Index.open(index)).search(query, k=3, mode="lexical")
    assert [h.path for h in hits][:1] == [str(root / f"{page}.png")]


def test_missing_language_pack_names_the_package(tmp_path, make_page):
    page = make_page("p.png", ["hello"])
    result = CliRunner().invoke(cli, ["index", "build", str(page), "--index", str(tmp_path / "i"),
                                      "--ocr", "tesseract", "--lang", "eng+xyz"])
    assert result.exit_code == 1
    assert "apt-get install tesseract-ocr-xyz" in result.output


@pytest.mark.parametrize("lang", ["", "deu+", "de-DE", "eng;rm"])
def test_malformed_language_list(tmp_path, make_page, lang):
    page = make_page("p.png", ["hello"])
    result = CliRunner().invoke(cli, ["index", "build", str(page), "--index", str(tmp_path / "i"), "--lang", lang])
    assert result.exit_code == 1
    assert "Tesseract codes joined by '+'" in result.output


@pytest.mark.parametrize("source, lang, engine", [
    ("tesseract", "eng", "rapidocr"), ("tesseract", "rus+eng", None), ("tesseract", "fra", None),
    ("rapidocr", "eng", "tesseract"), ("none", "eng", "tesseract")])
def test_second_reading_engine_reads_the_page_language(source, lang, engine):
    from rag.reread import other_engine

    assert other_engine(source, lang) == engine


@pytest.mark.slow
def test_a_page_in_another_language_is_not_misread_a_second_time(multilingual_index):
    """RapidOCR reads English only: a Russian page gets no second reading (it used to get RapidOCR's
    Latin look-alikes of its Cyrillic), and nothing is cached for it."""
    from index.store import Index
    from rag.reread import DB_NAME, second_reading

    root, index = multilingual_index
    idx = Index.open(index)
    for name in ("pismo-ru", "lettre-fr"):
        row = idx.page(str(root / f"{name}.png"), 1)
        assert second_reading(idx, row["id"]) == []
    assert not (index / DB_NAME).exists()


@pytest.mark.slow
def test_status_shows_the_languages_the_pages_were_read_in(multilingual_index):
    import json

    _, index = multilingual_index
    text = CliRunner().invoke(cli, ["index", "status", "--index", str(index)], catch_exceptions=False)
    assert text.exit_code == 0, text.output
    [line] = [ln for ln in text.output.splitlines() if ln.startswith("Languages:")]
    assert {"deu+eng (1 page)", "fra (1 page)", "rus+eng (1 page)"} == set(line.split(":", 1)[1].strip().split(", "))
    data = json.loads(CliRunner().invoke(cli, ["index", "status", "--index", str(index), "--json"]).output)
    assert data["ocr_languages"] == {"deu+eng": 1, "fra": 1, "rus+eng": 1}
