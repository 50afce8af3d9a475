"""GPU operations checked without a GPU: backend selection never starts CUDA, a GPU that is
visible but unusable (driver too old) or a real model on the CPU stops the workflow with one line
before any job, and GPU jobs claim as many GPUs as tensor parallelism needs.

A fake ``nvidia-smi`` on PATH (a shell script printing what the real one prints for
``-L`` and ``--query-gpu=driver_version --format=csv,noheader``) stands in for the driver; a
folder named ``vllm`` on the path stands in for an installed vLLM where only its presence is read.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from evovlm import gpus
from evovlm.config import ConfigError
from tests.conftest import REPO, snakemake


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


# --- item 11: fail loudly, not slowly ---

QWEN25_VL_3B = {  # the published Qwen2.5-VL-3B-Instruct sizes (text part)
    "model_type": "qwen2_5_vl",
    "tie_word_embeddings": True,
    "text_config": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "vocab_size": 151936,
    },
}


def real_model_folder(folder: Path) -> Path:
    """A folder that passes the model-file check and whose config has the 3B sizes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(QWEN25_VL_3B))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "preprocessor_config.json").write_text("{}")
    return folder


def default_config(**changes) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for key, value in changes.items():
        config[key] = {**config.get(key, {}), **value}
    return config


@pytest.fixture
def smi(tmp_path, monkeypatch):
    """Put a fake nvidia-smi first on PATH; returns a function (count, driver) -> None."""

    def install(count=2, driver="580.95.05"):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        folder = fake_smi(tmp_path / f"smi-{count}-{driver}", count, driver)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    return install


def test_driver_version_and_cuda_requirements(smi):
    smi(driver="550.54.15")
    assert gpus.driver_version() == "550.54.15"
    assert gpus.driver_problem("550.54.15", "13.0") == (
        "NVIDIA driver 550.54.15 is older than CUDA 13.0 needs (>= 580)"
    )
    assert gpus.driver_problem("580.95.05", "13.0") is None
    assert gpus.driver_problem("550.54.15", "12.8") is None
    assert gpus.driver_problem("470.256.02", "12.1") is not None
    assert gpus.driver_problem("580.95.05", "14.0") is None  # newer CUDA: newest known floor


