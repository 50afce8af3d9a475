"""MM-Zero's round summary (``metrics.json``): the funnel, error classes, rewards, agreement
and the rates of its co-evolution table."""

from __future__ import annotations

from typing import Any

import polars as pl

from evovlm.metrics import (
    histogram,
    ratio,
    sample_std,
    series_stats,
    standard_errors,
    value_counts,
)


def summarize_mmzero(
    proposals: pl.DataFrame,
    programs: pl.DataFrame,
    renders: pl.DataFrame,
    answers: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
    train: dict[str, dict[str, Any]],
    timings: dict[str, float],
) -> dict[str, Any]:
    n_rendered = int((renders["status"] == "ok").sum()) if renders.height else 0
    funnel = {
        "proposals": proposals.height,
        "proposals_parsed": int(proposals["parse_ok"].sum()) if proposals.height else 0,
        "programs": programs.height,
        "programs_with_code": int((programs["extract_status"] == "ok").sum())
        if programs.height
        else 0,
        "renders_ok": n_rendered,
        "questions_asked": answers.select("group_id").n_unique() if answers.height else 0,
        "answers": answers.height,
        "answers_boxed": int(answers["answer"].is_not_null().sum()) if answers.height else 0,
        "answers_format_ok": int(answers["format_ok"].sum()) if answers.height else 0,
    }
    for lineage, summary in sorted(train.items()):
        funnel[f"trained_groups_{lineage}"] = int(summary.get("groups_trained", 0))
    rates = {
        "parse_rate": funnel["proposals_parsed"] / funnel["proposals"]
        if funnel["proposals"]
        else None,
        "render_rate": n_rendered / funnel["programs"] if funnel["programs"] else None,
        "boxed_rate": funnel["answers_boxed"] / funnel["answers"] if funnel["answers"] else None,
    }
    coevolution, counts, spread = mmzero_coevolution_rates(proposals, renders, answers, rewards)
    rates |= coevolution
    counts |= {
        "parse_rate": funnel["proposals"],
        "render_rate": funnel["programs"],
        "boxed_rate": funnel["answers"],
    }
    parse_errors = (
        proposals.filter(~pl.col("parse_ok"))["parse_error"]
        .fill_null("unknown")
        .str.replace(r":.*$", "")
        if proposals.height
        else pl.Series([], dtype=pl.String)
    )
    reward_stats = {role: series_stats(frame["reward"]) for role, frame in sorted(rewards.items())}
    agreement: dict[str, dict[str, int]] = {}
    solver = rewards.get("solver")
    if solver is not None and solver.height:
        per_group = solver.group_by("group_id").agg(pl.all().first())
        for column in ("easy_agreement", "hard_agreement"):
            if column in per_group.columns:
                agreement[column] = histogram(per_group[column])
    return {
        "funnel": funnel,
        "rates": rates,
        "rate_counts": counts,  # the number of items each rate is a mean over
        "rate_se": standard_errors(rates, counts, spread),
        "parse_errors": value_counts(parse_errors),
        "code_extract": value_counts(programs["extract_status"]) if programs.height else {},
        "render_status": value_counts(renders["status"]) if renders.height else {},
        "render_errors": value_counts(renders.filter(pl.col("status") != "ok")["status"])
        if renders.height
        else {},
        "rewards": reward_stats,
        "agreement_histograms": agreement,
        "training": train,
        "stage_seconds": timings,
    }


def mmzero_coevolution_rates(
    proposals: pl.DataFrame,
    renders: pl.DataFrame,
    answers: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
) -> tuple[dict[str, float | None], dict[str, int]]:
    """The quantities of MM-Zero's co-evolution table, per round.

    - ``solver_agreement``: the mean share of a question's valid answers that agree with its
      majority, over the (image, question) groups with at least one valid answer;
    - ``solvability``: the share of rendered images whose Solver majority on the easy question
      grades equal to the Proposer's stated easy answer (no valid answer: not solvable);
    - ``difficulty``: the mean d = min(c, 1 - c) over the rendered images' hard questions (an
      unanswered one counts with d = 0).
    Returns (rates, the count each rate is a mean over, the sample standard deviation of each
    rate that is a mean of values other than 0/1).
    """
    from evovlm.grade import grade

    rates: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    spread: dict[str, float | None] = {}
    solver = rewards.get("solver")
    if solver is not None and solver.height and "question_kind" in solver.columns:
        groups = solver.group_by("group_id").agg(
            pl.col("question_kind").first(),
            pl.col("answer_valid").any().alias("any_valid"),
            pl.col("easy_agreement").first(),
            pl.col("hard_agreement").first(),
            pl.col("label").first(),
        )
        answered = groups.filter(pl.col("any_valid"))
        agreement = pl.when(pl.col("question_kind") == "easy")
        agreement = agreement.then(pl.col("easy_agreement")).otherwise(pl.col("hard_agreement"))
        counts["solver_agreement"] = answered.height
        rates["solver_agreement"] = (
            float(answered.select(agreement.mean()).item()) if answered.height else None
        )
        spread["solver_agreement"] = sample_std(answered.select(agreement).to_series())
    rendered = (
        renders.filter(pl.col("status") == "ok").select("program_id").unique()
        if renders.height
        else pl.DataFrame({"program_id": []}, schema={"program_id": pl.String})
    )
    n_rendered = rendered.height
    solvable = 0
    if n_rendered and solver is not None and solver.height and answers.height:
        easy = (
            solver.filter(pl.col("group_id").str.ends_with("-easy"))
            .join(
                answers.select(pl.col("answer_id").alias("sample_id"), "program_id", "proposal_id"),
                on="sample_id",
            )
            .group_by("program_id")
            .agg(pl.col("label").first(), pl.col("proposal_id").first())
            .join(proposals.select("proposal_id", "easy_answer"), on="proposal_id")
            .join(rendered, on="program_id")
        )
        solvable = sum(
            label is not None and stated is not None and grade(label, stated)
            for label, stated in easy.select("label", "easy_answer").iter_rows()
        )
    rates["solvability"] = ratio(solvable, n_rendered)
    counts["solvability"] = n_rendered
    coder = rewards.get("coder")
    if coder is not None and coder.height and "d" in coder.columns:
        d = coder.filter(pl.col("rendered"))["d"].fill_null(0.0)
        rates["difficulty"] = float(d.mean()) if d.len() else None
        counts["difficulty"] = int(d.len())
        spread["difficulty"] = sample_std(d)
    return rates, counts, spread
