"""summarize_run rule: results/summary.parquet (one row per round) and the across-round figures."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

import polars as pl  # noqa: E402

from evovlm import report  # noqa: E402
from evovlm.schema import write_parquet  # noqa: E402

inp = snakemake.input
out = snakemake.output
metrics = {m["round"]: m for m in map(report.read_json, inp.metrics)}
accuracy = pl.read_parquet(inp.accuracy) if inp.get("accuracy") else None
labels = {s["round"]: s for s in map(report.read_json, inp.pseudolabels)}
summary = report.summary_rows(metrics, accuracy, labels, method=snakemake.config["method"])
write_parquet(summary, out.summary, None)
report.plot_rounds(metrics, out.rounds)
report.plot_eval(accuracy if accuracy is not None else pl.DataFrame(), out.eval)
report.plot_pseudolabels(labels, out.pseudolabels)
print(summary, file=sys.stderr)
