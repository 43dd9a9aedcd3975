"""Retrieval quality on a question set: Recall@1/5/10, MRR and nDCG@5 over pages.

    questions = load_questions(Path("eval/sroie/qa.jsonl"))            # root: the file's folder
    result = evaluate(Retriever(Index.open(".pagerag")), questions, modes=("hybrid", "dense"))
    result.rows       # one Row per scope x group x mode
    result.outcomes   # one Outcome per question x scope x mode: the gold rank and what was retrieved

The data format (that of ../shared/eval): `qa.jsonl` holds one question a line, UTF-8,
`{"id", "question", "gold_page": PATH or [PATH, ...], "doc_id"?, "doc_scoped_wording"?}`
(or `{"question", "path", "page"}` as in corpora/sample-questions.jsonl),
paths relative to the root folder (default: the folder of qa.jsonl); a PATH may end in
`#page=N` to name page N of a multi-page file, else any page of the file counts. A
`corpus.jsonl` beside it (`{"page": PATH, "doc_id"?}` per line) tells which files make up
each document: a question with a `doc_id` is then also searched within its document only.

A question is a hit at k when any of its gold pages is among the first k pages; its
reciprocal rank is 1/rank of the first gold page (0 past the k retrieved); nDCG@5 counts
every gold page in the top 5, against the ideal of all gold pages first (a whole-file gold
counts each of its indexed pages, so nDCG stays within 0..1). E.g. gold
{a, b} and retrieved [x, a, y, b, z]: R@1 0, R@5 1, RR 0.5,
nDCG@5 = (1/log2(3) + 1/log2(5)) / (1 + 1/log2(3)) = 0.651.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from index.errors import NotIndexed, PageragError
from index.given_paths import on_disk, path_key
from index.stored_paths import shown

from .retrieve import MODES, Retriever

CUTOFFS = (1, 5, 10)
SCOPES = ("corpus", "document")


class EvalDataError(PageragError):
    """A question file that is not in the expected format."""


@dataclass
class Question:
    id: str
    question: str
    gold: list[tuple[str, int | None]]  # (absolute path, page; None: any page of the file)
    document: list[str] | None = None  # the files of its document, for within-document retrieval
    groups: list[str] = field(default_factory=list)  # "single-page" | "multi-page", "doc-scoped wording" ...


@dataclass
class Outcome:
    """One question under one scope and mode: where its first gold page came, and what came."""

    id: str
    question: str
    scope: str  # corpus | document
    mode: str
    rank: int | None  # 1-based rank of the first gold page, None if not retrieved
    ndcg5: float
    gold: list[str]
    retrieved: list[dict]  # [{"path", "page", "score", "gold"}], best first
    error: str | None = None  # why the question could not be searched (e.g. its document is not indexed)


@dataclass
class Row:
    scope: str
    group: str
    mode: str
    n: int
    recall: dict[int, float]  # k -> Recall@k
    mrr: float
    ndcg5: float


@dataclass
class EvalResult:
    qa: str
    index: str
    k: int
    rows: list[Row]
    outcomes: list[Outcome]

    def row(self, scope: str, group: str, mode: str) -> Row | None:
        return next((r for r in self.rows if (r.scope, r.group, r.mode) == (scope, group, mode)), None)


def _gold(entry, root: Path, where: str) -> tuple[str, int | None]:
    if not isinstance(entry, str) or not entry:
        raise EvalDataError(f"{where}: gold_page must be a path or a list of paths, got {entry!r}")
    path, marked, page = entry.partition("#page=")
    if marked and not (page.isascii() and page.isdigit() and int(page) >= 1):  # not '', '0', '-1', '²'
        raise EvalDataError(f"{where}: '{entry}' should end in #page=N with N a page number (1, 2, ...)")
    return str((root / path).resolve()), int(page) if page else None


def _documents(root: Path) -> dict[str, list[str]]:
    """doc_id -> the absolute paths of its files, from corpus.jsonl beside the questions.
    Raises EvalDataError naming the line of anything malformed."""
    docs: dict[str, list[str]] = {}
    corpus = root / "corpus.jsonl"
    if not corpus.exists():
        return docs
    for n, line in enumerate(_read_lines(corpus), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise EvalDataError(f"{corpus}, line {n}: not JSON ({e})") from None
        if not isinstance(row, dict):
            raise EvalDataError(f"{corpus}, line {n}: each line should be an object {{\"page\": PATH, \"doc_id\": ID}}")
        if row.get("doc_id") and isinstance(row.get("page"), str) and row["page"]:
            docs.setdefault(str(row["doc_id"]), []).append(str((root / row["page"]).resolve()))
    return docs


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 JSON-lines file (a leading BOM dropped); EvalDataError if it cannot be read as one."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EvalDataError(f"{path} is not UTF-8 JSON lines (byte {e.start} is not UTF-8; "
                            "a UTF-16 file starts with \\xff\\xfe): save it as UTF-8") from None
    except OSError as e:
        raise EvalDataError(f"cannot read {path}: {e.strerror or e}") from None
    return text.splitlines()


def load_questions(qa_path: Path, root: Path | None = None, require_files: bool = False) -> list[Question]:
    """Read a qa.jsonl; raises EvalDataError naming the line of anything malformed, and with
    `require_files` when none of the gold files exists under `root` (the wrong root)."""
    qa_path = Path(qa_path)
    root = Path(root or qa_path.parent).resolve()
    docs = _documents(root)
    questions = []
    first_line: dict[str, int] = {}  # id -> the line that used it first
    for n, line in enumerate(_read_lines(qa_path), 1):
        if not line.strip():
            continue
        where = f"{qa_path}, line {n}"
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as e:
            raise EvalDataError(f"{where}: not JSON ({e})") from None
        if isinstance(item, dict) and "gold_page" not in item and isinstance(item.get("path"), str):
            item = {**item, "gold_page": _path_page(item, where)}  # corpora/sample-questions.jsonl's shape
        if not isinstance(item, dict) or not str(item.get("question", "")).strip() or "gold_page" not in item:
            raise EvalDataError(f"{where}: each line needs a \"question\" and a \"gold_page\" "
                                "(or a \"path\" and a \"page\")")
        if not isinstance(item["question"], str):
            raise EvalDataError(f"{where}: \"question\" should be text, got {item['question']!r}")
        qid = str(item.get("id", n))
        if qid in first_line:
            raise EvalDataError(f"{where}: id {qid!r} is already used on line {first_line[qid]}; "
                                "each question needs its own id (the report and the groups go by it)")
        first_line[qid] = n
        raw = item["gold_page"] if isinstance(item["gold_page"], list) else [item["gold_page"]]
        gold = list(dict.fromkeys(_gold(g, root, where) for g in raw))
        if not gold:
            raise EvalDataError(f"{where}: gold_page is empty")
        document = None
        if item.get("doc_id") is not None:
            doc = str(item["doc_id"])
            document = docs.get(doc) or ([str((root / doc).resolve())] if on_disk(root / doc) else None)
        groups = ["multi-page" if len(gold) > 1 else "single-page"]
        if "doc_scoped_wording" in item:
            groups.append("doc-scoped wording" if item["doc_scoped_wording"] else "other wording")
        questions.append(Question(qid, " ".join(item["question"].split()), gold,
                                  document, groups))
    if not questions:
        raise EvalDataError(f"{qa_path} holds no questions")
    if require_files and not any(on_disk(path) for q in questions for path, _ in q.gold):
        raise EvalDataError(f"none of the gold files of {qa_path} is under {root}: pass --root, the folder "
                            f"its paths are relative to (e.g. {questions[0].gold[0][0]} does not exist)")
    return questions


def gold_not_indexed(index, questions: Sequence[Question]) -> list[tuple[str, str]]:
    """(question id, gold) for each gold page the index does not hold: its file is not indexed, or the
    page is past the file's indexed pages. Such a gold can never be retrieved, so it scores as a miss."""
    pages: dict[str, int | None] = {}
    out = []
    for q in questions:
        for path, page in q.gold:
            if path not in pages:
                row = index.find_document(path)
                pages[path] = int(row["n_pages"]) if row is not None else None
            n = pages[path]
            if n is None or (page is not None and page > n):
                out.append((q.id, path if page is None else f"{path}#page={page}"))
    return out


