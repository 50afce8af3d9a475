"""evovlm.jobs.start_engine_job: what every generating rule script (workflow/scripts/) starts with,
and run_stage, the whole job of most of them.
It takes the process's stderr, so each case runs in a child process with Snakemake's own
Namedlist objects standing in for the rule's log, params and wildcards."""

import json
import subprocess
import sys

from evovlm.schema import REWARDS, frame_from_rows, read_parquet, write_parquet
from tests.conftest import REPO

CHILD = """
import json, sys
from types import SimpleNamespace
from snakemake.iocontainers import Log, Params, Wildcards
from evovlm.jobs import start_engine_job

log, wildcards = sys.argv[1], json.loads(sys.argv[2])
snakemake = SimpleNamespace(
    log=Log([log]),
    resources=SimpleNamespace(gpu=1),
    params=Params(fromdict={"policy": "some/policy", "dtype": "auto", "seed": 7}),
    wildcards=Wildcards(fromdict=wildcards),
    config={"engine": {"backend": "hf"}},
)
job = start_engine_job(snakemake)
print("after start", file=sys.stderr)  # the job's log now holds this process's stderr
print(json.dumps([job.round, job.shard.index, job.shard.count, job.params.seed]))
"""


def _start(tmp_path, wildcards):
    log = tmp_path / "job.log"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(log), json.dumps(wildcards)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), log.read_text(), proc.stderr


def test_a_generation_job_gets_its_round_shard_and_a_log_naming_the_policy(tmp_path):
    got, log, stderr = _start(tmp_path, {"round": "3", "scatteritem": "2-of-4"})
    assert got == [3, 2, 4, 7]
    assert "policy: some/policy (engine: hf)" in log
    assert "after start" in log and "after start" not in stderr


def test_a_job_without_round_or_shard_wildcards_takes_all_items(tmp_path):
    got, _, _ = _start(tmp_path, {"policy": "base"})  # evaluate_policy's only wildcard
    assert got == [None, 1, 1, 7]


RUN_STAGE = """
import json, sys
from types import SimpleNamespace
import polars as pl
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, Wildcards
from evovlm.jobs import run_stage
from evovlm.stages import LazyEngine

calls = []


def double(values):  # a function of the stage's module that a param passes through
    return [v * 2 for v in values]


def stage(engine, rewards, *, round_, shard, seed, scale):  # the stage: no sampling needed
    print("stage runs", file=sys.stderr)  # after the log was taken
    calls.append([isinstance(engine, LazyEngine), round_, shard.index, shard.count, seed, scale])
    return rewards.with_columns(pl.col("reward") * scale[0], parse_ok=pl.col("reward") > 0)


tmp = sys.argv[1]
snakemake = SimpleNamespace(
    input=InputFiles(fromdict={"rewards": tmp + "/in.parquet"}),
    output=OutputFiles(fromdict={"scored": tmp + "/out.parquet"}),
    log=Log([tmp + "/job.log"]),
    resources=SimpleNamespace(gpu=1),
    params=Params(fromdict={"policy": "p", "dtype": "auto", "seed": 7, "scale": [1.5]}),
    wildcards=Wildcards(fromdict={"round": "2", "scatteritem": "1-of-3"}),
    config={"engine": {"backend": "hf"}},
)
run_stage(
    snakemake,
    "__main__:stage",
    tables={"rewards": "rewards"},
    output=("scored", "rewards"),
    params=("seed",),
    through={"scale": "double"},
)
print(json.dumps(calls))
"""


def test_run_stage_reads_its_tables_calls_the_stage_and_writes_its_table(tmp_path):
    rows = [{"sample_id": s, "group_id": "g", "reward": r} for s, r in (("a", 1.0), ("b", -1.0))]
    write_parquet(frame_from_rows(rows, REWARDS), tmp_path / "in.parquet", REWARDS)
    proc = subprocess.run(
        [sys.executable, "-c", RUN_STAGE, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [[True, 2, 1, 3, 7, [3.0]]]
    out = read_parquet(tmp_path / "out.parquet", REWARDS)
    assert out["reward"].to_list() == [3.0, -3.0] and out["parse_ok"].to_list() == [True, False]
    log = (tmp_path / "job.log").read_text()
    assert "stage runs" in log and "2 scored, 1 parsed" in log
