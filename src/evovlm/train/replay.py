"""All TRL coupling: the replay trainer, its rollout hook and reward, step callbacks."""

from __future__ import annotations

import logging
import time

from evovlm.train.config import TrainConfig
from evovlm.train.grouping import Group

log = logging.getLogger("evovlm.train")

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
