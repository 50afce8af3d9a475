"""train_policy rule: read the round's tables, train the lineage's policy, write the summary.

With train.num_processes > 1 the script writes its job to a JSON file and re-executes itself under
``accelerate launch --num_processes N``; each process then reads the job file instead of the
``snakemake`` object (the re-executed processes are plain Python, not Snakemake scripts).
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

if "snakemake" in globals():
    sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821, SIM115
    s = snakemake  # noqa: F821
    from evovlm.gpus import claim_gpu

    # One GPU per job on a multi-GPU machine (all of the job's processes share the claim).
    claim_gpu(int(s.params.train.get("num_processes", 1) or 1))
    job = {
        "method": s.config["method"],
        "plugins": list(s.config.get("plugins") or []),
        "lineage": s.wildcards.lineage,
        "inputs": {k: v for k, v in s.input.items() if k != "policy"},
        "rewards": list(s.input.rewards),
        "policy": s.params.policy,
        "train": s.params.train,
        "temperatures": dict(s.params.temperatures),
        "sample_options": dict(s.params.sample_options),
        "checkpoint": str(Path(s.output.config).parent),
        "summary": s.output.summary,
        "work_dir": s.params.work_dir,
    }
else:
    job = json.loads(Path(sys.argv[sys.argv.index("--job") + 1]).read_text())

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

from evovlm import methods, train  # noqa: E402
from evovlm.schema import SPECS  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

method = methods.from_config({"method": job["method"], "plugins": job.get("plugins", [])})
cfg = train.TrainConfig.from_dict(job["train"], job["method"])

if cfg.num_processes > 1 and "LOCAL_RANK" not in os.environ:
    job_file = Path(job["work_dir"]).with_suffix(".job.json")
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(job))
    command = train.accelerate_command(os.path.abspath(__file__), cfg.num_processes)
    print("running:", " ".join(command), "--job", job_file, file=sys.stderr)
    sys.exit(subprocess.run([*command, "--job", str(job_file)], stderr=sys.stderr).returncode)

rewards = {Path(p).stem: read_or_exit(p, SPECS["rewards"]) for p in job["rewards"]}
tables = {
    name: read_or_exit(job["inputs"][name], SPECS[spec]) for name, spec in method.tables.items()
}
samples = method.role_samples(tables, rewards, job["sample_options"])
summary = train.train_policy(
    job["policy"], samples, cfg, job["checkpoint"], job["work_dir"], job["temperatures"]
)
if os.environ.get("RANK", "0") == "0":
    summary["lineage"] = job["lineage"]
    Path(job["summary"]).parent.mkdir(parents=True, exist_ok=True)
    Path(job["summary"]).write_text(json.dumps(summary, indent=2) + "\n")
