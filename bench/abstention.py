"""When should `ask` abstain? Both signals of the search on real questions and on questions the pages cannot answer.

    .venv/bin/python bench/abstention.py --cache /work/evalcache --work /tmp/abstention [--eval ../shared/eval]

For each dataset of ../shared/eval whose built index is in --cache (copied into --work: the cache
is read, never written), every question is searched as `ask` searches it (hybrid, k = 5) and
rag.support.measure gives its two signals: the best passage's cosine and the share of the
question's word weight a retrieved page holds. Three kinds of question per index:

  positives  the set's own questions (each has its answer page in that index): should be answered
  off-topic  OFF_TOPIC below, asked of every index: should abstain
  cross-set  the other sets' questions asked of this index (form questions of the receipts...):
             should abstain; they share document vocabulary, so they are the hard negatives

Thresholds are chosen leave-one-dataset-out: on the two other sets, the rule that abstains on the
most negatives (worst fitting set first, then their mean; off-topic and cross-set weigh alike) among
those answering >= TARGET (0.97) of each fitting set's positives; then reported on the held-out set, where the
goal is >= 0.95 answered. Rules:
  old        cosine < 0.30 (the rule before rag/support.py)
  dense      cosine < t, t chosen as above (the best a rule on the cosine alone can do)
  both       cosine < t and lexical share < u and no named page structure found, (t, u) chosen as above
             (rag/support.py)
`shipped` is the `both` rule with the constants in rag/support.py (the fit on all three sets), on every set.
Prints one table per rule; ~2 min of CPU for the three dev sets (--json keeps the signals, --from-json refits).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

EVAL = HERE.parent.parent / "shared" / "eval"
DATASETS = ("sroie", "funsd", "mmlongbench_doc")
GOAL = 0.95  # the share of every set's real questions to answer
# the share a rule must answer on each fitting set: a margin over GOAL, so that the set it was not fitted on
# keeps GOAL (fitted at 0.95, the held-out set fell to 0.942; at 0.97 the worst held-out set answers 0.955)
TARGET = 0.97
OLD_MIN_SCORE = 0.30
DENSE_GRID = [round(0.15 + 0.01 * i, 2) for i in range(46)]  # 0.15 .. 0.60
LEXICAL_GRID = [round(0.30 + 0.05 * i, 2) for i in range(15)] + [1.01]  # 0.30 .. 1.00, and 'never'

# Questions no page of the eval sets answers: everyday topics, and ones that share generic words with
# documents (total, date, report, number, company, address, form, figure, table).
OFF_TOPIC = """How do I bake banana bread?
What temperature should a roast chicken reach inside?
How long do you boil an egg for a soft yolk?
Which spices go into a garam masala?
How do I make sourdough starter from scratch?
What wine goes well with grilled salmon?
Is olive oil good for deep frying?
How many calories are in an avocado?
Who won the 2018 FIFA World Cup?
How many players are on a rugby union team?
What is the offside rule in football?
Who holds the marathon world record?
How long is an Olympic swimming pool?
When did Roger Federer retire from tennis?
What does a quarterback do in American football?
How do I reverse a list in Python?
What is the difference between TCP and UDP?
How do I undo the last git commit?
What does a segmentation fault mean in C?
How do I center a div with CSS?
Which sorting algorithm is fastest on nearly sorted data?
What is a closure in JavaScript?
How do I install packages with pip behind a proxy?
When did the Roman Empire fall?
Who was the first emperor of China?
What caused the First World War?
In which year did the Berlin Wall come down?
Who painted the Sistine Chapel ceiling?
What was the Magna Carta?
Who invented the printing press?
What are the symptoms of iron deficiency?
How much sleep does a teenager need?
Is it safe to take ibuprofen with coffee?
How do vaccines train the immune system?
What is a normal resting heart rate?
How can I lower my blood pressure without medication?
What stretches help lower back pain?
What is the total population of Mars?
What is the date of the next solar eclipse?
What is the phone number of the Eiffel Tower ticket office?
What is the address of the White House?
Which company makes the iPhone?
What is the total length of the Great Wall of China?
How many moons does Jupiter have?
What is the boiling point of water on Everest?
What is the capital of Australia?
How far is the Moon from the Earth?
What is the speed of light in a vacuum?
Why is the sky blue?
How do I change a flat tyre on a bicycle?
How often should I water a cactus?
What is the best way to learn to play the guitar?
How do I get red wine out of a carpet?
What is the plot of Moby Dick?
Who wrote Pride and Prejudice?
What are the rules of chess castling?
How do I apply for a passport renewal?
What is the tallest mountain in Africa?
What language is spoken in Brazil?
How do solar panels generate electricity?
What is the number of bones in the human body?
Which table tennis grip do professionals use?
What figure skating jumps are the hardest?
What form of government does Switzerland have?
How do I report a lost dog to the council?
What is the total cost of owning a horse per year?""".splitlines()


def questions(qa: Path) -> list[str]:
    return [json.loads(line)["question"] for line in qa.read_text().splitlines() if line.strip()]


def signals(index_dir: Path, asked: dict[str, list[str]]) -> dict[str, list[tuple[float, float]]]:
    """kind -> (cosine, lexical share) per question, searched as `ask` searches a first question."""
    from index.store import Index
    from rag.retrieve import Retriever
    from rag.support import measure

    idx = Index.open(index_dir)
    retriever = Retriever(idx)
    out = {}
    for kind, qs in asked.items():
        rows = []
        for q in qs:
            hits = retriever.search_combined([(q, 1.0)], k=5)
            s = measure(retriever, q, hits)
            rows.append((s.dense, s.lexical if s.words else -1.0, bool(s.structure)))
        out[kind] = rows
    idx.close()
    return out


def answered(rows, t: float, u: float) -> float:
    """The share of questions answered: cosine >= t, or (u <= 1: the other signals count) lexical >= u or the
    page-structure facts they name found."""
    return sum(d >= t or (u <= 1 and (lx >= u or facts)) for d, lx, facts in rows) / max(len(rows), 1)


def rates(sig: dict, t: float, u: float) -> dict[str, float]:
    """answered share of the positives, abstained share of each kind of negative, and their mean."""
    r = {"pos": answered(sig["positives"], t, u), "off": 1 - answered(sig["off-topic"], t, u),
         "cross": 1 - answered(sig["cross-set"], t, u)}
    r["neg"] = (r["off"] + r["cross"]) / 2
    return r


def fit(sigs: dict[str, dict], dense_grid, lexical_grid, target: float = TARGET) -> tuple[float, float]:
    """The (t, u) abstaining on most negatives (worst set, then mean) with >= target positives answered on each set."""
    best, key = (dense_grid[0], lexical_grid[0]), None
    for t in dense_grid:
        for u in lexical_grid:
            r = [rates(s, t, u) for s in sigs.values()]
            if min(x["pos"] for x in r) < target:
                continue
            k = (min(x["neg"] for x in r), sum(x["neg"] for x in r) / len(r), -t, -u)
            if key is None or k > key:
                best, key = (t, u), k
    return best


def table(title: str, per_set: dict[str, tuple[tuple[float, float], dict]], first: str = "held-out set") -> list[str]:
    lines = [f"\n{title}", f"{first:<18}{'cosine':>7}{'lexical':>8}{'answered':>10}{'off-topic':>11}"
                          f"{'cross-set':>11}{'negatives':>11}",
             "  (answered: real questions not abstained; off-topic, cross-set: abstained)"]
    for ds, ((t, u), r) in per_set.items():
        lines.append(f"{ds:<18}{t:>7.2f}{('never' if u > 1 else f'{u:.2f}'):>8}{r['pos']:>10.3f}{r['off']:>11.3f}"
                     f"{r['cross']:>11.3f}{r['neg']:>11.3f}")
    rs = [r for _, r in per_set.values()]
    for name, agg in (("worst", min), ("average", lambda xs: sum(xs) / len(xs))):
        lines.append(f"{name:<18}{'':>15}" + "".join(f"{agg([r[k] for r in rs]):>{w}.3f}"
                                                      for k, w in (("pos", 10), ("off", 11), ("cross", 11), ("neg", 11))))
    return lines


def main() -> None:
    from rag.support import MIN_LEXICAL, MIN_SCORE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="folder of built indexes, one per dataset (read only)")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder the indexes are copied into")
    ap.add_argument("--eval", type=Path, default=EVAL)
    ap.add_argument("--json", type=Path, help="also write every question's signals to this file")
    ap.add_argument("--from-json", type=Path, help="the signals written by --json: no search, only the fitting")
    ap.add_argument("--target", type=float, default=TARGET, help="share of each fitting set's questions to answer")
    args = ap.parse_args()
    sets = [ds for ds in DATASETS if (args.cache / ds / "index.db").exists() and (args.eval / ds / "qa.jsonl").exists()]
    if len(sets) < 3:
        sys.exit(f"need three datasets' indexes in {args.cache} and questions in {args.eval}; found {sets}")
    qs = {ds: questions(args.eval / ds / "qa.jsonl") for ds in sets}
    sigs, t0 = {}, time.perf_counter()
    if args.from_json:
        sigs = json.loads(args.from_json.read_text())
    for ds in [] if args.from_json else sets:
        work = args.work / ds
        if not work.exists():
            shutil.copytree(args.cache / ds, work, ignore=shutil.ignore_patterns("conversations.db*", "write.lock"))
        sigs[ds] = signals(work, {"positives": qs[ds], "off-topic": OFF_TOPIC,
                                  "cross-set": [q for other in sets if other != ds for q in qs[other]]})
        print(f"{ds}: {sum(len(v) for v in sigs[ds].values())} questions searched", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(sigs))
    held = {}
    for rule, dense_grid, lexical_grid in (("dense", DENSE_GRID, [1.01]), ("both", DENSE_GRID, LEXICAL_GRID)):
        held[rule] = {}
        for ds in sets:
            t, u = fit({o: sigs[o] for o in sets if o != ds}, dense_grid, lexical_grid, args.target)
            held[rule][ds] = ((t, u), rates(sigs[ds], t, u))
    lines = [f"Abstention on {', '.join(f'{ds} ({len(qs[ds])})' for ds in sets)}, {len(OFF_TOPIC)} off-topic "
             f"questions; searched in {time.perf_counter() - t0:.0f} s; fitted to answer >= {args.target:.0%} of the real "
             f"questions of every fitting set (goal: >= {GOAL:.0%} on every set)"]
    lines += table(f"old: cosine < {OLD_MIN_SCORE:.2f} (no fitting)",
                   {ds: ((OLD_MIN_SCORE, 1.01), rates(sigs[ds], OLD_MIN_SCORE, 1.01)) for ds in sets}, "set")
    lines += table("dense: cosine < t, t fitted on the two other sets", held["dense"])
    lines += table("both: cosine < t and lexical < u, (t, u) fitted on the two other sets", held["both"])
    t, u = fit(sigs, DENSE_GRID, LEXICAL_GRID, args.target)
    lines.append(f"\nfitted on all three sets: cosine < {t:.2f} and lexical < {u:.2f}")
    lines += table(f"shipped (rag/support.py): cosine < {MIN_SCORE:.2f} and lexical < {MIN_LEXICAL:.2f}",
                   {ds: ((MIN_SCORE, MIN_LEXICAL), rates(sigs[ds], MIN_SCORE, MIN_LEXICAL)) for ds in sets}, "set")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
