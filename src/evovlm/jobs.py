"""The start every generating rule job shares (the scripts in workflow/scripts/ whose rule samples
from a policy): the job's log, its GPUs, then a lazy engine for the rule's policy; and
:func:`run_stage`, the whole job of a rule that turns tables into one table with a stage.

Each such script calls :func:`start_engine_job` or :func:`run_stage` under
``if __name__ == "__main__":``: vLLM starts its engine process with ``spawn`` (always on CPU),
which imports the script again as the main module, and that process must not run the job again
(tests/test_vllm_jobs.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
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


def run_stage(
    snakemake: Any,
    stage: str,
    *,
    tables: Mapping[str, str] | None = None,
    output: tuple[str, str],
    params: Sequence[str] = (),
    through: Mapping[str, str] | None = None,
) -> None:
    """A generating rule's job: ``stage`` (``"module:function"``) makes one table from tables.

    The stage is called with the engine, then the tables of ``tables`` (the rule's input name ->
    its spec's name in :data:`evovlm.schema.SPECS`) in that order, then ``round_``, ``shard`` and
    the named params as keywords; ``through`` names params that pass through a function of the
    stage's module first (param -> function). Its frame is written to the output ``output[0]``
    with the spec named ``output[1]``, and its row count goes to the job's log.
    """
    job = start_engine_job(snakemake)
    # Only now: the stage's module may start CUDA (torch), which must see the GPUs claimed above
    module_name, function = stage.split(":")
    module = importlib.import_module(module_name)
    from evovlm.schema import SPECS, write_parquet
    from evovlm.tables import read_or_exit

    p = job.params
    frames = [read_or_exit(snakemake.input[i], SPECS[s]) for i, s in (tables or {}).items()]
    kwargs = {name: p[name] for name in params}
    kwargs.update({name: getattr(module, f)(p[name]) for name, f in (through or {}).items()})
    frame = getattr(module, function)(
        job.engine, *frames, round_=job.round, shard=job.shard, **kwargs
    )
    name, spec = output
    write_parquet(frame, snakemake.output[name], SPECS[spec])
    parsed = f", {frame['parse_ok'].sum()} parsed" if "parse_ok" in frame.columns else ""
    print(f"{frame.height} {name}{parsed}", file=sys.stderr)
