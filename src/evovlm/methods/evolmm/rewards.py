r"""EvoLMM rewards: continuous self-consistency of the Solver's answers to one question.

:func:`score_evolmm` groups the answers by question once and computes each column once: the
answer's share p(a) = count(a) / N, the majority vote, the length factor (Solver) and the entropy
of the answer clusters (Proposer). Each role's reward is the sum of its :class:`Component`\ s over
those columns, named by ``rewards.evolmm.components`` in :data:`EVOLMM_COMPONENTS` (as open-r1
names its reward functions): by default the Proposer's Gaussian of the entropy and the Solver's
reward that ``rewards.evolmm.solver_reward`` names. The list functions score one question's
answers through the same code.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import polars as pl

from evovlm.config import schema_dataclass, section_schema
from evovlm.grade import DEFAULT_REL_TOL, agreement, cluster_answers, grade, is_placeholder
from evovlm.rewards.common import (
    Component,
    RewardConfig,
    add_components,
    combine,
    floats,
    left_join,
    require,
    rows_frame,
)

# ---------------------------------------------------------------------------------------------
# The config (rewards.evolmm)


@schema_dataclass("rewards.evolmm", frozen=True)
class EvoLMMRewardConfig(RewardConfig):
    """Constants of the EvoLMM rewards (config ``rewards.evolmm``); defaults from docs/spec.md.
    Each key, its default and its help are declared once, in the schema's ``rewards.evolmm``."""

    _section = "rewards.evolmm"

    def validate(self) -> None:
        # The schema's enum names the Solver rewards (EVOLMM_SOLVER_REWARDS below;
        # tests/test_rewards.py holds the two equal).
        names = section_schema(self._section)["properties"]["solver_reward"]["enum"]
        if self.solver_reward not in names:
            raise ValueError(
                f"rewards.evolmm.solver_reward must be one of {sorted(names)}, "
                f"got {self.solver_reward!r}"
            )
        self.check_components()
        if self.entropy_sigma <= 0:
            raise ValueError("rewards.evolmm.entropy_sigma must be > 0")
        if self.length_scale_words <= 0:
            raise ValueError("rewards.evolmm.length_scale_words must be > 0")
        super().validate()

    def component_names(self) -> tuple[str, ...]:
        """``rewards.evolmm.components``; unset: the Gaussian of the entropy for the Proposer
        and the reward ``solver_reward`` names for the Solver."""
        return self.components if self.components is not None else ("entropy", self.solver_reward)

    def check_components(self) -> None:
        """ValueError (one line naming ``rewards.evolmm.components``) unless each name is known,
        named once, and each role gets one at least."""
        # EVOLMM_COMPONENTS is defined below; a check runs only after the module has loaded.
        key = "rewards.evolmm.components"
        roles = {name: role for name, (role, _component) in EVOLMM_COMPONENTS.items()}
        names = self.component_names()
        for name in names:
            if name not in roles:
                raise ValueError(
                    f"{key}: unknown component {name!r}; known: {', '.join(sorted(roles))}"
                )
            if names.count(name) > 1:
                raise ValueError(f"{key}: {name!r} is named twice")
        for role in ("proposer", "solver"):
            if not any(roles[name] == role for name in names):
                of_role = [n for n, r in roles.items() if r == role]
                raise ValueError(f"{key} names no {role} component (known: {', '.join(of_role)})")
        if self.components is not None and self.solver_reward != type(self)().solver_reward:
            raise ValueError(f"{key}: name the Solver's reward there, not in solver_reward too")


EVOLMM_DEFAULTS = EvoLMMRewardConfig()


# ---------------------------------------------------------------------------------------------
# Building blocks (one question's answers)


def _shares(answers: Sequence[str | None], rel_tol: float) -> tuple[list[float | None], list[int]]:
    """(p(a) = count(a) / N per answer, None when masked; cluster sizes of the valid answers).

    N is every answer sampled (SPEC): a missing or placeholder answer is in N but in no cluster.
    """
    clusters = cluster_answers(answers, rel_tol=rel_tol)
    sizes = Counter(c for c in clusters if c is not None)
    n = len(answers)
    shares = [None if c is None else sizes[c] / n for c in clusters]
    return shares, [sizes[c] for c in sorted(sizes)]


def _majority(answers: Sequence[str | None], rel_tol: float) -> list[bool]:
    """Is each answer in the largest cluster (ties: the first to appear)."""
    label, _c = agreement(answers, rel_tol=rel_tol)
    return [
        bool(label is not None and not is_placeholder(a) and grade(a, label, rel_tol=rel_tol))
        for a in answers
    ]


def _entropy(sizes: Sequence[int]) -> float | None:
    n = sum(sizes)
    if n == 0:
        return None
    return -sum(k / n * math.log(k / n) for k in sizes)


