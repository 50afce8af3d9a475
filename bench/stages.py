"""The MM-Zero generation stages of one finished round, re-run at several hf batch sizes.

    python bench/stages.py                          # round 1 of results/ (this folder's run)
    python bench/stages.py --run ../other-run --round 3 --batch-sizes 8,16,32,64

Loads the round's policies (round 1: resources/tiny-warm; round N: round N-1's checkpoints),
re-runs propose, write_code and sample_answers on the round's own inputs with the run's
sampling settings (results/config.yaml, the run's resolved config), and prints seconds per stage and
whether the samples equal the ones in the run's tables (they must, at any batch size: every
sample row has its own generator). Generation only: no job start, no model load in the time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl
import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=".", help="a run folder (holds config/ and results/)")
    ap.add_argument("--round", type=int, default=1)
    ap.add_argument("--batch-sizes", default="16,64")
    ap.add_argument("--stages", default="propose,code,answers")
    args = ap.parse_args()

    from evovlm.engines.hf import HFEngine
    from evovlm.methods.mmzero import stages as mmzero

    run = Path(args.run).resolve()
    cfg = yaml.safe_load((run / "results/config.yaml").read_text())
    mz, seed, r = cfg["mmzero"], cfg["seed"], args.round
    tables = run / f"results/round_{r}"
    proposals = pl.read_parquet(tables / "proposals.parquet")
    programs = pl.read_parquet(tables / "programs.parquet")
    renders = pl.read_parquet(tables / "renders.parquet")
    answers = pl.read_parquet(tables / "answers.parquet")

    def policy(role: str) -> str:
        if r == 1:
            return str(run / "resources/tiny-warm")
        lineage = "shared" if mz["share_weights"] else role  # as policy_folder in common.smk
        return str(run / f"results/round_{r - 1}/checkpoint/{lineage}")

    stages = {
        "propose": (
            "proposer",
            lambda e: mmzero.propose(
                e,
                round_=r,
                topics=mmzero.seed_topics(mz["seed_topics"]),
                prompts_per_topic=mz["prompts_per_topic"],
                sampling=mz["proposer"],
                seed=seed,
            ),
            proposals,
        ),
        "code": (
            "coder",
            lambda e: mmzero.write_code(
                e,
                proposals,
                round_=r,
                k=mz["coder"]["k"],
                languages=mz["coder"]["languages"],
                sampling=mz["coder"],
                seed=seed,
            ),
            programs,
        ),
        "answers": (
            "solver",
            lambda e: mmzero.sample_answers(
                e,
                proposals,
                programs,
                renders,
                round_=r,
                m=mz["solver"]["m"],
                sampling=mz["solver"],
                seed=seed,
            ),
            answers,
        ),
    }
    print(f"run {run}, round {r}")
    for name in args.stages.split(","):
        role, fn, recorded = stages[name]
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            engine = HFEngine(policy(role), batch_size=bs)
            start = time.perf_counter()
            frame = fn(engine)
            seconds = time.perf_counter() - start
            same = frame["completion_ids"].to_list() == recorded["completion_ids"].to_list()
            tokens = frame["completion_ids"].list.len().sum()
            print(
                f"{name:8s} batch {bs:3d}: {seconds:6.1f} s, {frame.height} samples, "
                f"{tokens} tokens, same samples as the run: {same}"
            )


if __name__ == "__main__":
    main()
