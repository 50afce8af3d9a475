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

import hashlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1  # samples per request
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    max_tokens: int = 256


@dataclass
class Request:
    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)  # PIL images, in message order
    sampling: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0  # same seed, same samples (independent of batching)


@dataclass
class Sample:
    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" | "length"


@dataclass
class RequestOutput:
    prompt_ids: list[int]
    samples: list[Sample]


class Engine(Protocol):
    def generate(self, requests: list[Request], progress: bool = False) -> list[RequestOutput]: ...


def sample_seed(seed: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` of a request, stable across runs and machines."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def derive_seed(*parts: object) -> int:
    """A stable seed from any parts (round, stage, ids ...)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def vllm_usable() -> bool:
    """vLLM imports and a GPU is visible, decided without importing torch or vLLM.

    ``torch.cuda.is_available()`` here would initialise CUDA in this process, and vLLM, which
    forks its engine process, then fails with "Cannot re-initialize CUDA in forked subprocess".
    So the GPUs come from ``CUDA_VISIBLE_DEVICES`` / ``nvidia-smi -L`` (evovlm.gpus); whether
    the driver can run the installed CUDA is checked before any job (evovlm.gpus.check_gpu_setup).
    """
    if importlib.util.find_spec("vllm") is None:
        return False
    from evovlm.gpus import visible_gpus

    return bool(visible_gpus())


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
