"""Time the MM-Zero text-diversity penalty (pairwise BLEU clustering) on synthetic proposals.

Usage: python bench/rewards.py [--n 1000] [--naive-n 100] [--seed 0]

Prints the vectorised ``text_diversity_penalties`` time for n proposals, and the straightforward
O(n^2) per-pair version (``bleu_clusters_reference``) on a smaller batch, extrapolated to n by
the number of pairs; the two must give identical cluster sizes on the smaller batch.
"""

from __future__ import annotations

import argparse
import random
import time

import polars as pl

from evovlm.methods.mmzero.bleu import bleu_clusters, bleu_clusters_reference
from evovlm.methods.mmzero.rewards import (
    MMZeroRewardConfig,
    score_mmzero,
    text_diversity_penalties,
)
from evovlm.parse import PROPOSAL_TAGS

TOPICS = "sales revenue temperature rainfall population traffic votes profit costs scores".split()
CHARTS = "bar chart|line chart|pie chart|scatter plot|table|timeline|map|flow diagram".split("|")
COLORS = "red blue green orange purple gray teal black".split()
FILLER = (
    "the a of in with and each showing labelled axis legend title values between from to over "
    "across for by on per which where highest lowest total average year month region category"
).split()


def _caption(rng: random.Random) -> str:
    n = rng.randint(3, 7)
    years = rng.sample(range(2000, 2025), n)
    parts = [
        f"A {rng.choice(CHARTS)} of {rng.choice(TOPICS)} for {n} categories,",
        f"titled '{rng.choice(TOPICS).title()} by {rng.choice(['Year', 'Region', 'Month'])}'.",
    ]
    for y in years:
        parts.append(f"The {rng.choice(COLORS)} bar for {y} reaches {rng.randint(5, 95)}.")
    parts.append(" ".join(rng.choice(FILLER) for _ in range(rng.randint(10, 40))))
    return " ".join(parts)


def _question(rng: random.Random, hard: bool) -> str:
    topic, color, year = rng.choice(TOPICS), rng.choice(COLORS), rng.randint(2000, 2024)
    if hard:
        templates = (
            f"What is the difference between the highest {topic} value and the {color} one?",
            f"By how much did {topic} grow from {year} to {year + rng.randint(1, 5)}?",
            f"Which {rng.choice(['region', 'category', 'month'])} has {topic} closest to the mean?",
            f"If the {color} bar doubled, what would the total {topic} be?",
            f"How many bars exceed {rng.randint(10, 90)} in {topic}, counting only {color} ones?",
            f"What is the ratio of {topic} in {year} to the {color} series average?",
        )
    else:
        templates = (
            f"What is the {topic} value for {year}?",
            f"Which color is the {topic} bar?",
            f"How many categories are shown for {topic}?",
            f"What is the title of the {rng.choice(CHARTS)}?",
            f"What label is on the {rng.choice(['x', 'y'])}-axis?",
        )
    return rng.choice(templates)


def proposals(n: int, seed: int) -> tuple[list[str], list[str], list[str]]:
    """n synthetic proposals; a third are light edits of earlier ones (near-duplicates)."""
    rng = random.Random(seed)
    captions, easy, hard = [], [], []
    for i in range(n):
        if i and rng.random() < 0.33:
            j = rng.randrange(i)
            words = captions[j].split()
            for _ in range(rng.randint(0, 3)):
                words[rng.randrange(len(words))] = rng.choice(FILLER)
            captions.append(" ".join(words))
            easy.append(easy[j])
            hard.append(_question(rng, True) if rng.random() < 0.5 else hard[j])
        else:
            captions.append(_caption(rng))
            easy.append(_question(rng, False))
            hard.append(_question(rng, True))
    return captions, easy, hard


