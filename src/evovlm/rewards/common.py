"""What every method's rewards share: the reward configs, reward components and how they are
combined, and the frame helpers of the scoring pass.

A :class:`Component` is one named term of a role's reward: a function over the role's whole
table that returns one column, and the config field holding its weight. ``score_mmzero`` stores
each component in its own column and the reward is ``sum_c weight_c * column_c`` (a missing value
counts 0), in the order the role's components are listed: :func:`combine`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import polars as pl

from evovlm.grade import DEFAULT_REL_TOL

_C = TypeVar("_C")


def _from_dict(cls: type[_C], data: Mapping[str, Any] | None) -> _C:
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    values = {}
    for name, value in data.items():
        default = getattr(cls, name)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError(f"{cls.__name__}.{name} must be a string, got {value!r}")
            values[name] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{cls.__name__}.{name} must be a number, got {value!r}")
            values[name] = type(default)(value) if isinstance(default, float) else value
    config = cls(**values)
    config.validate()  # type: ignore[attr-defined]
    return config


class _RewardConfig:
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        """Build from the ``rewards.<method>`` config mapping; ValueError on an unknown key."""
        return _from_dict(cls, data)

    def validate(self) -> None:
        if self.grade_rel_tol < 0:  # type: ignore[attr-defined]
            raise ValueError(f"{self._section}.grade_rel_tol must be >= 0")

    _section = "rewards"


@dataclass(frozen=True)
class MMZeroRewardConfig(_RewardConfig):
    """Constants of the MM-Zero rewards (config ``rewards.mmzero``); defaults from SPEC.md."""

    # Proposer reward when its reply does not parse (missing caption or question/answer tags).
    invalid_proposal_reward: float = -1.0
    # Visual verification s_j is capped at this inside the Proposer reward (not the Coder's).
    visual_verification_cap: float = 0.5
    # When the mean difficulty d_j over a proposal's rendered images is below this ...
    easy_threshold: float = 0.15
    # ... the Proposer loses this much (its questions are too easy for the Solver).
    easy_penalty: float = 0.3
    # Two texts of one field are linked when their BLEU distance (1 - BLEU) is under this.
    diversity_threshold: float = 0.25
    # Weight of the caption's cluster size in the text-diversity penalty.
    diversity_caption_weight: float = 0.45
    # Weight of the easy question's cluster size in the text-diversity penalty.
    diversity_easy_question_weight: float = 0.20
    # Weight of the hard question's cluster size in the text-diversity penalty.
    diversity_hard_question_weight: float = 0.35
    # Text-diversity penalty = min(max, scale * sum_f weight_f * (cluster size_f - 1)).
    diversity_scale: float = 0.5
    # Upper bound of the text-diversity penalty.
    diversity_max: float = 0.5
    # A content type with more than this share of the batch's valid proposals is penalised ...
    content_type_share: float = 0.5
    # ... by this much at share 1, linearly from 0 at the share above (proposals of that type).
    content_type_penalty: float = 0.15
    # Coder reward for a program that rendered: this + s + d of its own image.
    render_reward: float = 1.0
    # Coder reward for code of the right language that failed to render.
    render_failed_reward: float = -0.1
    # Coder reward for an empty reply or one with no code of the right language.
    not_code_reward: float = -0.5
    # Solver reward = correct_weight * grade(answer, pseudo-label) + format_weight * format.
    solver_correct_weight: float = 0.9
    # Weight of the format term (<think>...</think> then one \boxed{} and nothing else).
    solver_format_weight: float = 0.1
    # Mid-band filter: a rendered image trains the Solver when its easy agreement is at least this
    easy_agreement_min: float = 0.5
    # ... and its hard agreement is at least this ...
    hard_agreement_min: float = 0.25
    # ... and at most this.
    hard_agreement_max: float = 0.75
    # Relative tolerance for numeric answers in grade().
    grade_rel_tol: float = DEFAULT_REL_TOL
    # Weights of the Proposer's components: reward = sum of weight * component (SPEC: 1, 1, -1,
    # -1, -1), or invalid_proposal_reward for a proposal that does not parse.
    proposer_verification_weight: float = 1.0
    # Weight of the difficulty term (1/k) sum_j d_j.
    proposer_difficulty_weight: float = 1.0
    # Weight of the too-easy penalty (the column holds easy_penalty or 0).
    proposer_easy_penalty_weight: float = -1.0
    # Weight of the text-diversity penalty.
    proposer_diversity_weight: float = -1.0
    # Weight of the content-type penalty.
    proposer_content_type_weight: float = -1.0
    # Weight of the Coder's render failure term (0 rendered, else render_failed or not_code reward).
    coder_render_penalty_weight: float = 1.0
    # Weight of s of the Coder's own image (rendered programs).
    coder_verification_weight: float = 1.0
    # Weight of d of the Coder's own image (rendered programs).
    coder_difficulty_weight: float = 1.0

    _section = "rewards.mmzero"

    def validate(self) -> None:
        if not 0 < self.diversity_threshold <= 1:
            raise ValueError("rewards.mmzero.diversity_threshold must be in (0, 1]")
        if not 0 <= self.content_type_share < 1:
            raise ValueError("rewards.mmzero.content_type_share must be in [0, 1)")
        if not self.hard_agreement_min <= self.hard_agreement_max:
            raise ValueError("rewards.mmzero.hard_agreement_min must not exceed hard_agreement_max")
        super().validate()


@dataclass(frozen=True)
class EvoLMMRewardConfig(_RewardConfig):
    """Constants of the EvoLMM rewards (config ``rewards.evolmm``); defaults from SPEC.md."""

    # Solver reward: "continuous" (p(a)^exponent * length factor) or "majority" (the discrete
    # baseline: 1 for an answer in the largest cluster, else 0).
    solver_reward: str = "continuous"
    # Exponent on the answer's share p(a) = count(a) / N (all N answers) in the continuous Solver reward.
    consistency_exponent: float = 0.7
    # Length factor = 1 - length_penalty * L, L = clip((w - free_words) / scale_words, 0, 1) ...
    length_penalty: float = 0.1
    # ... where w is the number of words before <answer>; this many words are free ...
    length_free_words: float = 6.0
    # ... and the penalty is full this many words later.
    length_scale_words: float = 6.0
    # Proposer reward = exp(-(H - entropy_target)^2 / (2 * entropy_sigma^2)), H in nats.
    entropy_target: float = 0.90
    # Width of the Proposer's Gaussian.
    entropy_sigma: float = 0.35
    # Proposer reward for a question that did not parse or got no valid Solver answer.
    invalid_question_reward: float = 0.0
    # Relative tolerance for numeric answers in grade().
    grade_rel_tol: float = DEFAULT_REL_TOL

    _section = "rewards.evolmm"

    def validate(self) -> None:
        from evovlm.rewards.evolmm import EVOLMM_SOLVER_REWARDS

        if self.solver_reward not in EVOLMM_SOLVER_REWARDS:
            raise ValueError(
                f"rewards.evolmm.solver_reward must be one of {sorted(EVOLMM_SOLVER_REWARDS)}, "
                f"got {self.solver_reward!r}"
            )
        if self.entropy_sigma <= 0:
            raise ValueError("rewards.evolmm.entropy_sigma must be > 0")
        if self.length_scale_words <= 0:
            raise ValueError("rewards.evolmm.length_scale_words must be > 0")
        super().validate()


MMZERO_DEFAULTS = MMZeroRewardConfig()
EVOLMM_DEFAULTS = EvoLMMRewardConfig()


# ---------------------------------------------------------------------------------------------
# Components


@dataclass(frozen=True)
class Component:
    """One term of a role's reward: ``compute(table, cfg)`` is its column (stored under
    ``name``), ``weight`` the config field that multiplies it in the reward."""

    name: str
    weight: str
    compute: Callable[[pl.DataFrame, Any], pl.Series]


def add_components(table: pl.DataFrame, components: Sequence[Component], cfg) -> pl.DataFrame:
    """``table`` with each component's column (each computed once, in order)."""
    for component in components:
        table = table.with_columns(component.compute(table, cfg).alias(component.name))
    return table


def combine(components: Sequence[Component], cfg) -> pl.Expr:
    """``sum_c weight_c * column_c`` in the components' order, a missing value counting 0."""
    total = None
    for component in components:
        term = pl.col(component.name).cast(pl.Float64).fill_null(0.0) * float(
            getattr(cfg, component.weight)
        )
        total = term if total is None else total + term
    return pl.lit(0.0) if total is None else total


def floats(name: str, values: Sequence[float | None]) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64)


# ---------------------------------------------------------------------------------------------
# Frames


def require(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s) {', '.join(missing)}")
    return frame.select(columns)


def left_join(left: pl.DataFrame, right: pl.DataFrame, on: str) -> pl.DataFrame:
    """Left join that keeps the left frame's row order (``right`` has one row per key)."""
    return left.with_row_index("_row").join(right, on=on, how="left").sort("_row").drop("_row")


def rows_frame(table: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """The role's output: the schema's columns in its order and types, sorted by ``sample_id``
    (stable)."""
    out = table.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    return out.sort("sample_id", maintain_order=True)
