"""The candidate lists fusion works on, collected once per eval question (bench/fusion_sweep.py re-fuses them).

    items = collect("funsd", Path("/work/evalcache"))   # -> [Item, ...], one per question and scope
    items[0].dense_pages(100)    # page id -> cosine of its best passage among the 100 nearest passages

Each Item holds what `Retriever.search_modes` fuses, taken DEPTH deep so a smaller candidate depth
is a truncation: the nearest passages (page id, cosine) in order, the bm25 pages (page id, bm25)
best first, the page-structure facts' shares, and which page ids are gold. The index is copied to
a temporary folder first (opening an index may write SQLite's side files; shared indexes stay
untouched). Collected lists are cached in bench/.cache/fusion-<dataset>-<key>.json, keyed on the
index file and the query code that shapes them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EVAL = Path(os.environ.get("PAGERAG_EVAL") or REPO.parent / "shared" / "eval")
DEPTH = 300  # passages and pages taken per question; sweeps try depths up to this
# the code whose change alters the candidate lists (the cache is rebuilt when it changes)
SHAPERS = ("rag/query.py", "index/spelling.py", "index/structure.py", "index/words.py", "bench/fusion_data.py")


@dataclass
class Item:
    dataset: str
    id: str
    scope: str  # corpus | document
    dense: list[tuple[int, float]]  # (page id, cosine) per passage, nearest first
    lexical: list[tuple[int, float]]  # (page id, bm25, higher better), best first
    facts: dict[int, float]  # page id -> share of the structure facts the question names that it holds
    gold: list[int]  # page ids that count as a hit
    # bm25 pages for the question with every other content word left out (`weakened`): a stand-in for a
    # collection whose wording differs from the questions', where bm25 is the weaker half
    weak: list[tuple[int, float]] = field(default_factory=list)

    def dense_pages(self, n: int) -> dict[int, float]:
        """page id -> cosine of its best passage among the n nearest (as Retriever.dense)."""
        best: dict[int, float] = {}
        for page, score in self.dense[:n]:
            if score > best.get(page, -2.0):
                best[page] = score
        return best

    def lexical_pages(self, n: int, weak: bool = False) -> dict[int, float]:
        return dict((self.weak if weak else self.lexical)[:n])


def weakened(question: str) -> str:
    """The question without every second content word (the first kept): bm25 then misses words a page holds,
    as it does when a collection words things otherwise than its questions ('revenue' for 'net sales').
    'What is the total on the ACME invoice?' -> 'What is the total on the  invoice?'"""
    from rag.query import STOPWORDS, _TOKEN

    seen = [0]

    def drop(m):
        word = m.group()
        if word.lower() in STOPWORDS or (len(word) == 1 and not word.isdigit()):
            return word
        seen[0] += 1
        return word if seen[0] % 2 else ""

    return _TOKEN.sub(drop, question)


def _key(index: Path) -> str:
    h = hashlib.sha256()
    st = (index / "index.db").stat()
    h.update(f"{index.resolve()} {st.st_size} {st.st_mtime_ns} {DEPTH}".encode())
    for name in SHAPERS:
        h.update((REPO / name).read_bytes())
    return h.hexdigest()[:12]


def collect(ds: str, cache: Path, refresh: bool = False) -> list[Item]:
    """Every question of `ds` (and, when it names a document, the same question within it) -> Item."""
    index = cache / ds
    stored = HERE / ".cache" / f"fusion-{ds}-{_key(index)}.json"
    if stored.exists() and not refresh:
        return [_item(d) for d in json.loads(stored.read_text())]
    with tempfile.TemporaryDirectory(prefix="fusion-") as tmp:
        copy = Path(tmp) / ds
        shutil.copytree(index, copy, ignore=shutil.ignore_patterns("*-wal", "*-shm", "write.lock"))
        items = _collect(ds, copy)
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_text(json.dumps([asdict(i) for i in items]))
    return items


def _item(d: dict) -> Item:
    return Item(d["dataset"], d["id"], d["scope"], [tuple(x) for x in d["dense"]], [tuple(x) for x in d["lexical"]],
                {int(p): s for p, s in d["facts"].items()}, d["gold"], [tuple(x) for x in d["weak"]])


def _collect(ds: str, folder: Path) -> list[Item]:
    from index.errors import NotIndexed
    from index.store import Index
    from rag.evaluate import _is_gold, load_questions
    from rag.query import clipped, content, fts_match
    from rag.retrieve import Retriever

    idx = Index.open(folder)
    retriever = Retriever(idx, parallel=False)
    pages = {r[0]: (r[1], r[2]) for r in idx.db.execute(
        "SELECT p.id, d.path, p.page_no FROM pages p JOIN documents d ON d.id = p.doc_id")}
    items = []
    for q in load_questions(EVAL / ds / "qa.jsonl", EVAL / ds):
        gold = sorted(p for p, (path, no) in pages.items() if _is_gold(path, no, q.gold))
        question = clipped(q.question)
        for scope in ("corpus", "document"):
            if scope == "document" and not q.document:
                continue
            try:
                doc_ids = idx.documents_under(q.document) if scope == "document" else None
            except NotIndexed:
                doc_ids = []
            scores, ids = idx.nearest(retriever.encode(content(question)), DEPTH, doc_ids)
            page_of = idx.pages_of_chunks([int(i) for i in ids if i >= 0])
            dense = [(page_of[c], float(s)) for c, s in zip(ids.tolist(), scores.tolist()) if c in page_of]
            match = fts_match(question, retriever.respell(question))
            lexical = [(p, float(s)) for p, s in idx.lexical(match, DEPTH, doc_ids)] if match else []
            weak_q = weakened(question)
            match = fts_match(weak_q, retriever.respell(weak_q))
            weak = [(p, float(s)) for p, s in idx.lexical(match, DEPTH, doc_ids)] if match else []
            items.append(Item(ds, q.id, scope, dense, lexical, retriever.structure(question, doc_ids), gold, weak))
    idx.close()
    return items
