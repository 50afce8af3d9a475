"""The ``train`` section: :class:`TrainConfig`, its "auto" values resolved from the run's
method (``Method.train_defaults``), and the check of ``train.trl`` against TRL."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from typing import Any

from evovlm.config import ConfigError, schema_dataclass, section_from_dict

log = logging.getLogger("evovlm.train")

ROLE_ORDER = ("proposer", "coder", "solver")
# The language model's attention and MLP projections, and the multimodal projector (merger):
# Qwen2/2.5-VL name it ``visual.merger.mlp.{0,2}``, Qwen3-VL ``visual.merger.linear_fc{1,2}``.
# (train.lora_target_modules' default in the schema; DEFAULT_LORA_TARGETS below)

# The trl.GRPOConfig options evovlm sets itself (evovlm.train.run): from the keys of the train
# section, the role's groups, its sampling temperature and the machine. train.trl may set any
# other option.
DERIVED_TRL_OPTIONS = frozenset(
    {
        "output_dir", "learning_rate", "lr_scheduler_type", "weight_decay", "max_grad_norm",
        "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
        "num_generations", "beta", "epsilon", "epsilon_high", "loss_type", "scale_rewards",
        "num_iterations", "shuffle_dataset", "temperature", "gradient_checkpointing", "bf16", "fp16", "use_cpu",
        "seed", "data_seed", "logging_steps", "save_strategy", "save_steps", "save_total_limit",
        "report_to", "disable_tqdm", "remove_unused_columns", "ddp_find_unused_parameters",
    }
)  # fmt: skip


def check_trl_options(options: dict[str, Any] | None) -> None:
    """Each key of ``train.trl`` must be a field of the installed ``trl.GRPOConfig`` that evovlm
    does not derive itself; raise :class:`~evovlm.config.ConfigError` naming the first that is
    not. TRL is imported only when there is an option to check."""
    if not options:
        return
    import dataclasses

    import trl

    known = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    for key in sorted(options):
        if key in DERIVED_TRL_OPTIONS:
            raise ConfigError(
                f"config key 'train.trl.{key}': evovlm sets this GRPOConfig option itself; "
                f"fix: remove it (set train.{key} where that key exists)"
            )
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"config key 'train.trl.{key}': not an option of trl.GRPOConfig "
                f"(TRL {trl.__version__}){hint}; fix: use a field name of trl.GRPOConfig"
            )


@schema_dataclass("train")
class TrainConfig:
    """The ``train`` section. Its keys, types, defaults and help are declared once, in
    ``evovlm/schemas/config.schema.yaml`` (``train``), and become this dataclass's fields
    (:func:`evovlm.config.schema_dataclass`); ``"auto"`` values are resolved per method by
    :meth:`from_dict`. Keys of ``trl`` go to ``trl.GRPOConfig`` as they are."""

    @property
    def adapters(self) -> bool:
        """LoRA rounds store (and continue) PEFT adapters instead of merged models."""
        return self.method == "lora" and self.lora_save == "adapter"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None, method: Any = None) -> TrainConfig:
        """Build from the ``train`` section; "auto" values become ``method``'s: a
        :class:`~evovlm.methods.Method` (its ``train_defaults``) or such a mapping itself;
        with none, :data:`TRAIN_DEFAULTS`."""
        cfg = section_from_dict(cls, d, "train")
        defaults = TRAIN_DEFAULTS if method is None else getattr(method, "train_defaults", method)
        if not isinstance(defaults, Mapping):
            raise TypeError(
                f"TrainConfig.from_dict: method must be a Method or its train_defaults, got "
                f"{method!r} (for a name: evovlm.methods.get(name))"
            )
        for key, value in defaults.items():
            if getattr(cfg, key) == "auto":
                setattr(cfg, key, value)
        if cfg.scale_rewards == "auto":  # a plug-in method that names none: TRL's default
            cfg.scale_rewards = "group"
        if isinstance(cfg.freeze_vision_tower, str):  # "true"/"false" from a nested --config
            cfg.freeze_vision_tower = cfg.freeze_vision_tower.lower() in ("true", "yes", "on")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        check_trl_options(self.trl)
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
            (
                self.passes is None or (isinstance(self.passes, int) and self.passes >= 1),
                "passes must be null or an integer >= 1",
            ),
            (
                self.scale_rewards in ("group", "batch", "none"),
                "scale_rewards: auto|group|batch|none",
            ),
            (
                self.kl_update in ("exponential", "proportional"),
                "kl_update: exponential|proportional",
            ),
            (self.per_device_train_batch_size >= 1, "per_device_train_batch_size must be >= 1"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be >= 1"),
            (self.learning_rate >= 0, "learning_rate must be >= 0 (0: a no-update control)"),
            (self.beta >= 0, "beta must be >= 0"),
            (self.epsilon_low >= 0 and self.epsilon_high >= 0, "epsilon_low/high must be >= 0"),
            (self.save_steps >= 0, "save_steps must be >= 0"),
            (self.num_processes >= 1, "num_processes must be >= 1"),
            (self.sharding in ("none", "fsdp"), "sharding: none|fsdp"),
            (
                self.sharding == "none" or self.method == "full",
                "sharding: fsdp shards a full fine-tune (method: full); LoRA trains few "
                "parameters and replicates the frozen base (sharding: none)",
            ),
            (self.save_dtype in ("float32", "base"), "save_dtype: float32|base"),
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


DEFAULT_LORA_TARGETS = TrainConfig().lora_target_modules

# What "auto" means when no method is given (the Method's train_defaults say it per method): a
# full fine-tune with TRL's fixed beta and its group-std advantage scaling.
TRAIN_DEFAULTS: dict[str, Any] = {
    "method": "full",
    "freeze_vision_tower": False,
    "kl_control": "fixed",
    "scale_rewards": "group",
}
