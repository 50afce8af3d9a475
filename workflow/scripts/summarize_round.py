"""summarize_round rule: metrics.json from the method plug-in's summary of the round."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import methods, metrics  # noqa: E402
from evovlm.schema import REWARDS, SPECS  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

inp = snakemake.input
method = methods.from_config(snakemake.config)
round_ = int(snakemake.wildcards.round)
tables = {name: read_or_exit(inp[name], SPECS[spec]) for name, spec in method.tables.items()}
if "renders" in tables:
    tables["renders"] = tables["renders"].drop("image")
summary = method.summarize(
    tables,
    {Path(p).stem: read_or_exit(p, REWARDS) for p in inp.rewards},
    {Path(p).stem: json.loads(Path(p).read_text()) for p in inp.train},
    metrics.stage_timings(metrics.benchmark_files(round_)),
    {name: inp[name] for name in method.summary_files},
)
# The method beside the round: `evovlm compare` reads it (a plug-in's rates, a mixed-method warning).
metrics.write_json({"round": round_, "method": method.name, **summary}, snakemake.output.metrics)
print(json.dumps(summary["funnel"]), file=sys.stderr)
