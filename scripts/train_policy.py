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
    job = {
        "method": s.config["method"],
        "lineage": s.wildcards.lineage,
        "inputs": {k: v for k, v in s.input.items() if k != "policy"},
        "rewards": list(s.input.rewards),
        "policy": s.params.policy,
        "train": s.params.train,
        "checkpoint": str(Path(s.output.config).parent),
        "summary": s.output.summary,
        "work_dir": s.params.work_dir,
    }
else:
    job = json.loads(Path(sys.argv[sys.argv.index("--job") + 1]).read_text())

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")

from evovlm import train  # noqa: E402
from evovlm.schema import SPECS, read_parquet  # noqa: E402

cfg = train.TrainConfig.from_dict(job["train"])

if cfg.num_processes > 1 and "LOCAL_RANK" not in os.environ:
    job_file = Path(job["work_dir"]).with_suffix(".job.json")
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(job))
    command = train.accelerate_command(os.path.abspath(__file__), cfg.num_processes)
    print("running:", " ".join(command), "--job", job_file, file=sys.stderr)
    sys.exit(subprocess.run([*command, "--job", str(job_file)], stderr=sys.stderr).returncode)

rewards = {Path(p).stem: read_parquet(p, SPECS["rewards"]) for p in job["rewards"]}
inp = job["inputs"]


def table(name, spec, role):
    # Read a sample table only when one of this lineage's roles needs it.
    return read_parquet(inp[name], SPECS[spec]) if role in rewards else None


if job["method"] == "mmzero":
    samples = train.mmzero_role_samples(
        table("proposals", "proposals", "proposer"),
        table("programs", "programs", "coder"),
        table("answers", "answers", "solver"),
        table("renders", "renders", "solver"),
        rewards,
    )
else:
    samples = train.evolmm_role_samples(
        table("questions", "questions", "proposer"),
        table("answers", "evolmm_answers", "solver"),
        read_parquet(inp["images"], SPECS["images"]),
        rewards,
    )
summary = train.train_policy(job["policy"], samples, cfg, job["checkpoint"], job["work_dir"])
if os.environ.get("RANK", "0") == "0":
    summary["lineage"] = job["lineage"]
    Path(job["summary"]).parent.mkdir(parents=True, exist_ok=True)
    Path(job["summary"]).write_text(json.dumps(summary, indent=2) + "\n")
