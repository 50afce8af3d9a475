"""Per-round summary (``metrics.json``): the funnel, error classes, rewards, agreement, timings."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl


def _counts(series: pl.Series) -> dict[str, int]:
    return {
        str(k): int(v) for k, v in sorted(series.value_counts().rows(), key=lambda kv: str(kv[0]))
    }


def _stats(values: pl.Series) -> dict[str, float | int | None]:
    values = values.drop_nulls()
    if values.len() == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    std = values.std()
    return {
        "n": int(values.len()),
        "mean": float(values.mean()),
        "std": None if std is None or math.isnan(std) else float(std),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _histogram(values: pl.Series, bins: int = 5) -> dict[str, int]:
    """Counts in [0, 0.2), [0.2, 0.4), ... [0.8, 1.0]."""
    hist = {f"{i / bins:.1f}-{(i + 1) / bins:.1f}": 0 for i in range(bins)}
    keys = list(hist)
    for v in values.drop_nulls().to_list():
        hist[keys[min(int(v * bins), bins - 1)]] += 1
    return hist


def stage_timings(benchmark_files: list[str | Path]) -> dict[str, float]:
    """Wall seconds per rule from Snakemake benchmark TSVs (shards of a rule are summed)."""
    out: dict[str, float] = {}
    for path in benchmark_files:
        path = Path(path)
        if not path.exists():
            continue
        rule = path.parent.name
        with open(path) as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            out[rule] = round(out.get(rule, 0.0) + float(rows[-1]["s"]), 3)
    return dict(sorted(out.items()))


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
    reward_stats = {role: _stats(frame["reward"]) for role, frame in sorted(rewards.items())}
    agreement: dict[str, dict[str, int]] = {}
    solver = rewards.get("solver")
    if solver is not None and solver.height:
        per_group = solver.group_by("group_id").agg(pl.all().first())
        for column in ("easy_agreement", "hard_agreement"):
            if column in per_group.columns:
                agreement[column] = _histogram(per_group[column])
    return {
        "funnel": funnel,
        "rates": rates,
        "rate_counts": counts,  # the number of items each rate is a mean over
        "rate_se": standard_errors(rates, counts, spread),
        "parse_errors": _counts(parse_errors),
        "code_extract": _counts(programs["extract_status"]) if programs.height else {},
        "render_status": _counts(renders["status"]) if renders.height else {},
        "render_errors": _counts(renders.filter(pl.col("status") != "ok")["status"])
        if renders.height
        else {},
        "rewards": reward_stats,
        "agreement_histograms": agreement,
        "training": train,
        "stage_seconds": timings,
    }


def _std(values: pl.Series) -> float | None:
    values = values.drop_nulls()
    std = values.std() if values.len() > 1 else None
    return None if std is None or math.isnan(std) else float(std)


def standard_errors(
    rates: dict[str, float | None],
    counts: dict[str, int],
    spread: dict[str, float | None] | None = None,
) -> dict[str, float | None]:
    """The standard error of each rate over its ``counts`` items: s / sqrt(n) for a mean of
    values with sample standard deviation s (``spread``), sqrt(p (1 - p) / n) for a share."""
    spread = spread or {}
    out: dict[str, float | None] = {}
    for name, rate in rates.items():
        n = counts.get(name, 0)
        if rate is None or not n:
            out[name] = None
        elif name in spread:
            out[name] = None if spread[name] is None else spread[name] / math.sqrt(n)
        else:
            out[name] = math.sqrt(max(rate * (1.0 - rate), 0.0) / n)
    return out


def _ratio(numerator: float, n: int) -> float | None:
    return float(numerator) / n if n else None


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
        spread["solver_agreement"] = _std(answered.select(agreement).to_series())
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
    rates["solvability"] = _ratio(solvable, n_rendered)
    counts["solvability"] = n_rendered
    coder = rewards.get("coder")
    if coder is not None and coder.height and "d" in coder.columns:
        d = coder.filter(pl.col("rendered"))["d"].fill_null(0.0)
        rates["difficulty"] = float(d.mean()) if d.len() else None
        counts["difficulty"] = int(d.len())
        spread["difficulty"] = _std(d)
    return rates, counts, spread


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
    rates["parse_rate"] = _ratio(parsed, questions.height)
    solver = rewards.get("solver")
    if solver is not None and solver.height:
        shares = solver["share"].drop_nulls()
        rates["mean_answer_share"] = float(shares.mean()) if shares.len() else None
        counts["mean_answer_share"] = int(shares.len())
        spread["mean_answer_share"] = _std(shares)
        rates["answer_rate"] = float(solver["answer_valid"].mean())
        counts["answer_rate"] = solver.height
    proposer = rewards.get("proposer")
    if proposer is not None and proposer.height:
        entropy = proposer["entropy"].drop_nulls()
        counts["mean_entropy"] = counts["entropy_band_share"] = int(entropy.len())
        rates["mean_entropy"] = float(entropy.mean()) if entropy.len() else None
        spread["mean_entropy"] = _std(entropy)
        low, high = entropy_band
        inside = int(entropy.is_between(low, high).sum()) if entropy.len() else 0
        rates["entropy_band_share"] = _ratio(inside, int(entropy.len()))
    return rates, counts, spread


def benchmark_files(round_: int, root: str | Path = "logs/benchmarks") -> list[Path]:
    root = Path(root)
    pattern = re.compile(rf"^round_{round_}(\.|$)")
    return sorted(p for p in root.glob("*/*.tsv") if pattern.match(p.stem))


def write_json(data: dict[str, Any], path: str | Path) -> None:
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
    from evovlm.hfio import honour_umask

    honour_umask(tmp)  # mkstemp made it 0600
    os.replace(tmp, path)


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
        "parse_errors": _counts(parse_errors),
        "rewards": {role: _stats(frame["reward"]) for role, frame in sorted(rewards.items())},
        "training": train,
        "stage_seconds": timings,
    }
