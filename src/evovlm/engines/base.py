"""What every engine shares: requests, sampling parameters, outputs and the per-sample seeds
(re-exported by :mod:`evovlm.engines`; the implementations import them from here)."""

from __future__ import annotations

import hashlib
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
