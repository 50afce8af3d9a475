"""A training job: what the ``train_policy`` rule hands over, as one JSON-able dict, and how it
runs, in this process or on several under ``accelerate launch -m evovlm.train --job FILE``.

The dict holds plain values only (method, plug-ins, lineage, input tables, policy, the ``train``
section, sampling temperatures and options, output paths), so the rule script, the module entry
point and a test all run a job the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from evovlm import methods
from evovlm.schema import SPECS
from evovlm.tables import read_or_exit
from evovlm.train.config import TrainConfig
from evovlm.train.run import train_policy

JOB_KEYS = (
    "method",
    "plugins",
    "lineage",
    "inputs",
    "rewards",
    "policy",
    "train",
    "temperatures",
    "sample_options",
    "checkpoint",
    "summary",
    "work_dir",
)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Read the job's tables, train its lineage, write the checkpoint and (main process) the
    summary JSON; return the summary."""
    missing = [key for key in JOB_KEYS if key not in job and key != "plugins"]
    if missing:
        raise ValueError(f"training job lacks {missing}")
    method = methods.from_config({"method": job["method"], "plugins": job.get("plugins") or []})
    cfg = TrainConfig.from_dict(job["train"], method)
    rewards = {Path(p).stem: read_or_exit(p, SPECS["rewards"]) for p in job["rewards"]}
    tables = {
        name: read_or_exit(job["inputs"][name], SPECS[spec]) for name, spec in method.tables.items()
    }
    samples = method.role_samples(tables, rewards, job["sample_options"])
    # A role updated at a ratio of another's steps (EvoLMM's Proposer, evolmm.proposer_update_ratio):
    # the other's steps from its own job's summary (an input when they depend on its groups).
    update_ratio = {
        role: (other, int(ratio))
        for role, (other, ratio) in (job["sample_options"].get("update_ratio") or {}).items()
    }
    reference_steps = steps_of(job["inputs"].get("steps_from") or [])
    summary = train_policy(
        job["policy"],
        samples,
        cfg,
        job["checkpoint"],
        job["work_dir"],
        job["temperatures"],
        update_ratio=update_ratio,
        reference_steps=reference_steps,
    )
    if os.environ.get("RANK", "0") == "0":
        summary["lineage"] = job["lineage"]
        Path(job["summary"]).parent.mkdir(parents=True, exist_ok=True)
        Path(job["summary"]).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def steps_of(summaries: list[str | os.PathLike]) -> dict[str, int]:
    """Role -> the optimiser steps its training job ran, from that job's summaries
    (``train/{lineage}.json``; a role with no trainable group ran 0)."""
    steps: dict[str, int] = {}
    for path in summaries:
        for role, record in json.loads(Path(path).read_text())["roles"].items():
            steps[role] = int(record.get("steps", 0))
    return steps


# accelerate configs shipped with the package (train.sharding selects one)
ACCELERATE_CONFIGS = Path(__file__).resolve().parents[1] / "accelerate"


def accelerate_command(
    num_processes: int, job_file: str | os.PathLike, sharding: str = "none"
) -> list[str]:
    """The ``accelerate launch`` command that runs ``job_file`` on ``num_processes`` processes,
    each as ``python -m evovlm.train --job job_file``: data parallel (DDP), or with
    ``sharding='fsdp'`` a sharded full fine-tune (``evovlm/accelerate/fsdp.yaml``)."""
    config = []
    if sharding == "fsdp":
        config = ["--config_file", str(ACCELERATE_CONFIGS / "fsdp.yaml")]
    elif num_processes > 1:
        # DDP through torchrun. Without it, on a machine with no GPU (and no accelerate config)
        # accelerate starts ONE process whatever --num_processes says; with it, the trainer's
        # use_cpu makes the processes join over gloo there.
        config = ["--multi_gpu"]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *config,
        "--num_processes",
        str(num_processes),
        "--module",
        "evovlm.train",
        "--job",
        str(job_file),
    ]


def launch(job: dict[str, Any]) -> int:
    """Run ``job`` here, or, with ``train.num_processes`` > 1, write it next to its work folder
    and run it under ``accelerate launch``; return the exit status."""
    train = job.get("train") or {}
    num_processes = int(train.get("num_processes", 1) or 1)
    sharding = str(train.get("sharding", "none"))
    if (num_processes <= 1 and sharding == "none") or "LOCAL_RANK" in os.environ:
        run_job(job)
        return 0
    job_file = Path(job["work_dir"]).with_suffix(".job.json")
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(job))
    command = accelerate_command(num_processes, job_file, sharding)
    print("running:", " ".join(command), file=sys.stderr)
    returncode = subprocess.run(command, stderr=sys.stderr).returncode
    if returncode == 0:
        job_file.unlink(missing_ok=True)
    return returncode
