"""Generation engines: one interface, ``generate(requests) -> outputs``.

A :class:`Request` is chat messages (HF format, ``{"type": "image"}`` items mark where the
request's images go) plus :class:`SamplingParams`. Each output carries, for every one of the
``n`` samples, the text, the completion token ids and the per-token log-probabilities of the
sampling policy (log_softmax(logits / temperature), the quantity the trainer recomputes; vLLM
runs with ``logprobs_mode="processed_logprobs"`` for it), so training can replay completions
instead of generating again.

``make_engine`` picks the implementation: ``hf`` (transformers ``generate``; CPU or GPU) or
``vllm`` (offline ``vllm.LLM``); ``auto`` takes vLLM only when it imports and a GPU is visible.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from evovlm import gpus
from evovlm.engines.base import (
    Engine,
    Request,
    RequestOutput,
    Sample,
    SamplingParams,
    derive_seed,
    sample_seed,
)

__all__ = [
    "Engine",
    "Request",
    "RequestOutput",
    "Sample",
    "SamplingParams",
    "derive_seed",
    "make_engine",
    "resolve_backend",
    "sample_seed",
    "vllm_usable",
]


def vllm_usable() -> bool:
    """vLLM imports and a GPU is visible, decided without importing torch or vLLM.

    ``torch.cuda.is_available()`` here would initialise CUDA in this process, and vLLM, which
    forks its engine process, then fails with "Cannot re-initialize CUDA in forked subprocess".
    So the GPUs come from ``CUDA_VISIBLE_DEVICES`` / ``nvidia-smi -L`` (evovlm.gpus); whether
    the driver can run the installed CUDA is checked before any job (evovlm.gpus.check_gpu_setup).
    """
    if importlib.util.find_spec("vllm") is None:
        return False
    return bool(gpus.visible_gpus())


def resolve_backend(backend: str = "auto") -> str:
    """The engine that ``backend`` means here: ``hf`` or ``vllm`` (``auto`` = vLLM when it
    imports and a GPU is visible). Never initialises CUDA (see :func:`vllm_usable`)."""
    if backend not in ("auto", "hf", "vllm"):
        raise ValueError(f"engine.backend: {backend!r} is not one of auto, hf, vllm")
    if backend == "auto":
        return "vllm" if vllm_usable() else "hf"
    return backend


def make_engine(model: str, backend: str = "auto", **options: Any) -> Engine:
    """Build the engine for ``model`` (folder or hub id). ``options`` go to the implementation."""
    if resolve_backend(backend) == "vllm":
        from evovlm.engines.vllm_engine import VLLMEngine

        return VLLMEngine(model, **options.get("vllm", {}))
    from evovlm.engines.hf import HFEngine

    return HFEngine(model, **options.get("hf", {}))
