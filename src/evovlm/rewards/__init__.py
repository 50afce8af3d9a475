"""Rewards of the built-in methods, as components over whole columns.

- :mod:`evovlm.rewards.common`: the reward configs (``rewards.mmzero``, ``rewards.evolmm``),
  :class:`Component` and :func:`combine` (a role's reward = its components weighted by config
  fields), frame helpers.
- :mod:`evovlm.rewards.bleu`: BLEU-4 and the average-linkage clusters of MM-Zero's text
  diversity (all pairs at once, exact against the per-pair oracle).
- :mod:`evovlm.rewards.mmzero`: the per-image agreement table, the Proposer, Coder and Solver
  components (:data:`COMPONENTS`) and ``score_mmzero``.
- :mod:`evovlm.rewards.evolmm`: shares, majority, length factor and entropy per question, the
  components by the name ``rewards.evolmm.components`` gives them (:data:`EVOLMM_COMPONENTS`) and
  ``score_evolmm``.

``score_mmzero`` and ``score_evolmm`` return one frame per role with every reward component in
its own column, so a user can see why a sample scored what it did. Changing a reward means
editing one component function (and its test).
"""

from evovlm.rewards.bleu import (
    bleu_clusters,
    bleu_clusters_reference,
    bleu_distances,
    bleu_tokens,
    pairwise_bleu,
    sentence_bleu,
)
from evovlm.rewards.common import (
    EVOLMM_DEFAULTS,
    MMZERO_DEFAULTS,
    Component,
    EvoLMMRewardConfig,
    MMZeroRewardConfig,
    combine,
)
from evovlm.rewards.evolmm import (
    EVOLMM_COMPONENTS,
    EVOLMM_SOLVER_REWARDS,
    answer_entropy,
    evolmm_proposer_rewards,
    evolmm_solver_rewards,
    length_factor,
    majority_solver_rewards,
    score_evolmm,
)
from evovlm.rewards.mmzero import (
    COMPONENTS,
    content_type_penalties,
    difficulty,
    image_table,
    mid_band,
    mmzero_coder_rewards,
    mmzero_proposer_rewards,
    mmzero_solver_rewards,
    score_mmzero,
    text_diversity_penalties,
    visual_verification,
)

__all__ = [
    "COMPONENTS",
    "EVOLMM_COMPONENTS",
    "EVOLMM_DEFAULTS",
    "EVOLMM_SOLVER_REWARDS",
    "MMZERO_DEFAULTS",
    "Component",
    "EvoLMMRewardConfig",
    "MMZeroRewardConfig",
    "answer_entropy",
    "bleu_clusters",
    "bleu_clusters_reference",
    "bleu_distances",
    "bleu_tokens",
    "combine",
    "content_type_penalties",
    "difficulty",
    "evolmm_proposer_rewards",
    "evolmm_solver_rewards",
    "image_table",
    "length_factor",
    "majority_solver_rewards",
    "mid_band",
    "mmzero_coder_rewards",
    "mmzero_proposer_rewards",
    "mmzero_solver_rewards",
    "pairwise_bleu",
    "score_evolmm",
    "score_mmzero",
    "sentence_bleu",
    "text_diversity_penalties",
    "visual_verification",
]
