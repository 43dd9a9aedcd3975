"""Fusion rules for hybrid retrieval chosen leave-one-dataset-out, re-fused in memory (seconds a sweep).

    PAGERAG_EVAL=../shared/eval PYTHONPATH=$PWD .venv/bin/python bench/fusion_sweep.py --cache /work/evalcache

Collects each question's dense and lexical candidates once (bench/fusion_data.py, cached), then
for every rule family (rag.retrieve.fuse's spread-weighted score fusion, the rule before it,
reciprocal rank fusion, z-score fusion, ...) and every setting of its constants ranks the pages again and scores Recall@1/5 and
MRR (top 10) as `pagerag eval` does. For each dataset held out, each family's constants are chosen
on the other two: first that hybrid is not under its better half (R@5 and MRR) on any of them,
then the best mean of R@5 and MRR; the chosen constants are scored on the held-out set. Prints
per family the held-out table (R@1, R@5, MRR per set, worst set, average), the choice on all
three sets and how close it comes to each fold's best, and how many of the top-5 finds that only
one half makes hybrid keeps (a rule that drops the weaker half's finds fails where that half is
the stronger one: financial filings, where dense far outdid bm25), also with a weakened bm25.
`--latency ROUNDS` instead times warm hybrid searches with rag.retrieve.fuse against the old rule.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from itertools import product
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fusion_data import DEPTH, Item, collect  # noqa: E402

DATASETS = ("sroie", "funsd", "mmlongbench_doc")
TOP = 10  # ranks scored, as `pagerag eval`


# -- rules: (dense page -> cosine, lexical page -> bm25, facts page -> share) -> page -> score ----------------

def spread(scores: dict[int, float], rank: int = 10) -> float:
    top = sorted(scores.values(), reverse=True)[:rank]
    if not top or top[0] <= 0:
        return 0.0
    return 1.0 if len(top) == 1 else (top[0] - max(top[-1], 0.0)) / top[0]


def spread_rule(dense, lexical, facts, power=2.0, dense_weight=0.25, boost=1.0):
    """The rule shipped before: w * bm25/best + (1 - w) * cosine, w from each ranking's spread."""
    s_lex, s_dense = spread(lexical) ** power, spread(dense) ** power
    w = s_lex / (s_lex + dense_weight * s_dense) if s_lex + s_dense > 0 else 0.5
    top = max(lexical.values(), default=1.0) or 1.0
    return {p: w * lexical.get(p, 0.0) / top + (1 - w) * max(dense.get(p, 0.0), 0.0) + boost * facts.get(p, 0.0)
            for p in dense.keys() | lexical.keys() | facts.keys()}


def fixed_rule(dense, lexical, facts, w=0.7, boost=1.0):
    """The first rule: a fixed lexical weight."""
    top = max(lexical.values(), default=1.0) or 1.0
    return {p: w * lexical.get(p, 0.0) / top + (1 - w) * max(dense.get(p, 0.0), 0.0) + boost * facts.get(p, 0.0)
            for p in dense.keys() | lexical.keys() | facts.keys()}


def _ranks(scores: dict[int, float]) -> dict[int, int]:
    return {p: r for r, p in enumerate(sorted(scores, key=lambda p: (-scores[p], p)), 1)}


def rrf_rule(dense, lexical, facts, k=60.0, boost=1.0):
    """Reciprocal rank fusion: 1/(k + dense rank) + 1/(k + lexical rank); facts add boost x the whole range."""
    rd, rl = _ranks(dense), _ranks(lexical)
    top = 2 / (k + 1)
    return {p: (1 / (k + rd[p]) if p in rd else 0.0) + (1 / (k + rl[p]) if p in rl else 0.0)
            + boost * top * facts.get(p, 0.0) for p in rd.keys() | rl.keys() | facts.keys()}


def _z(scores: dict[int, float], depth: int) -> tuple[dict[int, float], float]:
    """page -> (score - mean) / sd over the best `depth` scores; and the z of the last one (for pages not found)."""
    top = sorted(scores.values(), reverse=True)[:depth]
    if len(top) < 2:
        return {p: 0.0 for p in scores}, 0.0
    mean = sum(top) / len(top)
    sd = math.sqrt(sum((x - mean) ** 2 for x in top) / len(top)) or 1.0
    return {p: (s - mean) / sd for p, s in scores.items()}, (top[-1] - mean) / sd


