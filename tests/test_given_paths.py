"""Paths a person gives, matched to the paths the index stores (index/given_paths.py): a name in another
Unicode normalisation (macOS writes NFD) finds the file as indexed, in every command that takes a path;
a path with nothing indexed says whether it exists (index it) or not (what is indexed with a name like it).
Real PDFs, a real index (no OCR: quick), the commands through click."""
import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_kit import text_pdf

from cli.main import cli
from index.given_paths import nearest, on_disk, path_key


def nfd(path) -> str:
    return unicodedata.normalize("NFD", str(path))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def accented(tmp_path):
    """An index of 'docs/Müller/Björn.pdf' (names NFC on disk, as Linux tools write them) and 'docs/parking.pdf'."""
    from index.builder import BuildOptions, build

    docs = tmp_path / "docs"
    bjorn = text_pdf(docs / "M\u00fcller" / "Bj\u00f6rn.pdf", ["The annual budget of $27,500 was approved."])
    text_pdf(docs / "parking.pdf", ["The parking lot will be resurfaced in May."])
    build(tmp_path / "index", [docs], BuildOptions(ocr="none"))
    return tmp_path / "index", bjorn


def test_keys_and_spelling_on_disk(accented):
    _, bjorn = accented
    assert nfd(bjorn) != str(bjorn) and path_key(nfd(bjorn)) == path_key(str(bjorn))
    assert on_disk(nfd(bjorn)) == str(bjorn) and on_disk(nfd(bjorn.parent / "nope.pdf")) is None


@pytest.mark.slow
def test_a_path_written_nfd_finds_the_nfc_file_in_every_command(accented, tmp_path):
    index, bjorn = accented
    for within in (nfd(bjorn), nfd(bjorn.parent)):  # a file, a folder
        result = run("search", "budget", "--in", within, "--index", index, "--json")
        assert result.exit_code == 0, result.output
        assert [h["path"] for h in json.loads(result.output)] == [str(bjorn)]  # as stored, NFC
    shown = run("show", nfd(bjorn), "-o", tmp_path / "p.png", "--index", index)
    assert shown.exit_code == 0 and (tmp_path / "p.png").exists(), shown.output
    assert run("show", nfd(bjorn.name), "-o", tmp_path / "q.png", "--index", index).exit_code == 0  # a bare name

    from index.store import Index
    from rag.highlight import sources_evidence

    idx = Index.open(index)  # a conversation's source, written NFD
    [ev] = sources_evidence(idx, "annual budget", "", [(1, nfd(bjorn), 1)], abstained=True)
    assert ev.regions and "budget" in ev.regions[0].text
    idx.close()

    removed = run("index", "remove", nfd(bjorn.parent), "--index", index)
    assert removed.exit_code == 0 and f"Removed {bjorn} (1 page(s))." in removed.output, removed.output


@pytest.mark.slow
def test_eval_gold_written_nfd_is_a_hit_and_no_warning(accented):
    index, bjorn = accented
    root = bjorn.parent.parent.parent
    qa = root / "qa.jsonl"
    qa.write_text(json.dumps({"id": "1", "question": "annual budget approved",
                              "gold_page": nfd(bjorn.relative_to(root)) + "#page=1",
                              "doc_id": nfd(bjorn.parent.relative_to(root))}) + "\n")
    result = run("eval", qa, "--mode", "lexical", "--json", "--index", index)
    assert result.exit_code == 0, result.output
    assert "not in the index" not in result.output
    rows = json.loads(result.stdout)["rows"]
    assert {(r["scope"], r["recall"]["1"]) for r in rows} == {("corpus", 1.0), ("document", 1.0)}


@pytest.mark.slow
def test_the_web_app_served_within_a_path_written_nfd(accented):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index
    from rag.assistant import AskSettings
    from rag.settings import ModelSettings

    index, bjorn = accented
    state = WebState(Index.open(index), ModelSettings(model=str(index / "no-model")), AskSettings(k=2),
                     within=[nfd(bjorn.parent)])
    client = TestClient(create_app(state))
    [hit] = client.get("/search.json", params={"q": "budget parking"}).json()["hits"]
    assert hit["path"] == str(bjorn)
    assert client.get(f"/page/{hit['page_id']}.json").status_code == 200