def length_factor(words: int, cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS) -> float:
    """1 - 0.1 * L, L = clip((w - 6) / 6, 0, 1)."""
    excess = (float(words) - cfg.length_free_words) / cfg.length_scale_words
    return 1.0 - cfg.length_penalty * min(max(excess, 0.0), 1.0)


def answer_entropy(
    answers: Sequence[str | None], *, rel_tol: float = DEFAULT_REL_TOL
) -> float | None:
    """Entropy (nats) of the answer-cluster histogram over the valid answers; None if none."""
    return _entropy(_shares(answers, rel_tol)[1])


def _gaussian(entropy: float | None, cfg: EvoLMMRewardConfig) -> float:
    if entropy is None:
        return float(cfg.invalid_question_reward)
    return math.exp(-((entropy - cfg.entropy_target) ** 2) / (2 * cfg.entropy_sigma**2))


# ---------------------------------------------------------------------------------------------
# Rewards over whole columns


def continuous_solver_reward(table: pl.DataFrame, cfg: EvoLMMRewardConfig) -> pl.Series:
    """p(a)^0.7 * (1 - 0.1 * L) from the ``share`` and ``length_factor`` columns; a masked
    answer (no share) scores 0."""
    return floats(
        "reward",
        [
            0.0 if p is None else p**cfg.consistency_exponent * f
            for p, f in zip(table["share"], table["length_factor"], strict=True)
        ],
    )


def majority_solver_reward(table: pl.DataFrame, cfg: EvoLMMRewardConfig) -> pl.Series:
    """1 for an answer in the largest cluster (the ``majority`` column), else 0."""
    return table["majority"].cast(pl.Float64).alias("reward")


def proposer_reward(table: pl.DataFrame, cfg: EvoLMMRewardConfig) -> pl.Series:
    """exp(-(H - 0.90)^2 / (2 * 0.35^2)) of the ``entropy`` column; ``invalid_question_reward``
    when the question did not parse or got no valid answer."""
    return floats(
        "reward",
        [
            _gaussian(h if ok else None, cfg)
            for ok, h in zip(table["parse_ok"], table["entropy"], strict=True)
        ],
    )


# The components by the name ``rewards.evolmm.components`` gives them: (role, component). Each
# counts as it is (no weight field): a role's reward is the sum of its named components.
EVOLMM_COMPONENTS: dict[str, tuple[str, Component]] = {
    "entropy": ("proposer", Component("entropy_reward", None, proposer_reward)),
    "continuous": ("solver", Component("continuous_reward", None, continuous_solver_reward)),
    "majority": ("solver", Component("majority_reward", None, majority_solver_reward)),
}

# rewards.evolmm.solver_reward -> the Solver's reward over its table.
EVOLMM_SOLVER_REWARDS: dict[str, Callable[[pl.DataFrame, EvoLMMRewardConfig], pl.Series]] = {
    name: component.compute
    for name, (role, component) in EVOLMM_COMPONENTS.items()
    if role == "solver"
}


def role_components(cfg: EvoLMMRewardConfig) -> dict[str, tuple[Component, ...]]:
    """Role -> the components of its reward, in the order the config names them (checked again
    here: a config built directly, not through ``from_dict``, has not been validated)."""
    cfg.check_components()
    names = cfg.component_names()
    return {
        role: tuple(EVOLMM_COMPONENTS[n][1] for n in names if EVOLMM_COMPONENTS[n][0] == role)
        for role in ("proposer", "solver")
    }


def _with_reward(table: pl.DataFrame, components, cfg) -> pl.DataFrame:
    """Add the components' columns and their sum as ``reward``."""
    table = add_components(table, components, cfg)
    return table.with_columns(combine(components, cfg).alias("reward"))


def _solver_table(
    groups: Sequence[Sequence[str | None]],
    words: Sequence[Sequence[int]],
    cfg: EvoLMMRewardConfig,
) -> pl.DataFrame:
    """Per answer, question after question: share, majority, words and length factor."""
    rel = cfg.grade_rel_tol
    share, majority, flat_words = [], [], []
    for texts, w in zip(groups, words, strict=True):
        share += _shares(texts, rel)[0]
        majority += _majority(texts, rel)
        flat_words += w
    return pl.DataFrame(
        {
            "share": share,
            "majority": majority,
            "words_before_answer": flat_words,
            "length_factor": [length_factor(w, cfg) for w in flat_words],
        },
        schema={
            "share": pl.Float64,
            "majority": pl.Boolean,
            "words_before_answer": pl.Int64,
            "length_factor": pl.Float64,
        },
    )


# ---------------------------------------------------------------------------------------------
# List functions