def missing_note(missing: list[tuple[str, str]]) -> str:
    """What to say of the gold pages `gold_not_indexed` found: how many, an example, and what to do, telling
    gold files that do not exist (a wrong --root, a typo) from files that exist but are not indexed."""
    def file_of(gold: str) -> str:
        path, marked, page = gold.rpartition("#page=")
        return path if marked and page.isdigit() else gold

    gone = [(qid, gold) for qid, gold in missing if on_disk(file_of(gold)) is None]
    qid, gold = missing[0]
    note = f"{len(missing)} gold page(s) are not in the index (e.g. question {qid}: {shown(gold)}); they count as misses."
    if gone:
        note += (f" {len(gone)} name a file that does not exist (e.g. question {gone[0][0]}: {shown(gone[0][1])}):"
                 " check the paths and --root.")
    if len(gone) < len(missing):
        note += f" {len(missing) - len(gone)} name an existing file: index it, or check the page numbers."
    return note


def _path_page(item: dict, where: str) -> str:
    """{"path": "a.pdf", "page": 2} -> "a.pdf#page=2" (no page: any page of the file)."""
    page = item.get("page")
    if page is None:
        return item["path"]
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise EvalDataError(f"{where}: \"page\" should be a page number (1, 2, ...), got {page!r}")
    return f"{item['path']}#page={page}"


