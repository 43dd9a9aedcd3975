"""OCR on the dev sets: turned pages (orientation table) and what OCR settings do to retrieval (quality ablation).

    PAGERAG_EVAL=../shared/eval .venv/bin/python bench/ocr_eval.py [--only orientation|quality] [--pages 24]

Every page variant is OCR'd once into bench/.cache/ocr/<variant>/<dataset>.json (with the
CPU seconds it took: OCR process and its tesseract children, so other people's load moves
it little) and scored in memory by bench/ocr_cache.py's lexical search, which is the code
path of `pagerag search --mode lexical`. A second run prints from the cache; the cache is
keyed by variant name only, so delete bench/.cache/ocr/<variant> after changing what that
variant runs (`tesseract` is whatever index/ocr.py does now).

orientation: `--pages` pages per dev set (the gold pages of randomly drawn questions), each
turned 0/90/180/270 degrees at run time (never stored), read by index.orient.read_upright.
Recall@5 is over the questions on those pages, searched among the whole set: the other
pages keep their upright reading (sroie, funsd: the `tesseract` cache, filled on first use),
or, for mmlongbench_doc, whose 412 dense pages take too long to OCR, only the drawn pages.
The cost is the CPU per page against reading the upright page once without detection.

quality: the whole of sroie and funsd and `--pages` drawn mmlongbench_doc pages, one row per
OCR variant (bench/ocr_variants.py), lexical Recall@1/@5 and CPU per page against the baseline
(Tesseract, --psm 3, the image as read), timed page by page in turn in one process:
    PAGERAG_EVAL=../shared/eval nice .venv/bin/python bench/ocr_eval.py --only quality --cost-pages 10
"""
from __future__ import annotations

import argparse
import random
import sys

from ocr_cache import EVAL, OcrCache, Timed, eval_pages, gt_texts, load_jsonl, recall, text_of

from index.orient import looks_upright
from index.words import Word

TURNS = (0, 90, 180, 270)
FULL_SETS = ("sroie", "funsd")  # cheap enough to OCR whole for distractors and the ablation


def image_size(ds: str, page: str) -> tuple[int, int]:
    from index.sources import read_image

    return read_image(EVAL / ds / page, "image", 1, 200).size


def drawn_pages(ds: str, n: int) -> list[str]:
    """Gold pages of randomly drawn (seeded) single-page questions, n distinct pages."""
    qas = [q for q in load_jsonl(EVAL / ds / "qa.jsonl") if not isinstance(q["gold_page"], list)]
    random.Random(7).shuffle(qas)
    pages: list[str] = []
    for q in qas:
        if q["gold_page"] not in pages:
            pages.append(q["gold_page"])
        if len(pages) == n:
            break
    return pages


def orientation(datasets: list[str], n: int, jobs: int) -> list[dict]:
    rows = []
    for ds in datasets:
        pages = drawn_pages(ds, n)
        base: dict[str, str] = {}
        if ds in FULL_SETS:  # the other pages as read before this work (cheap: cached once)
            cache = OcrCache(ds, "baseline")
            cache.fill(eval_pages(ds), Timed("baseline"), jobs)
            base = {p: text_of(e) for p, e in cache.data.items()}
        plain = OcrCache(ds, "tesseract")
        plain.fill(pages, Timed("tesseract"), jobs)
        plain_cpu = sum(plain.data[p]["cpu"] for p in pages) / len(pages)
        for turn in TURNS:
            cache = OcrCache(ds, f"orient{turn}")
            cache.fill(pages, Timed(f"orient{turn}"), jobs)
            texts = dict(base) | {p: text_of(cache.data[p]) for p in pages}
            r = recall(ds, texts, ks=(5,), only=set(pages))
            right = sum(cache.data[p]["rotation"] == turn for p in pages)  # turned counter-clockwise, undone clockwise
            cpu = sum(cache.data[p]["cpu"] for p in pages) / len(pages)
            rows.append({"dataset": ds, "turn": turn, "pages": len(pages), "questions": r["n"], "R@5": r[5],
                         "detected": right / len(pages), "cpu_per_page": cpu, "ratio": cpu / plain_cpu})
    return rows


def upright_overhead(datasets: list[str], jobs: int) -> list[dict]:
    """Detection's cost on upright pages, whole sets: the extra work on pages whose first reading looks poor."""
    rows = []
    for ds in datasets:
        first = OcrCache(ds, "tesseract")
        first.fill(eval_pages(ds), Timed("tesseract"), jobs)
        poor = [p for p, e in first.data.items()
                if not looks_upright([Word(*w) for w in e["words"]], image_size(ds, p))]
        cache = OcrCache(ds, "recheck")
        cache.fill(poor, Timed("recheck"), jobs)
        base_cpu = sum(e["cpu"] for e in first.data.values())
        extra = sum(cache.data[p]["cpu"] for p in poor)
        rows.append({"dataset": ds, "turn": "0 (whole set)", "pages": len(first.data), "checked": len(poor),
                     "turned": sum(bool(cache.data[p]["tried"]) for p in poor), "ratio": (base_cpu + extra) / base_cpu})
    return rows


