"""`pagerag eval`: metrics against known answers, the data format, the command."""
import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from rag.evaluate import EvalDataError, Outcome, Question, load_questions, ndcg, summarise


def test_ndcg_worked_example():
    assert round(ndcg([False, True, False, True, False], 2), 3) == 0.651
    assert ndcg([True], 1) == 1.0 and ndcg([False] * 5, 3) == 0.0
    assert ndcg([True, True, True, True, True, True], 8) == 1.0  # only the top 5 count, ideal capped at 5


def outcome(qid, rank, mode="hybrid", scope="corpus"):
    return Outcome(qid, "q", scope, mode, rank, 0.0, [], [])


def test_summarise_recall_mrr_and_groups():
    questions = [Question("a", "q", [("/x", None)], groups=["single-page"]),
                 Question("b", "q", [("/x", None), ("/y", None)], groups=["multi-page"]),
                 Question("c", "q", [("/x", None)], groups=["single-page"]),
                 Question("d", "q", [("/x", None)], groups=["single-page"])]
    rows = summarise(questions, [outcome("a", 1), outcome("b", 3), outcome("c", 7), outcome("d", None)])
    assert [(r.group, r.n) for r in rows] == [("all", 4), ("single-page", 3), ("multi-page", 1)]
    all_ = rows[0]
    assert all_.recall == {1: 0.25, 5: 0.5, 10: 0.75}
    assert all_.mrr == round((1 + 1 / 3 + 1 / 7) / 4, 4)
    assert rows[1].recall == {1: 0.3333, 5: 0.3333, 10: 0.6667}


def test_a_group_holding_every_question_is_not_repeated():
    questions = [Question("a", "q", [("/x", None)], groups=["single-page"])]
    assert [r.group for r in summarise(questions, [outcome("a", 1)])] == ["all"]


def test_load_questions_resolves_paths_documents_and_groups(tmp_path):
    (tmp_path / "pages" / "doc1").mkdir(parents=True)
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"page": f"pages/doc1/p{i}.jpg", "doc_id": "doc1.pdf"}) for i in (1, 2)) + "\n")
    (tmp_path / "qa.jsonl").write_text(
        json.dumps({"id": "q1", "question": "What  is\nX?", "gold_page": "pages/doc1/p2.jpg", "doc_id": "doc1.pdf",
                    "doc_scoped_wording": True}) + "\n\n"
        + json.dumps({"id": "q2", "question": "Where?", "gold_page": ["a.pdf#page=3", "a.pdf#page=3", "b.png"]}) + "\n")
    q1, q2 = load_questions(tmp_path / "qa.jsonl")
    assert q1.question == "What is X?" and q1.gold == [(str(tmp_path / "pages/doc1/p2.jpg"), None)]
    assert q1.document == [str(tmp_path / f"pages/doc1/p{i}.jpg") for i in (1, 2)]
    assert q1.groups == ["single-page", "doc-scoped wording"]
    assert q2.gold == [(str(tmp_path / "a.pdf"), 3), (str(tmp_path / "b.png"), None)]
    assert q2.document is None and q2.groups == ["multi-page"]


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 1: not JSON"),
    ('{"question": "x"}', 'needs a "question" and a "gold_page"'),
    ('{"question": "x", "gold_page": []}', "gold_page is empty"),
    ('{"question": "x", "gold_page": 3}', "must be a path or a list of paths"),
    ('{"question": "x", "gold_page": "a.pdf#page=two"}', "#page=N"),
])
def test_bad_question_files_are_named_errors(tmp_path, line, message):
    (tmp_path / "qa.jsonl").write_text(line + "\n")
    with pytest.raises(EvalDataError, match=message):
        load_questions(tmp_path / "qa.jsonl")


@pytest.mark.slow
def test_eval_command_on_the_sample(sample_index, sample_corpus, tmp_path):
    rows = [json.loads(line) for line in (sample_corpus.parent / "sample-questions.jsonl").read_text().splitlines()]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"id": str(i), "question": r["question"], "doc_id": r["path"],
                                      "gold_page": f"{r['path']}#page={r['page']}"}) + "\n"
                          for i, r in enumerate(rows)))
    report = tmp_path / "report.jsonl"
    result = CliRunner().invoke(cli, ["eval", str(qa), "--root", str(sample_corpus), "--json", "--report", str(report),
                                      "--index", str(sample_index)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Searching" not in result.stderr  # the progress bar is for a terminal: its label alone was left here
    table = json.loads(result.output[result.output.index("{"):])
    cells = {(r["scope"], r["group"], r["mode"]): r for r in table["rows"]}
    assert cells[("corpus", "all", "hybrid")]["recall"]["1"] == 1.0  # test_search: every sample question first
    assert cells[("document", "all", "hybrid")]["recall"]["1"] == 1.0
    assert cells[("corpus", "all", "dense")]["n"] == len(rows)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == len(rows) * 2 * 3  # questions x scopes x modes
    first = next(o for o in lines if o["scope"] == "document" and o["mode"] == "hybrid" and o["id"] == "6")
    assert first["rank"] == 1 and first["retrieved"][0]["gold"] is True
    assert {h["path"] for h in first["retrieved"]} == {str(sample_corpus / rows[6]["path"])}  # only its document


def test_whole_file_gold_keeps_ndcg_within_one():
    from rag.evaluate import gold_pages, score

    class Hit:
        def __init__(self, path, page):
            self.path, self.page, self.score = path, page, 1.0

    q = Question("a", "q", [("/r.pdf", None)])
    hits = [Hit("/r.pdf", p) for p in (1, 2, 3)] + [Hit("/x", 1)]
    n = gold_pages(q, lambda path: 3)
    assert n == 3 and score(q, "corpus", "hybrid", hits, n_gold=n).ndcg5 == 1.0
    assert gold_pages(Question("b", "q", [("/r.pdf", None), ("/r.pdf", 2), ("/s.png", 1)]), lambda p: 3) == 4


def test_sample_questions_shape_utf16_and_wrong_root(tmp_path, sample_corpus):
    qa = sample_corpus.parent / "sample-questions.jsonl"
    questions = load_questions(qa, sample_corpus, require_files=True)
    assert questions[0].gold == [(str(sample_corpus / "invoices/bluefin-office-supply-invoice.pdf"), 1)]
    with pytest.raises(EvalDataError, match="pass --root"):
        load_questions(qa, require_files=True)
    (tmp_path / "u16.jsonl").write_bytes('{"question": "x", "gold_page": "a.pdf"}\n'.encode("utf-16"))
    with pytest.raises(EvalDataError, match="not UTF-8 JSON lines"):
        load_questions(tmp_path / "u16.jsonl")


def test_report_folder_is_checked_before_evaluating(tmp_path, sample_corpus):
    result = CliRunner().invoke(cli, ["eval", str(sample_corpus.parent / "sample-questions.jsonl"), "--root",
                                      str(sample_corpus), "--report", str(tmp_path / "no" / "r.jsonl"),
                                      "--index", str(tmp_path / "missing-index")])
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output
