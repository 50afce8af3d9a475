"""Outputs honour the umask (issue 29): a shared cluster's colleagues can read them.

``tempfile.mkstemp`` (the atomic writes) and safetensors create files 0600 whatever the umask;
under umask 022 every output must be 0644 (folders 0755), under 027 0640 (0750).
"""

import os
import stat
from pathlib import Path

import polars as pl
import pytest

from evovlm import hfio, methods
from evovlm.metrics import write_json
from evovlm.schema import write_parquet


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): _mode(p) for p in [folder, *folder.rglob("*")]}


def test_parquet_and_json_honour_the_umask(tmp_path, umask):
    write_parquet(pl.DataFrame({"a": [1, 2]}), tmp_path / "t.parquet", None)
    write_json({"a": 1}, tmp_path / "metrics.json")
    assert _mode(tmp_path / "t.parquet") == 0o666 & ~umask
    assert _mode(tmp_path / "metrics.json") == 0o666 & ~umask


def test_models_and_checkpoints_honour_the_umask(tmp_path, umask):
    from evovlm.tiny import build_tiny_model
    from evovlm.train import TrainConfig
    from evovlm.train.checkpoint import copy_policy

    base = build_tiny_model(tmp_path / "tiny-base")
    # what the training job writes when a round has nothing to train: an adapter checkpoint
    cfg = TrainConfig.from_dict({"method": "lora", "lora_save": "adapter"}, methods.get("evolmm"))
    ckpt = tmp_path / "results" / "checkpoint" / "solver"
    copy_policy(str(base), ckpt, cfg)
    hfio.prepare_checkpoint(ckpt)
    assert (ckpt / "adapter_model.safetensors").is_file()
    for folder in (base, ckpt):
        modes = _modes(folder)
        want = {name: (0o777 if (folder / name).is_dir() else 0o666) & ~umask for name in modes}
        assert modes == want
