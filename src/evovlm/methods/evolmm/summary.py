"""EvoLMM's round summary (``metrics.json``): the funnel, error classes, rewards and rates."""

from __future__ import annotations

from typing import Any

import polars as pl

from evovlm.metrics import (
    ratio,
    sample_std,
    series_stats,
    standard_errors,
    value_counts,
)


def summarize_evolmm(
    image_stats: dict[str, int],
    questions: pl.DataFrame,
    answers: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
    train: dict[str, dict[str, Any]],
    timings: dict[str, float],
) -> dict[str, Any]:
    funnel = {
        "images": int(image_stats.get("drawn", 0)),
        "images_skipped_corrupt": int(image_stats.get("skipped_corrupt", 0)),
        "questions": questions.height,
        "questions_parsed": int(questions["parse_ok"].sum()) if questions.height else 0,
        "answers": answers.height,
        "answers_extracted": int(answers["answer"].is_not_null().sum()) if answers.height else 0,
    }
    for lineage, summary in sorted(train.items()):
        funnel[f"trained_groups_{lineage}"] = int(summary.get("groups_trained", 0))
    parse_errors = (
        questions.filter(~pl.col("parse_ok"))["parse_error"]
        .fill_null("unknown")
        .str.replace(r":.*$", "")
        if questions.height
        else pl.Series([], dtype=pl.String)
    )
    rates, counts, spread = evolmm_rates(questions, rewards)
    return {
        "funnel": funnel,
        "rates": rates,
        "rate_counts": counts,
        "rate_se": standard_errors(rates, counts, spread),
        "parse_errors": value_counts(parse_errors),
        "rewards": {role: series_stats(frame["reward"]) for role, frame in sorted(rewards.items())},
        "training": train,
        "stage_seconds": timings,
    }


def evolmm_rates(
    questions: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
    entropy_band: tuple[float, float] = (0.55, 1.25),
) -> tuple[dict[str, float | None], dict[str, int]]:
    """EvoLMM's per-round quantities: question parse rate, the mean answer share p(a) over
    valid answers, the mean answer entropy (nats) over questions with a valid answer, and the
    share of those questions whose entropy lies in ``entropy_band`` (default: the Proposer
    reward's target 0.90 +/- its sigma 0.35)."""
    rates: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    spread: dict[str, float | None] = {}
    counts["parse_rate"] = questions.height
    parsed = int(questions["parse_ok"].sum()) if questions.height else 0
    rates["parse_rate"] = ratio(parsed, questions.height)
    solver = rewards.get("solver")
    if solver is not None and solver.height:
        shares = solver["share"].drop_nulls()
        rates["mean_answer_share"] = float(shares.mean()) if shares.len() else None
        counts["mean_answer_share"] = int(shares.len())
        spread["mean_answer_share"] = sample_std(shares)
        rates["answer_rate"] = float(solver["answer_valid"].mean())
        counts["answer_rate"] = solver.height
    proposer = rewards.get("proposer")
    if proposer is not None and proposer.height:
        entropy = proposer["entropy"].drop_nulls()
        counts["mean_entropy"] = counts["entropy_band_share"] = int(entropy.len())
        rates["mean_entropy"] = float(entropy.mean()) if entropy.len() else None
        spread["mean_entropy"] = sample_std(entropy)
        low, high = entropy_band
        inside = int(entropy.is_between(low, high).sum()) if entropy.len() else 0
        rates["entropy_band_share"] = ratio(inside, int(entropy.len()))
    return rates, counts, spread
