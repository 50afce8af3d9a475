"""Which GPUs a machine has, and one GPU per job on a multi-GPU machine.

Snakemake's ``resources: gpu=1`` is only a counter: it keeps the number of concurrent GPU jobs at
the number of GPUs, but assigns no device. :func:`claim_gpu` does the assignment: a job takes the
first GPU whose lock file it can lock (``fcntl.flock``, released by the kernel when the process
ends, even on a crash) and sets ``CUDA_VISIBLE_DEVICES`` to it before CUDA is initialised. The
locks live in a per-user folder of the temporary directory, so two experiments on one machine
share the GPUs too.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evovlm.config import EMBEDDED, ConfigError, base_kind

_HELD: list = []  # open lock files; closing them (process exit) frees the GPU


def visible_gpus() -> list[str]:
    """Device ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi -L``.

    No torch import and no CUDA initialisation (Snakemake calls this while planning).
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        return [] if ids in (["-1"], ["NoDevFiles"]) else ids
    listing = nvidia_smi("-L") or ""
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def nvidia_smi(*args: str) -> str | None:
    """``nvidia-smi``'s output for ``args``, or None (no nvidia-smi, or it fails: no driver)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, *args], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def lock_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / f"evovlm-gpu-locks-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def claim_gpu(n: int = 1, wait_s: float = 3600.0, poll_s: float = 1.0) -> str | None:
    """Take ``n`` free GPUs for this process and make them the only visible ones; return their
    ids as ``CUDA_VISIBLE_DEVICES`` text.

    With no more GPUs visible than asked for, nothing changes (returns the visible ids or None).
    Otherwise waits (up to ``wait_s``) until ``n`` are free. Call it before CUDA starts.
    """
    devices = visible_gpus()
    check_driver(devices)
    if len(devices) <= n:
        return ",".join(devices) or None
    deadline = time.monotonic() + wait_s
    folder = lock_dir()
    while True:
        taken = []
        for dev in devices:
            handle = open(folder / f"gpu-{dev}.lock", "a+")  # noqa: SIM115 (held until exit)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            taken.append((dev, handle))
            if len(taken) == n:
                break
        if len(taken) == n:
            _HELD.extend(handle for _, handle in taken)
            ids = ",".join(dev for dev, _ in taken)
            os.environ["CUDA_VISIBLE_DEVICES"] = ids
            print(f"gpu: this job uses GPU {ids} (of {','.join(devices)})", file=sys.stderr)
            return ids
        for _, handle in taken:  # not enough free: give back and wait
            handle.close()
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no {n} free GPU(s) among {devices} after {wait_s:.0f} s (locks in {folder}); "
                "lower --resources gpu=N to the number of GPUs"
            )
        time.sleep(poll_s)


# --- Is the GPU usable? (read from nvidia-smi and files only: no torch import, no CUDA init) ---

# The oldest driver each CUDA major release runs on (NVIDIA's "CUDA minor version compatibility"
# table: docs.nvidia.com/deploy/cuda-compatibility): an older driver makes torch report no GPU,
# and every GPU job then runs on the CPU without a word.
MIN_DRIVER = {11: 450, 12: 525, 13: 580}

# The CUDA of the torch the conda env of the GPU rules (envs/evovlm-gpu.yaml) installs: PyPI's
# torch 2.14 wheels are CUDA 13.0 builds (torch.version.cuda). tests/test_gpus.py checks the pin.
GPU_ENV_TORCH = "2.14.0"
GPU_ENV_CUDA = "13.0"

# Below this many parameters a model is a toy that runs fine on the CPU (the embedded model has
# about a million); a real VLM (Qwen2.5-VL-3B: ~3.8 billion) on the CPU is a silent stall.
REAL_MODEL_PARAMS = 100_000_000


def driver_version() -> str | None:
    """The NVIDIA driver version ``nvidia-smi`` reports (first GPU), or None (no nvidia-smi, or
    it fails: no driver loaded)."""
    out = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader") or ""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return lines[0] if lines else None


def gpu_names() -> list[str]:
    """The names of the GPUs this process may use (``nvidia-smi``; [] without one)."""
    visible = visible_gpus()
    out = nvidia_smi("--query-gpu=index,name", "--format=csv,noheader") if visible else None
    if out is None:
        return []
    names = dict(line.split(", ", 1) for line in out.splitlines() if ", " in line)
    return [names.get(dev, dev) for dev in visible]


def torch_cuda_version() -> str | None:
    """``torch.version.cuda`` of the installed torch, read from ``torch/version.py`` without
    importing torch (None: no torch, or a CPU build)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "version.py"
        if path.is_file():
            match = re.search(r"^cuda\b[^=]*=\s*['\"]([\d.]+)['\"]", path.read_text(), re.M)
            return match.group(1) if match else None
    return None


def _major(version: str) -> int:
    return int(version.split(".")[0])


def driver_problem(driver: str, cuda: str) -> str | None:
    """Why driver ``driver`` cannot run CUDA ``cuda`` (None when it can)."""
    need = MIN_DRIVER.get(_major(cuda))
    if need is None and _major(cuda) > max(MIN_DRIVER):
        need = MIN_DRIVER[max(MIN_DRIVER)]  # a newer CUDA needs at least the newest known driver
    if need is None or _major(driver) >= need:
        return None
    return f"NVIDIA driver {driver} is older than CUDA {cuda} needs (>= {need})"


