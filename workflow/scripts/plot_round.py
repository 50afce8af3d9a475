"""plot_round rule: the round's figures for the report (rewards, rates, status, agreement, GRPO)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import report  # noqa: E402

out = snakemake.output
metrics = report.read_json(snakemake.input.metrics)
report.plot_rewards(metrics, out.rewards)
report.plot_rates(metrics, out.rates)
report.plot_render_status(metrics, out.status)
report.plot_agreement(metrics, out.agreement)
summaries = {Path(p).stem: report.read_json(p) for p in snakemake.input.train}
report.plot_training(summaries, int(snakemake.wildcards.round), out.training)
