"""Dry runs of the Snakefile: the DAG per round, rounds wiring, shards, method switch."""

import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO, snakemake


def dry_run(*config: str, extra: tuple[str, ...] = ()) -> str:
    # --forceall: plan every job, whatever a previous run left in the checkout.
    cmd = [sys.executable, "-m", "snakemake", "-n", "-F", "--cores", "2", "--quiet", "rules"]
    cmd += extra
    if config:
        cmd += ["--config", *config]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def job_counts(output: str) -> dict[str, int]:
    counts = {}
    for line in output.splitlines():
        m = re.match(r"^\s*([a-z_]+)\s+(\d+)\s*$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def test_five_rounds_list_per_round_jobs():
    counts = job_counts(dry_run("rounds=5"))
    assert counts["build_tiny_model"] == 1
    for rule in ("render_images", "score_rewards", "summarize_round"):
        assert counts[rule] == 5, rule
    for rule in ("propose_concepts", "write_code", "sample_answers"):
        assert counts[rule] == 5, rule  # one shard per stage by default
    assert counts["gather_shards"] == 15
    assert counts["train_policy"] == 15  # three lineages (share_weights: false)
    assert counts["evaluate_policy"] == 6  # the base model and each round's Solver
    assert counts["build_benchmark"] == counts["summarize_eval"] == 1


def test_shards_multiply_generation_jobs_only():
    counts = job_counts(dry_run("rounds=1", "shards=3"))
    assert counts["propose_concepts"] == 3
    assert counts["write_code"] == 3
    assert counts["sample_answers"] == 3
    assert counts["render_images"] == 1
    assert counts["gather_shards"] == 3


def test_shared_weights_train_one_lineage(tmp_path):
    overlay = tmp_path / "shared.yaml"
    overlay.write_text("mmzero:\n  share_weights: true\n")
    counts = job_counts(dry_run("rounds=2", extra=("--configfile", str(overlay))))
    assert counts["train_policy"] == 2


def test_evolmm_dag():
    counts = job_counts(dry_run("rounds=2", "method=evolmm"))
    for rule in ("sample_images", "score_rewards", "summarize_round"):
        assert counts[rule] == 2, rule
    assert counts["ask_questions"] == 2
    assert counts["answer_questions"] == 2
    assert counts["train_policy"] == 4  # one lineage (LoRA adapter) per role, as EvoLMM
    assert "render_images" not in counts


@pytest.mark.parametrize("bad", ["rounds=0", "shards=0", "bogus=1", "method=dpo"])
def test_bad_config_stops_before_any_job(bad):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", bad],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("config error:")]
    assert len(errors) == 1
    key = bad.split("=")[0]
    assert f"'{key}'" in errors[0]


TEST_CONFIGS = sorted((REPO / ".test").glob("config_*.yaml"))
TOY = REPO / "tests" / "toy_plugin"


def _snakemake(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return snakemake("--cores", "2", *args, env=env, timeout=180)


@pytest.mark.parametrize("configfile", TEST_CONFIGS, ids=lambda p: p.stem)
def test_each_test_config_lints_and_dry_runs(configfile):
    assert {p.stem for p in TEST_CONFIGS} >= {"config_mmzero", "config_evolmm", "config_lora"}
    lint = _snakemake("--lint", "--configfile", str(configfile))
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    counts = job_counts(dry_run(extra=("--configfile", str(configfile))))
    assert counts["score_rewards"] == counts["summarize_round"] == 2
    generation = {"propose_concepts", "ask_questions"} & set(counts)
    assert len(generation) == 1  # only the configured method's generation rules run


def _toy_env() -> dict:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOY), env.get("PYTHONPATH")]))
    return env


def test_a_plugin_method_is_wired_in_by_its_module_alone():
    """The toy method (tests/toy_plugin: module, rules file, script, template) plans its own
    generation rule and the generic scoring, training and summary rules; nothing else names it."""
    proc = _snakemake(
        "-n", "-F", "--quiet", "rules", "--configfile", str(TOY / "config.yaml"), env=_toy_env()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["toy_reply"] == counts["score_rewards"] == counts["train_policy"] == 2
    assert counts["gather_shards"] == counts["summarize_round"] == 2
    # its own format warm-up, and its speaker evaluated: the base and each round's
    assert counts["warmup_tiny_model"] == 1 and counts["evaluate_policy"] == 3
    assert not {"propose_concepts", "ask_questions", "write_code", "pseudolabel"} & set(counts)
    lint = _snakemake("--lint", "--configfile", str(TOY / "config.yaml"), env=_toy_env())
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]


def test_an_unknown_method_or_plugin_is_one_config_line():
    proc = _snakemake("-n", "--config", "method=nosuch")
    assert proc.returncode != 0
    assert "config key 'method'" in proc.stderr
    proc = _snakemake("-n", "--config", "plugins=[no_such_module]")
    assert proc.returncode != 0
    assert "config key 'plugins': cannot import 'no_such_module'" in proc.stderr


# Loads the workflow as `snakemake -n` does and prints each rule's output patterns and the
# workflow's ruleorder declarations.
_OUTPUTS = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(config=json.loads(sys.argv[1])),
        snakefile=Path("Snakefile"),
        workdir=Path("."),
    )
    w = wf._workflow
    outputs = {r.name: sorted(map(str, r.output)) for r in w.rules}
    print(json.dumps({"outputs": outputs, "ruleorder": [list(o) for o in w._ruleorder]}))
"""


@pytest.mark.parametrize("method", ["mmzero", "evolmm"])
def test_every_output_has_one_rule_whatever_the_method(method):
    """Both methods' generation rules are in every run's workflow (for --lint), so each writes
    under its own shard folder: no file two rules could make, no ruleorder to pick one."""
    proc = subprocess.run(
        [sys.executable, "-c", _OUTPUTS, json.dumps({"method": method})],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    makers = {}
    for rule, patterns in got["outputs"].items():
        for pattern in patterns:
            makers.setdefault(pattern, []).append(rule)
    assert {p: r for p, r in makers.items() if len(r) > 1} == {}
    assert got["ruleorder"] == []
