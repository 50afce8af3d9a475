"""What every method's rewards share: the reward configs, components over whole columns.

- :mod:`evovlm.rewards.common`: the reward configs (``rewards.mmzero``, ``rewards.evolmm``),
  :class:`Component` and :func:`combine` (a role's reward = its components weighted by config
  fields), frame helpers.

Each method's own rewards live in its folder: :mod:`evovlm.methods.mmzero.rewards` (the
per-image agreement table, the Proposer, Coder and Solver components and ``score_mmzero``; BLEU-4
and the text-diversity clusters in :mod:`evovlm.methods.mmzero.bleu`) and
:mod:`evovlm.methods.evolmm.rewards` (shares, majority, length factor and entropy per question,
the components ``rewards.evolmm.components`` names and ``score_evolmm``). Scoring returns one
frame per role with every reward component in its own column, so a user can see why a sample
scored what it did. Changing a reward means editing one component function (and its test).
"""

from evovlm.rewards.common import (
    EVOLMM_DEFAULTS,
    MMZERO_DEFAULTS,
    Component,
    EvoLMMRewardConfig,
    MMZeroRewardConfig,
    combine,
)

__all__ = [
    "EVOLMM_DEFAULTS",
    "MMZERO_DEFAULTS",
    "Component",
    "EvoLMMRewardConfig",
    "MMZeroRewardConfig",
    "combine",
]
