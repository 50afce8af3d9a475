"""An experiment remembers its config (results/config.yaml, evovlm.record)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evovlm.record import changed_keys, layer, pop_flag
from tests.conftest import REPO

RECORD = {
    "method": "mmzero",
    "rounds": 2,
    "shards": 1,
    "engine": {"backend": "auto", "batch_size": 16},
    "train": {"learning_rate": 1e-4, "report_to": "none"},
    "mmzero": {"coder": {"languages": ["svg"]}},
}


def test_overrides_layer_on_the_record():
    config = layer(RECORD, {"train": {"max_steps": 8}, "new_experiment": True})
    assert config["train"] == {"learning_rate": 1e-4, "report_to": "none", "max_steps": 8}
    assert "new_experiment" not in config
    assert RECORD["train"] == {"learning_rate": 1e-4, "report_to": "none"}  # not mutated


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        ({}, []),
        ({"rounds": 5}, []),  # continuing a run
        ({"rounds": 1}, ["rounds"]),
        ({"engine": {"backend": "hf", "batch_size": 4}, "shards": 3}, []),
        ({"train": {"report_to": "tensorboard"}}, []),
        ({"train": {"learning_rate": 1e-3}}, ["train.learning_rate"]),
        ({"mmzero": {"coder": {"languages": ["python"]}}}, ["mmzero.coder.languages"]),
        ({"method": "evolmm", "seed": 3}, ["method", "seed"]),
    ],
)
def test_only_result_changing_keys_are_a_change(overrides, changed):
    assert changed_keys(RECORD, layer(RECORD, overrides)) == changed


@pytest.mark.parametrize(("value", "flag"), [(True, True), ("true", True), ("no", False)])
def test_new_experiment_flag_is_no_config_key(value, flag):
    config = {"rounds": 2, "new_experiment": value}
    assert pop_flag(config) is flag
    assert config == {"rounds": 2}


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder whose first run (one cheap job) was given a --config override."""
    workdir = tmp_path_factory.mktemp("record")
    for name in ("Snakefile", "workflow", "config", "scripts", "envs"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, workdir / name)
    proc = _snakemake(
        workdir, "results/eval/benchmark.parquet", "--config", "eval={builtin_items: 7}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def test_first_run_writes_the_resolved_config(folder):
    record = yaml.safe_load((folder / "results/config.yaml").read_text())
    assert record["eval"]["builtin_items"] == 7
    assert record["train"]["learning_rate"] > 0  # defaults filled in


def test_later_command_without_the_override_plans_the_same_experiment(folder):
    # Without the record, the forgotten override changes build_benchmark's params: a rerun.
    proc = _snakemake(folder, "-n", "results/eval/benchmark.parquet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_different_experiment_stops_before_any_job_naming_the_key(folder):
    proc = _snakemake(folder, "-n", "--config", "eval={builtin_items: 9}", "seed=4")
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("config error: results/config.yaml")
    assert "eval.builtin_items (7 -> 9)" in line and "seed (0 -> 4)" in line
    assert "--directory" in line and "new_experiment=true" in line


def test_raising_rounds_and_execution_keys_may_differ(folder):
    proc = _snakemake(folder, "-n", "--config", "rounds=4", "shards=2", "engine={backend: hf}")
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_new_experiment_true_accepts_the_change(folder):
    proc = _snakemake(
        folder, "-n", "results/eval/benchmark.parquet", "--config", "seed=4", "new_experiment=true"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "changed by new_experiment=true: seed" in proc.stderr


def test_a_second_experiment_runs_in_its_own_directory(folder, tmp_path):
    other = tmp_path / "lr"
    proc = _snakemake(folder, "-n", "--directory", str(other), "--config", "seed=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (other / "results/config.yaml").exists()  # a dry run writes no record
