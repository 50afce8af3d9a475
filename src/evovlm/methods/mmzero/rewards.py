"""MM-Zero rewards: the per-image agreement table, each role's components, and the scoring pass.

:func:`score_mmzero` builds the per-image table once (one row per program: rendered, the Solver's
agreement and pseudo-label on each question, s_j and d_j), joins it into one table per role, and
adds each component of :data:`COMPONENTS` once as its own column; the reward is the components'
sum weighted by the config's ``*_weight`` fields (:func:`evovlm.rewards.common.combine`), the
SPEC's formulas at the defaults. The list functions (``mmzero_*_rewards``) score given component
inputs through the same components, for callers that hold lists.

Fixed reference bugs: a Solver reply with no answer, or with a placeholder answer ("none",
"unknown", ...), is masked: it is never a vote, never a pseudo-label, never counted in an
agreement or a verification share, and never scored -1 (its own Solver reward is the format
term only, i.e. 0 without a boxed answer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import polars as pl

from evovlm.config import schema_dataclass
from evovlm.grade import DEFAULT_REL_TOL, agreement, grade, is_placeholder
from evovlm.methods.mmzero.bleu import bleu_clusters
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
# The config (rewards.mmzero)


@schema_dataclass("rewards.mmzero", frozen=True)
class MMZeroRewardConfig(RewardConfig):
    """Constants of the MM-Zero rewards (config ``rewards.mmzero``); defaults from docs/spec.md.
    Each key, its default and its help are declared once, in the schema's ``rewards.mmzero``."""

    _section = "rewards.mmzero"

    def validate(self) -> None:
        if not 0 < self.diversity_threshold <= 1:
            raise ValueError("rewards.mmzero.diversity_threshold must be in (0, 1]")
        if not 0 <= self.content_type_share < 1:
            raise ValueError("rewards.mmzero.content_type_share must be in [0, 1)")
        if not self.hard_agreement_min <= self.hard_agreement_max:
            raise ValueError("rewards.mmzero.hard_agreement_min must not exceed hard_agreement_max")
        super().validate()


MMZERO_DEFAULTS = MMZeroRewardConfig()


# ---------------------------------------------------------------------------------------------
# Building blocks (one value)


def difficulty(c: float) -> float:
    """d = min(c, 1 - c): highest (0.5) when the Solver is split in half."""
    return min(c, 1.0 - c)


def visual_verification(
    easy_answers: Sequence[str | None], easy_answer: str | None, *, rel_tol: float = DEFAULT_REL_TOL
) -> float | None:
    """s_j: the share of the Solver's m answers that grade equal to the Proposer's easy answer.

    The denominator is m, all answers sampled (SPEC, MM-Zero): a missing or placeholder answer
    counts as a disagreement. None only when no answer was sampled at all. A placeholder easy
    answer ("unknown") verifies nothing: 0.
    """
    if not easy_answers:
        return None
    if is_placeholder(easy_answer):
        return 0.0
    matches = sum(
        not is_placeholder(a) and grade(a, easy_answer, rel_tol=rel_tol) for a in easy_answers
    )
    return matches / len(easy_answers)


def content_type_penalties(
    content_types: Sequence[str | None], cfg: MMZeroRewardConfig = MMZERO_DEFAULTS
) -> list[float]:
    """Penalty per proposal of a type holding over ``content_type_share`` of the batch:
    penalty * (share - t) / (1 - t); 0 for every other proposal. Missing types count as "other"."""
    types = [t or "other" for t in content_types]
    if not types:
        return []
    counts = Counter(types)
    t = cfg.content_type_share
    out = []
    for ctype in types:
        share = counts[ctype] / len(types)
        out.append(cfg.content_type_penalty * (share - t) / (1 - t) if share > t else 0.0)
    return out


def field_cluster_sizes(captions, easy_questions, hard_questions, cfg=MMZERO_DEFAULTS):
    """BLEU cluster size of each proposal in each text field (pass the batch's valid ones)."""
    t = cfg.diversity_threshold
    return (
        bleu_clusters(captions, t),
        bleu_clusters(easy_questions, t),
        bleu_clusters(hard_questions, t),
    )


