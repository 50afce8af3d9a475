"""What every method's rewards share: components over whole columns.

- :mod:`evovlm.rewards.common`: the base of the reward configs (:class:`RewardConfig`),
  :class:`Component` and :func:`combine` (a role's reward = its components weighted by config
  fields), frame helpers.

Each method's own rewards and their config live in its folder:
:mod:`evovlm.methods.mmzero.rewards` (``rewards.mmzero``: the per-image agreement table, the
Proposer, Coder and Solver components and ``score_mmzero``; BLEU-4 and the text-diversity
clusters in :mod:`evovlm.methods.mmzero.bleu`) and :mod:`evovlm.methods.evolmm.rewards`
(``rewards.evolmm``: shares, majority, length factor and entropy per question, the components
``rewards.evolmm.components`` names and ``score_evolmm``). Scoring returns one
frame per role with every reward component in its own column, so a user can see why a sample
scored what it did. Changing a reward means editing one component function (and its test).
"""

from evovlm.rewards.common import Component, RewardConfig, combine

__all__ = ["Component", "RewardConfig", "combine"]