def z_rule(dense, lexical, facts, depth=100, boost=1.0):
    """Score-distribution-normalised: each half's scores as z-scores over its best `depth`, summed (a page one
    half did not find counts as its last); a half whose best stands far out of its distribution weighs more."""
    zd, floor_d = _z(dense, depth)
    zl, floor_l = _z(lexical, depth)
    fused = {p: zd.get(p, floor_d) + zl.get(p, floor_l) for p in dense.keys() | lexical.keys() | facts.keys()}
    span = (max(fused.values()) - min(fused.values())) if fused else 1.0
    return {p: s + boost * span * facts.get(p, 0.0) for p, s in fused.items()}


def spread_rrf_rule(dense, lexical, facts, k=60.0, power=2.0, dense_weight=1.0, boost=1.0):
    """RRF weighted per question by the spreads: w/(k + lexical rank) + (1 - w)/(k + dense rank)."""
    s_lex, s_dense = spread(lexical) ** power, spread(dense) ** power
    w = s_lex / (s_lex + dense_weight * s_dense) if s_lex + s_dense > 0 else 0.5
    rd, rl = _ranks(dense), _ranks(lexical)
    top = 1 / (k + 1)
    return {p: (1 - w) * (1 / (k + rd[p]) if p in rd else 0.0) + w * (1 / (k + rl[p]) if p in rl else 0.0)
            + boost * top * facts.get(p, 0.0) for p in rd.keys() | rl.keys() | facts.keys()}


def max_norm_rule(dense, lexical, facts, power=2.0, dense_weight=1.0, boost=1.0):
    """As `spread_rule`, with the cosines also divided by their best (both halves on 0..1 at their top);
    with dense_weight 1 it is rag.retrieve.fuse."""
    top_d = max(dense.values(), default=1.0)
    dense = {p: s / top_d for p, s in dense.items()} if top_d > 0 else dense
    return spread_rule(dense, lexical, facts, power, dense_weight, boost)


def minmax_rule(dense, lexical, facts, power=2.0, dense_weight=1.0, boost=1.0):
    """Each half min-max normalised over its best 10 (best 1, 10th 0), weighted by the spreads as the shipped rule."""
    def norm(scores):
        top = sorted(scores.values(), reverse=True)[:10]
        if not top:
            return {}
        lo, span = top[-1], (top[0] - top[-1]) or 1.0
        return {p: max((s - lo) / span, 0.0) for p, s in scores.items()}

    s_lex, s_dense = spread(lexical) ** power, spread(dense) ** power
    w = s_lex / (s_lex + dense_weight * s_dense) if s_lex + s_dense > 0 else 0.5
    nd, nl = norm(dense), norm(lexical)
    return {p: w * nl.get(p, 0.0) + (1 - w) * nd.get(p, 0.0) + boost * facts.get(p, 0.0)
            for p in dense.keys() | lexical.keys() | facts.keys()}


@dataclass
class Family:
    name: str
    rule: object
    grid: dict  # constant -> values tried

    def settings(self):
        keys = list(self.grid)
        for values in product(*(self.grid[k] for k in keys)):
            yield dict(zip(keys, values))


DEPTHS = (50, 100, 200)
FAMILIES = [
    Family("spread, raw cosine", spread_rule,
           {"power": (1.0, 2.0, 3.0), "dense_weight": (0.125, 0.25, 0.5, 1.0, 2.0, 4.0), "depth": DEPTHS}),
    Family("fixed weight", fixed_rule, {"w": (0.5, 0.6, 0.7, 0.8, 0.9), "depth": (100,)}),
    Family("RRF", rrf_rule, {"k": (1, 2, 5, 10, 20, 40, 60, 100), "depth": DEPTHS}),
    Family("z-score", z_rule, {"zdepth": (10, 20, 50, 100), "depth": DEPTHS}),
    Family("spread-weighted RRF", spread_rrf_rule,
           {"k": (2, 5, 10, 20, 60), "power": (1.0, 2.0), "dense_weight": (0.25, 1.0, 4.0), "depth": (100,)}),
    Family("spread, cosine/best", max_norm_rule,
           {"power": (1.0, 2.0, 3.0), "dense_weight": (0.25, 0.5, 1.0, 2.0, 4.0), "depth": (100,)}),
    Family("symmetric spread", max_norm_rule,
           {"power": (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0), "dense_weight": (1.0,), "depth": (50, 100, 200)}),
    Family("spread, min-max", minmax_rule,
           {"power": (1.0, 2.0, 3.0), "dense_weight": (0.25, 0.5, 1.0, 2.0, 4.0), "depth": (100,)}),
]
OLD = ("spread, raw cosine", {"power": 2.0, "dense_weight": 0.25, "depth": 100})  # shipped before 2026-12-03


