"""Shared helpers of the generation stages: shards, requests to rows, lazy engines."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evovlm.config import section_defaults
from evovlm.engines import (
    Engine,
    Request,
    RequestOutput,
    SamplingParams,
    derive_seed,
    make_engine,
    resolve_backend,
)


@dataclass(frozen=True)
class Shard:
    index: int = 1  # 1-based, as Snakemake's scatteritem "i-of-n"
    count: int = 1

    @classmethod
    def parse(cls, item: str | None) -> Shard:
        if not item:
            return cls()
        m = re.fullmatch(r"(\d+)-of-(\d+)", item)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            raise ValueError(f"bad shard item {item!r}; expected 'i-of-n'")
        return cls(int(m.group(1)), int(m.group(2)))

    def take(self, items: Sequence) -> list:
        """This shard's share of a stably ordered list (round robin, so shards stay balanced)."""
        return list(items[self.index - 1 :: self.count])


# Sampling keys of a role's config section; a missing key keeps SamplingParams' default.
_SAMPLING_KEYS = {"temperature": float, "top_p": float, "top_k": int, "max_tokens": int}


def sampling_params(cfg: dict[str, Any], n: int) -> SamplingParams:
    options = {key: cast(cfg[key]) for key, cast in _SAMPLING_KEYS.items() if key in cfg}
    return SamplingParams(n=n, **options)


class LazyEngine:
    """Loads the model only when a stage really has something to generate."""

    def __init__(self, factory: Callable[[], Engine]):
        self._factory = factory
        self._engine: Engine | None = None

    def generate(self, requests: list[Request], progress: bool = True) -> list[RequestOutput]:
        if not requests:
            return []
        if self._engine is None:
            self._engine = self._factory()
        return self._engine.generate(requests, progress=progress)


def engine_from_config(model: str, engine_cfg: dict[str, Any], dtype: str = "auto") -> LazyEngine:
    """A lazy engine for ``model``; the policy is named in the job's log (stderr)."""
    engine_cfg = {**section_defaults("engine"), **engine_cfg}  # the schema's defaults
    configured = engine_cfg["backend"]
    backend = resolve_backend(configured)  # the log names the engine that runs, not "auto"
    note = f", engine.backend: {configured}" if configured != backend else ""
    print(f"policy: {model} (engine: {backend}{note})", file=sys.stderr)
    options = {
        "hf": {"batch_size": engine_cfg["batch_size"], "dtype": dtype},
        "vllm": {
            "dtype": dtype,
            "gpu_memory_utilization": engine_cfg["gpu_memory_utilization"],
            "tensor_parallel_size": engine_cfg["tensor_parallel_size"],
            "max_model_len": engine_cfg["max_model_len"],
        },
    }
    return LazyEngine(lambda: make_engine(model, backend, **options))


def job_log(path: str | os.PathLike) -> None:
    """Send this process's stderr to a job's log, at the file-descriptor level, so the processes
    it starts write there too: vLLM's engine process logs (and reports why it died) on its own
    stderr, with ``VLLM_LOGGING_STREAM=ext://sys.stderr`` (engines/vllm_engine.py)."""
    log = open(path, "w", buffering=1)  # noqa: SIM115 (the process's stderr until it exits)
    os.dup2(log.fileno(), 2)
    sys.stderr = log


def completion_columns(request: Request, output: RequestOutput, j: int) -> dict[str, Any]:
    sample = output.samples[j]
    return {
        "prompt": json.dumps(request.messages, ensure_ascii=False),
        "prompt_ids": output.prompt_ids,
        "completion": sample.text,
        "completion_ids": sample.token_ids,
        "logprobs": sample.logprobs,
        "finish_reason": sample.finish_reason,
    }


def request_seed(master_seed: int, round_: int, stage: str, key: str) -> int:
    return derive_seed(master_seed, round_, stage, key)


def png_to_image(data: bytes):
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def image_request(
    template: str, image: bytes, sampling: dict[str, Any], n: int, seed_key: tuple, **fields: Any
) -> Request:
    """``n`` samples of prompt ``template`` (``fields`` filled) about one PNG ``image``, seeded by
    ``seed_key`` = (master seed, round, stage, key) of :func:`request_seed`: the request of every
    stage that asks about a picture."""
    from evovlm import prompts

    return Request(
        messages=prompts.render_messages(template, **fields),
        images=[png_to_image(image)],
        sampling=sampling_params(sampling, n),
        seed=request_seed(*seed_key),
    )
