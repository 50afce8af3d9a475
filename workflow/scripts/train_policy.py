"""train_policy rule: hand the round's tables to one training job (evovlm.train.job).

With train.num_processes > 1 the job is written to a JSON file and run by
``accelerate launch --module evovlm.train --job FILE`` (see ``python -m evovlm.train --help``).
"""

import logging
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
s = snakemake  # noqa: F821

from evovlm.gpus import claim_gpu  # noqa: E402
from evovlm.record import execution_keys  # noqa: E402
from evovlm.train.job import launch  # noqa: E402

# The rule's GPUs (train.num_processes), shared by all of the job's processes.
claim_gpu(s.resources.gpu)
job = {
    "method": s.config["method"],
    "plugins": list(s.config.get("plugins") or []),
    "lineage": s.wildcards.lineage,
    "inputs": {k: v for k, v in s.input.items() if k != "policy"},
    "rewards": list(s.input.rewards),
    "policy": s.params.policy,
    # params.train leaves out the logging and resume keys (so they rerun nothing): from config.
    "train": {**s.params.train, **{k: s.config["train"][k] for k in execution_keys("train")}},
    "temperatures": dict(s.params.temperatures),
    "sample_options": dict(s.params.sample_options),
    "checkpoint": str(Path(s.output.config).parent),
    "summary": s.output.summary,
    "work_dir": s.params.work_dir,
}
sys.exit(launch(job))
