"""transformers ``generate`` engine, batched with left padding, on CPU or GPU.

Reproducibility independent of batching: every sample row has its own ``torch.Generator``
seeded from (request seed, sample index). Sampling is done by the Gumbel-max trick inside a
logits processor (temperature, top-k and top-p from transformers' own warpers first, then
per-row Gumbel noise, then ``generate``'s greedy argmax picks the sample). The argmax of
``log p + Gumbel`` is an exact draw from ``p``; because the noise of a row depends only on its
own generator, a request gives the same samples alone or in any batch.
"""

from __future__ import annotations

import sys

import torch
from tqdm import tqdm
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from evovlm.engines.base import Request, RequestOutput, Sample, SamplingParams, sample_seed
from evovlm.modeling import load_model, load_processor, vision_placeholder_ids


class _RowWarper(LogitsProcessor):
    """Masks the never-sampled tokens, then applies each row's own temperature/top-k/top-p,
    then its own Gumbel noise.

    Rows with the same sampling settings are warped together (one sort per step for top-p,
    not one per row); every warper works row by row, so a row's result is the one it gets
    alone. Only the noise needs a row's own generator."""

    def __init__(
        self, params: list[SamplingParams], seeds: list[int], device, never: list[int] = ()
    ):
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        self.never = torch.tensor(list(never), dtype=torch.long, device=device)
        groups: dict[tuple, list[int]] = {}
        for row, p in enumerate(params):
            groups.setdefault((p.temperature, p.top_k, p.top_p), []).append(row)
        self.groups = [
            (key, torch.tensor(rows, dtype=torch.long, device=device))
            for key, rows in groups.items()
        ]

    def __call__(self, input_ids, scores):
        scores = scores.float()
        if self.never.numel():  # out of place: generate keeps this very tensor as the raw logits
            scores = scores.index_fill(1, self.never.to(scores.device), float("-inf"))
        out = torch.empty_like(scores)
        for (temperature, top_k, top_p), rows in self.groups:
            s = scores.index_select(0, rows)
            if temperature <= 0:  # greedy: no noise
                out[rows] = s
                continue
            ids = input_ids.index_select(0, rows)
            s = TemperatureLogitsWarper(temperature)(ids, s)
            if top_k and top_k > 0:
                s = TopKLogitsWarper(top_k)(ids, s)
            if top_p < 1.0:
                s = TopPLogitsWarper(top_p)(ids, s)
            u = torch.stack(
                [
                    torch.rand(s.shape[-1], generator=self.generators[row], dtype=torch.float64)
                    for row in rows.tolist()
                ]
            ).clamp_(1e-20, 1.0)
            gumbel = (-torch.log(-torch.log(u))).to(s.device, torch.float32)
            out[rows] = torch.log_softmax(s, dim=-1) + gumbel
        return out


class HFEngine:
    def __init__(
        self, model: str, batch_size: int = 8, dtype: str = "auto", device: str | None = None
    ):
        self.model_path = model
        self.processor = load_processor(model)
        self.model = load_model(model, dtype=dtype, device=device)
        self.batch_size = max(1, int(batch_size))
        gen_cfg = self.model.generation_config
        eos = gen_cfg.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        tok = self.processor.tokenizer
        if tok.eos_token_id is not None:
            self.eos_ids.add(tok.eos_token_id)
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else next(iter(self.eos_ids))
        # Vision placeholders are never sampled (a completion with one cannot be trained on).
        # Log-probs stay those of the raw model logits.
        self.never_ids = [t for t in vision_placeholder_ids(tok) if t not in self.eos_ids]

    def prompt_text(self, request: Request) -> str:
        return self.processor.apply_chat_template(
            request.messages, add_generation_prompt=True, tokenize=False
        )

    def generate(self, requests: list[Request], progress: bool = False) -> list[RequestOutput]:
        # One row per (request, sample); rows of similar length share a batch.
        rows = [(i, j) for i, r in enumerate(requests) for j in range(r.sampling.n)]
        texts = [self.prompt_text(r) for r in requests]
        prompt_ids: list[list[int] | None] = [None] * len(requests)
        samples: list[list[Sample | None]] = [[None] * r.sampling.n for r in requests]
        order = sorted(rows, key=lambda ij: (len(texts[ij[0]]), ij))
        bar = tqdm(total=len(rows), desc="generate", file=sys.stderr, disable=not progress)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for (i, j), sample, ids in zip(
                batch, *self._generate_batch(requests, texts, batch), strict=True
            ):
                samples[i][j] = sample
                prompt_ids[i] = ids
            bar.update(len(batch))
        bar.close()
        return [
            RequestOutput(prompt_ids=prompt_ids[i] or [], samples=list(samples[i]))
            for i in range(len(requests))
        ]

    @torch.inference_mode()
    def _generate_batch(self, requests, texts, batch):
        images = [img for i, _ in batch for img in requests[i].images]
        inputs = self.processor(
            text=[texts[i] for i, _ in batch],
            images=images or None,
            return_tensors="pt",
            padding=True,
        ).to(self.model.device)
        params = [requests[i].sampling for i, _ in batch]
        seeds = [sample_seed(requests[i].seed, j) for i, j in batch]
        max_new = max(p.max_tokens for p in params)
        out = self.model.generate(
            **inputs,
            do_sample=False,
            num_beams=1,
            max_new_tokens=max_new,
            logits_processor=LogitsProcessorList(
                [_RowWarper(params, seeds, self.model.device, self.never_ids)]
            ),
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
            temperature=None,
            top_p=None,
            top_k=None,
        )
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = out.sequences[:, prompt_len:]
        logits = torch.stack(out.logits, dim=1).float()  # (batch, steps, vocab), raw model logits
        # Log-probs of the sampled distribution: logits / temperature (before top-k/top-p), the
        # quantity the trainer recomputes when it divides its logits by the same temperature.
        temps = torch.tensor(
            [p.temperature if p.temperature > 0 else 1.0 for p in params],
            device=logits.device,
        ).view(-1, 1, 1)
        logprobs = (
            torch.log_softmax(logits / temps, dim=-1)
            .gather(-1, new_tokens.unsqueeze(-1))
            .squeeze(-1)
        )
        results, prompt_ids = [], []
        mask = inputs["attention_mask"]
        for row, p in enumerate(params):
            ids = new_tokens[row].tolist()
            lps = logprobs[row].tolist()
            cut, finish = len(ids), "length"
            for k, tok in enumerate(ids):
                if tok in self.eos_ids:
                    cut, finish = k + 1, "stop"
                    break
            cut = min(cut, p.max_tokens)
            ids, lps = ids[:cut], lps[:cut]
            if finish == "stop" and len(ids) and ids[-1] not in self.eos_ids:
                finish = "length"
            text = self.processor.tokenizer.decode(ids, skip_special_tokens=True)
            results.append(Sample(text=text, token_ids=ids, logprobs=lps, finish_reason=finish))
            prompt_ids.append(inputs["input_ids"][row][mask[row].bool()].tolist())
        return results, prompt_ids
