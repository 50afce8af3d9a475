import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import metrics  # noqa: E402
from evovlm.schema import EVOLMM_ANSWERS, QUESTIONS, REWARDS  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

inp = snakemake.input
round_ = int(snakemake.wildcards.round)
summary = metrics.summarize_evolmm(
    json.loads(Path(inp.images).read_text()),
    read_or_exit(inp.questions, QUESTIONS),
    read_or_exit(inp.answers, EVOLMM_ANSWERS),
    {Path(p).stem: read_or_exit(p, REWARDS) for p in inp.rewards},
    {Path(p).stem: json.loads(Path(p).read_text()) for p in inp.train},
    metrics.stage_timings(metrics.benchmark_files(round_)),
)
metrics.write_json({"round": round_, **summary}, snakemake.output.metrics)
print(json.dumps(summary["funnel"]), file=sys.stderr)
