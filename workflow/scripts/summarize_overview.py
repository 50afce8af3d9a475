"""report_overview rule: the report's landing page (tables of evaluation, rates, labels; config)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import polars as pl  # noqa: E402

from evovlm import report  # noqa: E402

inp = snakemake.input
metrics = {m["round"]: m for m in map(report.read_json, inp.metrics)}
accuracy = pl.read_parquet(inp.accuracy) if inp.get("accuracy") else None
summaries = {s["round"]: s for s in map(report.read_json, inp.pseudolabels)}
labels = {
    s["round"]: pl.read_parquet(path)
    for s, path in zip(summaries.values(), inp.labels, strict=True)
}
# The config as the workflow resolved it (results/config.yaml records the same), not a param:
# execution-only keys must not rebuild the page.
by_kind = pl.read_parquet(inp.by_kind) if inp.get("by_kind") else None
paired = pl.read_parquet(inp.paired).to_dicts() if inp.get("paired") else None
page = report.overview_html(
    dict(snakemake.config), metrics, accuracy, summaries, labels, paired=paired, by_kind=by_kind
)
Path(snakemake.output.overview).write_text(page, encoding="utf-8")
