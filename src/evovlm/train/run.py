"""One lineage's training run: each role's groups through the replay trainer, then the
checkpoint (a whole job, with its tables and several processes: :mod:`evovlm.train.job`)."""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from evovlm import hfio
from evovlm.train import replay
from evovlm.train.checkpoint import (
    copy_policy,
    fingerprint,
    is_vision,
    last_checkpoint,
    load_for_training,
    lora_target_names,
    read_kl_betas,
    save_checkpoint,
    save_dtype,
    write_kl_betas,
)
from evovlm.train.config import DERIVED_TRL_OPTIONS, ROLE_ORDER, TrainConfig
from evovlm.train.grouping import Group, build_groups
from evovlm.train.replay import (
    AdaptiveKL,
    StepRecorder,
    make_rollout_func,
    pass_order,
    plan_batches,
    plan_steps,
    replay_trainer_class,
    update_ratio_steps,
)

log = logging.getLogger("evovlm.train")


def _group_dataset(groups: list[Group], groups_per_step: int, order: list[int] | None = None):
    """The trainer's dataset: one row per group (prompt, uid, image); a step needs
    ``groups_per_step`` distinct groups, so the list repeats if there are fewer. ``order``
    (``train.passes``): the rows in this order, read once, unshuffled."""
    from datasets import Dataset

    rows = [groups[i] for i in order] if order is not None else list(groups)
    while len(rows) < groups_per_step:
        rows += groups[: groups_per_step - len(rows)]
    columns: dict[str, list] = {"prompt": [g.messages for g in rows], "uid": [g.uid for g in rows]}
    if any(g.images for g in rows):
        columns["image"] = [g.images[0] if g.images else None for g in rows]
    return Dataset.from_dict(columns)


def grpo_config(
    cfg: TrainConfig,
    role: str,
    group_size: int,
    per_device: int,
    temperature: float,
    output_dir: str | os.PathLike,
    find_unused_parameters: bool = False,
    max_steps: int | None = None,
    beta: float | None = None,
):
    """The role's ``trl.GRPOConfig``: the options evovlm derives (:data:`DERIVED_TRL_OPTIONS`,
    from the train section, the groups and the machine), then ``train.trl`` as it is.

    ``max_steps``: the role's planned steps (default ``train.max_steps``); ``beta``: the
    adaptive coefficient's start (default ``train.kl_init_beta``).

    ``find_unused_parameters``: some trainable parameters may get no gradient (the vision
    tower, or a LoRA adapter on the merger, under text-only prompts); DDP must then look for
    them, or its gradient reduction waits for them."""
    import torch
    from trl import GRPOConfig

    cuda = torch.cuda.is_available()
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "no"
    options = dict(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate * float(cfg.lr_scale.get(role, 1.0)),
        lr_scheduler_type=cfg.lr_scheduler_type,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=max_steps or cfg.max_steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_generations=group_size,
        beta=cfg.beta if cfg.kl_control == "fixed" else (beta or cfg.kl_init_beta),
        epsilon=cfg.epsilon_low,
        epsilon_high=cfg.epsilon_high,
        loss_type=cfg.loss_type,
        # group: (r - group mean) / group std; none: r - group mean (EvoLMM's r - b)
        scale_rewards=cfg.scale_rewards,
        num_iterations=1,
        # train.passes lays out the pass order itself (evovlm.train.replay.pass_order)
        shuffle_dataset=cfg.passes is None,
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
        ddp_find_unused_parameters=find_unused_parameters,
    )
    assert set(options) == DERIVED_TRL_OPTIONS, set(options) ^ DERIVED_TRL_OPTIONS
    trl_options = dict(cfg.trl)  # train.trl: any other GRPOConfig option
    reference = options["beta"] > 0 or cfg.kl_control == "adaptive"
    if reference and cfg.method == "full" and precision in ("bf16", "fp16"):
        # TRL builds the KL reference of a full fine-tune with the policy's dtype, fp32 here
        # (the fp32 master weights): 4 bytes a parameter for a frozen model whose forward pass
        # runs under autocast anyway. Load it in the compute dtype instead (model_init_kwargs
        # reaches only the reference model when the policy is passed as an instance).
        init = dict(trl_options.get("model_init_kwargs") or {})
        init.setdefault("dtype", torch.bfloat16 if precision == "bf16" else torch.float16)
        trl_options["model_init_kwargs"] = init
    return GRPOConfig(**options, **trl_options)