def check_driver(devices: list[str] | None = None) -> None:
    """Stop a GPU job whose GPUs its driver cannot run with the installed torch (one line, not a
    silent CPU run): the workflow checks the submit host before any job, this checks the node a
    cluster job lands on. No torch import, no CUDA initialisation."""
    devices = visible_gpus() if devices is None else devices
    cuda = torch_cuda_version() if devices else None
    driver = driver_version() if cuda else None
    problem = driver and driver_problem(driver, cuda)
    if problem:
        raise SystemExit(
            f"gpu: GPU(s) {','.join(devices)} visible but unusable: {problem} (torch built for "
            f"CUDA {cuda}); update the driver or install a torch for an older CUDA"
        )


def estimate_parameters(model_config: dict) -> int | None:
    """Rough parameter count of a (VLM) transformers config: embeddings plus, per layer,
    attention (4 h^2) and a gated MLP (3 h i). None when the config lacks the sizes."""
    text = model_config.get("text_config") or model_config
    try:
        h, layers = int(text["hidden_size"]), int(text["num_hidden_layers"])
        inter, vocab = int(text["intermediate_size"]), int(text["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None
    tied = bool(model_config.get("tie_word_embeddings", text.get("tie_word_embeddings")))
    return vocab * h * (1 if tied else 2) + layers * (4 * h * h + 3 * h * inter)


def model_parameters(base: str, revision: str | None = None) -> tuple[int | None, str]:
    """(estimated parameters or None, how it was found) for ``model.base``: the embedded model,
    a local folder, or a hub id (read from the local Hugging Face cache, nothing downloaded)."""
    if base == EMBEDDED:
        return 0, "embedded"
    kind = base_kind(base)
    path = Path(base).expanduser() / "config.json" if kind == "local" else None
    if kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(base, "config.json", revision=revision)
        path = Path(cached) if isinstance(cached, str) else None
        if path is None:
            return None, "hub id, not cached"
    try:
        return estimate_parameters(json.loads(path.read_text())), kind
    except (OSError, ValueError):
        return None, kind


def check_gpu_setup(config: dict, conda: bool = False) -> None:
    """Fail loudly, not slowly: raise a one-line ConfigError before any job when the GPU jobs
    would run on the CPU without saying so:

    - a GPU is visible but its driver is too old for the CUDA of the torch the jobs use (the
      installed torch, or with ``conda`` the GPU env's pinned torch): torch would see no GPU;
    - ``engine.backend: auto`` with a real model (not a toy) and no GPU, or a CPU-only torch.

    Reads ``nvidia-smi``, ``CUDA_VISIBLE_DEVICES`` and files only (no torch import, no CUDA
    initialisation: vLLM must be the first to start CUDA). Local runs only: on a cluster the
    submit host's GPUs say nothing about the nodes'.
    """
    gpus = visible_gpus()
    cuda = GPU_ENV_CUDA if conda else torch_cuda_version()
    where = "the conda env envs/evovlm-gpu.yaml" if conda else "the installed torch"
    if gpus and cuda:
        driver = driver_version()
        problem = driver and driver_problem(driver, cuda)
        if problem:
            raise ConfigError(
                f"config key 'engine.backend': GPU(s) {','.join(gpus)} visible but unusable: "
                f"{problem} ({where}); fix: update the NVIDIA driver, or install a torch built "
                "for an older CUDA, or hide the GPUs (CUDA_VISIBLE_DEVICES=) to run on the CPU "
                "knowingly"
            )
    engine = config.get("engine", {})
    model = config.get("model", {})
    wanted = {
        "engine.tensor_parallel_size": 1
        if engine.get("backend", "auto") == "hf"
        else int(engine.get("tensor_parallel_size", 1)),
        "train.num_processes": int(config.get("train", {}).get("num_processes", 1)),
    }
    for key, count in wanted.items():
        if gpus and count > len(gpus):
            raise ConfigError(
                f"config key '{key}': {count} GPUs per job, but only {len(gpus)} visible "
                f"({','.join(gpus)}); fix: give at most {len(gpus)}, or run where more are visible"
            )
    if engine.get("backend", "auto") != "auto":
        return  # hf or vllm chosen by hand: the user knows where it runs
    params, how = model_parameters(model.get("base", "embedded"), model.get("revision"))
    real = how == "hub id, not cached" or (params is not None and params >= REAL_MODEL_PARAMS)
    if not real or (gpus and cuda):
        return
    size = f"~{params / 1e9:.1f}B parameters" if params else "a hub model"
    why = "no GPU is visible" if not gpus else f"{where} is a CPU build (no CUDA)"
    raise ConfigError(
        f"config key 'engine.backend': auto would run model.base {model['base']!r} ({size}) "
        f"on the CPU: {why}; fix: run on a GPU machine with envs/gpu.txt (or --use-conda), "
        "or set engine.backend: hf to run it on the CPU knowingly"
    )
