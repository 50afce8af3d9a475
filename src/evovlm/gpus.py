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
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HELD: list = []  # open lock files; closing them (process exit) frees the GPU


def visible_gpus() -> list[str]:
    """Device ids this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else ``nvidia-smi -L``.

    No torch import and no CUDA initialisation (Snakemake calls this while planning).
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        return [] if ids in (["-1"], ["NoDevFiles"]) else ids
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


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
