"""The query side under hostile input, as a new user meets it: stdin closed or UTF-16, paths and numbers
that would mean something else, malformed question sets, the web app's bad requests, a damaged model
folder; each case one clear line (no traceback) and a consistent exit code.

Real parts throughout: real indexes of text PDFs, the CLI in a subprocess where stdin has to be closed.
Misbehaving servers are in test_reply_faults.py, damaged conversation files in test_conversation_faults.py.
"""
from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from index.errors import BadArgument, NotIndexed
from openai_helpers import clean_env  # noqa: F401 - no PAGERAG_*/OPENAI_* or proxy variables leak in
from rag.backends import ModelUnavailable

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args, input: bytes | None = None, close_stdin=False, timeout=180):
    """The CLI in a subprocess; `close_stdin`: file descriptor 0 closed, as `<&-` in a shell does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAGERAG_", "OPENAI_"))}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    stdin = None if input is not None else subprocess.DEVNULL
    return subprocess.run([sys.executable, "-m", "cli", *map(str, args)], input=input, stdin=stdin,
                          capture_output=True, env=env, timeout=timeout,
                          preexec_fn=(lambda: os.close(0)) if close_stdin else None)


# --- standard input: closed, UTF-16 ---

@pytest.mark.slow
@pytest.mark.parametrize("command", [["search", "--batch"], ["chat"]])
def test_a_closed_stdin_reads_as_empty(pdf_index, command):
    """`<&-` (cron, a daemon): stdin is /dev/null (cli.process), so a batch has no queries and chat ends."""
    index, _ = pdf_index
    done = run_cli(*command, "--index", index, close_stdin=True)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "Traceback" not in err and done.stdout.decode().strip() in ("", ">")


@pytest.mark.slow
def test_a_utf16_batch_answers_line_for_line(pdf_index):
    index, _ = pdf_index
    data = "annual budget\r\nparking lot resurfaced\r\n".encode("utf-16")
    assert data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    done = run_cli("search", "--batch", "-k", "1", "--index", index, input=data)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0 and len(lines) == 2, done.stderr.decode()
    assert json.loads(lines[0])[0]["path"].endswith("budget.pdf")
    assert json.loads(lines[1])[0]["path"].endswith("parking.pdf")
    assert "not valid UTF-8" not in done.stderr.decode()


# --- paths and numbers that would mean something else ---

@pytest.mark.slow
def test_an_empty_path_is_refused_not_read_as_the_current_folder(pdf_index):
    from index.store import Index

    index, _ = pdf_index
    runner = CliRunner()
    search = runner.invoke(cli, ["search", "budget", "--in", "", "--index", str(index)])
    assert search.exit_code == 2 and "empty path" in search.output
    ask = runner.invoke(cli, ["ask", "budget?", "--save-evidence", "", "--index", str(index)])
    assert ask.exit_code == 2 and "empty path" in ask.output
    with pytest.raises(BadArgument):
        Index.open(index).documents_under([""])


@pytest.mark.slow
def test_page_numbers_past_sqlite_integers_are_not_in_the_index(pdf_index):
    from index.store import Index

    index, pdfs = pdf_index
    idx = Index.open(index)
    for call in (lambda: idx.page(str(pdfs[0]), 10**20), lambda: idx.page_by_id(10**20),
                 lambda: idx.page(str(pdfs[0]), -(10**20))):
        with pytest.raises(NotIndexed):
            call()
    result = CliRunner().invoke(cli, ["show", str(pdfs[0]), str(10**20), "--index", str(index)])
    assert result.exit_code == 1 and "is not in the index" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- eval question files ---

def write_qa(folder: Path, *lines: str, corpus: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "qa.jsonl").write_text("".join(line + "\n" for line in lines))
    if corpus is not None:
        (folder / "corpus.jsonl").write_bytes(corpus)
    return folder / "qa.jsonl"


GOOD = '{"id": "%s", "question": "annual budget", "gold_page": "docs/budget.pdf", "doc_id": "d"}'


@pytest.mark.parametrize("lines, corpus, said", [
    (['{"id": "a", "question": 5, "gold_page": "docs/budget.pdf"}'], None, '"question" should be text, got 5'),
    ([GOOD % "a", GOOD % "a"], None, "line 2: id 'a' is already used on line 1"),
    ([GOOD % "a"], b'{"page": "docs/budget.pdf", "doc_id": "d"\n', "corpus.jsonl, line 1: not JSON"),
    ([GOOD % "a"], b"[1]\n", "corpus.jsonl, line 1: each line should be an object"),
    ([GOOD % "a"], "{}".encode("utf-16"), "corpus.jsonl is not UTF-8 JSON lines"),
])
def test_a_malformed_question_set_is_named_by_file_and_line(tmp_path, lines, corpus, said):
    from rag.evaluate import EvalDataError, load_questions

    qa = write_qa(tmp_path / "set", *lines, corpus=corpus)
    with pytest.raises(EvalDataError) as info:
        load_questions(qa)
    assert said in str(info.value)


@pytest.mark.slow
def test_gold_pages_the_index_lacks_are_warned_about(pdf_index):
    index, pdfs = pdf_index
    root = pdfs[0].parent.parent
    qa = write_qa(root / "set", '{"id": "1", "question": "annual budget", "gold_page": "docs/budget.pdf#page=99"}',
                  '{"id": "2", "question": "parking lot", "gold_page": "docs/parking.pdf"}')
    result = CliRunner().invoke(cli, ["eval", str(qa), "--root", str(root), "--index", str(index),
                                      "--mode", "lexical", "--scope", "corpus"])
    assert result.exit_code == 0, result.output
    assert "1 gold page(s) are not in the index (e.g. question 1:" in result.output
    assert "budget.pdf#page=99" in result.output


# --- the web app and serve ---

def test_deeply_nested_json_to_chat_ask_is_400(pdf_index):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    index, _ = pdf_index
    with TestClient(create_app(WebState(Index.open(index)))) as client:
        reply = client.post("/chat/ask", content=b"[" * 100_000 + b"]" * 100_000,
                            headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "nested too deep" in reply.json()["error"]


def test_a_method_a_route_does_not_take_is_405_with_allow(pdf_index):
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index

    index, _ = pdf_index
    with TestClient(create_app(WebState(Index.open(index)))) as client:
        for method, path, allowed in [("POST", "/search", "GET"), ("DELETE", "/search.json", "GET"),
                                      ("GET", "/chat/ask", "POST")]:
            reply = client.request(method, path)
            assert reply.status_code == 405 and allowed in reply.headers["allow"], (method, path)


@pytest.mark.slow
def test_serve_refuses_a_bad_base_url_before_serving(pdf_index):
    index, _ = pdf_index
    done = run_cli("serve", "--index", index, "--backend", "openai", "--base-url", "junk", timeout=60)
    assert done.returncode == 1 and "must start with http:// or https://" in done.stderr.decode()
    assert "Serving" not in done.stderr.decode()


@pytest.mark.slow
def test_a_long_lived_reader_sees_pages_built_after_it_loaded(pdf_index):
    """`serve` (or `chat`) keeps one Index open; a build by another process must not leave its dense
    search on the vectors it loaded first."""
    from fault_kit import text_pdf

    from index.builder import BuildOptions, build
    from index.store import Index
    from rag.retrieve import Retriever

    index, pdfs = pdf_index
    reader = Retriever(Index.open(index))
    query = "orchard irrigation pump replacement"
    assert all(not h.path.endswith("orchard.pdf") for h in reader.search(query, k=3, mode="dense"))
    new = text_pdf(pdfs[0].parent / "orchard.pdf", ["The orchard irrigation pump replacement cost $4,100."])
    build(index, [new], BuildOptions(ocr="none"))  # its own Index handle, as another process would have
    hits = reader.search(query, k=3, mode="dense")
    assert hits and hits[0].path.endswith("orchard.pdf")
    fresh = Retriever(Index.open(index)).search(query, k=3, mode="dense")
    assert [(h.path, h.page) for h in hits] == [(h.path, h.page) for h in fresh]


# --- the transformers backend: a damaged model folder ---

@pytest.mark.slow
@pytest.mark.parametrize("damage, said", [
    ("truncate-weights", "SafetensorError"),
    ("garbage-config", "config.json"),
    ("file", "is a file, not a folder"),
])
def test_a_damaged_model_folder_is_one_line(tiny_folders, tmp_path, damage, said):
    import shutil

    from rag.backends.hf import TransformersBackend

    folder = tmp_path / "model"
    shutil.copytree(tiny_folders["mllama"], folder)
    if damage == "truncate-weights":
        with open(folder / "model.safetensors", "r+b") as f:
            f.truncate(5000)
    elif damage == "garbage-config":
        (folder / "config.json").write_text("{garbage")
    else:
        folder = folder / "config.json"
    with pytest.raises(ModelUnavailable, match=said):
        TransformersBackend(str(folder)).load()


@pytest.mark.slow
def test_an_eval_report_that_cannot_be_written_is_named(pdf_index):
    index, pdfs = pdf_index
    root = pdfs[0].parent.parent
    qa = write_qa(root / "set", '{"id": "1", "question": "annual budget", "gold_page": "docs/budget.pdf"}')
    base = ["eval", str(qa), "--root", str(root), "--index", str(index), "--mode", "lexical", "--scope", "corpus"]
    empty = CliRunner().invoke(cli, [*base, "--report", ""])
    assert empty.exit_code == 2 and "is a folder; name the file to write" in empty.output
    assert empty.exception is None or isinstance(empty.exception, SystemExit)
    if os.path.exists("/dev/full"):
        full = CliRunner().invoke(cli, [*base, "--report", "/dev/full"])
        assert full.exit_code == 1 and "cannot write --report /dev/full: No space left on device" in full.output
        assert "R@1" in full.output  # the table is still printed
