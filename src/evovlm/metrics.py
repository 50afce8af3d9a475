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
    return {
        "funnel": funnel,
        "parse_errors": _counts(parse_errors),
        "rewards": {role: _stats(frame["reward"]) for role, frame in sorted(rewards.items())},
        "training": train,
        "stage_seconds": timings,
    }
