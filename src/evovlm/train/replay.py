"""All TRL coupling: the replay trainer, its rollout hook and reward, step callbacks."""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter

from evovlm.train.config import TrainConfig
from evovlm.train.grouping import Group

log = logging.getLogger("evovlm.train")

# ---------------------------------------------------------------------------------------------
# TRL: replay trainer, rollout hook, reward


def replay_trainer_class():
    from trl import GRPOTrainer

    class ReplayGRPOTrainer(GRPOTrainer):
        """Stock GRPO; records each batch's group keys for the rollout hook and, optionally,
        uses the cached sampling log-probs as the old policy's."""

        use_sampling_logprobs: bool = True

        def _generate_and_score_completions(self, inputs):
            self._replay_uids = [x["uid"] for x in inputs]
            # every generation batch's group keys, one per completion (how often each stored
            # completion was used: train.passes)
            self.replayed = getattr(self, "replayed", [])
            self.replayed.append(list(self._replay_uids))
            output = super()._generate_and_score_completions(inputs)
            # the advantages TRL computed for this process's completions, in batch order
            self.advantages = getattr(self, "advantages", [])
            self.advantages.append(output["advantages"].detach().cpu().tolist())
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
        # (group, completion) -> times handed to the loss on this process (train.passes)
        used = trainer.__dict__.setdefault("completions_used", Counter())
        out: dict[str, list] = {
            "prompt_ids": [],
            "completion_ids": [],
            "logprobs": [],
            "cached_reward": [],
        }
        for k, uid in enumerate(uids):
            g = by_uid[uid]
            j = (offset + k) % num_generations
            used[uid, j] += 1
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


def plan_steps(passes: int | None, max_steps: int, n_groups: int, groups_per_step: int) -> int:
    """Optimiser steps of one role in a round: ``max_steps`` (``passes`` null), else enough
    steps for every completion ``passes`` times: ceil(passes * groups / groups per step), i.e.
    ceil(passes * completions / completions per step)."""
    if passes is None:
        return max_steps
    return max(1, math.ceil(passes * n_groups / groups_per_step))


def pass_order(n_groups: int, slots: int, seed: int) -> list[int]:
    """The groups (indices) of ``slots`` step positions with ``train.passes``: one seeded
    permutation of all groups per pass, one after another, cut at ``slots``. With ``slots`` =
    steps x groups per step from :func:`plan_steps`, every group is used ``passes`` times; the
    last step is filled up from the next permutation (those groups once more)."""
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < slots:
        permutation = list(range(n_groups))
        rng.shuffle(permutation)
        order += permutation
    return order[:slots]


def update_ratio_steps(reference_steps: int, ratio: int) -> int:
    """A role updated once per ``ratio`` updates of another (EvoLMM's Proposer: the reference's
    ``proposer_update_freq`` 5 with 5 Solver updates per image, 25 to 1): ceil(reference /
    ratio), at least 1."""
    return max(1, math.ceil(reference_steps / ratio))


# ---------------------------------------------------------------------------------------------
# Training


class StepRecorder:
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


# The EvoLMM reference keeps its adaptive coefficient within [1e-8, 1e2] (kl_min, kl_max).
BETA_MIN, BETA_MAX = 1e-8, 1e2


def adaptive_beta(
    beta: float, kl: float, target: float, rate: float, update: str = "exponential"
) -> float:
    """One step of the adaptive KL controller, after an update whose KL was ``kl``.

    ``exponential`` (the EvoLMM reference's): beta *= exp(rate * (KL / target - 1)), kept in
    [1e-8, 1e2]; at KL = 10 x target and rate 0.1 that is exp(0.9) = 2.46x a step.
    ``proportional``: beta *= 1 + rate * clip(KL / target - 1, -1, 1), at most 1 + rate a step.
    Above the target the coefficient grows, below it shrinks."""
    if update == "exponential":
        return min(max(beta * math.exp(rate * (kl / target - 1.0)), BETA_MIN), BETA_MAX)
    if update != "proportional":
        raise ValueError(f"train.kl_update: {update!r} is not exponential or proportional")
    error = min(max(kl / target - 1.0, -1.0), 1.0)
    return beta * (1.0 + rate * error)


class AdaptiveKL:
    """TrainerCallback (built lazily) steering ``trainer.beta`` towards a target KL after each
    logged step (EvoLMM's adaptive coefficient); records the coefficient each step used
    (``betas``) and the one the next step would use (``last``)."""

    @staticmethod
    def make(cfg: TrainConfig):
        from transformers import TrainerCallback

        class AdaptiveKL(TrainerCallback):
            def __init__(self):
                self.trainer = None
                self.betas: list[float] = []
                self.last: float | None = None

            def on_train_begin(self, args, state, control, **kwargs):
                # Resumed from a TRL checkpoint: the coefficient is a function of the start
                # value and the KL of each step, so the logged steps give it back.
                for logs in state.log_history:
                    self.on_log(args, state, control, logs)

            def on_log(self, args, state, control, logs=None, **kwargs):
                if self.trainer is None or not logs or "kl" not in logs:
                    return
                self.betas.append(float(self.trainer.beta))
                self.trainer.beta = adaptive_beta(
                    self.trainer.beta, float(logs["kl"]), cfg.kl_target, cfg.kl_rate, cfg.kl_update
                )
                self.last = float(self.trainer.beta)

        return AdaptiveKL()