# -- scoring ----------------------------------------------------------------------------------------------

@dataclass
class Score:
    n: int
    r1: float
    r5: float
    mrr: float

    @property
    def quality(self) -> float:
        return (self.r5 + self.mrr) / 2


def rank_of(scores: dict[int, float], gold: list[int]) -> int | None:
    order = sorted(scores, key=lambda p: (-scores[p], p))[:TOP]
    return next((i for i, p in enumerate(order, 1) if p in gold), None)


def summary(ranks: list[int | None]) -> Score:
    n = len(ranks) or 1
    return Score(len(ranks), sum(r == 1 for r in ranks) / n, sum(r is not None and r <= 5 for r in ranks) / n,
                 sum(1 / r for r in ranks if r) / n)


class Sweep:
    def __init__(self, items: list[Item], weak: bool = False):
        self.items = items
        self.weak = weak  # bm25 of the weakened questions (fusion_data.weakened)
        self._cand: dict[int, list] = {}  # depth -> [(dense, lexical, facts, gold)] per item

    def candidates(self, depth: int):
        if depth not in self._cand:
            self._cand[depth] = [(i.dense_pages(depth), i.lexical_pages(depth, self.weak), i.facts, i.gold)
                                 for i in self.items]
        return self._cand[depth]

    def ranks(self, family: Family | str, setting: dict) -> list[int | None]:
        depth = setting.get("depth", 100)
        if family == "dense":
            return [rank_of(d, g) for d, _, _, g in self.candidates(depth)]
        if family == "lexical":
            return [rank_of(lx, g) for _, lx, _, g in self.candidates(depth)]
        kw = {k: v for k, v in setting.items() if k != "depth"}
        if "zdepth" in kw:
            kw["depth"] = kw.pop("zdepth")
        return [rank_of(family.rule(d, lx, f, **kw), g) for d, lx, f, g in self.candidates(depth)]


def shipped(sweep: Sweep) -> list[int | None]:
    """Each item's gold rank under rag.retrieve.fuse itself, with its CANDIDATES."""
    from rag.retrieve import CANDIDATES, fuse

    return [rank_of(fuse(d, lx, "hybrid", f), g) for d, lx, f, g in sweep.candidates(CANDIDATES)]


def by_set(items: list[Item], scope: str = "corpus") -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for n, it in enumerate(items):
        if it.scope == scope:
            out.setdefault(it.dataset, []).append(n)
    return out


def objective(scores: dict[str, Score], halves: dict[str, tuple[Score, Score]], sets) -> tuple[float, float]:
    """(worst margin of hybrid over its better half on R@5 and MRR, capped at 0; mean of (R@5 + MRR) / 2)."""
    worst = min(min(scores[s].r5 - max(h.r5 for h in halves[s]), scores[s].mrr - max(h.mrr for h in halves[s]))
                for s in sets)
    return round(min(worst, 0.0), 4), sum(scores[s].quality for s in sets) / len(sets)


def fmt(s: Score) -> str:
    return f"{s.r1:.3f} / {s.r5:.3f} / {s.mrr:.3f}"