def round_frames(n: int, k: int, m: int, seed: int):
    """Synthetic MM-Zero round: n proposals, k programs each (3 in 4 render), m answers per
    (image, question); answers mix numbers, fractions, words, letters, LaTeX and failures."""
    rng = random.Random(seed)
    captions, easy, hard = proposals(n, seed)
    pool = ["5", "5.0", "6", "1/2", "0.5", "\\frac{1}{2}", "B", "(B)", "red", "Red.", "25%", None]
    pool += ["\\sqrt{2}", "2^{1/2}", "x+1", "none", "1,000", "1000", "12 cm", "12"]
    prop_rows, prog_rows, render_rows, answer_rows = [], [], [], []
    for i in range(n):
        pid = f"p{i:05d}"
        prop_rows.append(
            (pid, f"g{i // 4}", True, "data_chart", captions[i], easy[i], "5", hard[i], "12")
        )
        for c in range(k):
            prog = f"{pid}-c{c}"
            prog_rows.append((prog, pid, "ok"))
            ok = rng.random() < 0.75
            render_rows.append((prog, "ok" if ok else "runtime_error"))
            if not ok:
                continue
            for kind in ("easy", "hard"):
                for a in range(m):
                    answer_rows.append(
                        (
                            f"{prog}-{kind}-a{a}",
                            prog,
                            pid,
                            kind,
                            rng.choice(pool),
                            rng.random() < 0.5,
                        )
                    )
    return (
        pl.DataFrame(
            prop_rows,
            orient="row",
            schema=["proposal_id", "group_id", "parse_ok", *PROPOSAL_TAGS],
        ),
        pl.DataFrame(
            prog_rows, orient="row", schema=["program_id", "proposal_id", "extract_status"]
        ),
        pl.DataFrame(render_rows, orient="row", schema=["program_id", "status"]),
        pl.DataFrame(
            answer_rows,
            orient="row",
            schema=[
                "answer_id",
                "program_id",
                "proposal_id",
                "question_kind",
                "answer",
                "format_ok",
            ],
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--naive-n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = MMZeroRewardConfig()

    captions, easy, hard = proposals(args.n, args.seed)
    tokens = sum(len(c.split()) for c in captions) / len(captions)
    text_diversity_penalties(captions[:20], easy[:20], hard[:20], cfg)  # warm imports
    start = time.perf_counter()
    penalties = text_diversity_penalties(captions, easy, hard, cfg)
    fast = time.perf_counter() - start
    penalised = sum(p > 0 for p in penalties)
    print(
        f"text_diversity_penalties, n={args.n} (mean caption {tokens:.0f} words): {fast:.2f} s; "
        f"{penalised} proposals penalised, mean penalty {sum(penalties) / len(penalties):.3f}"
    )

    m = min(args.naive_n, args.n)
    start = time.perf_counter()
    naive = [
        bleu_clusters_reference(f[:m], cfg.diversity_threshold) for f in (captions, easy, hard)
    ]
    slow = time.perf_counter() - start
    start = time.perf_counter()
    vectorised = [bleu_clusters(f[:m], cfg.diversity_threshold) for f in (captions, easy, hard)]
    fast_m = time.perf_counter() - start
    scale = (args.n * (args.n - 1)) / (m * (m - 1))
    print(
        f"straightforward O(n^2), n={m}: {slow:.2f} s (vectorised: {fast_m:.3f} s); "
        f"extrapolated to n={args.n}: {slow * scale:.0f} s"
    )
    print(f"identical cluster sizes at n={m}: {naive == vectorised}")
    if naive != vectorised:
        raise SystemExit("vectorised BLEU clusters differ from the reference")

    frames = round_frames(args.n, 4, 5, args.seed)
    start = time.perf_counter()
    scored = score_mmzero(*frames, cfg)
    total = time.perf_counter() - start
    print(
        f"score_mmzero, {args.n} proposals x 4 programs x 2 questions x 5 answers "
        f"({frames[3].height} answers): {total:.2f} s; rows "
        + ", ".join(f"{role} {frame.height}" for role, frame in scored.items())
    )


if __name__ == "__main__":
    main()
