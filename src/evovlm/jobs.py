"""The start every generating rule job shares (the scripts in workflow/scripts/ whose rule samples
from a policy): the job's log, its GPUs, then a lazy engine for the rule's policy.

Each such script calls :func:`start_engine_job` under ``if __name__ == "__main__":``: vLLM
starts its engine process with ``spawn`` (always on CPU), which imports the script again as the
main module, and that process must not run the job again (tests/test_vllm_jobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evovlm.gpus import claim_gpu
from evovlm.stages import LazyEngine, Shard, engine_from_config, job_log


@dataclass(frozen=True)
class EngineJob:
    engine: LazyEngine  # the rule's policy (params.policy), loaded on first use
    params: Any  # the rule's params (snakemake.params)
    round: int | None  # the {round} wildcard; None for a rule without one (evaluate_policy)
    shard: Shard  # the {scatteritem} wildcard; all items for a rule without one


def start_engine_job(snakemake: Any) -> EngineJob:
    """Take the rule's log and GPUs, in that order, then name the rule's policy and engine.

    The rule gives ``log[0]``, ``resources.gpu`` and the params ``policy`` and ``dtype``.
    """
    job_log(snakemake.log[0])  # stderr of this process and of those it starts (vLLM's engine)
    claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts
    params, wildcards = snakemake.params, snakemake.wildcards
    return EngineJob(
        engine=engine_from_config(params.policy, snakemake.config["engine"], params.dtype),
        params=params,
        round=int(wildcards.round) if "round" in wildcards.keys() else None,
        shard=Shard.parse(wildcards.get("scatteritem")),
    )
