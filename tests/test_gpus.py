"""GPU operations checked without a GPU: backend selection never starts CUDA, a GPU that is
visible but unusable (driver too old) or a real model on the CPU stops the workflow with one line
before any job, and GPU jobs claim as many GPUs as tensor parallelism needs.

A fake ``nvidia-smi`` on PATH (a shell script printing what the real one prints for
``-L`` and ``--query-gpu=driver_version --format=csv,noheader``) stands in for the driver; a
folder named ``vllm`` on the path stands in for an installed vLLM where only its presence is read.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from evovlm import gpus
from evovlm.config import ConfigError
from tests.conftest import REPO


def fake_smi(folder: Path, count: int = 2, driver: str = "580.95.05") -> Path:
    """A stand-in ``nvidia-smi`` with ``count`` H100s and driver ``driver``; returns its folder
    (put it first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    listing = "\\n".join(
        f"GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd)"
        for i in range(count)
    )
    drivers = "\\n".join(driver for _ in range(count))
    script = folder / "nvidia-smi"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            case "$*" in
              "-L") printf '{listing}\\n' ;;
              *driver_version*) printf '{drivers}\\n' ;;
              *) echo "fake nvidia-smi: unsupported arguments $*" >&2; exit 2 ;;
            esac
            """
        )
    )
    script.chmod(0o755)
    return folder


def fake_vllm(folder: Path) -> Path:
    """A folder holding an empty ``vllm`` package: importlib finds it, as it finds vLLM."""
    (folder / "vllm").mkdir(parents=True, exist_ok=True)
    (folder / "vllm" / "__init__.py").write_text("")
    return folder


# --- item 2: backend selection never initialises CUDA ---

RESOLVE = textwrap.dedent(
    """
    import sys
    from evovlm.engines import resolve_backend
    backend = resolve_backend("auto")
    torch_imported = "torch" in sys.modules
    import torch
    print(backend, torch_imported, torch.cuda.is_initialized())
    """
)


def _resolve(tmp_path, visible: str | None, with_vllm: bool = True) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    paths = [str(REPO / "src")] + ([str(fake_vllm(tmp_path / "site"))] if with_vllm else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    proc = subprocess.run(
        [sys.executable, "-c", RESOLVE], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_auto_backend_picks_vllm_for_visible_gpus_without_starting_cuda(tmp_path):
    # vLLM forks its engine process: CUDA must not be initialised (nor torch even imported) by
    # the backend choice before it. Visible GPUs come from CUDA_VISIBLE_DEVICES / nvidia-smi.
    assert _resolve(tmp_path, "0,1") == ["vllm", "False", "False"]
    assert _resolve(tmp_path, "") == ["hf", "False", "False"]
    assert _resolve(tmp_path, "0", with_vllm=False) == ["hf", "False", "False"]


def test_auto_backend_reads_nvidia_smi_when_cuda_visible_devices_is_unset(tmp_path, monkeypatch):
    from evovlm.engines import resolve_backend

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", f"{fake_smi(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.syspath_prepend(str(fake_vllm(tmp_path / "site")))
    assert gpus.visible_gpus() == ["0", "1"]
    assert resolve_backend("auto") == "vllm"
    assert resolve_backend("hf") == "hf"
