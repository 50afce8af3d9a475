"""MM-Zero as a plug-in: Proposer, Coder and Solver; rewards, summary and training rows."""

from __future__ import annotations

from typing import Any

from evovlm import parse, prompts
from evovlm.methods.base import Method, SolverFormat, register
from evovlm.methods.mmzero import rewards, samples, summary
from evovlm.methods.mmzero.gallery import mmzero_gallery

_NO_TOKENS = ("prompt_ids", "completion_ids", "logprobs")

# What "auto" means in the train section (TrainConfig.from_dict). scale_rewards: MM-Zero trains
# with EasyR1's GRPO, whose advantage divides by the group's std (compute_grpo_outcome_advantage;
# MM-Zero's configs/imagefree_*_config.yaml: adv_estimator grpo).
TRAIN_DEFAULTS = {
    "method": "full",
    "freeze_vision_tower": False,
    "kl_control": "fixed",
    "scale_rewards": "group",
}


def score(tables, reward_cfg=None):
    return rewards.score_mmzero(
        tables["proposals"],
        tables["programs"],
        tables["renders"],
        tables["answers"],
        rewards.MMZeroRewardConfig.from_dict(reward_cfg),
    )


def summarize(tables, scored, trained, timings, extra=None) -> dict[str, Any]:
    return summary.summarize_mmzero(
        tables["proposals"],
        tables["programs"],
        tables["renders"],
        tables["answers"],
        scored,
        trained,
        timings,
    )


def role_samples(tables, scored, options=None):
    options = options or {}
    return samples.mmzero_role_samples(
        tables.get("proposals"),
        tables.get("programs"),
        tables.get("answers"),
        tables.get("renders"),
        scored,
        solver_questions=options.get("solver_questions", ("hard",)),
        coder_render_band=options.get("coder_render_band"),
    )


def sample_options(config):
    """MM-Zero's Solver questions and Coder render-rate band for the training rows."""
    return {
        "solver_questions": config["mmzero"]["solver_train_questions"],
        "coder_render_band": config["mmzero"]["coder_render_band"],
    }


def gallery(round_, tables, scored, k, seed) -> str:
    return mmzero_gallery(
        round_,
        tables["proposals"],
        tables["programs"],
        tables["renders"],
        tables["answers"],
        scored,
        k=k,
        seed=seed,
    )


# The Solver thinks in <think>, then gives its answer in the last \boxed{}.
SOLVER = SolverFormat(
    role="solver", template="solver", extract=parse.parse_solver, write=prompts.format_solver
)

MMZERO = register(
    Method(
        name="mmzero",
        roles=("proposer", "coder", "solver"),
        tables={
            "proposals": "proposals",
            "programs": "programs",
            "renders": "renders",
            "answers": "answers",
        },
        scoring_drop={"programs": _NO_TOKENS, "renders": ("image",), "answers": _NO_TOKENS},
        score=score,
        summarize=summarize,
        role_samples=role_samples,
        stages={"proposals": "proposals", "programs": "programs", "answers": "answers"},
        sample_options=sample_options,
        train_defaults=TRAIN_DEFAULTS,
        solver=SOLVER,
        warmup_roles=("proposer", "coder_svg", "coder_python", "solver"),
        rates=("parse_rate", "render_rate", "solver_agreement", "solvability", "difficulty"),
        gallery=gallery,
        templates={
            "proposer": ("proposer",),
            "coder": ("coder_svg", "coder_python"),
            "solver": ("solver",),
        },
        pseudolabels=True,
    )
)
