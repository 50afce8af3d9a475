"""write_model_card rule: README.md of a checkpoint (base model, method, role, round, training
settings and the round's rates), once the round is summarised."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import hfio, methods, report  # noqa: E402
from evovlm.train import TrainConfig  # noqa: E402

summary = json.loads(Path(snakemake.input.summary).read_text())
metrics = report.read_json(snakemake.input.metrics)
cfg = snakemake.config
folder = Path(snakemake.output.card).parent
roles = list(summary.get("roles") or [snakemake.wildcards.lineage])
hfio.write_model_card(
    folder,
    {
        "base_model": snakemake.params.base_model,
        "method": cfg["method"],
        "lineage": snakemake.wildcards.lineage,
        "roles": list(summary.get("roles") or []),
        "prompts": hfio.prompt_examples(folder, methods.from_config(cfg).role_templates(roles)),
        "round": int(snakemake.wildcards.round),
        "train": asdict(TrainConfig.from_dict(cfg["train"])),  # every setting, defaults too
        "summary": summary,
        "rates": report.rates_of(metrics),
    },
)