def print_orientation(rows: list[dict]) -> None:
    print("| dev set | turned by | pages (questions) | R@5 | rotation found | CPU s/page | ratio to upright, no detection |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "R@5" in r:
            print(f"| {r['dataset']} | {r['turn']}° | {r['pages']} ({r['questions']}) | {r['R@5']:.3f} | "
                  f"{r['detected']:.2f} | {r['cpu_per_page']:.2f} | {r['ratio']:.2f} |")
        else:
            print(f"| {r['dataset']} | 0°, whole set | {r['pages']} | | {r['checked']} looked at again, "
                  f"{r['turned']} tried turned | | {r['ratio']:.3f} |")


def paired_cost(ds: str, pages: list[str], variants: list[str]) -> dict[str, float]:
    """CPU per page of each variant, measured page by page in turn in this process (baseline first)."""
    timers = {v: Timed(v) for v in variants}
    cpu = dict.fromkeys(variants, 0.0)
    for page in pages:
        for v in variants:
            cpu[v] += timers[v](str(EVAL / ds / page))["cpu"]
    return {v: c / len(pages) for v, c in cpu.items()}


def quality(variants: list[str], jobs: int, cost_pages: int, sample: int) -> list[dict]:
    """Per dev set and variant: lexical R@1/@5 over that variant's OCR text, and CPU per page timed
    in turn with the first variant (the baseline) on `cost_pages` pages. sroie and funsd whole;
    mmlongbench_doc on the `sample` drawn pages (questions on them, searched among them only)."""
    rows = []
    for ds in (*FULL_SETS, "mmlongbench_doc"):
        pages = eval_pages(ds) if ds in FULL_SETS else drawn_pages(ds, sample)
        only = None if ds in FULL_SETS else set(pages)
        gt = gt_texts(ds)
        r = recall(ds, {p: gt[p] for p in pages}, only=only)
        rows.append({"dataset": ds, "variant": "true text (no OCR)", "pages": len(pages), "R@1": r[1], "R@5": r[5]})
        cost = paired_cost(ds, pages[::max(1, len(pages) // cost_pages)][:cost_pages], variants)
        for v in variants:
            cache = OcrCache(ds, v)
            cache.fill(pages, Timed(v), jobs)
            r = recall(ds, {p: text_of(cache.data[p]) for p in pages}, only=only)
            rows.append({"dataset": ds, "variant": v, "pages": len(pages), "R@1": r[1], "R@5": r[5],
                         "cpu_per_page": cost[v], "ratio": cost[v] / cost[variants[0]]})
    return rows


def print_quality(rows: list[dict]) -> None:
    print("| dev set | OCR | pages | lexical R@1 | R@5 | CPU s/page | ratio to the baseline |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cost = f"{r['cpu_per_page']:.2f} | {r['ratio']:.2f}" if "ratio" in r else " | "
        print(f"| {r['dataset']} | {r['variant']} | {r['pages']} | {r['R@1']:.3f} | {r['R@5']:.3f} | {cost} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["orientation", "overhead", "quality"])
    ap.add_argument("--pages", type=int, default=24,
                    help="pages per dev set for the orientation table; mmlongbench_doc's sample in the quality table")
    ap.add_argument("--datasets", nargs="+", default=["sroie", "funsd", "mmlongbench_doc"])
    ap.add_argument("--variants", nargs="+", default=["baseline", "psm3up", "psm6up", "psm6cols", "tesseract"],
                    help="bench/ocr_variants.py names; the first is the cost baseline")
    ap.add_argument("--cost-pages", type=int, default=12,
                    help="pages per set timed variant by variant, in turn, for the cost column")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args()
    if not EVAL.exists():
        sys.exit(f"no eval data at {EVAL} (set PAGERAG_EVAL)")
    rows = []
    if args.only in (None, "orientation"):
        rows += orientation(args.datasets, args.pages, args.jobs)
    if args.only in (None, "overhead"):
        rows += upright_overhead([d for d in args.datasets if d in FULL_SETS], args.jobs)
    if rows:
        print_orientation(rows)
        print()
    if args.only in (None, "quality"):
        print_quality(quality(args.variants, args.jobs, args.cost_pages, args.pages))


if __name__ == "__main__":
    main()
