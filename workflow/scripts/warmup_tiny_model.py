import json
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115
sys.stdout = sys.stderr

import torch  # noqa: E402

from evovlm import methods  # noqa: E402
from evovlm.warmup import WarmupConfig, warmup_model  # noqa: E402

torch.set_num_threads(max(1, snakemake.threads))
summary = warmup_model(
    snakemake.input.base,
    snakemake.output.model,
    WarmupConfig.from_dict(snakemake.params.warmup),
    method=methods.from_config(snakemake.config).name,  # a plug-in's module loaded
)
print(json.dumps(summary, indent=2))
