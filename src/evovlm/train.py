"""GRPO policy updates from a round's scored samples, through TRL (``GRPOTrainer``).

Nothing is generated here. Each role's scored samples become GRPO groups (same prompt, several
completions); groups whose rewards are all equal carry no signal and are dropped (counted). The
groups go to a stock ``GRPOTrainer`` through its ``rollout_func`` hook: the trainer asks for
completions, and the hook hands back the cached prompt ids, completion ids and sampling
log-probabilities of that group, plus the cached reward, which a one-line reward function returns.
TRL then does everything else: group-normalised advantages (``scale_rewards='group'``), the clipped
loss, the KL term against the round's starting weights (``beta > 0``), optimiser and checkpoints.

- Old-policy log-probs: :class:`ReplayGRPOTrainer` (a small subclass) passes the cached sampling
  log-probs as TRL's ``old_per_token_logps``, so the ratio is pi_theta / pi_sampling and clipping
  applies as the policy drifts over the round's steps (``old_logprobs: sampling``). With
  ``old_logprobs: current`` TRL's default is kept (ratio 1 at each step: REINFORCE with group
  advantages).
- Group sizes: one trainer run per role, ``num_generations`` = that role's group size (the most
  common size in its groups; larger groups are subsampled to it, smaller ones dropped and counted).
  A shared lineage trains its roles one after another (Proposer, Coder, Solver, the reference
  order), each for ``max_steps``.
- Images: the dataset has an ``image`` column; the trainer rebuilds ``pixel_values`` from it, so the
  cached ``prompt_ids`` are checked against the processor's own tokenisation of the prompt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import resource
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from evovlm import hfio
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
    num_processes: int = 1  # >1: the rule script re-executes itself under `accelerate launch`
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


# ---------------------------------------------------------------------------------------------
# Samples -> groups


@dataclass
class Group:
    """One GRPO group: one prompt (and its images), several scored completions."""

    role: str
    group_id: str
    messages: list[dict[str, Any]]
    images: list[Any]  # PIL images in message order (empty for text-only roles)
    prompt_ids: list[int]
    sample_ids: list[str]
    completion_ids: list[list[int]]
    logprobs: list[list[float]]
    rewards: list[float]

    @property
    def size(self) -> int:
        return len(self.rewards)

    @property
    def uid(self) -> str:
        return f"{self.role}/{self.group_id}"


@dataclass
class GroupStats:
    role: str
    samples: int = 0
    groups_total: int = 0
    dropped_zero_variance: int = 0
    dropped_size_mismatch: int = 0
    dropped_bad_samples: int = 0  # samples (not groups): bad log-probs or vision placeholder tokens
    # groups whose rows were sampled from different prompts (a GRPO group is one prompt: a
    # completion replayed under another prompt trains the wrong conditional)
    dropped_mixed_prompts: int = 0
    prompt_ids_mismatch: int = 0
    trainable_groups: int = 0
    group_size: int = 0


def _image_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get("bytes")
    return value


def mmzero_role_samples(
    proposals: pl.DataFrame | None,
    programs: pl.DataFrame | None,
    answers: pl.DataFrame | None,
    renders: pl.DataFrame | None,
    rewards: dict[str, pl.DataFrame],
    *,
    solver_questions: tuple[str, ...] | list[str] = ("hard",),
    coder_render_band: tuple[float, float] | list[float] | None = None,
) -> dict[str, pl.DataFrame]:
    """One frame per MM-Zero role in ``rewards``: the sample columns joined with the reward.

    Columns: sample_id, group_id, prompt, prompt_ids, completion_ids, logprobs, reward, image (PNG
    bytes or null). Solver rows keep only ``in_band`` rows when that column is present, and only
    the question kinds in ``solver_questions`` (MM-Zero trains the Solver on the hard question
    with its majority label). With ``coder_render_band = (lo, hi)``, Coder groups train only when
    their render rate lies in [lo, hi] (MM-Zero's filter).
    """
    tables = {
        "proposer": (proposals, "proposal_id"),
        "coder": (programs, "program_id"),
        "solver": (answers, "answer_id"),
    }
    out = {}
    for role, scored in rewards.items():
        table, id_col = tables[role]
        if table is None:
            raise ValueError(f"train: the {role} rewards need the {role} sample table")
        if role == "solver" and "in_band" in scored.columns:
            scored = scored.filter(pl.col("in_band").fill_null(False))
        if role == "solver":
            kind = (
                pl.col("question_kind")
                if "question_kind" in scored.columns
                else pl.col("group_id").str.extract(r"-(easy|hard)$")
            )
            scored = scored.filter(kind.is_in(list(solver_questions)))
        if role == "coder" and coder_render_band is not None and "rendered" in scored.columns:
            lo, hi = coder_render_band
            rate = pl.col("rendered").cast(pl.Float64).mean().over("group_id")
            scored = scored.filter(rate.is_between(lo, hi))
        frame = _join_samples(table, id_col, scored)
        if role == "solver":
            if renders is None:
                raise ValueError("train: the solver rewards need renders.parquet (its images)")
            pictures = renders.select(
                "program_id", pl.col("image").struct.field("bytes").alias("image")
            )
            frame = frame.join(pictures, on="program_id", how="left")
        else:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Binary).alias("image"))
        out[role] = frame.select(_SAMPLE_COLUMNS)
    return out


def evolmm_role_samples(
    questions: pl.DataFrame | None,
    answers: pl.DataFrame | None,
    images: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    """Like :func:`mmzero_role_samples` for EvoLMM (both roles see the round's image)."""
    tables = {"proposer": (questions, "question_id"), "solver": (answers, "answer_id")}
    pictures = images.select("image_id", pl.col("image").struct.field("bytes").alias("image"))
    out = {}
    for role, scored in rewards.items():
        table, id_col = tables[role]
        if table is None:
            raise ValueError(f"train: the {role} rewards need the {role} sample table")
        if "in_band" in scored.columns:
            scored = scored.filter(pl.col("in_band").fill_null(False))
        frame = _join_samples(table, id_col, scored).join(pictures, on="image_id", how="left")
        out[role] = frame.select(_SAMPLE_COLUMNS)
    return out


_SAMPLE_COLUMNS = [
    "sample_id",
    "group_id",
    "prompt",
    "prompt_ids",
    "completion_ids",
    "logprobs",
    "reward",
    "image",
]


def _join_samples(table: pl.DataFrame, id_col: str, scored: pl.DataFrame) -> pl.DataFrame:
    keep = [c for c in table.columns if c not in ("group_id", "reward")]
    # The rewards table's group_id is authoritative (it defines what was scored together).
    return (
        table.select(keep)
        .join(
            scored.select("sample_id", "group_id", "reward"),
            left_on=id_col,
            right_on="sample_id",
            how="inner",
        )
        .with_columns(pl.col(id_col).alias("sample_id"))
    )


def build_groups(
    role: str, samples: pl.DataFrame, processor=None, seed: int = 0
) -> tuple[list[Group], GroupStats]:
    """Group ``samples`` (see :func:`mmzero_role_samples`) into trainable GRPO groups.

    Refuses (and counts) a group whose rows differ in prompt, prompt ids or image: every
    completion is replayed under the group's one prompt, so all must have been sampled from it.
    Drops (and counts) groups whose rewards are all equal, samples whose cached log-probs do not
    line up with their tokens or whose completion holds an image placeholder token, and groups of a size other than the role's most common one (larger
    groups are subsampled to it, deterministically). With ``processor``, each prompt is tokenised
    the way the trainer will and compared with the cached ``prompt_ids``; on a mismatch the
    processor's ids are used (counted in ``prompt_ids_mismatch``).
    """
    import random

    stats = GroupStats(role=role, samples=samples.height)
    # A completion holding an image/video placeholder token would be fed to the vision tower
    # without pixels; such samples cannot be replayed. The HF engine never samples them; samples
    # from elsewhere (another engine, an old table) are checked here.
    placeholders = set()
    if processor is not None:
        from evovlm.modeling import vision_placeholder_ids

        placeholders = set(vision_placeholder_ids(processor.tokenizer))
    candidates: list[Group] = []
    for (group_id,), rows in samples.sort("sample_id").group_by(["group_id"], maintain_order=True):
        stats.groups_total += 1
        good = []
        for r in rows.iter_rows(named=True):
            ids, lps = r["completion_ids"], r["logprobs"]
            ok = (
                r["reward"] is not None
                and ids is not None
                and len(ids) > 0
                and lps is not None
                and len(lps) == len(ids)
                and all(lp == lp and abs(lp) != float("inf") for lp in lps)
                and not placeholders.intersection(ids)
            )
            if ok:
                good.append(r)
            else:
                stats.dropped_bad_samples += 1
        if len(good) < 2:
            stats.dropped_size_mismatch += 1
            continue
        first = good[0]
        if any(
            r["prompt"] != first["prompt"]
            or list(r["prompt_ids"]) != list(first["prompt_ids"])
            or _image_bytes(r["image"]) != _image_bytes(first["image"])
            for r in good[1:]
        ):
            log.error(
                "%s group %s mixes prompts: refused (its completions were not all sampled from "
                "one prompt)",
                role,
                group_id,
            )
            stats.dropped_mixed_prompts += 1
            continue
        candidates.append(
            Group(
                role=role,
                group_id=str(group_id),
                messages=json.loads(first["prompt"]),
                images=[_decode_image(first["image"])] if first["image"] is not None else [],
                prompt_ids=list(first["prompt_ids"]),
                sample_ids=[r["sample_id"] for r in good],
                completion_ids=[list(r["completion_ids"]) for r in good],
                logprobs=[[float(x) for x in r["logprobs"]] for r in good],
                rewards=[float(r["reward"]) for r in good],
            )
        )
    if not candidates:
        return [], stats
    sizes = Counter(g.size for g in candidates)
    size = max(sizes, key=lambda s: (sizes[s], s))  # the most common size, ties to the larger
    stats.group_size = size
    rng = random.Random(f"{seed}:{role}")
    groups = []
    for g in candidates:
        if g.size < size:
            stats.dropped_size_mismatch += 1
            continue
        if g.size > size:
            keep = sorted(rng.sample(range(g.size), size))
            g = _subset(g, keep)
        if max(g.rewards) - min(g.rewards) <= 1e-12:
            stats.dropped_zero_variance += 1
            continue
        if processor is not None:
            ids = prompt_token_ids(processor, g.messages, g.images)
            if ids != g.prompt_ids:
                stats.prompt_ids_mismatch += 1
                g.prompt_ids = ids
        groups.append(g)
    stats.trainable_groups = len(groups)
    return groups, stats


def _subset(g: Group, keep: list[int]) -> Group:
    def pick(xs):
        return [xs[i] for i in keep]

    return Group(
        role=g.role,
        group_id=g.group_id,
        messages=g.messages,
        images=g.images,
        prompt_ids=g.prompt_ids,
        sample_ids=pick(g.sample_ids),
        completion_ids=pick(g.completion_ids),
        logprobs=pick(g.logprobs),
        rewards=pick(g.rewards),
    )


def _decode_image(data: Any):
    from evovlm.stages import png_to_image

    return png_to_image(_image_bytes(data))


def prompt_token_ids(processor, messages: list[dict], images: list[Any]) -> list[int]:
    """The prompt ids the engines and the trainer produce: chat template, then the processor."""
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    out = processor(text=[text], images=images or None, return_tensors="pt")
    return out["input_ids"][0].tolist()


# ---------------------------------------------------------------------------------------------
# TRL: replay trainer, rollout hook, reward


def _replay_trainer_class():
    from trl import GRPOTrainer

    class ReplayGRPOTrainer(GRPOTrainer):
        """Stock GRPO; records each batch's group keys for the rollout hook and, optionally,
        uses the cached sampling log-probs as the old policy's."""

        use_sampling_logprobs: bool = True

        def _generate_and_score_completions(self, inputs):
            self._replay_uids = [x["uid"] for x in inputs]
            output = super()._generate_and_score_completions(inputs)
            sampling = output.get("sampling_per_token_logps")
            if self.use_sampling_logprobs and sampling is not None:
                output["old_per_token_logps"] = sampling
            return output

    return ReplayGRPOTrainer


def make_rollout_func(groups: list[Group], num_generations: int):
    """TRL ``rollout_func``: the cached completion for each position of the batch.

    TRL 1.16 passes each prompt ``num_generations`` times in a row, and across processes a group is
    split in rank order, so the k-th entry of process p is completion ``(p * len + k) % G``.
    """
    by_uid = {g.uid: g for g in groups}

    def rollout(prompts: list, trainer) -> dict[str, list]:
        uids = trainer._replay_uids
        if len(uids) != len(prompts):
            raise RuntimeError("rollout: batch keys and prompts differ in length")
        offset = trainer.accelerator.process_index * len(prompts)
        out: dict[str, list] = {
            "prompt_ids": [],
            "completion_ids": [],
            "logprobs": [],
            "cached_reward": [],
        }
        for k, uid in enumerate(uids):
            g = by_uid[uid]
            j = (offset + k) % num_generations
            out["prompt_ids"].append(g.prompt_ids)
            out["completion_ids"].append(g.completion_ids[j])
            out["logprobs"].append(g.logprobs[j])
            out["cached_reward"].append(g.rewards[j])
        return out

    return rollout


def cached_reward(completions, cached_reward, **kwargs) -> list[float]:
    """The reward scored offline for each replayed completion (passed through by the rollout)."""
    return [float(r) for r in cached_reward]


def plan_batches(
    group_size: int, per_device: int, grad_accum: int, num_processes: int
) -> tuple[int, int]:
    """Per-device batch (completions) rounded up so one optimiser step holds whole groups.

    Returns (per_device_train_batch_size, groups per step).
    """
    pd = per_device
    while (pd * grad_accum * num_processes) % group_size:
        pd += 1
    return pd, pd * grad_accum * num_processes // group_size


# ---------------------------------------------------------------------------------------------
# Model preparation and saving


def _is_vision_tower(name: str) -> bool:
    return re.search(r"(^|\.)visual\.", name) is not None and "merger" not in name


def lora_target_names(model, patterns: list[str], freeze_vision_tower: bool) -> list[str]:
    """Full names of the linear layers matching ``patterns`` (vision tower out if frozen)."""
    import torch

    compiled = [re.compile(p) for p in patterns]
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and any(c.fullmatch(name) for c in compiled)
        and not (freeze_vision_tower and _is_vision_tower(name))
    ]
    if not names:
        raise ValueError(
            f"train.lora_target_modules {patterns} match no linear layer of the model; "
            "patterns are regular expressions matched against full module names"
        )
    return names


def _load_for_training(path: str, cfg: TrainConfig, start_policy: str):
    import torch
    from transformers import AutoModelForImageTextToText

    from evovlm.modeling import resolve_model_path

    # fp32 master weights; mixed precision (if any) is autocast by the trainer.
    model = AutoModelForImageTextToText.from_pretrained(
        resolve_model_path(path), dtype=torch.float32
    )
    # TRL builds the KL reference from this id: always the round's starting weights.
    model.config._name_or_path = start_policy
    if cfg.method == "full" and cfg.freeze_vision_tower:
        for name, param in model.named_parameters():
            if _is_vision_tower(name):
                param.requires_grad_(False)
    return model


def _save_dtype(policy: str):
    import torch
    from transformers import AutoConfig

    from evovlm.modeling import adapter_base, resolve_model_path

    path = resolve_model_path(policy)
    config = AutoConfig.from_pretrained(resolve_model_path(adapter_base(path) or path))
    dtype = getattr(config, "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if dtype in (torch.bfloat16, torch.float16) else None


def save_checkpoint(
    model,
    processor,
    out_dir: str | os.PathLike,
    source: str | None = None,
    base: str | None = None,
) -> None:
    """Save a plain HF folder (model, processor, tokenizer) atomically: tmp folder, then rename.

    A ``PeftModel`` is saved as its adapter only (``adapter_config.json`` and
    ``adapter_model.safetensors``, the "default" adapter: TRL's frozen "ref" copy is left out),
    with ``base`` (the shared base model, as the workflow names it) as ``base_model_name_or_path``
    and the base's ``config.json`` beside it. Files of ``source`` (a local policy folder) that the
    save does not write (e.g. metadata of the embedded model) are copied along; weights never are.
    """
    out = Path(out_dir)
    tmp = _tmp_sibling(out)
    if hasattr(model, "peft_config"):
        model.save_pretrained(tmp, selected_adapters=["default"])
        _point_adapter_at(tmp, base)
        model.get_base_model().config.save_pretrained(tmp)
        _restore_name(tmp, base)
    else:
        model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    if source is not None and Path(source).is_dir():
        for item in Path(source).iterdir():
            weights = item.suffix in (".safetensors", ".bin", ".pt") or item.name.endswith(
                ".index.json"
            )
            if item.is_file() and not weights and not (tmp / item.name).exists():
                shutil.copy2(item, tmp / item.name)
    _commit(tmp, out)


def _point_adapter_at(folder: Path, base: str | None) -> None:
    if base is None:
        return
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(base)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _restore_name(folder: Path, base: str | None) -> None:
    """config.json of an adapter folder: the base's, without the start policy's name in it."""
    config_path = folder / "config.json"
    if base is not None and config_path.exists():
        config = json.loads(config_path.read_text())
        config.pop("_name_or_path", None)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def identity_adapter(policy: str, cfg: TrainConfig):
    """``policy`` (a full model) with a fresh LoRA adapter of ``cfg`` (B = 0: the same outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from evovlm.modeling import resolve_model_path

    model = AutoModelForImageTextToText.from_pretrained(
        resolve_model_path(policy), dtype=torch.float32
    )
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_target_names(model, cfg.lora_target_modules, cfg.freeze_vision_tower),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def copy_policy(policy: str, out_dir: str | os.PathLike, cfg: TrainConfig | None = None) -> None:
    """The checkpoint is the previous policy: copy a folder, or load and save a hub id. With
    adapters (``cfg.adapters``) a full model (round 1's base) becomes a fresh, zero-effect
    adapter on it, so every checkpoint of the run is an adapter folder."""
    from evovlm.modeling import adapter_base, load_model, load_processor, resolve_model_path

    path = resolve_model_path(policy)
    out = Path(out_dir)
    if cfg is not None and cfg.adapters and adapter_base(path) is None:
        source = path if Path(path).is_dir() else None
        model = identity_adapter(path, cfg)
        save_checkpoint(model, load_processor(path), out, source=source, base=policy)
    elif Path(path).is_dir():
        tmp = _tmp_sibling(out)
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        _commit(tmp, out)
    else:
        save_checkpoint(load_model(path, device="cpu"), load_processor(path), out)


def _tmp_sibling(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def _commit(tmp: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


# ---------------------------------------------------------------------------------------------
# Training


class _StepRecorder:
    """TrainerCallback (built lazily) collecting loss and wall time per optimiser step."""

    @staticmethod
    def make():
        from transformers import TrainerCallback

        class Recorder(TrainerCallback):
            def __init__(self):
                self.loss: list[float] = []
                self.seconds: list[float] = []
                self._t = None

            def on_step_begin(self, args, state, control, **kwargs):
                self._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                if self._t is not None:
                    self.seconds.append(time.perf_counter() - self._t)

            def on_log(self, args, state, control, logs=None, **kwargs):
                if logs and "loss" in logs:
                    self.loss.append(float(logs["loss"]))

        return Recorder()


def adaptive_beta(beta: float, kl: float, target: float, rate: float) -> float:
    """One step of the adaptive KL controller: beta *= 1 + rate * clip(KL / target - 1, -1, 1).

    Above the target the coefficient grows (at most by ``rate`` per step), below it shrinks."""
    error = min(max(kl / target - 1.0, -1.0), 1.0)
    return beta * (1.0 + rate * error)


class _AdaptiveKL:
    """TrainerCallback (built lazily) steering ``trainer.beta`` towards a target KL after each
    logged step (EvoLMM's adaptive coefficient); records the coefficient per step."""

    @staticmethod
    def make(cfg: TrainConfig):
        from transformers import TrainerCallback

        class AdaptiveKL(TrainerCallback):
            def __init__(self):
                self.trainer = None
                self.betas: list[float] = []

            def on_log(self, args, state, control, logs=None, **kwargs):
                if self.trainer is None or not logs or "kl" not in logs:
                    return
                self.betas.append(float(self.trainer.beta))
                self.trainer.beta = adaptive_beta(
                    self.trainer.beta, float(logs["kl"]), cfg.kl_target, cfg.kl_rate
                )

        return AdaptiveKL()


def _fingerprint(policy: str, cfg: TrainConfig, groups: list[Group]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([policy, asdict(cfg)], sort_keys=True).encode())
    for g in groups:
        h.update(json.dumps([g.uid, g.prompt_ids, g.completion_ids, g.rewards]).encode())
    return h.hexdigest()


def _last_checkpoint(folder: Path) -> str | None:
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    if not found:
        return None
    return str(max(found, key=lambda p: int(p.name.split("-")[-1])))


def train_role(
    model_path: str,
    start_policy: str,
    groups: list[Group],
    processor,
    cfg: TrainConfig,
    output_dir: str | os.PathLike,
    temperature: float = 1.0,
):
    """Run one TRL GRPO training on one role's groups. Returns (trained model, step record).

    ``temperature`` is the role's sampling temperature: with ``scale_logits_by_temperature``
    the loss divides the logits by it, as the engines did when they recorded the log-probs."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOConfig

    from evovlm.modeling import adapter_base, resolve_model_path

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    size = groups[0].size
    num_processes = int(os.environ.get("WORLD_SIZE", "1"))
    per_device, groups_per_step = plan_batches(
        size, cfg.per_device_train_batch_size, cfg.gradient_accumulation_steps, num_processes
    )
    # A step needs groups_per_step distinct groups; repeat the list if there are fewer.
    rows = list(groups)
    while len(rows) < groups_per_step:
        rows += groups[: groups_per_step - len(rows)]
    columns: dict[str, list] = {"prompt": [g.messages for g in rows], "uid": [g.uid for g in rows]}
    if any(g.images for g in rows):
        columns["image"] = [g.images[0] if g.images else None for g in rows]
    dataset = Dataset.from_dict(columns)

    cuda = torch.cuda.is_available()
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    args = GRPOConfig(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=size,
        beta=cfg.beta if cfg.kl_control == "fixed" else cfg.kl_init_beta,
        epsilon=cfg.epsilon_low,
        epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,
        scale_rewards="group",
        num_iterations=1,
        # the cached log-probs are of the sampled distribution: logits / sampling temperature
        temperature=temperature if cfg.scale_logits_by_temperature and temperature > 0 else 1.0,
        gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not cuda,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=1,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=1,
        report_to=cfg.report_to,
        disable_tqdm=False,
        remove_unused_columns=False,
    )
    peft_config = None
    resume = _last_checkpoint(output_dir)
    # Trainer's resume loads the raw state dict, whose key names transformers 5 writes in the
    # original checkpoint layout (``model.layers`` vs ``model.language_model.layers``): for a full
    # fine-tune it would load nothing. So the weights come from the checkpoint through
    # from_pretrained (which maps the keys); optimiser, scheduler and RNG state from the Trainer.
    weights = resume if resume and cfg.method == "full" else model_path
    previous = adapter_base(model_path) if cfg.adapters else None
    model = _load_for_training(previous or weights, cfg, start_policy)
    if previous:
        # Continue the round's starting adapter (trainable). TRL sees a PeftModel with beta > 0
        # and keeps a frozen copy of it as adapter "ref": the KL reference is base + this
        # adapter, the round's starting weights (not the bare base).
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, resolve_model_path(model_path), is_trainable=True)
    elif cfg.method == "lora":
        peft_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=lora_target_names(
                model, cfg.lora_target_modules, cfg.freeze_vision_tower
            ),
            task_type="CAUSAL_LM",
        )
    if cfg.report_to == "tensorboard":  # kept beside the summary (the TRL folder is deleted)
        tb_dir = output_dir.parent.with_name(output_dir.parent.name.removesuffix("_trl") + "_tb")
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(tb_dir / output_dir.name)
    recorder = _StepRecorder.make()
    callbacks = [recorder]
    kl_controller = None
    if cfg.kl_control == "adaptive":
        kl_controller = _AdaptiveKL.make(cfg)
        callbacks.append(kl_controller)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer_class = _replay_trainer_class()
    trainer = trainer_class(
        model=model,
        reward_funcs=[cached_reward],
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config,
        rollout_func=make_rollout_func(groups, size),
        callbacks=callbacks,
    )
    if kl_controller is not None:
        kl_controller.trainer = trainer
    trainer.use_sampling_logprobs = cfg.old_logprobs == "sampling"
    if resume:
        log.warning("resuming %s from %s", output_dir.name, resume)
    log.info(
        "%s: %d groups of %d, %d per step (per-device batch %d x %d accumulation)",
        groups[0].role,
        len(groups),
        size,
        groups_per_step,
        per_device,
        cfg.gradient_accumulation_steps,
    )
    trainer.train(resume_from_checkpoint=resume)
    trained = trainer.accelerator.unwrap_model(trainer.model)
    if cfg.method == "lora" and not cfg.adapters:
        trained = trained.merge_and_unload()
    record = {
        "steps": int(trainer.state.global_step),
        "loss": recorder.loss,
        "seconds_per_step": recorder.seconds,
        "per_device_train_batch_size": per_device,
        "groups_per_step": groups_per_step,
        "resumed_from": resume,
        "temperature": args.temperature,
        "kl_control": cfg.kl_control,
        "beta_per_step": kl_controller.betas if kl_controller else None,
        "log_history": list(trainer.state.log_history),  # TRL's per-step metrics
    }
    return trained, trainer, record


def train_policy(
    policy: str,
    samples: dict[str, pl.DataFrame],
    cfg: TrainConfig,
    checkpoint_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    temperatures: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Train one lineage's policy on its roles' groups; write ``checkpoint_dir``; return the summary.

    ``temperatures`` maps each role to its sampling temperature (default 1).

    ``samples`` maps role -> frame from :func:`mmzero_role_samples` / :func:`evolmm_role_samples`
    (one role, or all roles of a shared lineage). Roles are trained one after another in
    Proposer, Coder, Solver order. ``work_dir`` holds TRL checkpoints (resume) and intermediate
    models of a shared lineage; it is deleted after success unless ``keep_trl_checkpoints``.
    With no trainable group at all, the checkpoint is a copy of ``policy``.
    """
    from evovlm.modeling import adapter_base, load_processor, resolve_model_path

    started = time.perf_counter()
    work_dir = Path(work_dir)
    # Under `accelerate launch` every process trains; only the main one writes files.
    is_main = os.environ.get("RANK", "0") == "0"
    processor = load_processor(policy)
    roles = sorted(samples, key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER else 99)
    summary: dict[str, Any] = {
        "policy": policy,
        "method": cfg.method,
        "roles": {},
        "groups_total": 0,
        "groups_dropped_zero_variance": 0,
        "groups_trained": 0,
        "steps": 0,
        "loss": [],
        "seconds_per_step": [],
        "copied_previous": False,
        "reason": None,
    }
    plan: list[tuple[str, list[Group]]] = []
    for role in roles:
        groups, stats = build_groups(role, samples[role], processor, seed=cfg.seed)
        summary["roles"][role] = asdict(stats)
        summary["groups_total"] += stats.groups_total
        summary["groups_dropped_zero_variance"] += stats.dropped_zero_variance
        log.info("%s: %s", role, json.dumps(asdict(stats)))
        if stats.prompt_ids_mismatch:
            log.warning(
                "%s: %d cached prompts tokenise differently now; using the processor's ids",
                role,
                stats.prompt_ids_mismatch,
            )
        if groups:
            plan.append((role, groups))
        else:
            log.warning(
                "WARNING: %s has no trainable group (all rewards equal or no samples)", role
            )
            summary["roles"][role]["skipped"] = True

    if not plan:
        reason = "no trainable group: " + ", ".join(
            f"{r}: {s['groups_total']} groups, {s['dropped_zero_variance']} with equal rewards"
            for r, s in summary["roles"].items()
        )
        log.warning("WARNING: checkpoint is a copy of the previous policy (%s)", reason)
        if is_main:
            copy_policy(policy, checkpoint_dir, cfg)
            hfio.prepare_checkpoint(checkpoint_dir)
        summary.update(copied_previous=True, reason=reason)
        _finish(summary, started)
        return summary

    fingerprint = _fingerprint(policy, cfg, [g for _, gs in plan for g in gs])
    stamp = work_dir / "fingerprint.txt"
    if is_main:
        if work_dir.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
            log.warning("discarding stale TRL state in %s (inputs or config changed)", work_dir)
            shutil.rmtree(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)

    local = resolve_model_path(policy)
    base = (adapter_base(local) or policy) if cfg.adapters else None
    current = local
    model = None
    for i, (role, groups) in enumerate(plan):
        stage_done = work_dir / role / "final"
        if i < len(plan) - 1 and stage_done.exists():
            log.info("%s: already trained (%s)", role, stage_done)
            current = str(stage_done)
            summary["roles"][role].update(json.loads((work_dir / role / "record.json").read_text()))
            continue
        model, trainer, record = train_role(
            current,
            policy,
            groups,
            processor,
            cfg,
            work_dir / role,
            temperature=float((temperatures or {}).get(role, 1.0)),
        )
        del trainer
        summary["roles"][role].update(record)
        if i < len(plan) - 1:  # the next role starts from this one's weights
            _barrier()
            if is_main:
                save_checkpoint(model, processor, stage_done, source=local, base=base)
                (work_dir / role / "record.json").write_text(json.dumps(record))
            _barrier()
            current = str(stage_done)
    for role, _ in plan:
        r = summary["roles"][role]
        summary["steps"] += r.get("steps", 0)
        summary["loss"] += r.get("loss", [])
        summary["seconds_per_step"] += r.get("seconds_per_step", [])
        summary["groups_trained"] += r["trainable_groups"]

    # A merged model is saved in the base's dtype; an adapter stays fp32 (it is small, and the
    # next round trains on from it: bf16 would round away updates of learning-rate size).
    dtype = None if cfg.adapters else _save_dtype(policy)
    if dtype is not None:
        model = model.to(dtype)
    if is_main:
        save_checkpoint(model, processor, checkpoint_dir, source=local, base=base)
        hfio.prepare_checkpoint(checkpoint_dir)
        if not cfg.keep_trl_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
    _finish(summary, started)
    return summary


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _finish(summary: dict[str, Any], started: float) -> None:
    # ru_maxrss is KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    summary["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    summary["seconds_total"] = time.perf_counter() - started
    steps = summary["seconds_per_step"]
    summary["mean_seconds_per_step"] = sum(steps) / len(steps) if steps else None


def accelerate_command(
    script: str, num_processes: int, extra: list[str] | None = None
) -> list[str]:
    """``accelerate launch`` command line running ``script`` on ``num_processes`` processes."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(num_processes),
        *(extra or []),
        script,
    ]
