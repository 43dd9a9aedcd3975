"""int8 passages against fp32 on the eval sets: does retrieval hold when builds embed in int8?

    .venv/bin/python bench/embed_int8.py --cache /work/evalcache --work /tmp/int8-check [--eval ../shared/eval]

For each dataset of ../shared/eval whose built index is in --cache (read only, never
changed), the index is copied into --work, its passages ('title\\npassage' as the builder
embeds them) are embedded again with the ONNX encoder in fp32 and with the int8 graph
(index/onnx_export.quantize_int8), and `pagerag eval`'s metrics are computed corpus-wide
in dense and hybrid mode for: fp32 passages (the baseline, as a build before int8 made
them), int8 passages searched with fp32 queries (what pagerag does), and int8 passages
with int8 queries. No OCR runs: the pages' words come from the index. Prints one table;
`--json` keeps the figures. ~3 min of CPU for the three dev sets (2,752 passages).
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

EVAL = HERE.parent.parent / "shared" / "eval"
DATASETS = ("sroie", "funsd", "mmlongbench_doc")
THRESHOLD = 0.005  # the largest drop of R@5 or MRR on any set that counts as noise


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def passages(db_file: Path) -> tuple[list[int], list[str]]:
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT c.id, d.title, c.text FROM chunks c JOIN pages p ON p.id = c.page_id"
                          " JOIN documents d ON d.id = p.doc_id ORDER BY c.id").fetchall()
    finally:
        db.close()
    return [r[0] for r in rows], [f"{title}\n{text}" for _, title, text in rows]


def copy_with_vectors(source: Path, dest: Path, ids: list[int], vectors) -> None:
    """The index at `source` copied to `dest` with these chunk vectors; FAISS is rebuilt from them on open."""
    from index.vector_values import pack_vector

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    src = sqlite3.connect(f"file:{source / 'index.db'}?mode=ro", uri=True)
    out = sqlite3.connect(dest / "index.db")
    src.backup(out)
    src.close()
    out.executemany("UPDATE chunks SET vector = ? WHERE id = ?", [(pack_vector(v), i) for i, v in zip(ids, vectors)])
    out.commit()
    out.close()


def metrics(folder: Path, qa: Path, query_encoder) -> dict[str, dict[str, float]]:
    from index.store import Index
    from rag.evaluate import evaluate, load_questions
    from rag.retrieve import Retriever

    idx = Index.open(folder)
    try:
        result = evaluate(Retriever(idx, query_encoder), load_questions(qa), modes=("dense", "hybrid"),
                          scopes=("corpus",))
    finally:
        idx.close()
    return {r.mode: {"R@5": r.recall[5], "MRR": r.mrr, "n": r.n} for r in result.rows if r.group == "all"}


class QueriesInt8:
    """The passages' int8 encoder answering queries too (the alternative pagerag does not take)."""

    def __init__(self, encoder):
        self.encoder = encoder

    def encode_query(self, text: str):
        return self.encoder.encode([text], threads=1)[0]


def run(cache: Path, work: Path, datasets: list[str], eval_dir: Path = EVAL) -> dict:
    import numpy as np

    from index.embed import DEFAULT_MODEL, OnnxEmbedder, load_embedder

    encoder = load_embedder(DEFAULT_MODEL, passages=True)
    if not isinstance(encoder, OnnxEmbedder) or encoder.precision != "int8":
        raise SystemExit("the ONNX export of the default model, with its int8 graph, is needed")
    fp32_queries = OnnxEmbedder(encoder.name, encoder.folder, encoder.onnx_dir)
    report: dict = {}
    for ds in datasets:
        source = cache / ds
        ids, texts = passages(source / "index.db")
        c0 = _cpu()
        fp32 = encoder.encode(texts, fp32=True)
        c1 = _cpu()
        int8 = encoder.encode(texts)
        c2 = _cpu()
        cos = (fp32 * int8).sum(axis=1)
        qa = eval_dir / ds / "qa.jsonl"
        cells = {}
        for name, vectors, queries in (("fp32 passages, fp32 queries", fp32, fp32_queries),
                                       ("int8 passages, fp32 queries", int8, fp32_queries),
                                       ("int8 passages, int8 queries", int8, QueriesInt8(encoder))):
            folder = work / f"{ds}-{name.split(',')[0].replace(' ', '-')}"
            if name != "int8 passages, int8 queries":  # that one searches the folder made just before
                copy_with_vectors(source, folder, ids, vectors)
            cells[name] = metrics(folder, qa, queries)
        report[ds] = {"passages": len(texts), "cpu_fp32_s": c1 - c0, "cpu_int8_s": c2 - c1,
                      "cosine_mean": float(np.mean(cos)), "cosine_min": float(np.min(cos)), "cells": cells}
    return report


def table(report: dict) -> list[str]:
    lines = ["| set | passages | CPU-s fp32 / int8 | cosine mean / min | mode | R@5 fp32 / int8 (fp32 q.) / int8 (int8 q.)"
             " | MRR fp32 / int8 (fp32 q.) / int8 (int8 q.) |", "|---|---|---|---|---|---|---|"]
    worst = {"R@5": 0.0, "MRR": 0.0}
    for ds, r in report.items():
        c = r["cells"]
        base, ours, alt = (c["fp32 passages, fp32 queries"], c["int8 passages, fp32 queries"],
                           c["int8 passages, int8 queries"])
        for mode in ("dense", "hybrid"):
            for m in worst:
                worst[m] = min(worst[m], ours[mode][m] - base[mode][m])
            lines.append(f"| {ds} | {r['passages']} | {r['cpu_fp32_s']:.1f} / {r['cpu_int8_s']:.1f} | "
                         f"{r['cosine_mean']:.4f} / {r['cosine_min']:.4f} | {mode} | "
                         + " / ".join(f"{x[mode]['R@5']:.4f}" for x in (base, ours, alt)) + " | "
                         + " / ".join(f"{x[mode]['MRR']:.4f}" for x in (base, ours, alt)) + " |")
    verdict = "holds" if min(worst.values()) >= -THRESHOLD else "DROPS"
    lines.append(f"worst change, int8 passages with fp32 queries: R@5 {worst['R@5']:+.4f}, MRR {worst['MRR']:+.4f} "
                 f"(noise threshold {THRESHOLD}): retrieval {verdict}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder with one built eval index per dataset")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder for the re-embedded copies")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--eval", type=Path, default=EVAL, help=f"the eval data [{EVAL}]")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    missing = [ds for ds in args.datasets if not (args.cache / ds / "index.db").is_file()]
    if missing:
        sys.exit(f"no built index for {', '.join(missing)} in {args.cache} (bench/eval_retrieval.py builds them)")
    report = run(args.cache, args.work, args.datasets, args.eval)
    print("\n".join(table(report)))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
