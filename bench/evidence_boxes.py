"""Evidence on the page: does the region pagerag boxes hold the gold answer? (FUNSD, ../shared/eval)

    .venv/bin/python bench/evidence_boxes.py [--index bench/.cache/eval-funsd-auto]

For every FUNSD question, on its gold page (the index's stored OCR words), the first
region `rag.locate.locate` returns is compared with the gold answer's box
(`answer_box_xyxy`, page pixels): a hit by IoU >= 0.5, and a hit by the gold box's
centre lying inside the region. Four ways to ask:

- answer: the gold answer text, the question as context (what `ask` boxes for a cited value);
- answer, no context: the answer text alone;
- answer, second reading: as the first, and where the stored words hold no good match,
  the page read again by the other OCR engine (`rag.reread`, cached in the index folder:
  the first run OCRs those pages, ~150 of the 190);
- question only: the question alone (what `search` highlighting shows), no answer: the value
  beside the label of the field it names, else its words.

The parameters of rag/locate.py (and rag/spans.py, fields.py, terms.py) were set on these questions; to show they are not fitted to
single ones, "either" is also given for two halves split by document (a hash of the page's
name), each half's figure from the same parameters. `--dump FILE` writes one JSON line per
question and way that missed: the gold text and box, the stored words inside the gold box
(and the second reading's, where cached), and what was picked (text, box, how, score).

Builds the index with `pagerag index build` when it is missing (about 4 minutes, 199 pages).
The eval data is research-only: it is read in place, never copied into the repo.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from eval_retrieval import EVAL, PAGERAG, REPO  # noqa: E402

from index.store import Index  # noqa: E402
from rag.highlight import find  # noqa: E402
from rag.locate import locate  # noqa: E402


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centre_inside(gold, box) -> bool:
    cx, cy = (gold[0] + gold[2]) / 2, (gold[1] + gold[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def half(page: str) -> int:
    """0 or 1: which half of the documents a page belongs to (stable: a hash of its name)."""
    return int(hashlib.sha256(page.encode()).hexdigest(), 16) % 2


def words_inside(words, gold, width: int, height: int) -> str:
    """The words whose centre lies in the gold box (page pixels), in reading order."""
    return " ".join(w.text for w in words if gold[0] <= (w.x0 + w.x1) / 2 * width <= gold[2]
                    and gold[1] <= (w.y0 + w.y1) / 2 * height <= gold[3])


def cached_rereading(index: Path, sha256: str) -> list | None:
    """The second reading of a document's first page, if the bench (or pagerag) has made it."""
    from index.words import Word

    try:
        with sqlite3.connect(index / "rereads.db") as db:
            row = db.execute("SELECT words FROM rereads WHERE key LIKE ?", (f"{sha256}:1:%",)).fetchone()
    except sqlite3.Error:
        return None
    return [Word(*w) for w in json.loads(row[0])] if row else None


def ensure_index(index: Path, folder: Path) -> None:
    if (index / "index.db").exists():
        return
    pages = [str(folder / row["page"]) for row in load_jsonl(folder / "corpus.jsonl")]
    print(f"building {index} from {len(pages)} FUNSD pages ...", file=sys.stderr)
    subprocess.run([*PAGERAG, "index", "build", *pages, "--index", str(index)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=HERE / ".cache" / "eval-funsd-auto")
    ap.add_argument("--limit", type=int, default=0, help="only the first N questions")
    ap.add_argument("--misses", type=int, default=0, help="print this many misses of the answer mode")
    ap.add_argument("--dump", type=Path, help="write every miss as a JSON line here (gold, words there, picked)")
    args = ap.parse_args()
    folder = EVAL / "funsd"
    ensure_index(args.index, folder)
    idx = Index.open(args.index)
    qas = load_jsonl(folder / "qa.jsonl")[:args.limit or None]
    ways = {"answer (question as context)": lambda qa: (qa["answer"], "answer", qa["question"], False),
            "answer alone": lambda qa: (qa["answer"], "answer", None, False),
            "answer (question as context), second reading when missed":
                lambda qa: (qa["answer"], "answer", qa["question"], True),
            "question only (search highlight)": lambda qa: (qa["question"], "query", None, False)}
    rows = {name: {"iou": 0, "centre": 0, "either": 0, "none": 0, "ms": [], "halves": [[0, 0], [0, 0]]}
            for name in ways}
    misses, dump = [], []
    for qa in qas:
        page = idx.page(str((folder / qa["gold_page"]).resolve()), 1)
        words = idx.page_words(page["id"])
        gold = qa["answer_box_xyxy"]
        h = half(qa["gold_page"])
        for name, way in ways.items():
            text, kind, context, reread = way(qa)
            t0 = time.perf_counter()
            regions = (find(idx, page["id"], text, kind=kind, context=context) if reread
                       else locate(words, text, kind=kind, context=context))
            rows[name]["ms"].append(1000 * (time.perf_counter() - t0))
            rows[name]["halves"][h][0] += 1
            box = regions[0].pixels(page["width"], page["height"]) if regions else None
            hit_iou, hit_centre = (iou(box, gold) >= 0.5, centre_inside(gold, box)) if box else (False, False)
            rows[name]["none"] += not regions
            rows[name]["iou"] += hit_iou
            rows[name]["centre"] += hit_centre
            rows[name]["either"] += hit_iou or hit_centre
            rows[name]["halves"][h][1] += hit_iou or hit_centre
            if hit_iou or hit_centre:
                continue
            if name.startswith("answer (") and regions:
                misses.append((qa, regions[0].text, box))
            if args.dump:
                second = cached_rereading(args.index, idx.document(page["path"])["sha256"])
                dump.append({"id": qa["id"], "way": name, "question": qa["question"], "answer": qa["answer"],
                             "page": qa["gold_page"], "gold_box": gold,
                             "stored_words_there": words_inside(words, gold, page["width"], page["height"]),
                             "second_reading_there": None if second is None else
                             words_inside(second, gold, page["width"], page["height"]),
                             "picked": regions[0].text if regions else None, "picked_box": box,
                             "how": regions[0].how if regions else None,
                             "score": regions[0].score if regions else None,
                             "iou": round(iou(box, gold), 3) if box else 0.0})
    n = len(qas)
    print(f"FUNSD: {n} questions on {len({q['gold_page'] for q in qas})} pages; index {args.index}\n")
    print("| boxes from | IoU ≥ 0.5 | gold centre inside | either | either, documents' half A / half B "
          "| no region | ms/question p50 / max |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        (na, ha), (nb, hb) = r["halves"]
        print(f"| {name} | {r['iou'] / n:.3f} | {r['centre'] / n:.3f} | {r['either'] / n:.3f} "
              f"| {ha / max(na, 1):.3f} / {hb / max(nb, 1):.3f} | {r['none'] / n:.3f}"
              f" | {statistics.median(r['ms']):.1f} / {max(r['ms']):.1f} |")
    for qa, text, box in misses[:args.misses]:
        print(json.dumps({"answer": qa["answer"], "picked": text, "box": box, "gold": qa["answer_box_xyxy"],
                          "page": qa["gold_page"]}), file=sys.stderr)
    if args.dump:
        args.dump.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dump))
        print(f"\n{len(dump)} misses written to {args.dump}", file=sys.stderr)


if __name__ == "__main__":
    main()