def evolmm_solver_rewards(
    answers: Sequence[str | None],
    words_before_answer: Sequence[int],
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> list[float]:
    """Continuous EvoLMM Solver reward for the N answers to one question:
    p(a)^0.7 * (1 - 0.1 * L). p(a) = count(a) / N over all N answers (SPEC); a missing or
    placeholder answer counts in N, is nobody's vote, and scores 0 itself (our choice: the
    reference would score its text like any other answer)."""
    table = _solver_table([list(answers)], [list(words_before_answer)], cfg)
    return continuous_solver_reward(table, cfg).to_list()


def majority_solver_rewards(
    answers: Sequence[str | None],
    words_before_answer: Sequence[int],
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> list[float]:
    """Discrete baseline for the N answers to one question: 1 for an answer in the largest
    cluster (ties: the first to appear), else 0. ``words_before_answer`` is unused."""
    table = _solver_table([list(answers)], [[0] * len(answers)], cfg)
    return majority_solver_reward(table, cfg).to_list()


def evolmm_proposer_rewards(
    answer_groups: Sequence[Sequence[str | None]],
    parse_ok: Sequence[bool],
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> list[float]:
    """EvoLMM Proposer reward per question: exp(-(H - 0.90)^2 / (2 * 0.35^2)), H the entropy of
    its Solver answers; ``invalid_question_reward`` when it did not parse or got no valid answer."""
    rel = cfg.grade_rel_tol
    table = pl.DataFrame(
        {
            "parse_ok": list(parse_ok),
            "entropy": [answer_entropy(a, rel_tol=rel) for a in answer_groups],
        },
        schema={"parse_ok": pl.Boolean, "entropy": pl.Float64},
    )
    if table.height != len(answer_groups):
        raise ValueError("evolmm_proposer_rewards: answer_groups and parse_ok differ in length")
    return proposer_reward(table, cfg).to_list()


# ---------------------------------------------------------------------------------------------
# The scoring pass

_EVOLMM_PROPOSER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "parse_ok": pl.Boolean,
    "n_answers": pl.Int64,
    "n_valid": pl.Int64,
    "n_clusters": pl.Int64,
    "entropy": pl.Float64,
    "label": pl.String,
    "agreement": pl.Float64,
}
_EVOLMM_SOLVER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "answer": pl.String,
    "answer_valid": pl.Boolean,
    "share": pl.Float64,
    "majority": pl.Boolean,
    "words_before_answer": pl.Int64,
    "length_factor": pl.Float64,
}


def score_evolmm(
    questions: pl.DataFrame,
    answers: pl.DataFrame,
    cfg: EvoLMMRewardConfig = EVOLMM_DEFAULTS,
) -> dict[str, pl.DataFrame]:
    """Score one EvoLMM round: frames "proposer" (per question) and "solver" (per answer).

    Rows are sorted by ``sample_id``; a question's answers are clustered in input order.
    """
    rel = cfg.grade_rel_tol
    components = role_components(cfg)
    qs = require(questions, "questions", ["question_id", "group_id", "parse_ok", "question"])
    answer_rows = require(
        answers, "answers", ["answer_id", "question_id", "answer", "words_before_answer"]
    ).with_columns(pl.col("words_before_answer").fill_null(0).cast(pl.Int64))
    groups = answer_rows.group_by("question_id", maintain_order=True).agg(
        pl.col("answer_id", "answer", "words_before_answer")
    )
    texts = groups["answer"].to_list()

    # Per question: clusters, entropy, label and agreement of its answers.
    sizes = [_shares(t, rel)[1] for t in texts]
    votes = [agreement(t, rel_tol=rel) for t in texts]
    per_question = groups.select(
        "question_id",
        pl.col("answer").list.len().cast(pl.Int64).alias("n_answers"),
        pl.Series("n_valid", [sum(s) for s in sizes], dtype=pl.Int64),
        pl.Series("n_clusters", [len(s) for s in sizes], dtype=pl.Int64),
        floats("entropy", [_entropy(s) for s in sizes]),
        pl.Series("label", [label for label, _c in votes], dtype=pl.String),
        floats("agreement", [c for _label, c in votes]),
    )
    proposer = left_join(qs, per_question, "question_id").with_columns(
        (pl.col("parse_ok").fill_null(False) & pl.col("question").is_not_null()).alias("parse_ok"),
        pl.col("n_answers", "n_valid", "n_clusters").fill_null(0),
        pl.col("agreement").fill_null(0.0),
        pl.col("question_id").alias("sample_id"),
    )
    proposer = _with_reward(proposer, components["proposer"], cfg)

    flat = groups.explode("answer_id", "answer", "words_before_answer")
    solver = pl.concat(
        [
            flat.select(
                pl.col("answer_id").alias("sample_id"),
                pl.col("question_id").alias("group_id"),
                "answer",
            ),
            _solver_table(texts, groups["words_before_answer"].to_list(), cfg),
        ],
        how="horizontal",
    ).with_columns(pl.col("share").is_not_null().alias("answer_valid"))
    solver = _with_reward(solver, components["solver"], cfg)
    return {
        "proposer": rows_frame(proposer, _EVOLMM_PROPOSER_SCHEMA),
        "solver": rows_frame(solver, _EVOLMM_SOLVER_SCHEMA),
    }
