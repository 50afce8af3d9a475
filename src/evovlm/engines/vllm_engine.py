"""vLLM offline engine (the GPU path): ``vllm.LLM`` batch generation with images.

Prompts are formatted by the model's own processor chat template (as in the HF engine), images
go in ``multi_modal_data``, each request has its own seed (vLLM seeds a per-request generator,
so results do not depend on batching), and ``logprobs=0`` returns the sampled token's
log-probability, which vLLM computes from the raw model logits by default, like the HF engine.
Prefix caching is on: the n samples of a request and requests sharing a system prompt reuse
the KV cache. Vision placeholder tokens are banned (``bad_words``: vLLM sets their logits to
-inf before sampling; the returned log-probs stay those of the raw logits), as in the HF engine.

A PEFT adapter folder (``train.lora_save: adapter``) is served as its base model plus the
adapter: ``enable_lora`` and a ``LoRARequest`` on every generate call, so the base weights load
once. vLLM applies LoRA to the language model only; an adapter that also adapts the vision
tower or its merger is merged into a temporary plain folder first (same weights, no LoRA
kernels), which the log says.

Checked by tests/test_engine_contract.py (markers ``vllm`` and ``gpu``), which runs wherever
vLLM imports and a GPU is visible; CI has neither. See README "GPU".
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from evovlm.engines import Request, RequestOutput, Sample
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


def merged_copy(adapter: str) -> str:
    """The adapter merged into its base, saved as a plain HF folder in a temporary directory."""
    folder = tempfile.mkdtemp(prefix="evovlm-vllm-merged-")
    model = load_model(adapter, dtype="auto", merge=True)
    model.save_pretrained(folder)
    load_processor(adapter).save_pretrained(folder)
    return folder


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

        path = resolve_model_path(model)
        self.processor = load_processor(path)
        self.lora_request = None
        base = adapter_base(path)
        if base is not None and adapts_vision(path):
            print(f"vllm: {path} adapts the vision tower; serving a merged copy", file=sys.stderr)
            path = merged_copy(path)
        elif base is not None:
            from vllm.lora.request import LoRARequest

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
            limit_mm_per_prompt={"image": max_images_per_prompt, "video": 0},
            seed=seed,
            **engine_kwargs,
        )
        # Never sampled: a completion holding a pixel placeholder cannot be replayed in training.
        tokenizer = self.processor.tokenizer
        known = set(vision_placeholder_ids(tokenizer))
        self.never_tokens = [
            t for t in VISION_PLACEHOLDERS if tokenizer.convert_tokens_to_ids(t) in known
        ]

    def generate(self, requests: list[Request], progress: bool = False) -> list[RequestOutput]:
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
