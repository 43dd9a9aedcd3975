"""OCR each eval page once per variant into a JSON cache, and score bm25 page retrieval over it.

    cache = OcrCache("sroie", "tesseract")      # bench/.cache/ocr/tesseract/sroie.json
    cache.fill(pages, ocr_fn, jobs=2)           # OCR only the pages it lacks
    recall(dataset, {page: text})               # -> {1: R@1, 5: R@5} of lexical search

Scoring builds a temporary pagerag index holding only pages and their FTS5 rows (no
vectors) and ranks with the same query code as `pagerag search --mode lexical`, so a
variant's numbers are the numbers the real pipeline would get from that text.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EVAL = Path(os.environ.get("PAGERAG_EVAL", REPO.parent / "shared" / "eval"))
CACHE = HERE / ".cache" / "ocr"


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def eval_pages(ds: str) -> list[str]:
    """Page paths (relative to the dataset folder) of a dev set, in corpus order."""
    return [row["page"] for row in load_jsonl(EVAL / ds / "corpus.jsonl")]


def cpu_seconds() -> float:
    """CPU of this process and its exited children (pytesseract's tesseract processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class OcrCache:
    """page -> {"words": [[text, x0, y0, x1, y1, conf, line], ...], "cpu": s, **extra} for one variant."""

    def __init__(self, ds: str, variant: str):
        self.ds, self.variant = ds, variant
        self.path = CACHE / variant / f"{ds}.json"
        self.data: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, ensure_ascii=False))
        tmp.replace(self.path)

    def fill(self, pages: list[str], fn, jobs: int = 2) -> None:
        """Run `fn(absolute path) -> dict` (a picklable top-level function) on the pages not cached yet."""
        todo = [p for p in pages if p not in self.data]
        if not todo:
            return
        t0, last = time.time(), time.time()
        with ProcessPoolExecutor(jobs) as pool:
            for i, (page, out) in enumerate(zip(todo, pool.map(fn, [str(EVAL / self.ds / p) for p in todo])), 1):
                self.data[page] = out
                if time.time() - last > 60:
                    self.save()
                    last = time.time()
                    print(f"  {self.variant}/{self.ds}: {i}/{len(todo)} in {time.time() - t0:.0f}s",
                          file=sys.stderr, flush=True)
        self.save()


class Timed:
    """A variant of bench/ocr_variants.py as `fn(path) -> {"words", "cpu"}` (CPU seconds of the OCR, image read included)."""

    def __init__(self, variant: str):
        self.variant = variant

    def __call__(self, path: str) -> dict:
        from ocr_variants import VARIANTS

        t = cpu_seconds()
        out = VARIANTS[self.variant](path)
        cpu = round(cpu_seconds() - t, 3)
        words, extra = out if isinstance(out, tuple) else (out, {})
        return {"words": [[w[0], *(round(v, 4) for v in w[1:5]), round(w[5], 3), w[6]] for w in words],
                "cpu": cpu, **extra}


def text_of(entry: dict) -> str:
    from index.words import Word, page_text

    return page_text([Word(*w) for w in entry["words"]])


def rank(ds: str, texts: dict[str, str], k: int = 10) -> list[list[str]]:
    """Per question of qa.jsonl, the top-k pages by bm25 over `texts` (page -> text)."""
    from index.store import Index, NewPage
    from rag.query import fts_match

    qas = load_jsonl(EVAL / ds / "qa.jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        idx = Index.open(Path(tmp), create=True)
        pages = list(texts)
        for i, page in enumerate(pages):
            doc = idx.add_document(str(EVAL / ds / page), "-", 0, 0, "image", _title(page), 1)
            idx.add_pages([NewPage(doc, 1, 0, 0, "bench", texts[page], [], None, [])], {doc: _title(page)})
        by_path = {str(EVAL / ds / p): p for p in pages}
        rows = dict(idx.db.execute("SELECT p.id, d.path FROM pages p JOIN documents d ON d.id = p.doc_id"))
        out = []
        for qa in qas:
            match = fts_match(qa["question"])
            hits = idx.lexical(match, k) if match else []
            out.append([by_path[rows[pid]] for pid, _ in hits])
        idx.close()
    return out


def _title(page: str) -> str:
    from index.sources import humanize

    return humanize(Path(page), Path("."))


def recall(ds: str, texts: dict[str, str], ks=(1, 5), only: set[str] | None = None) -> dict[int, float]:
    """Recall@k of lexical search over `texts`; questions whose gold page is not in `texts`
    (or not in `only`, when given) are left out."""
    qas = load_jsonl(EVAL / ds / "qa.jsonl")
    ranked = rank(ds, texts, max(ks))
    hits, n = {k: 0 for k in ks}, 0
    for qa, top in zip(qas, ranked):
        gold = qa["gold_page"] if isinstance(qa["gold_page"], list) else [qa["gold_page"]]
        if not any(g in texts and (only is None or g in only) for g in gold):
            continue
        n += 1
        for k in ks:
            hits[k] += any(p in gold for p in top[:k])
    return {k: hits[k] / n if n else float("nan") for k in ks} | {"n": n}


def gt_texts(ds: str) -> dict[str, str]:
    return {row["page"]: row["text"] for row in load_jsonl(EVAL / ds / "page_text_gt.jsonl")}