def kept(ranks, dense, lexical, idx) -> str:
    """How many top-5 finds of one half only the hybrid keeps in its top 5: 'lexical-only a/b, dense-only c/d'."""
    top5 = lambda r: r is not None and r <= 5  # noqa: E731
    lo = [i for i in idx if top5(lexical[i]) and not top5(dense[i])]
    do = [i for i in idx if top5(dense[i]) and not top5(lexical[i])]
    return f"{sum(top5(ranks[i]) for i in lo)}/{len(lo)}, {sum(top5(ranks[i]) for i in do)}/{len(do)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder with one index per dataset, named after it")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--refresh", action="store_true", help="collect the candidate lists again")
    ap.add_argument("--families", nargs="+", help="only these rule families (by name)")
    ap.add_argument("--verbose", action="store_true", help="also print every setting's scores")
    ap.add_argument("--latency", type=int, metavar="ROUNDS", help="only time warm hybrid searches on the last "
                    "dataset's index, rag.retrieve.fuse against the old rule, ROUNDS passes over its questions")
    args = ap.parse_args()
    if args.latency:
        return latency(args.cache, args.datasets[-1], args.latency)
    items = [it for ds in args.datasets for it in collect(ds, args.cache, args.refresh)]
    sweep = Sweep(items)
    sets = by_set(items)
    doc = by_set(items, "document")
    families = [f for f in FAMILIES if not args.families or f.name in args.families]

    def scored(ranks):
        return {ds: summary([ranks[i] for i in idx]) for ds, idx in sets.items()}

    dense_r, lex_r = sweep.ranks("dense", {}), sweep.ranks("lexical", {})
    halves = {ds: (scored(dense_r)[ds], scored(lex_r)[ds]) for ds in sets}
    old_fam = next(f for f in FAMILIES if f.name == OLD[0])
    old_r = sweep.ranks(old_fam, OLD[1])
    new_r = shipped(sweep)
    weak = Sweep(items, weak=True)
    print(f"candidates: {len(items)} question-scopes, collected {DEPTH} deep. R@1 / R@5 / MRR; 'kept': of the "
          "top-5 finds only bm25 / only dense makes, those hybrid keeps in its top 5; 'weakened bm25': every other "
          "question word left out of the bm25 query (fusion_data.weakened), dense unchanged")
    print(f"{'':<24} " + " ".join(f"{ds:<22}" for ds in sets) + "  " + " ".join(f"{ds + ' document':<22}" for ds in doc))
    rows = {"dense": (dense_r, weak.ranks("dense", {})), "lexical": (lex_r, weak.ranks("lexical", {})),
            "hybrid-old": (old_r, weak.ranks(old_fam, OLD[1])), "hybrid-new": (new_r, shipped(weak))}
    for name, (ranks, weak_ranks) in rows.items():
        print(f"{name:<24} " + " ".join(f"{fmt(s):<22}" for s in scored(ranks).values()) + "  " + " ".join(
            f"{fmt(summary([ranks[i] for i in idx])):<22}" for idx in doc.values()))
        if name.startswith("hybrid"):
            print(f"{'  kept (bm25, dense)':<24} " + " ".join(f"{kept(ranks, dense_r, lex_r, idx):<22}"
                                                          for idx in sets.values()))
        print(f"{'  weakened bm25':<24} " + " ".join(f"{fmt(s):<22}" for s in scored(weak_ranks).values()))
    final = {"dense": scored(dense_r), "lexical": scored(lex_r), "hybrid-old (spread, raw cosine)": scored(old_r),
             "hybrid-new (rag.retrieve.fuse)": scored(new_r)}
    for fam in families:
        held = lodo(fam, sweep, halves, scored, args.verbose)
        final[f"{fam.name}, LODO"] = {ds: held[ds][2][ds] for ds in sets}
        every = max(held["all"][3], key=lambda t: objective(t[2], halves, list(sets)))
        print("  kept (lex-only, dense-only top-5 finds): " + "  ".join(
            f"{ds} {kept(every[1], dense_r, lex_r, idx)}" for ds, idx in sets.items()))
        for ds, idx in doc.items():
            print(f"  {ds} document: {fmt(summary([every[1][i] for i in idx]))}")
        print("  weakened bm25: " + "  ".join(f"{ds} {fmt(s)}" for ds, s in scored(weak.ranks(fam, every[0])).items()))
    print("\nLeave-one-dataset-out: each family's constants chosen on the other two sets; R@1 / R@5 / MRR, corpus-wide")
    print(f"{'rule':<34} " + " ".join(f"{ds:<22}" for ds in sets) + f" {'worst set (R@5)':<26} average")
    for name, scores in final.items():
        worst = min(scores, key=lambda ds: scores[ds].r5)
        mean = Score(0, *(sum(getattr(s, a) for s in scores.values()) / len(scores) for a in ("r1", "r5", "mrr")))
        print(f"{name:<34} " + " ".join(f"{fmt(scores[ds]):<22}" for ds in sets)
              + f" {worst + f' {scores[worst].r5:.3f}':<26} {fmt(mean)}")


