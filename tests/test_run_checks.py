"""Checks before any job (issue 29): EvoLMM's image folder, and what results/ was made with.

Unit tests of the check functions, then the workflow itself: each refusal is one line and exit
1, and no job runs.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from evovlm.config import ConfigError
from evovlm.experiment import (
    EXPERIMENT_RECORD,
    check_image_dir,
    check_results_identity,
    record_experiment,
)
from tests.conftest import snakemake
from tests.test_workflow_e2e import make_workdir


def _evolmm(image_dir, base="embedded") -> dict:
    return {"method": "evolmm", "model": {"base": base}, "evolmm": {"image_dir": str(image_dir)}}


def _mmzero(base="embedded") -> dict:
    return {"method": "mmzero", "model": {"base": base}, "evolmm": {"image_dir": "embedded"}}


# evolmm.image_dir -----------------------------------------------------------------------------


def test_image_dir_missing_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        check_image_dir(_evolmm(tmp_path / "nowhere"))
    msg = str(err.value)
    assert "\n" not in msg and "'evolmm.image_dir'" in msg and "does not exist" in msg


@pytest.mark.parametrize("content", ["empty", "text", "corrupt"])
def test_image_dir_without_a_readable_image_is_refused(tmp_path, content):
    if content == "text":
        (tmp_path / "notes.txt").write_text("hello")
    if content == "corrupt":
        (tmp_path / "a.png").write_bytes(b"\x89PNG not really")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "b.jpg").write_bytes(b"")
    with pytest.raises(ConfigError, match="'evolmm.image_dir'.*holds no readable image"):
        check_image_dir(_evolmm(tmp_path))


def test_image_dir_with_one_image_in_a_subfolder_passes(tmp_path):
    (tmp_path / "a.png").write_bytes(b"broken")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "sub" / "ok.png")
    check_image_dir(_evolmm(tmp_path))


def test_image_dir_is_not_checked_for_mmzero_or_embedded(tmp_path):
    check_image_dir({"method": "mmzero", "evolmm": {"image_dir": str(tmp_path / "nowhere")}})
    check_image_dir(_evolmm("embedded"))


# results/ identity ------------------------------------------------------------------------------


def test_a_first_run_records_and_a_same_run_passes(tmp_path):
    results = tmp_path / "results"
    check_results_identity(_mmzero(), results)  # nothing there yet
    record_experiment(_mmzero(), results)
    record = json.loads((results / EXPERIMENT_RECORD).read_text())
    assert record == {"method": "mmzero", "model.base": "embedded", "evolmm.image_dir": None}
    check_results_identity(_mmzero(), results)


@pytest.mark.parametrize(
    ("before", "after", "key"),
    [
        (_mmzero(), _evolmm("embedded"), "method"),
        (_mmzero(), _mmzero(base="Qwen/Qwen2.5-VL-3B-Instruct"), "model.base"),
        (_evolmm("embedded"), _evolmm("/data/images"), "evolmm.image_dir"),
    ],
)
def test_results_of_another_experiment_are_refused(tmp_path, before, after, key):
    results = tmp_path / "results"
    record_experiment(before, results)
    with pytest.raises(ConfigError) as err:
        check_results_identity(after, results)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"config key {key!r}")
    assert "--directory" in msg


def test_one_folder_spelt_two_ways_is_the_same_experiment(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    monkeypatch.chdir(tmp_path)
    record_experiment(_evolmm("images"), "results")
    check_results_identity(_evolmm(tmp_path / "images"), "results")


def test_results_made_before_the_record_are_recognised_by_their_tables(tmp_path):
    results = tmp_path / "results"
    (results / "round_1").mkdir(parents=True)
    (results / "round_1" / "proposals.parquet").write_bytes(b"")  # MM-Zero's own table
    with pytest.raises(ConfigError, match="'method'.*'mmzero'"):
        check_results_identity(_evolmm("embedded"), results)
    check_results_identity(_mmzero(), results)


# The workflow ------------------------------------------------------------------------------------


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return snakemake("--cores", "1", *args, cwd=workdir, timeout=300)


def test_workflow_refuses_an_empty_image_dir_before_any_job(tmp_path):
    workdir = make_workdir(tmp_path / "wd")
    (tmp_path / "images").mkdir()
    proc = _snakemake(
        workdir, "-n", "--config", "method=evolmm", f"evolmm={{image_dir: {tmp_path / 'images'}}}"
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("config error")]
    assert len(errors) == 1 and "holds no readable image" in errors[0]


def test_workflow_refuses_results_of_another_method_before_any_job(tmp_path):
    workdir = make_workdir(tmp_path / "wd")
    record_experiment(_mmzero(), workdir / "results")
    proc = _snakemake(workdir, "--config", "method=evolmm")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("config error: config key 'method'")
    assert not (workdir / "resources").exists() and not (workdir / "logs").exists()


def test_workflow_records_what_results_are_made_with(tmp_path):
    workdir = make_workdir(tmp_path / "wd")
    # the smallest real job: the embedded EvoLMM image folder, two images
    proc = _snakemake(
        workdir, "--config", "method=evolmm", "evolmm={demo_images: 2}", "--", "build_demo_images"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((workdir / "results" / EXPERIMENT_RECORD).read_text())
    assert record["method"] == "evolmm" and record["evolmm.image_dir"] == "embedded"


def test_jobs_redraw_progress_bars_rarely_in_their_logs(tmp_path):
    """A job's tqdm bar (Hugging Face's and TRL's too) in a log file: a few lines, not one per
    step (issue 29: logs full of progress-bar redraws)."""
    import os

    from evovlm.config import quiet_progress_bars

    env = dict(os.environ)
    quiet_progress_bars(env)
    log = tmp_path / "job.log"
    code = (
        "import sys, time\n"
        "from tqdm.auto import tqdm\n"
        f"with open({str(log)!r}, 'w') as fh:\n"
        "    for _ in tqdm(range(50), file=fh):\n"
        "        time.sleep(0.02)\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert log.read_text().count("it/s") <= 3  # start and end (tqdm default: ~10 a second)