def _model_to_train(model_path: str, start_policy: str, cfg: TrainConfig, resume: str | None):
    """The model the trainer starts from and its peft config (None: full, or an adapter that
    continues)."""
    from peft import LoraConfig

    from evovlm.modeling import adapter_base, resolve_model_path

    peft_config = None
    # Trainer's resume loads the raw state dict, whose key names transformers 5 writes in the
    # original checkpoint layout (``model.layers`` vs ``model.language_model.layers``): for a full
    # fine-tune it would load nothing. So the weights come from the checkpoint through
    # from_pretrained (which maps the keys); optimiser, scheduler and RNG state from the Trainer.
    weights = resume if resume and cfg.method == "full" else model_path
    previous = adapter_base(model_path) if cfg.adapters else None
    # the adapter's base is a path of its own (a folder or hub id): resolved here
    model = load_for_training(
        resolve_model_path(previous) if previous else weights, cfg, start_policy
    )
    if previous:
        # Continue the round's starting adapter (trainable). TRL sees a PeftModel with beta > 0
        # and keeps a frozen copy of it as adapter "ref": the KL reference is base + this
        # adapter, the round's starting weights (not the bare base).
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, model_path, is_trainable=True)
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
    return model, peft_config


def train_role(
    model_path: str,
    start_policy: str,
    groups: list[Group],
    processor,
    cfg: TrainConfig,
    output_dir: str | os.PathLike,
    temperature: float = 1.0,
    steps: int | None = None,
    beta: float | None = None,
):
    """Run one TRL GRPO training on one role's groups. Returns (trained model, trainer, step
    record).

    ``model_path``: the weights it starts from, already resolved
    (:func:`evovlm.modeling.resolve_model_path`); ``start_policy``: the round's policy as the
    job names it. ``temperature`` is the role's sampling temperature: with ``scale_logits_by_temperature``
    the loss divides the logits by it, as the engines did when they recorded the log-probs.
    ``steps``: optimiser steps (default :func:`role_steps`); ``beta``: the adaptive KL
    coefficient's start (default ``train.kl_init_beta``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    size = groups[0].size
    num_processes = int(os.environ.get("WORLD_SIZE", "1"))
    per_device, groups_per_step, steps, dataset = _role_batches(groups, cfg, num_processes, steps)
    # Text-only prompts (the Proposer's, the Coder's) give the vision tower and merger no
    # gradient: a full fine-tune freezes them, so DDP waits for no gradient of theirs and AdamW
    # keeps no state for them (AdamW skips a parameter without gradient anyway: same updates).
    frozen_vision = cfg.method == "full" and not any(g.images for g in groups)
    # DDP looks for parameters without gradient unless nothing can be left out. Said here, not
    # left to the Trainer's guess (it looks only when gradient checkpointing is off at the time
    # it builds the accelerator, before train() turns checkpointing on).
    find_unused = num_processes > 1 and cfg.sharding == "none" and not frozen_vision
    # The arguments first: they start the process group, which lets from_pretrained under FSDP
    # read the weights on the main process only (fsdp_cpu_ram_efficient_loading).
    args = grpo_config(
        cfg, groups[0].role, size, per_device, temperature, output_dir, find_unused, steps, beta
    )
    resume = last_checkpoint(output_dir)
    model, peft_config = _model_to_train(model_path, start_policy, cfg, resume)
    if frozen_vision:
        for name, param in model.named_parameters():
            if is_vision(name):
                param.requires_grad_(False)
    if cfg.report_to == "tensorboard":  # kept beside the summary (the TRL folder is deleted)
        tb_dir = output_dir.parent.with_name(output_dir.parent.name.removesuffix("_trl") + "_tb")
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(tb_dir / output_dir.name)
    trainer, recorder, kl_controller = _make_trainer(
        model, peft_config, args, dataset, processor, groups, cfg
    )
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
        "steps_planned": steps,
        "passes": cfg.passes,
        "completion_uses": _completion_uses(trainer, groups, num_processes),
        "scale_rewards": args.scale_rewards,
        "loss": recorder.loss,
        "seconds_per_step": recorder.seconds,
        "per_device_train_batch_size": per_device,
        "groups_per_step": groups_per_step,
        "resumed_from": resume,
        **_trainer_record(trainer, args, cfg, kl_controller),
    }
    return trained, trainer, record


def _role_batches(groups: list[Group], cfg: TrainConfig, num_processes: int, steps: int | None):
    """(per-device batch, groups per step, optimiser steps, the trainer's dataset) of a role."""
    per_device, groups_per_step = plan_batches(
        groups[0].size,
        cfg.per_device_train_batch_size,
        cfg.gradient_accumulation_steps,
        num_processes,
    )
    steps = steps or plan_steps(cfg.passes, cfg.max_steps, len(groups), groups_per_step)
    order = None
    if cfg.passes is not None:
        order = pass_order(len(groups), steps * groups_per_step, cfg.seed)
    return per_device, groups_per_step, steps, _group_dataset(groups, groups_per_step, order)


def _make_trainer(model, peft_config, args, dataset, processor, groups: list[Group], cfg):
    """The replay trainer of one role, with its step recorder and (adaptive KL) controller."""
    recorder = StepRecorder.make()
    callbacks = [recorder]
    kl_controller = None
    if cfg.kl_control == "adaptive":
        kl_controller = AdaptiveKL.make(cfg)
        callbacks.append(kl_controller)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer_class = replay_trainer_class()
    trainer = trainer_class(
        model=model,
        reward_funcs=[replay.cached_reward],  # looked up here: a test flips its sign
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config,
        rollout_func=make_rollout_func(groups, groups[0].size),
        callbacks=callbacks,
    )
    if kl_controller is not None:
        kl_controller.trainer = trainer
    trainer.use_sampling_logprobs = cfg.old_logprobs == "sampling"
    return trainer, recorder, kl_controller


def _trainer_record(trainer, args, cfg: TrainConfig, kl_controller) -> dict[str, Any]:
    """What the finished trainer says about the run: processes, temperature, KL coefficient."""
    return {
        # e.g. MULTI_GPU / MULTI_CPU (DDP), FSDP, NO: how the processes shared the work
        "distributed_type": str(trainer.accelerator.distributed_type.value),
        "num_processes": int(trainer.accelerator.num_processes),
        "temperature": args.temperature,
        "kl_control": cfg.kl_control,
        "beta_per_step": kl_controller.betas if kl_controller else None,
        # the coefficient after the last step: the next round's start (train.kl_carry)
        "beta_last": (kl_controller.last or args.beta) if kl_controller else None,
        "log_history": list(trainer.state.log_history),  # TRL's per-step metrics
    }


def _completion_uses(trainer, groups: list[Group], num_processes: int) -> dict | None:
    """How often the loss saw each stored completion of the role (one process: under several,
    each sees a share of every step)."""
    if num_processes != 1:
        return None
    used = getattr(trainer, "completions_used", {})
    counts = [used.get((g.uid, j), 0) for g in groups for j in range(g.size)]
    histogram: dict[str, int] = {}
    for n in counts:
        histogram[str(n)] = histogram.get(str(n), 0) + 1
    return {"min": min(counts), "max": max(counts), "histogram": histogram}


def role_steps(
    plan: list[tuple[str, list[Group]]],
    cfg: TrainConfig,
    update_ratio: dict[str, tuple[str, int]] | None = None,
    reference_steps: dict[str, int] | None = None,
) -> dict[str, int]:
    """Each planned role's optimiser steps: :func:`plan_steps` of its groups, then a role of
    ``update_ratio`` (role -> (other role, ratio)) gets ceil(the other's steps / ratio), at
    least 1. The other role's steps: planned here when it trains in this lineage, else
    ``reference_steps`` (its own job's, from its summary), else ``train.max_steps`` when
    ``train.passes`` is null."""
    num_processes = int(os.environ.get("WORLD_SIZE", "1"))
    steps = {}
    for role, groups in plan:
        _, groups_per_step = plan_batches(
            groups[0].size,
            cfg.per_device_train_batch_size,
            cfg.gradient_accumulation_steps,
            num_processes,
        )
        steps[role] = plan_steps(cfg.passes, cfg.max_steps, len(groups), groups_per_step)
    for role, (other, ratio) in (update_ratio or {}).items():
        if role not in steps:
            continue
        if other in steps:
            reference = steps[other]
        elif reference_steps and other in reference_steps:
            reference = reference_steps[other]
        elif cfg.passes is None:
            reference = cfg.max_steps
        else:
            raise ValueError(
                f"train: {role} steps are the {other}'s / {ratio}, and with train.passes set the "
                f"{other}'s steps come from its training summary, which was not given"
            )
        steps[role] = update_ratio_steps(reference, ratio)
    return steps


def _plan_groups(roles, samples, processor, cfg: TrainConfig, summary: dict) -> list:
    """(role, groups) for each role with a trainable group, in training order; each role's
    grouping statistics go into ``summary``."""
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
    return plan


def _stamp_work_dir(work_dir: Path, digest: str) -> None:
    """Keep TRL state in ``work_dir`` for resume only if it was made from the same inputs."""
    stamp = work_dir / "fingerprint.txt"
    if work_dir.exists() and (not stamp.exists() or stamp.read_text() != digest):
        log.warning("discarding stale TRL state in %s (inputs or config changed)", work_dir)
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def _add_totals(summary: dict, roles: list[str]) -> None:
    """The lineage's totals over its trained roles."""
    for role in roles:
        r = summary["roles"][role]
        summary["steps"] += r.get("steps", 0)
        summary["loss"] += r.get("loss", [])
        summary["seconds_per_step"] += r.get("seconds_per_step", [])
        summary["groups_trained"] += r["trainable_groups"]


def train_policy(
    policy: str,
    samples: dict[str, pl.DataFrame],
    cfg: TrainConfig,
    checkpoint_dir: str | os.PathLike,
    work_dir: str | os.PathLike,
    temperatures: dict[str, float] | None = None,
    update_ratio: dict[str, tuple[str, int]] | None = None,
    reference_steps: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Train one lineage's policy on its roles' groups; write ``checkpoint_dir``; return the summary.

    ``temperatures`` maps each role to its sampling temperature (default 1).
    ``update_ratio`` and ``reference_steps``: a role trained at a ratio of another's steps
    (:func:`role_steps`; EvoLMM's Proposer). With adaptive KL and ``train.kl_carry``, each role
    starts from the coefficient its last round ended with (``kl_coefficient.json`` in the
    policy folder, written beside each checkpoint).

    ``samples`` maps role -> frame from a method's ``role_samples`` (``methods/<name>/samples.py``)
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
    # The policy's folder (or hub id), resolved once for the whole job and passed down.
    local = resolve_model_path(policy)
    processor = load_processor(local)
    roles = sorted(samples, key=lambda r: ROLE_ORDER.index(r) if r in ROLE_ORDER else 99)
    summary = _new_summary(policy, cfg)
    plan = _plan_groups(roles, samples, processor, cfg, summary)

    if not plan:
        _copy_previous(policy, checkpoint_dir, cfg, summary, is_main)
        _finish(summary, started)
        return summary

    if is_main:
        _stamp_work_dir(work_dir, fingerprint(policy, cfg, [g for _, gs in plan for g in gs]))

    base = (adapter_base(local) or policy) if cfg.adapters else None
    betas = read_kl_betas(local)
    carried = dict(betas) if cfg.kl_control == "adaptive" and cfg.kl_carry else {}
    lineage = _Lineage(local, policy, processor, cfg, work_dir, base, is_main)
    model, state = lineage.train(
        plan,
        summary,
        betas,
        carried,
        temperatures or {},
        role_steps(plan, cfg, update_ratio, reference_steps),
    )
    _add_totals(summary, [role for role, _ in plan])

    # The trainer's weights are fp32 masters (mixed precision only autocasts the compute). They
    # are saved as they are (train.save_dtype float32): the next round trains on from them, and
    # bf16 keeps 8 bits of mantissa, so an update below ~0.4% of a weight (lr 1e-6 for 20 steps
    # moves a weight of 0.02 by ~0.1%) rounds back to the start. An adapter is always fp32.
    dtype = None if cfg.adapters or cfg.save_dtype == "float32" else save_dtype(local)
    if dtype is not None and state is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    elif dtype is not None:
        model = model.to(dtype)
    if is_main:
        save_checkpoint(model, processor, checkpoint_dir, source=local, base=base, state_dict=state)
        write_kl_betas(checkpoint_dir, betas)
        hfio.prepare_checkpoint(checkpoint_dir)
        if not cfg.keep_trl_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
    _finish(summary, started)
    return summary


def _new_summary(policy: str, cfg: TrainConfig) -> dict[str, Any]:
    return {
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


def _copy_previous(
    policy: str, checkpoint_dir, cfg: TrainConfig, summary: dict[str, Any], is_main: bool
) -> None:
    """No trainable group at all: the checkpoint is a copy of ``policy``."""
    reason = "no trainable group: " + ", ".join(
        f"{r}: {s['groups_total']} groups, {s['dropped_zero_variance']} with equal rewards"
        for r, s in summary["roles"].items()
    )
    log.warning("WARNING: checkpoint is a copy of the previous policy (%s)", reason)
    if is_main:
        copy_policy(policy, checkpoint_dir, cfg)
        hfio.prepare_checkpoint(checkpoint_dir)
    summary.update(copied_previous=True, reason=reason)


@dataclass
class _Lineage:
    """One job's roles trained one after another, each starting from the previous one's weights
    (saved in ``work_dir/<role>/final``, so a resumed job skips the roles it already trained)."""

    local: str  # the policy, resolved
    policy: str  # as the job names it: TRL's KL reference id
    processor: Any
    cfg: TrainConfig
    work_dir: Path
    base: str | None
    is_main: bool

    def train(self, plan, summary, betas, carried, temperatures, steps):
        """Train each planned role; its record goes into ``summary``, its last coefficient into
        ``betas``. Returns (last model, its gathered state dict or None)."""
        current = self.local
        model = state = None
        for i, (role, groups) in enumerate(plan):
            stage_done = self.work_dir / role / "final"
            last = i == len(plan) - 1
            if not last and stage_done.exists():
                log.info("%s: already trained (%s)", role, stage_done)
                current = str(stage_done)
                record = json.loads((self.work_dir / role / "record.json").read_text())
                summary["roles"][role].update(record)
                if record.get("beta_last") is not None:
                    betas[role] = record["beta_last"]
                continue
            model, trainer, record = train_role(
                current,
                self.policy,
                groups,
                self.processor,
                self.cfg,
                self.work_dir / role,
                temperature=float(temperatures.get(role, 1.0)),
                steps=steps[role],
                beta=carried.get(role),
            )
            if record["beta_last"] is not None:
                betas[role] = record["beta_last"]
            # Sharded: every process takes part in gathering the full state dict (main keeps it).
            state = (
                trainer.accelerator.get_state_dict(trainer.model)
                if self.cfg.sharding != "none"
                else None
            )
            del trainer
            summary["roles"][role].update(record)
            if not last:  # the next role starts from this one's weights
                self._save_stage(model, state, role, record)
                current = str(stage_done)
        return model, state

    def _save_stage(self, model, state, role: str, record: dict) -> None:
        _barrier()
        if self.is_main:
            save_checkpoint(
                model,
                self.processor,
                self.work_dir / role / "final",
                source=self.local,
                base=self.base,
                state_dict=state,
            )
            (self.work_dir / role / "record.json").write_text(json.dumps(record))
        _barrier()


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
