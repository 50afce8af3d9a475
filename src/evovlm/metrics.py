"""What every method's round summary (``metrics.json``) shares: counts, reward statistics,
histograms, standard errors of the rates, stage timings and the atomic write. Each method's own
summary and rates sit in its folder (``methods/<name>/summary.py``)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import polars as pl


def value_counts(series: pl.Series) -> dict[str, int]:
    return {
        str(k): int(v) for k, v in sorted(series.value_counts().rows(), key=lambda kv: str(kv[0]))
    }


def series_stats(values: pl.Series) -> dict[str, float | int | None]:
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


def histogram(values: pl.Series, bins: int = 5) -> dict[str, int]:
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


def sample_std(values: pl.Series) -> float | None:
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


def ratio(numerator: float, n: int) -> float | None:
    return float(numerator) / n if n else None


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
