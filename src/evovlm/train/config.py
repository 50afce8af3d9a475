"""The ``train`` section: :class:`TrainConfig` and what "auto" means per method."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from evovlm.config import section_from_dict

log = logging.getLogger("evovlm.train")

ROLE_ORDER = ("proposer", "coder", "solver")
# The language model's attention and MLP projections, and the multimodal projector (merger):
# Qwen2/2.5-VL name it ``visual.merger.mlp.{0,2}``, Qwen3-VL ``visual.merger.linear_fc{1,2}``.
DEFAULT_LORA_TARGETS = [
    r".*language_model\.layers\.\d+\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj",
    r".*visual\.merger\..*",
]


@dataclass
class TrainConfig:
    # "full" fine-tune or "lora" (peft; merged into the saved checkpoint); "auto" = the method's
    # reference: MM-Zero full, EvoLMM LoRA (one adapter per role on the same frozen backbone)
    method: str = "auto"
    learning_rate: float = 1e-6  # AdamW learning rate (MM-Zero and EvoLMM: 1e-6); 0 = control
    # per-role factor on learning_rate (missing roles: 1); learning_rate 0 stays a control
    lr_scale: dict[str, float] = field(default_factory=dict)
    lr_scheduler_type: str = (
        "constant"  # transformers scheduler name ("constant", "linear", "cosine")
    )
    max_steps: int = 20  # optimiser steps per role per round
    per_device_train_batch_size: int = (
        8  # completions per micro-batch; rounded up per role to whole groups per step
    )
    gradient_accumulation_steps: int = 1  # micro-batches per optimiser step
    beta: float = 0.01  # fixed KL coefficient against the round's starting weights (0 = none)
    # "fixed" (beta) or "adaptive" (EvoLMM: starts at kl_init_beta, steers the measured KL to
    # kl_target at kl_rate per step); "auto" = the method's: MM-Zero fixed, EvoLMM adaptive
    kl_control: str = "auto"
    kl_init_beta: float = 0.001  # adaptive KL: starting coefficient (EvoLMM 1e-3)
    kl_target: float = 0.02  # adaptive KL: the KL it aims at (EvoLMM 0.02)
    kl_rate: float = 0.1  # adaptive KL: beta *= 1 + rate * clip(KL / target - 1, -1, 1) per step
    # Divide the logits by the role's sampling temperature in the loss (as verl does), so the
    # ratio refers to the distribution that was sampled; the engines record log-probs of it.
    scale_logits_by_temperature: bool = True
    epsilon_low: float = 0.2  # lower clip range of the importance ratio
    epsilon_high: float = 0.3  # upper clip range of the importance ratio (DAPO's clip-higher)
    loss_type: str = "dapo"  # TRL loss aggregation; dapo = token-level over the batch (TRL 1.16 default, no length bias)
    old_logprobs: str = "sampling"  # old-policy log-probs: "sampling" (cached, clipping applies) or "current" (ratio 1)
    weight_decay: float = 0.01  # AdamW weight decay (MM-Zero's reference: 0.01)
    max_grad_norm: float = 1.0  # gradient clipping norm
    # what a LoRA round stores: "adapter" (the PEFT adapter on the shared base, kept and trained on
    # across rounds) or "merged" (a full model per round, the adapter merged in; a fresh adapter
    # each round)
    lora_save: str = "merged"  # "adapter": HF engine only until the vLLM engine loads adapters
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling alpha
    lora_dropout: float = 0.05  # LoRA dropout
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS)
    )  # regexes (full match) on module names; linear layers only
    # keep the vision encoder fixed (the projector/merger still trains); "auto" = the method's
    # reference: MM-Zero trains it, EvoLMM freezes it
    freeze_vision_tower: bool | str = "auto"
    gradient_checkpointing: bool = (
        True  # recompute activations in the backward pass (TRL default; saves memory)
    )
    mixed_precision: str = (
        "auto"  # "auto" (bf16 on GPU, none on CPU) | "no" | "bf16" | "fp16"; weights stay fp32
    )
    seed: int = 0  # trainer seed (data order, dropout, LoRA init)
    save_steps: int = 10  # TRL checkpoint every N steps for resume (0 = none)
    keep_trl_checkpoints: bool = (
        False  # keep train/{lineage}_trl/ after success (default: delete it)
    )
    num_processes: int = 1  # >1: the job runs under `accelerate launch --module evovlm.train`
    report_to: str = "none"  # TRL/transformers logging integration: none | tensorboard | wandb

    @property
    def adapters(self) -> bool:
        """LoRA rounds store (and continue) PEFT adapters instead of merged models."""
        return self.method == "lora" and self.lora_save == "adapter"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, method: str = "mmzero") -> TrainConfig:
        """Build from the ``train`` section; "auto" values become ``method``'s reference ones."""
        cfg = section_from_dict(cls, d, "train")
        defaults = METHOD_TRAIN_DEFAULTS.get(method)
        if defaults is None:  # a plug-in method names its own
            from evovlm import methods

            defaults = methods.get(method).train_defaults
        for key, value in defaults.items():
            if getattr(cfg, key) == "auto":
                setattr(cfg, key, value)
        if isinstance(cfg.freeze_vision_tower, str):  # "true"/"false" from a nested --config
            cfg.freeze_vision_tower = cfg.freeze_vision_tower.lower() in ("true", "yes", "on")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        checks = [
            (self.method in ("full", "lora"), "method must be 'auto', 'full' or 'lora'"),
            (self.kl_control in ("fixed", "adaptive"), "kl_control: auto|fixed|adaptive"),
            (self.kl_init_beta >= 0 and self.kl_target > 0, "kl_init_beta >= 0, kl_target > 0"),
            (self.old_logprobs in ("sampling", "current"), "old_logprobs: 'sampling' or 'current'"),
            (
                self.mixed_precision in ("auto", "no", "bf16", "fp16"),
                "mixed_precision: auto|no|bf16|fp16",
            ),
            (self.max_steps >= 1, "max_steps must be >= 1"),
            (self.per_device_train_batch_size >= 1, "per_device_train_batch_size must be >= 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be >= 1"),
            (self.learning_rate >= 0, "learning_rate must be >= 0 (0: a no-update control)"),
            (self.beta >= 0, "beta must be >= 0"),
            (self.epsilon_low >= 0 and self.epsilon_high >= 0, "epsilon_low/high must be >= 0"),
            (self.save_steps >= 0, "save_steps must be >= 0"),
            (self.num_processes >= 1, "num_processes must be >= 1"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (self.lora_save in ("adapter", "merged"), "lora_save: adapter|merged"),
            (
                self.report_to in ("none", "tensorboard", "wandb"),
                "report_to: none|tensorboard|wandb",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"train: {message}")


# The reference set-ups behind the "auto" values of TrainConfig.
METHOD_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "mmzero": {"method": "full", "freeze_vision_tower": False, "kl_control": "fixed"},
    "evolmm": {"method": "lora", "freeze_vision_tower": True, "kl_control": "adaptive"},
}
