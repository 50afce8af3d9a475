"""EvoLMM as a plug-in: Proposer and Solver on raw images; rewards, summary, training rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evovlm import parse, prompts
from evovlm.methods.base import Method, SolverFormat, register
from evovlm.methods.evolmm import rewards, samples, summary
from evovlm.methods.evolmm.gallery import evolmm_gallery

_NO_TOKENS = ("prompt_ids", "completion_ids", "logprobs")

# What "auto" means in the train section (TrainConfig.from_dict). scale_rewards: the EvoLMM
# reference's advantage is reward - baseline, with no division by the group's std.
TRAIN_DEFAULTS = {
    "method": "lora",
    "freeze_vision_tower": True,
    "kl_control": "adaptive",
    "scale_rewards": "none",
}


def score(tables, reward_cfg=None):
    return rewards.score_evolmm(
        tables["questions"],
        tables["answers"],
        rewards.EvoLMMRewardConfig.from_dict(reward_cfg),
    )


def summarize(tables, scored, trained, timings, extra=None) -> dict[str, Any]:
    image_stats = json.loads(Path(extra["images_stats"]).read_text()) if extra else {}
    return summary.summarize_evolmm(
        image_stats, tables["questions"], tables["answers"], scored, trained, timings
    )


def role_samples(tables, scored, options=None):
    return samples.evolmm_role_samples(
        tables.get("questions"), tables.get("answers"), tables["images"], scored
    )


def sample_options(config) -> dict[str, Any]:
    """The Proposer trains once per ``evolmm.proposer_update_ratio`` Solver updates (the
    reference updates it every ``proposer_update_freq`` 5 images, the Solver 5 times an image)."""
    ratio = int(config.get("evolmm", {}).get("proposer_update_ratio", 1))
    return {"update_ratio": {"proposer": ["solver", ratio]}} if ratio > 1 else {}


def gallery(round_, tables, scored, k, seed) -> str:
    return evolmm_gallery(
        round_, tables["images"], tables["questions"], tables["answers"], scored, k=k, seed=seed
    )


def solver_answer(text: str | None) -> tuple[str | None, bool]:
    """EvoLMM's extraction (``<answer>`` tag, else the last line); format = a closed tag."""
    closed = isinstance(text, str) and "<answer>" in text and "</answer>" in text
    return parse.parse_answer_tag(text), closed


def solver_reply(reasoning: str, answer: str) -> str:
    """The answer alone in its tag (the warm-up teaches no reasoning text here)."""
    return prompts.format_evolmm_answer("", answer)


# The Solver answers inside <answer>...</answer>.
SOLVER = SolverFormat(
    role="solver", template="evolmm_solver", extract=solver_answer, write=solver_reply
)

EVOLMM = register(
    Method(
        name="evolmm",
        roles=("proposer", "solver"),
        tables={"questions": "questions", "answers": "evolmm_answers", "images": "images"},
        scoring_drop={"questions": _NO_TOKENS, "answers": _NO_TOKENS, "images": ("image",)},
        score=score,
        summarize=summarize,
        role_samples=role_samples,
        sample_options=sample_options,
        stages={"questions": "questions", "answers": "evolmm_answers"},
        train_defaults=TRAIN_DEFAULTS,
        summary_files={"images_stats": "images.json"},
        solver=SOLVER,
        warmup_roles=("evolmm_proposer", "evolmm_solver"),
        rates=("parse_rate", "mean_answer_share", "mean_entropy", "entropy_band_share"),
        gallery=gallery,
        templates={"proposer": ("evolmm_proposer",), "solver": ("evolmm_solver",)},
    )
)
