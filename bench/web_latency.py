"""The web app's server-side latency: search, page view, page image with boxes (FUNSD index).

    .venv/bin/python bench/web_latency.py [--index bench/.cache/eval-funsd-auto] [-n 100]

Requests go through the ASGI app in-process (Starlette's test client: routing, view,
template or JSON, no network), the app warmed like `pagerag serve` warms it. Baselines
from the same run: `Retriever.search` alone for search, and decoding the page file alone
for images. Image requests are timed cold (first request for the page: read, scale, draw,
encode) and warm (served from the app's cache). Targets: warm search <= 100 ms, page image
with boxes <= 300 ms.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from evidence_boxes import EVAL, ensure_index, load_jsonl  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - t0)


def row(name: str, ms: list[float], base: list[float] | None = None) -> str:
    ms = sorted(ms)
    p50, p95 = statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    cells = f"| {name} | {p50:.1f} ms | {p95:.1f} ms |"
    if base:
        base = sorted(base)
        b50, b95 = statistics.median(base), base[min(len(base) - 1, int(0.95 * len(base)))]
        cells += f" {p50 / b50:.2f} / {p95 / b95:.2f} |"
    else:
        cells += " |"
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=HERE / ".cache" / "eval-funsd-auto")
    ap.add_argument("-n", type=int, default=100, help="questions (and pages) to time")
    args = ap.parse_args()
    folder = EVAL / "funsd"
    ensure_index(args.index, folder)

    from PIL import Image
    from starlette.testclient import TestClient

    from cli.web.app import WebState, create_app
    from index.store import Index
    from rag.assistant import AskSettings
    from rag.settings import ModelSettings

    state = WebState(Index.open(args.index), ModelSettings(), AskSettings())
    state.warm()
    client = TestClient(create_app(state))
    qas = load_jsonl(folder / "qa.jsonl")[:args.n]
    questions = [qa["question"] for qa in qas]

    base_search = [timed(lambda q=q: state.retriever.search(q, 10)) for q in questions]
    search_json = [timed(lambda q=q: client.get("/search.json", params={"q": q})) for q in questions]
    search_html = [timed(lambda q=q: client.get("/search", params={"q": q})) for q in questions]

    pages = []  # (page id, path, answer) for distinct gold pages
    for qa in qas:
        row_ = state.index.page(str((folder / qa["gold_page"]).resolve()), 1)
        if row_["id"] not in {p[0] for p in pages}:
            pages.append((row_["id"], row_["path"], qa["answer"]))
    base_decode = [timed(lambda p=p: Image.open(p).convert("RGB")) for _, p, _ in pages]
    view = [timed(lambda i=i, a=a: client.get(f"/page/{i}.json", params={"q": a})) for i, _, a in pages]
    cold = [timed(lambda i=i, a=a: client.get(f"/page/{i}/image", params={"q": a})) for i, _, a in pages]
    warm = [timed(lambda i=i, a=a: client.get(f"/page/{i}/image", params={"q": a})) for i, _, a in pages]
    thumbs = [timed(lambda i=i, a=a: client.get(f"/page/{i}/image", params={"w": 220, "q": a})) for i, _, a in pages]

    print(f"FUNSD index {args.index}: {len(questions)} questions, {len(pages)} pages\n")
    print("| request (server-side, in-process) | p50 | p95 | ratio to baseline (p50 / p95) |")
    print("|---|---|---|---|")
    print(row("baseline: Retriever.search alone, k = 10", base_search))
    print(row("search, JSON (/search.json?q=)", search_json, base_search))
    print(row("search, HTML page", search_html, base_search))
    print(row("baseline: decode the page file alone", base_decode))
    print(row("page view with evidence boxes, JSON", view))
    print(row("page image 1100 px with boxes, cold", cold, base_decode))
    print(row("page image 1100 px with boxes, cached", warm, base_decode))
    print(row("thumbnail 220 px with boxes, cold", thumbs, base_decode))


if __name__ == "__main__":
    main()
