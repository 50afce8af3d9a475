"""The installed package works outside a checkout: the wheel carries the config schema, prompt
templates and tokenizer corpus, and an installed copy imports and checks a config from anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

# Package data the code reads at import or run time (pyproject.toml [tool.setuptools.package-data]).
DATA = (
    "evovlm/schemas/config.schema.yaml",
    "evovlm/accelerate/fsdp.yaml",
    "evovlm/methods/mmzero/templates/solver.jinja",
    "evovlm/methods/evolmm/templates/evolmm_solver.jinja",
    "evovlm/data/",
)

# Run from a folder outside the checkout, importing only the installed copy.
INSTALLED = """
import sys
from pathlib import Path

import evovlm, evovlm.config, evovlm.experiment, evovlm.rewards, evovlm.train
from evovlm.train.job import accelerate_command

site = Path(sys.argv[1]).resolve()
assert Path(evovlm.__file__).resolve().is_relative_to(site), evovlm.__file__
assert evovlm.config.DEFAULT_SCHEMA.resolve().is_relative_to(site)
config = {"method": "evolmm", "rounds": 1}
evovlm.experiment.validate_config(config)
cfg = evovlm.train.TrainConfig.from_dict(config["train"], evovlm.methods.get("evolmm"))
print(cfg.method, config["rewards"]["evolmm"]["solver_reward"])
command = accelerate_command(2, "job.json", "fsdp")
fsdp = Path(command[command.index("--config_file") + 1])
assert fsdp.is_file() and fsdp.resolve().is_relative_to(site), fsdp
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built (as ``pip wheel .`` does) from a copy of the project's sources, so the
    build leaves nothing in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "project"
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*command, "-q", "-w", str(tmp / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = (tmp / "dist").glob("evovlm-*.whl")
    return built


def test_the_wheel_carries_the_package_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in DATA:
        assert any(name.startswith(wanted) for name in names), f"{wanted} is not in {wheel.name}"
    assert not any(name.startswith(("workflow/", "tests/")) for name in names)


def test_the_installed_package_imports_and_validates_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed copy first on the path (before any editable install of the checkout).
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", INSTALLED, str(site)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["lora", "continuous"]