def lodo(fam: Family, sweep: Sweep, halves, scored, verbose: bool = False) -> dict:
    """held-out set -> (setting, ranks, scores, table) chosen on the others; "all" -> chosen on every set."""
    sets = list(halves)
    table = []  # (setting, ranks, scores per set)
    for setting in fam.settings():
        r = sweep.ranks(fam, setting)
        table.append((setting, r, scored(r)))
    print(f"\n== {fam.name}: {len(table)} settings")
    if verbose:
        for setting, _, sc in table:
            print(f"   {setting}: " + "  ".join(f"{ds} {fmt(s)}" for ds, s in sc.items()))
    held = {}
    for out in sets:
        train = [ds for ds in sets if ds != out]
        held[out] = (*max(table, key=lambda t: objective(t[2], halves, train)), table)
        print(f"  held out {out:<16} chose {held[out][0]}  held-out {fmt(held[out][2][out])}")
    every = max(table, key=lambda t: objective(t[2], halves, sets))
    held["all"] = (*every, table)
    print(f"  on all three: {every[0]}  " + "  ".join(f"{ds} {fmt(s)}" for ds, s in every[2].items()))
    for out in sets:
        train = [ds for ds in sets if ds != out]
        print(f"    fold {out}: the all-three choice scores {objective(every[2], halves, train)} on the fold's "
              f"training sets, the fold's own choice {objective(held[out][2], halves, train)}")
    return held

def latency(cache: Path, ds: str, rounds: int) -> None:
    """Warm `Retriever.search` (hybrid, k=5) with rag.retrieve.fuse and with the old rule, in one process: each
    question searched once to encode it, then under both rules in alternating order; p50/p95 and their ratio."""
    import shutil
    import statistics
    import tempfile
    import time

    import rag.retrieve as retrieve
    from fusion_data import EVAL
    from index.store import Index
    from rag.evaluate import load_questions

    new = retrieve.fuse
    kw = {k: v for k, v in OLD[1].items() if k != "depth"}

    def old(dense, lexical, mode="hybrid", facts=None):
        return spread_rule(dense, lexical, facts or {}, **kw) if mode == "hybrid" else new(dense, lexical, mode, facts)

    questions = [q.question for q in load_questions(EVAL / ds / "qa.jsonl", EVAL / ds)]
    times: dict[str, list[float]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="fusion-") as tmp:
        shutil.copytree(cache / ds, Path(tmp) / ds, ignore=shutil.ignore_patterns("*-wal", "*-shm", "write.lock"))
        retriever = retrieve.Retriever(Index.open(Path(tmp) / ds))
        try:
            for n in range(rounds * len(questions)):
                q = questions[n % len(questions)]
                retriever.search(q)  # encodes the question (kept for the next searches)
                for name in (("old", "new") if n % 2 else ("new", "old")):
                    retrieve.fuse = old if name == "old" else new
                    t0 = time.perf_counter()
                    retriever.search(q)
                    times[name].append(1000 * (time.perf_counter() - t0))
        finally:
            retrieve.fuse = new
            retriever.index.close()
    cands = Sweep(collect(ds, cache)).candidates(retrieve.CANDIDATES)
    for n in range(2 * rounds):  # the fusion alone, on the same candidates, alternating
        for name, rule in (("old fuse", old), ("new fuse", new))[::1 if n % 2 else -1]:
            t0 = time.perf_counter()
            for d, lx, f, _ in cands:
                rule(d, lx, "hybrid", f)
            times.setdefault(name, []).append(1000 * (time.perf_counter() - t0) / len(cands))
    p = {name: (statistics.median(t), statistics.quantiles(t, n=20)[-1] if len(t) > 1 else t[0])
         for name, t in times.items()}
    print(f"fusion alone: old {p['old fuse'][0]:.3f} ms a question, new {p['new fuse'][0]:.3f} ms")
    print(f"warm hybrid search on {ds} ({len(times['new'])} searches a rule): old rule p50 {p['old'][0]:.1f} ms "
          f"p95 {p['old'][1]:.1f}; new p50 {p['new'][0]:.1f} ms p95 {p['new'][1]:.1f}; new/old p50 "
          f"{p['new'][0] / p['old'][0]:.3f}, p95 {p['new'][1] / p['old'][1]:.3f}")


if __name__ == "__main__":
    main()
