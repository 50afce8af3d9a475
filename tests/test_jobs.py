"""evovlm.jobs.start_engine_job: what every generating rule script (workflow/scripts/) starts with.
It takes the process's stderr, so each case runs in a child process with Snakemake's own
Namedlist objects standing in for the rule's log, params and wildcards."""

import json
import subprocess
import sys

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
