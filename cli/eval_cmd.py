"""`pagerag eval`: retrieval quality of an index on a question set (Recall@k, MRR, nDCG@5)."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from .common import friendly_errors, index_option, open_index, overwrite_problem, shown

MODE_CHOICES = ["hybrid", "dense", "lexical"]


def format_table(result) -> str:
    lines = [f"{'scope':<9} {'group':<19} {'mode':<8} {'n':>5} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR':>6} {'nDCG@5':>7}"]
    for r in result.rows:
        lines.append(f"{r.scope:<9} {r.group:<19} {r.mode:<8} {r.n:>5} {r.recall[1]:>6.3f} {r.recall[5]:>6.3f} "
                     f"{r.recall[10]:>6.3f} {r.mrr:>6.3f} {r.ndcg5:>7.3f}")
    return "\n".join(lines)


def _check_writable(path: Path, qa: Path) -> None:
    import os

    if path.is_dir():  # '' arrives here as '.' (click's Path)
        raise click.BadParameter(f"{path} is a folder; name the file to write, e.g. misses.jsonl", param_hint="--report")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist; create it or pick another path", param_hint="--report")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"{path} cannot be written here", param_hint="--report")
    problem = overwrite_problem(path, (qa,))
    if problem:
        raise click.BadParameter(problem, param_hint="--report")


@click.command("eval")
@click.argument("qa", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder the gold page paths are relative to [default: the folder of QA].")
@click.option("-k", "k", type=click.IntRange(10, 1000), default=10, show_default=True,
              help="Pages retrieved per question (MRR counts ranks up to k).")
@click.option("--mode", "modes", type=click.Choice(MODE_CHOICES), multiple=True,
              help="Retrieval mode(s) to measure (repeatable) [default: all three].")
@click.option("--scope", type=click.Choice(["corpus", "document", "both"]), default="both", show_default=True,
              help="Search the whole index, only each question's document (questions with a doc_id), or both.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--report", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write one JSON line per question, scope and mode: gold pages, rank, retrieved pages.")
@index_option
@friendly_errors
def eval_command(qa, root, k, modes, scope, as_json, report, index_dir):
    """Measure how well the index finds the gold pages of the questions in QA (a qa.jsonl).

    Each line of QA (UTF-8): {"id", "question", "gold_page": PATH or [PATH, ...], "doc_id"?}
    or {"question", "path", "page"}; paths relative to --root. A corpus.jsonl in --root ({"page", "doc_id"} per line) names
    the files of each document, so questions with a doc_id are also searched within it.
    """
    from rag.evaluate import SCOPES, evaluate, gold_not_indexed, load_questions, missing_note
    from rag.retrieve import Retriever

    report_failed = False
    if report:
        _check_writable(report, qa)  # before the evaluation, not after it
    questions = load_questions(qa, root, require_files=True)
    retriever = Retriever(open_index(index_dir))
    missing = gold_not_indexed(retriever.index, questions)
    if missing:
        click.echo(f"Warning: {missing_note(missing)}", err=True)
    # the bar only on a terminal: elsewhere (a log, CI) click prints its label alone, "Searching", on a line
    with click.progressbar(length=len(questions), label="Searching", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        result = evaluate(retriever, questions, modes or MODE_CHOICES, k, SCOPES if scope == "both" else (scope,),
                          on_progress=bar.update, qa=str(qa))
    if report:
        try:
            with open(report, "w") as f:
                for o in result.outcomes:
                    f.write(json.dumps(asdict(o), ensure_ascii=False) + "\n")
        except OSError as e:  # a full disk, a device: the table below still prints
            click.echo(f"Error: cannot write --report {report}: {e.strerror or e}", err=True)
            report_failed = True
    if as_json:
        click.echo(json.dumps({"qa": result.qa, "index": result.index, "k": result.k,
                               "rows": [asdict(r) for r in result.rows]}, indent=2))
    else:
        click.echo(format_table(result))
    if report_failed:
        raise SystemExit(1)