def _is_gold(path: str, page: int, gold: list[tuple[str, int | None]]) -> bool:
    """Whether a hit is a gold page; paths compared by key (a gold file written on macOS is NFD, the index
    holds what Linux read: `index.given_paths.path_key`)."""
    return any(path_key(path) == path_key(g) and (p is None or p == page) for g, p in gold)


def ndcg(relevant: list[bool], n_gold: int, k: int = 5) -> float:
    """Binary nDCG@k: [False, True, False, True] with 2 gold pages -> 0.651."""
    dcg = sum(1 / math.log2(i + 2) for i, r in enumerate(relevant[:k]) if r)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(n_gold, k)))
    return dcg / ideal if ideal else 0.0


def gold_pages(q: Question, pages_of: Callable[[str], int]) -> int:
    """How many distinct pages count as gold: a named page is one; a whole file, each of its
    `pages_of(path)` pages (at least one). [a.pdf (3 pages), a.pdf#page=2, b.png#page=1] -> 4."""
    named = {(path, page) for path, page in q.gold if page is not None}
    whole = {path for path, page in q.gold if page is None}
    n = sum(max(pages_of(path), 1) for path in whole)
    return n + sum(path not in whole for path, _ in named)


def score(q: Question, scope: str, mode: str, hits: list, error: str | None = None,
          n_gold: int | None = None) -> Outcome:
    """`n_gold`: the pages that can be hit (gold_pages), for nDCG's ideal; default one per gold entry."""
    flags = [_is_gold(h.path, h.page, q.gold) for h in hits]
    rank = flags.index(True) + 1 if True in flags else None
    return Outcome(q.id, q.question, scope, mode, rank, round(ndcg(flags, n_gold or len(q.gold)), 4),
                   [g if p is None else f"{g}#page={p}" for g, p in q.gold],
                   [{"path": h.path, "page": h.page, "score": h.score, "gold": f} for h, f in zip(hits, flags)],
                   error)


def summarise(questions: Sequence[Question], outcomes: Sequence[Outcome]) -> list[Row]:
    """Rows by scope, then group (all, then the questions' groups in order of appearance, leaving
    out a group that holds every question), then mode."""
    groups_of = {q.id: ["all", *q.groups] for q in questions}
    cells: dict[tuple[str, str, str], list[Outcome]] = {}
    for o in outcomes:
        for g in groups_of[o.id]:
            cells.setdefault((o.scope, g, o.mode), []).append(o)
    names = ["all", "single-page", "multi-page", *(g for q in questions for g in groups_of[q.id])]
    order = {name: i for i, name in enumerate(dict.fromkeys(names))}
    modes = {m: i for i, m in enumerate(dict.fromkeys(o.mode for o in outcomes))}
    rows = []
    for (scope, group, mode), os_ in sorted(cells.items(), key=lambda c: (SCOPES.index(c[0][0]), order[c[0][1]],
                                                                          modes[c[0][2]])):
        n = len(os_)
        if group != "all" and n == len(cells[(scope, "all", mode)]):
            continue
        rows.append(Row(scope, group, mode, n,
                        {k: round(sum(o.rank is not None and o.rank <= k for o in os_) / n, 4) for k in CUTOFFS},
                        round(sum(1 / o.rank for o in os_ if o.rank) / n, 4),
                        round(sum(o.ndcg5 for o in os_) / n, 4)))
    return rows


def _indexed_pages(index, path: str) -> int:
    row = index.find_document(path)
    return int(row["n_pages"]) if row is not None else 1


def evaluate(retriever: Retriever, questions: Sequence[Question], modes: Sequence[str] = MODES,
             k: int = 10, scopes: Sequence[str] = SCOPES,
             on_progress: Callable[[int], None] | None = None, qa: str = "") -> EvalResult:
    """Search every question in every mode, corpus-wide and (when it names a document) within it.

    `on_progress(n)` is called after each question with the number of questions done in that call.
    """
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
    k = max(k, max(CUTOFFS))
    outcomes: list[Outcome] = []
    for q in questions:
        n_gold = gold_pages(q, lambda path: _indexed_pages(retriever.index, path))
        for scope in scopes:
            if scope == "document" and not q.document:
                continue
            try:
                ranked = retriever.search_modes(q.question, k, modes, within=q.document if scope == "document" else None)
                outcomes.extend(score(q, scope, mode, ranked[mode], n_gold=n_gold) for mode in modes)
            except NotIndexed as e:  # its document is not in the index: a miss, with the reason
                outcomes.extend(score(q, scope, mode, [], str(e), n_gold) for mode in modes)
        if on_progress:
            on_progress(1)
    return EvalResult(qa, str(retriever.index.folder), k, summarise(questions, outcomes), outcomes)
