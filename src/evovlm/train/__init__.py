"""GRPO policy updates from a round's scored samples, through TRL (``GRPOTrainer``).

Nothing is generated here. Each role's scored samples become GRPO groups (same prompt, several
completions); groups whose rewards are all equal carry no signal and are dropped (counted). The
groups go to a stock ``GRPOTrainer`` through its ``rollout_func`` hook: the trainer asks for
completions, and the hook hands back the cached prompt ids, completion ids and sampling
log-probabilities of that group, plus the cached reward, which a one-line reward function returns.
TRL then does everything else: advantages against the group's mean (``train.scale_rewards``:
divided by the group's std for MM-Zero, not for EvoLMM), the clipped loss, the KL term against the
round's starting weights (``beta > 0``), optimiser and checkpoints.

- Old-policy log-probs: :class:`ReplayGRPOTrainer` (a small subclass) passes the cached sampling
  log-probs as TRL's ``old_per_token_logps``, so the ratio is pi_theta / pi_sampling and clipping
  applies as the policy drifts over the round's steps (``old_logprobs: sampling``). With
  ``old_logprobs: current`` TRL's default is kept (ratio 1 at each step: REINFORCE with group
  advantages).
- Group sizes: one trainer run per role, ``num_generations`` = that role's group size (the most
  common size in its groups; larger groups are subsampled to it, smaller ones dropped and counted).
  A shared lineage trains its roles one after another (Proposer, Coder, Solver, the reference
  order).
- Steps: ``max_steps`` per role, or with ``train.passes`` as many as use each stored completion
  that many times (:func:`~evovlm.train.replay.plan_steps`, :func:`~evovlm.train.replay.pass_order`);
  a role of an update ratio (EvoLMM's Proposer) gets the other role's steps over the ratio.
- Adaptive KL (EvoLMM): ``beta`` follows the KL after each step (``train.kl_update``) and carries
  over to the lineage's next round (``train.kl_carry``, ``kl_coefficient.json`` in the checkpoint).
- Images: the dataset has an ``image`` column; the trainer rebuilds ``pixel_values`` from it, so the
  cached ``prompt_ids`` are checked against the processor's own tokenisation of the prompt.

The package: :mod:`~evovlm.train.config` (the ``train`` section), :mod:`~evovlm.train.grouping`
(samples -> groups, pure functions), :mod:`~evovlm.train.replay` (all TRL coupling),
:mod:`~evovlm.train.checkpoint` (loading, atomic save, copy, resume) and :mod:`~evovlm.train.run`
(one lineage's run). Everything public of these is re-exported here. A rule's job, which looks
the method up, is :mod:`evovlm.train.job` (here or under ``accelerate launch -m evovlm.train``);
it sits above the methods, which use this package, so it is not imported here.
"""

from evovlm.train.checkpoint import (
    copy_policy,
    identity_adapter,
    lora_target_names,
    save_checkpoint,
)
from evovlm.train.config import (
    DEFAULT_LORA_TARGETS,
    ROLE_ORDER,
    TRAIN_DEFAULTS,
    TrainConfig,
)
from evovlm.train.grouping import (
    Group,
    GroupStats,
    build_groups,
    prompt_token_ids,
    sample_rows,
)
from evovlm.train.replay import (
    adaptive_beta,
    cached_reward,
    make_rollout_func,
    pass_order,
    plan_batches,
    plan_steps,
)
from evovlm.train.run import train_policy, train_role

__all__ = [
    "DEFAULT_LORA_TARGETS",
    "ROLE_ORDER",
    "TRAIN_DEFAULTS",
    "Group",
    "GroupStats",
    "TrainConfig",
    "adaptive_beta",
    "build_groups",
    "cached_reward",
    "copy_policy",
    "identity_adapter",
    "lora_target_names",
    "make_rollout_func",
    "pass_order",
    "plan_batches",
    "plan_steps",
    "prompt_token_ids",
    "sample_rows",
    "save_checkpoint",
    "train_policy",
    "train_role",
]