@pytest.mark.slow
def test_an_exact_path_wins_over_one_that_only_reads_alike(tmp_path):
    """Two files whose names differ only in normalisation are two files: each path finds its own."""
    from index.builder import BuildOptions, build

    docs = tmp_path / "docs"
    nfc_file = text_pdf(docs / "Bj\u00f6rn.pdf", ["The annual budget of $27,500 was approved."])
    nfd_file = text_pdf(Path(nfd(docs / "Bj\u00f6rn.pdf")), ["The annual budget was cut to $9,000."])
    build(tmp_path / "index", [docs], BuildOptions(ocr="none"))
    for given in (nfc_file, nfd_file):
        result = run("search", "annual budget", "--in", given, "--index", tmp_path / "index", "--json")
        assert [h["path"] for h in json.loads(result.output)] == [str(given)]


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["search", "budget", "--in", "{gone}"],
    ["ask", "budget", "-m", "{tmp}/no-model", "--in", "{gone}"],
    ["show", "{gone}"],
    ["index", "remove", "{gone}"],
    ["serve", "--in", "{gone}", "--port", "0"],
])
def test_a_path_that_does_not_exist_is_said_so_with_what_is_indexed_like_it(accented, tmp_path, command):
    index, bjorn = accented
    gone = bjorn.parent.parent / "Muller"  # a typo of the indexed folder 'Müller'
    result = run(*[a.format(gone=gone, tmp=tmp_path) for a in command], "--index", index)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "does not exist" in result.output and str(bjorn.parent) in result.output, result.output
    assert "index build" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("command", [["search", "budget", "--in", "{there}"], ["show", "{there}"]])
def test_a_path_that_exists_but_is_not_indexed_is_said_to_be_indexed(accented, tmp_path, command):
    index, _ = accented
    there = text_pdf(tmp_path / "elsewhere" / "new.pdf", ["Not indexed yet."])
    result = run(*[a.format(there=there) for a in command], "--index", index)
    assert result.exit_code == 1 and "index build" in result.output and "does not exist" not in result.output
    removed = run("index", "remove", there, "--index", index)
    assert removed.exit_code == 1 and "it is not indexed" in removed.output, removed.output


@pytest.mark.slow
def test_eval_tells_gold_files_that_do_not_exist_from_files_not_indexed(accented):
    index, bjorn = accented
    root = bjorn.parent.parent.parent
    text_pdf(root / "docs" / "new.pdf", ["Not indexed yet."])
    qa = root / "qa.jsonl"
    qa.write_text("".join(json.dumps(q) + "\n" for q in [
        {"id": "1", "question": "annual budget", "gold_page": "docs/Muller/Bjorn.pdf"},
        {"id": "2", "question": "not indexed", "gold_page": "docs/new.pdf"},
        {"id": "3", "question": "annual budget", "gold_page": str(bjorn.relative_to(root))}]))
    result = run("eval", qa, "--mode", "lexical", "--scope", "corpus", "--index", index)
    assert result.exit_code == 0, result.output
    assert "2 gold page(s) are not in the index" in result.output
    assert "1 name a file that does not exist (e.g. question 1:" in result.output
    assert "1 name an existing file: index it" in result.output


def test_nearest_names_folders_and_files_by_their_names():
    stored = ["/d/M\u00fcller/Bj\u00f6rn.pdf", "/d/M\u00fcller/2023/q1.pdf", "/d/parking.pdf"]
    assert nearest("/d/bjorn.pdf", stored) == ["/d/M\u00fcller/Bj\u00f6rn.pdf"]
    assert nearest("/x/Muller", stored)[0] == "/d/M\u00fcller"
    assert nearest("/d/2O23", stored)[0] == "/d/M\u00fcller/2023"
    assert nearest("/d/zzz", stored) == []


@pytest.mark.slow
def test_build_takes_a_folder_written_nfd_as_the_disk_spells_it(tmp_path):
    folder = tmp_path / "docs" / "M\u00fcller"
    pdf = text_pdf(folder / "Bj\u00f6rn.pdf", ["The annual budget of $27,500 was approved."])
    result = run("index", "build", nfd(folder), "--index", tmp_path / "index", "--ocr", "none", "--json")
    assert result.exit_code == 0, result.output
    from index.store import Index

    assert [d["path"] for d in Index.open(tmp_path / "index").documents()] == [str(pdf)]  # stored as on disk


@pytest.mark.slow
def test_prune_of_a_path_never_indexed_does_not_suggest_removing_it(accented):
    index, bjorn = accented
    gone = bjorn.parent / "gone.pdf"
    result = run("index", "build", gone, "--prune", "--index", index)
    assert result.exit_code == 2 and "nothing is indexed under it either" in result.output, result.output
    assert "index remove" not in result.output