def test_torch_cuda_version_is_read_without_importing_torch():
    code = (
        "import sys; from evovlm.gpus import torch_cuda_version; v = torch_cuda_version(); "
        "assert 'torch' not in sys.modules; import torch; print(v, torch.version.cuda)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out[0] == out[1]  # None for a CPU build, e.g. 13.0 for PyPI's torch 2.14


def test_gpu_env_cuda_matches_the_pinned_torch():
    pins = (REPO / "envs" / "gpu.txt").read_text().split()
    assert f"torch=={gpus.GPU_ENV_TORCH}" in pins


def test_visible_gpu_with_a_too_old_driver_is_one_line(smi, monkeypatch):
    smi(driver="550.54.15")
    monkeypatch.setattr(gpus, "torch_cuda_version", lambda: "13.0")
    with pytest.raises(ConfigError) as info:
        gpus.check_gpu_setup(default_config())
    assert str(info.value) == (
        "config key 'engine.backend': GPU(s) 0,1 visible but unusable: NVIDIA driver 550.54.15 "
        "is older than CUDA 13.0 needs (>= 580) (the installed torch); fix: update the NVIDIA "
        "driver, or install a torch built for an older CUDA, or hide the GPUs "
        "(CUDA_VISIBLE_DEVICES=) to run on the CPU knowingly"
    )
    smi(driver="580.95.05")  # a new enough driver passes
    gpus.check_gpu_setup(default_config())
    smi(driver="550.54.15")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # GPUs hidden on purpose: the CPU, knowingly
    gpus.check_gpu_setup(default_config())


def test_a_real_model_on_auto_without_a_gpu_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    folder = real_model_folder(tmp_path / "qwen3b")
    config = default_config(model={"base": str(folder)})
    with pytest.raises(ConfigError) as info:
        gpus.check_gpu_setup(config)
    assert str(info.value) == (
        f"config key 'engine.backend': auto would run model.base '{folder}' (~3.3B parameters) "
        "on the CPU: no GPU is visible; fix: run on a GPU machine with envs/gpu.txt (or "
        "--use-conda), or set engine.backend: hf to run it on the CPU knowingly"
    )
    gpus.check_gpu_setup(default_config(model={"base": str(folder)}, engine={"backend": "hf"}))
    gpus.check_gpu_setup(default_config())  # the embedded tiny model is meant for the CPU


def test_a_real_model_with_a_cpu_only_torch_is_one_line(tmp_path, smi, monkeypatch):
    smi(driver="580.95.05")
    monkeypatch.setattr(gpus, "torch_cuda_version", lambda: None)
    config = default_config(model={"base": str(real_model_folder(tmp_path / "m"))})
    with pytest.raises(ConfigError, match="the installed torch is a CPU build"):
        gpus.check_gpu_setup(config)
    gpus.check_gpu_setup(config, conda=True)  # the GPU rules' conda env brings CUDA torch


def test_the_tiny_model_folder_is_not_a_real_model(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    params, how = gpus.model_parameters(str(tiny_model_dir))
    assert how == "local" and 0 < params < gpus.REAL_MODEL_PARAMS
    gpus.check_gpu_setup(default_config(model={"base": str(tiny_model_dir)}))


def config_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


def test_workflow_stops_on_an_old_driver_before_any_job(tmp_path):
    # The conda env of the GPU rules pins a CUDA 13 torch; the fake driver is a 550 (CUDA 12).
    path = f"{fake_smi(tmp_path / 'bin', 1, '550.54.15')}{os.pathsep}{os.environ['PATH']}"
    env = {"PATH": path, "CUDA_VISIBLE_DEVICES": "0"}
    proc = snakemake("-n", "--software-deployment-method", "conda", env=env)
    assert proc.returncode == 1
    assert config_errors(proc.stderr) == [
        "config error: config key 'engine.backend': GPU(s) 0 visible but unusable: NVIDIA driver "
        "550.54.15 is older than CUDA 13.0 needs (>= 580) (the conda env envs/evovlm-gpu.yaml); "
        "fix: update the NVIDIA driver, or install a torch built for an older CUDA, or hide the "
        "GPUs (CUDA_VISIBLE_DEVICES=) to run on the CPU knowingly"
    ]
    assert "Building DAG" not in proc.stderr


def test_workflow_stops_on_a_real_model_without_a_gpu_before_any_job(tmp_path):
    folder = real_model_folder(tmp_path / "qwen3b")
    env = {"CUDA_VISIBLE_DEVICES": ""}
    proc = snakemake("-n", "--config", f"model={{base: {folder}}}", env=env)
    assert proc.returncode == 1
    (line,) = config_errors(proc.stderr)
    assert line.startswith("config error: config key 'engine.backend': auto would run model.base")
    proc = snakemake("-n", "--config", f"model={{base: {folder}}}", "engine={backend: hf}", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- item 8: tensor parallelism gets its GPUs ---


def test_generation_jobs_ask_for_tensor_parallel_gpus_in_the_plan():
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    proc = snakemake("-n", "-p", "--config", "engine={tensor_parallel_size: 2}", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "evovlm: at most 4 GPU job(s) at once (GPUs visible: 4 GPU(s) 0,1,2,3); "
        "2 GPUs per generation job" in proc.stderr
    )
    out = proc.stdout + proc.stderr
    jobs = dict(
        re.findall(r"rule (propose_concepts|train_policy):\n(?:.*\n)*?\s+resources: (.*)", out)
    )
    assert "gpu=2" in jobs["propose_concepts"].split(", ")
    assert "gpu=1" in jobs["train_policy"].split(", ")  # train.num_processes
    # The transformers engine uses one device whatever tensor_parallel_size says.
    proc = snakemake(
        "-n", "-p", "--config", "engine={tensor_parallel_size: 2, backend: hf}", env=env
    )
    jobs = dict(re.findall(r"rule (propose_concepts):\n(?:.*\n)*?\s+resources: (.*)", proc.stdout))
    assert "gpu=1" in jobs["propose_concepts"].split(", ")


def test_more_tensor_parallel_gpus_than_visible_is_one_line():
    env = {"CUDA_VISIBLE_DEVICES": "0"}
    proc = snakemake("-n", "--config", "engine={tensor_parallel_size: 2}", env=env)
    assert proc.returncode == 1
    assert config_errors(proc.stderr) == [
        "config error: config key 'engine.tensor_parallel_size': 2 GPUs per job, but only 1 "
        "visible (0); fix: give at most 1, or run where more are visible"
    ]


def test_a_generation_job_claims_the_tensor_parallel_gpus(tmp_path):
    # A real Proposer job (transformers engine on the CPU, tiny model): with tensor_parallel_size
    # 2 and three GPUs listed, it takes two of them (its CUDA_VISIBLE_DEVICES), not one.
    exp = tmp_path / "exp"
    (exp / "config").mkdir(parents=True)
    text = (REPO / "config" / "config.yaml").read_text()
    (exp / "config" / "config.yaml").write_text(text + "\nwarmup: {enabled: false}\n")
    target = "results/round_1/shards/mmzero/proposals/1-of-1.parquet"
    args = ["-s", str(REPO / "Snakefile"), "-d", str(exp), "--cores", "2", "--config"]
    args += [
        "engine={tensor_parallel_size: 2}",
        "mmzero={prompts_per_topic: 1, proposer: {n: 2, max_tokens: 8}}",
    ]
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2", "TMPDIR": str(tmp_path)}
    proc = snakemake(target, *args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (exp / "logs" / "propose_concepts" / "round_1.1-of-1.log").read_text()
    assert "gpu: this job uses GPU 0,1 (of 0,1,2)" in log


def test_a_gpu_job_on_a_node_with_a_too_old_driver_stops_with_one_line(smi, monkeypatch):
    # A cluster job is not checked by the submit host's workflow: its GPU claim checks the node.
    smi(count=1, driver="535.183.01")
    monkeypatch.setattr(gpus, "torch_cuda_version", lambda: "13.0")
    with pytest.raises(SystemExit) as info:
        gpus.claim_gpu(1)
    assert str(info.value) == (
        "gpu: GPU(s) 0 visible but unusable: NVIDIA driver 535.183.01 is older than CUDA 13.0 "
        "needs (>= 580) (torch built for CUDA 13.0); update the driver or install a torch for "
        "an older CUDA"
    )
    smi(count=1, driver="580.95.05")
    assert gpus.claim_gpu(1) == "0"


def test_a_gpu_limit_below_tensor_parallelism_is_one_line():
    # Snakemake would scale the jobs' gpu=2 down to the limit of 1 without a word.
    env = {"CUDA_VISIBLE_DEVICES": "0,1"}
    args = ["-n", "--resources", "gpu=1", "--config", "engine={tensor_parallel_size: 2}"]
    proc = snakemake(*args, env=env)
    assert proc.returncode == 1
    assert config_errors(proc.stderr) == [
        "config error: config key 'engine.tensor_parallel_size': 2 GPUs per job, but "
        "--resources gpu=1; fix: give --resources gpu=2 or more, or a smaller "
        "engine.tensor_parallel_size"
    ]
    proc = snakemake(
        "-n", "--resources", "gpu=2", "--config", "engine={tensor_parallel_size: 2}", env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