def diversity_from_sizes(caption: int, easy: int, hard: int, cfg: MMZeroRewardConfig) -> float:
    weighted = (
        cfg.diversity_caption_weight * (caption - 1)
        + cfg.diversity_easy_question_weight * (easy - 1)
        + cfg.diversity_hard_question_weight * (hard - 1)
    )
    return min(cfg.diversity_max, cfg.diversity_scale * weighted)


def text_diversity_penalties(
    captions: Sequence[str | None],
    easy_questions: Sequence[str | None],
    hard_questions: Sequence[str | None],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """min(max, scale * sum_f w_f * (cluster size of the proposal in field f - 1)) per proposal.

    Pass the batch's valid proposals only.
    """
    sizes = field_cluster_sizes(captions, easy_questions, hard_questions, cfg)
    return [diversity_from_sizes(c, e, h, cfg) for c, e, h in zip(*sizes, strict=True)]


# ---------------------------------------------------------------------------------------------
# Components over whole columns. Proposer table: parse_ok, n_programs, s and d (lists over the
# proposal's rendered images), the three cluster sizes and content_type. Coder table: rendered,
# extract_status, image_s, image_d. Solver table: answer_valid, label, answer, format_ok.


def _valid(table: pl.DataFrame) -> list[bool]:
    return table["parse_ok"].to_list()


def proposer_verification(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """(1/k) sum_j min(s_j, cap) over the rendered images (a masked s_j counts 0)."""
    cap = cfg.visual_verification_cap
    return floats(
        "visual_verification",
        [
            sum(min(x, cap) for x in s if x is not None) / max(int(k), 1) if ok else None
            for ok, k, s in zip(_valid(table), table["n_programs"], table["s"], strict=True)
        ],
    )


def proposer_difficulty(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """(1/k) sum_j d_j over the rendered images (a masked d_j counts 0)."""
    return floats(
        "difficulty",
        [
            sum(x for x in d if x is not None) / max(int(k), 1) if ok else None
            for ok, k, d in zip(_valid(table), table["n_programs"], table["d"], strict=True)
        ],
    )


def proposer_easy_penalty(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """``easy_penalty`` when the mean of the known d_j is under ``easy_threshold``, else 0."""
    out = []
    for ok, d in zip(_valid(table), table["d"], strict=True):
        known = [x for x in d if x is not None] if ok else None
        too_easy = bool(known) and sum(known) / len(known) < cfg.easy_threshold
        out.append(None if not ok else cfg.easy_penalty if too_easy else 0.0)
    return floats("easy_penalty", out)


def proposer_diversity(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """The text-diversity penalty from the proposal's three cluster sizes."""
    sizes = (
        table[c] for c in ("caption_cluster", "easy_question_cluster", "hard_question_cluster")
    )
    return floats(
        "diversity_penalty",
        [
            diversity_from_sizes(c, e, h, cfg) if ok else None
            for ok, c, e, h in zip(_valid(table), *sizes, strict=True)
        ],
    )


def proposer_content_type(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """The content-type penalty over the batch of valid proposals."""
    valid = _valid(table)
    penalties = iter(
        content_type_penalties(
            [t for t, ok in zip(table["content_type"], valid, strict=True) if ok], cfg
        )
    )
    return floats("content_type_penalty", [next(penalties) if ok else None for ok in valid])


def coder_rendered(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """Did the program render (weight ``render_reward``)."""
    return table["rendered"]


def coder_render_penalty(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """0 for a rendered program, ``render_failed_reward`` for code of the right language that
    failed, ``not_code_reward`` for an empty reply or one with no code."""
    return table.select(
        pl.when(pl.col("rendered"))
        .then(0.0)
        .when(pl.col("extract_status") == "ok")
        .then(float(cfg.render_failed_reward))
        .otherwise(float(cfg.not_code_reward))
    ).to_series()


def coder_s(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """s of the program's own image, rendered programs only."""
    return table.select(pl.when(pl.col("rendered")).then(pl.col("image_s"))).to_series()


def coder_d(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """d of the program's own image, rendered programs only."""
    return table.select(pl.when(pl.col("rendered")).then(pl.col("image_d"))).to_series()


def solver_correct(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """A valid answer that grades equal to its group's pseudo-label."""
    return pl.Series(
        [
            bool(label is not None and ok and grade(a, label, rel_tol=cfg.grade_rel_tol))
            for a, label, ok in zip(
                table["answer"], table["label"], table["answer_valid"], strict=True
            )
        ],
        dtype=pl.Boolean,
    )


def solver_format(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.Series:
    """``<think>...</think>`` then one boxed answer and nothing else."""
    return table["format_ok"].fill_null(False)


# Role -> its reward's components, in the order they are summed.
COMPONENTS: dict[str, tuple[Component, ...]] = {
    "proposer": (
        Component("visual_verification", "proposer_verification_weight", proposer_verification),
        Component("difficulty", "proposer_difficulty_weight", proposer_difficulty),
        Component("easy_penalty", "proposer_easy_penalty_weight", proposer_easy_penalty),
        Component("diversity_penalty", "proposer_diversity_weight", proposer_diversity),
        Component("content_type_penalty", "proposer_content_type_weight", proposer_content_type),
    ),
    "coder": (
        Component("rendered", "render_reward", coder_rendered),
        Component("render_penalty", "coder_render_penalty_weight", coder_render_penalty),
        Component("s", "coder_verification_weight", coder_s),
        Component("d", "coder_difficulty_weight", coder_d),
    ),
    "solver": (
        Component("correct", "solver_correct_weight", solver_correct),
        Component("format_ok", "solver_format_weight", solver_format),
    ),
}


def _reward(role: str, table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.DataFrame:
    """Add the role's components and its ``reward`` column."""
    table = add_components(table, COMPONENTS[role], cfg)
    reward = combine(COMPONENTS[role], cfg)
    if role == "proposer":
        reward = pl.when(pl.col("parse_ok")).then(reward).otherwise(cfg.invalid_proposal_reward)
    return table.with_columns(reward.cast(pl.Float64).alias("reward"))


# ---------------------------------------------------------------------------------------------
# List functions (one float per sample)

_FLOATS = pl.List(pl.Float64)


def _frame(schema: dict[str, pl.DataType], *columns: Sequence) -> pl.DataFrame:
    """A table from parallel per-sample sequences, one per ``schema`` column, in its order."""
    return pl.DataFrame(
        {name: list(values) for name, values in zip(schema, columns, strict=True)},
        schema=schema,
        strict=False,
    )


def mmzero_proposer_rewards(
    parse_ok: Sequence[bool],
    n_programs: Sequence[int],
    s: Sequence[Sequence[float | None]],
    d: Sequence[Sequence[float | None]],
    diversity_penalty: Sequence[float],
    content_type_penalty: Sequence[float],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """MM-Zero Proposer reward per proposal.

    ``s[i]`` and ``d[i]`` hold s_j and d_j for each *rendered* image of proposal i (None where the
    Solver gave no valid answer: masked, contributes 0); ``n_programs[i]`` is k, failed renders
    included. r = (1/k) sum_j [min(s_j, cap) + d_j] - easy penalty - diversity - content type;
    an unparseable proposal scores ``invalid_proposal_reward``.
    """
    table = _frame(
        {
            "parse_ok": pl.Boolean,
            "n_programs": pl.Int64,
            "s": _FLOATS,
            "d": _FLOATS,
            "diversity_penalty": pl.Float64,
            "content_type_penalty": pl.Float64,
        },
        parse_ok,
        n_programs,
        [list(x) for x in s],
        [list(x) for x in d],
        diversity_penalty,
        content_type_penalty,
    )
    given = ("diversity_penalty", "content_type_penalty")
    components = COMPONENTS["proposer"]
    table = add_components(table, [c for c in components if c.name not in given], cfg)
    reward = pl.when(pl.col("parse_ok")).then(combine(components, cfg))
    return table.select(reward.otherwise(cfg.invalid_proposal_reward)).to_series().to_list()


def mmzero_coder_rewards(
    rendered: Sequence[bool],
    extract_status: Sequence[str],
    s: Sequence[float | None],
    d: Sequence[float | None],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """MM-Zero Coder reward per program: rendered -> 1 + s + d (masked s or d count 0); not
    rendered -> -0.1 when the reply held code of the right language, -0.5 when empty or not code."""
    table = _frame(
        {
            "rendered": pl.Boolean,
            "extract_status": pl.String,
            "image_s": pl.Float64,
            "image_d": pl.Float64,
        },
        rendered,
        extract_status,
        s,
        d,
    )
    return _reward("coder", table, cfg)["reward"].to_list()


def mmzero_solver_rewards(
    answers: Sequence[str | None],
    labels: Sequence[str | None],
    format_ok: Sequence[bool],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[float]:
    """MM-Zero Solver reward per answer: 0.9 * grade(answer, label) + 0.1 * format.

    A missing or placeholder answer, or a group without a label, is never correct (and so scores
    only its format term; never -1).
    """
    table = _frame(
        {
            "answer": pl.String,
            "label": pl.String,
            "answer_valid": pl.Boolean,
            "format_ok": pl.Boolean,
        },
        answers,
        labels,
        [not is_placeholder(a) for a in answers],
        [bool(f) for f in format_ok],
    )
    return _reward("solver", table, cfg)["reward"].to_list()


def _in_band(cfg: MMZeroRewardConfig) -> pl.Expr:
    return (pl.col("easy_agreement") >= cfg.easy_agreement_min) & pl.col(
        "hard_agreement"
    ).is_between(cfg.hard_agreement_min, cfg.hard_agreement_max)


def mid_band(
    easy_agreement: Sequence[float],
    hard_agreement: Sequence[float],
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> list[bool]:
    """The Solver's mid-band filter per image: easy agreement >= 0.5 and hard in [0.25, 0.75]."""
    if len(easy_agreement) != len(hard_agreement):
        raise ValueError("mid_band: easy and hard agreements differ in length")
    table = pl.DataFrame(
        {"easy_agreement": list(easy_agreement), "hard_agreement": list(hard_agreement)},
        schema={"easy_agreement": pl.Float64, "hard_agreement": pl.Float64},
    )
    return table.select(_in_band(cfg)).to_series().to_list()


# ---------------------------------------------------------------------------------------------
# The scoring pass (the score_rewards rule)

_PROPOSER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "parse_ok": pl.Boolean,
    "content_type": pl.String,
    "n_programs": pl.Int64,
    "n_rendered": pl.Int64,
    "n_judged": pl.Int64,
    "visual_verification": pl.Float64,
    "difficulty": pl.Float64,
    "mean_difficulty": pl.Float64,
    "easy_penalty": pl.Float64,
    "caption_cluster": pl.Int64,
    "easy_question_cluster": pl.Int64,
    "hard_question_cluster": pl.Int64,
    "diversity_penalty": pl.Float64,
    "content_type_penalty": pl.Float64,
}
_CODER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "extract_status": pl.String,
    "render_status": pl.String,
    "rendered": pl.Boolean,
    "s": pl.Float64,
    "d": pl.Float64,
    "render_penalty": pl.Float64,
}
_SOLVER_SCHEMA = {
    "sample_id": pl.String,
    "group_id": pl.String,
    "reward": pl.Float64,
    "answer": pl.String,
    "question_kind": pl.String,
    "answer_valid": pl.Boolean,
    "label": pl.String,
    "correct": pl.Boolean,
    "format_ok": pl.Boolean,
    "easy_agreement": pl.Float64,
    "hard_agreement": pl.Float64,
    "in_band": pl.Boolean,
}
_PROPOSAL_TEXTS = ("caption", "easy_question", "easy_answer", "hard_question", "hard_answer")


def image_table(
    proposals: pl.DataFrame,
    programs: pl.DataFrame,
    renders: pl.DataFrame,
    answers: pl.DataFrame,
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> pl.DataFrame:
    """One row per image (program): ``rendered``, ``easy_label``/``hard_label`` and
    ``easy_agreement``/``hard_agreement`` (the Solver's pseudo-label and agreement c on each
    question), ``s`` (visual verification), ``d`` (difficulty of the hard question) and
    ``in_band`` (the Solver's mid-band filter).

    Programs of the programs frame first, then programs only the answers name (never rendered,
    no s or d). d is None without hard answers; with answers but none valid, c = 0 so d = 0: no
    difficulty credit, and it counts in the mean that decides the too-easy penalty.
    """
    images = _image_rows(proposals, programs, renders, answers)
    columns = _image_scores(images, cfg.grade_rel_tol)
    images = images.with_columns(
        pl.Series("easy_label", columns["easy_label"], dtype=pl.String),
        floats("easy_agreement", columns["easy_agreement"]),
        pl.Series("hard_label", columns["hard_label"], dtype=pl.String),
        floats("hard_agreement", columns["hard_agreement"]),
        floats("s", columns["s"]),
        floats("d", columns["d"]),
        (pl.col("listed") & (pl.col("render_status") == "ok").fill_null(False)).alias("rendered"),
    ).with_columns(
        _in_band(cfg).alias("in_band"), pl.col("hard_label").is_not_null().alias("hard_valid")
    )
    return images.select(
        "program_id",
        "rendered",
        "render_status",
        "easy_label",
        "easy_agreement",
        "hard_label",
        "hard_agreement",
        "s",
        "d",
        "hard_valid",
        "in_band",
    )


def _image_rows(
    proposals: pl.DataFrame, programs: pl.DataFrame, renders: pl.DataFrame, answers: pl.DataFrame
) -> pl.DataFrame:
    """One row per image: its proposal, whether the programs frame lists it, the Solver's
    answers to each question, the proposal's stated easy answer and the render status."""
    by_question = answers.group_by("program_id", "question_kind", maintain_order=True).agg("answer")
    listed = programs.select("program_id", "proposal_id").unique(
        "program_id", keep="last", maintain_order=True
    )
    only_answered = (
        answers.select("program_id")
        .unique(maintain_order=True)
        .join(listed, on="program_id", how="anti")
        .with_columns(pl.lit(None, dtype=pl.String).alias("proposal_id"))
    )
    images = pl.concat(
        [
            listed.with_columns(pl.lit(True).alias("listed")),
            only_answered.with_columns(pl.lit(False).alias("listed")),
        ]
    )
    for kind in ("easy", "hard"):
        lists = by_question.filter(pl.col("question_kind") == kind).select(
            "program_id", pl.col("answer").alias(f"{kind}_answers")
        )
        images = left_join(images, lists, "program_id")
    stated = (
        proposals.select("proposal_id", "easy_answer")
        .unique("proposal_id", keep="last", maintain_order=True)
        .with_columns(pl.lit(True).alias("has_proposal"))
    )
    status = renders.select("program_id", pl.col("status").alias("render_status")).unique(
        "program_id", keep="first", maintain_order=True
    )
    return left_join(left_join(images, stated, "proposal_id"), status, "program_id")


def _image_scores(images: pl.DataFrame, rel: float) -> dict[str, list]:
    """Per image row: the pseudo-label and agreement of each question, s and d."""
    columns: dict[str, list] = {k: [] for k in ("easy_label", "easy_agreement", "hard_label")}
    columns |= {"hard_agreement": [], "s": [], "d": []}
    for row in images.iter_rows(named=True):
        easy, hard = row["easy_answers"] or [], row["hard_answers"] or []
        for kind, texts in (("easy", easy), ("hard", hard)):
            label, c = agreement(texts, rel_tol=rel)
            columns[f"{kind}_label"].append(label)
            columns[f"{kind}_agreement"].append(c)
        has = row["listed"] and row["has_proposal"]
        columns["s"].append(
            visual_verification(easy, row["easy_answer"], rel_tol=rel) if has else None
        )
        columns["d"].append(
            difficulty(columns["hard_agreement"][-1]) if row["listed"] and hard else None
        )
    return columns


def _proposer_table(props: pl.DataFrame, progs: pl.DataFrame, images: pl.DataFrame, cfg):
    valid = pl.col("parse_ok").fill_null(False)
    for name in _PROPOSAL_TEXTS:
        valid = valid & pl.col(name).is_not_null()
    props = props.with_columns(valid.alias("parse_ok"))
    per_program = left_join(progs.select("proposal_id", "program_id"), images, "program_id")
    rendered = pl.col("rendered")
    per_proposal = per_program.group_by("proposal_id", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("n_programs"),
        rendered.sum().cast(pl.Int64).alias("n_rendered"),
        (rendered & pl.col("hard_valid")).sum().cast(pl.Int64).alias("n_judged"),
        pl.col("s").filter(rendered),
        pl.col("d").filter(rendered),
    )
    table = left_join(props, per_proposal, "proposal_id").with_columns(
        pl.col("n_programs", "n_rendered", "n_judged").fill_null(0),
        pl.col("s", "d").fill_null([]),
    )
    batch = table.filter("parse_ok")
    sizes = field_cluster_sizes(
        batch["caption"].to_list(),
        batch["easy_question"].to_list(),
        batch["hard_question"].to_list(),
        cfg,
    )
    names = ("caption_cluster", "easy_question_cluster", "hard_question_cluster")
    ok = table["parse_ok"].to_list()
    for name, values in zip(names, sizes, strict=True):
        it = iter(values)
        table = table.with_columns(
            pl.Series(name, [next(it) if v else None for v in ok], dtype=pl.Int64)
        )
    means = []
    for v, d in zip(ok, table["d"].to_list(), strict=True):
        known = [x for x in d if x is not None]
        means.append(sum(known) / len(known) if v and known else None)
    return table.with_columns(
        floats("mean_difficulty", means),
        pl.col("proposal_id").alias("sample_id"),
    )


def score_mmzero(
    proposals: pl.DataFrame,
    programs: pl.DataFrame,
    renders: pl.DataFrame,
    answers: pl.DataFrame,
    cfg: MMZeroRewardConfig = MMZERO_DEFAULTS,
) -> dict[str, pl.DataFrame]:
    """Score one MM-Zero round: frames "proposer", "coder", "solver", one row per sample.

    Rows are sorted by ``sample_id``; within a Solver group, answers vote in input order (ties in
    agreement go to the answer seen first). Extra input columns are ignored.
    """
    props = require(
        proposals,
        "proposals",
        ["proposal_id", "group_id", "parse_ok", "content_type", *_PROPOSAL_TEXTS],
    )
    if "group_id" not in programs.columns:  # one group per proposal (a single language)
        programs = programs.with_columns(pl.col("proposal_id").alias("group_id"))
    progs = require(
        programs, "programs", ["program_id", "proposal_id", "group_id", "extract_status"]
    )
    renders = require(renders, "renders", ["program_id", "status"])
    answer_rows = require(
        answers,
        "answers",
        ["answer_id", "program_id", "proposal_id", "question_kind", "answer", "format_ok"],
    )
    images = image_table(props, progs, renders, answer_rows, cfg)

    proposer = _reward("proposer", _proposer_table(props, progs, images, cfg), cfg)

    coder = left_join(
        progs.rename({"program_id": "sample_id"}),
        images.rename({"program_id": "sample_id", "s": "image_s", "d": "image_d"}),
        "sample_id",
    )
    coder = _reward("coder", coder, cfg)

    kinds = answer_rows["question_kind"].to_list()
    solver = left_join(answer_rows, images, "program_id").with_columns(
        pl.col("answer_id").alias("sample_id"),
        pl.Series(
            "group_id",
            [f"{p}-{k}" for p, k in zip(answer_rows["program_id"], kinds, strict=True)],
            dtype=pl.String,
        ),
        pl.when(pl.col("question_kind") == "easy")
        .then(pl.col("easy_label"))
        .when(pl.col("question_kind") == "hard")
        .then(pl.col("hard_label"))
        .alias("label"),
        pl.Series(
            "answer_valid", [not is_placeholder(a) for a in answer_rows["answer"]], dtype=pl.Boolean
        ),
    )
    solver = _reward("solver", solver, cfg)
    return {
        "proposer": rows_frame(proposer, _PROPOSER_SCHEMA),
        "coder": rows_frame(coder, _CODER_SCHEMA),
        "solver": rows_frame(solver, _SOLVER_SCHEMA),
    }
