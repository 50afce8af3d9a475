"""A toy third method, defined only in the tests: one role (``speaker``), one generation rule
(``toy_reply`` in toy.smk), two templates. The reward is verifiable and continuous: the share of
vowels among the reply's letters. The speaker is also the toy's Solver: evaluation asks it the
benchmark's questions about a picture and reads the word after ``Answer:``; the format warm-up
teaches both formats. Loaded by the config key ``plugins: [toy_method]`` with this folder on the
Python path; nothing in the package or the workflow names it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import polars as pl
import pyarrow as pa

from evovlm import prompts, train
from evovlm.methods import Method, SolverFormat, register
from evovlm.schema import LOGPROBS, TOKENS, TableSpec

HERE = Path(__file__).resolve().parent
prompts.register_template("toy_speaker", HERE / "templates" / "toy_speaker.jinja")
prompts.register_template("toy_solver", HERE / "templates" / "toy_solver.jinja", image=True)

REPLIES = TableSpec(
    "toy_replies",
    (
        ("round", pa.int32()),
        ("reply_id", pa.string()),
        ("group_id", pa.string()),  # the prompt: n replies per prompt
        ("sample_index", pa.int32()),
        ("seed", pa.int64()),
        ("prompt", pa.string()),
        ("prompt_ids", TOKENS),
        ("completion", pa.string()),
        ("completion_ids", TOKENS),
        ("logprobs", LOGPROBS),
        ("finish_reason", pa.string()),
    ),
)


def vowel_share(text: pl.Expr) -> pl.Expr:
    letters = text.str.count_matches(r"[A-Za-z]")
    vowels = text.str.count_matches(r"[AEIOUaeiou]")
    return pl.when(letters > 0).then(vowels / letters).otherwise(0.0)


def score(tables, reward_cfg=None):
    replies = tables["replies"]
    frame = replies.select(
        pl.col("reply_id").alias("sample_id"),
        "group_id",
        vowel_share(pl.col("completion")).cast(pl.Float64).alias("reward"),
    )
    return {"speaker": frame}


def summarize(tables, scored, trained, timings, extra=None):
    rewards = scored["speaker"]["reward"]
    return {
        "funnel": {"replies": tables["replies"].height},
        "rates": {"vowel_share": float(rewards.mean()) if rewards.len() else None},
        "training": trained,
        "stage_seconds": timings,
    }


def role_samples(tables, scored, options=None):
    return {"speaker": train.sample_rows(tables["replies"], "reply_id", scored["speaker"])}


SENTENCES = ("A cat sat on a mat.", "Aunt Eve ate an apple.", "Our idea is easy.")


def warmup_examples(n_items: int, seed: int) -> list[dict]:
    """The speaker's format: one short sentence per prompt (a text-only example per item)."""
    rng = random.Random(seed)
    return [
        {
            "role": "toy_speaker",
            "prompt": prompts.render_messages("toy_speaker", topic=f"topic {i}"),
            "completion": [
                {"role": "assistant", "content": [{"type": "text", "text": rng.choice(SENTENCES)}]}
            ],
            "images": [],
        }
        for i in range(n_items)
    ]


def solver_answer(text: str | None) -> tuple[str | None, bool]:
    """The words after the last ``Answer:``; format = the marker is there."""
    found = re.findall(r"Answer:\s*(.*)", text or "")
    return (found[-1].strip() or None, True) if found else (None, False)


SOLVER = SolverFormat(
    role="speaker",
    template="toy_solver",
    extract=solver_answer,
    write=lambda reasoning, answer: f"Answer: {answer}",
)


def _section(**properties: dict) -> dict:
    """A config section's JSON schema: these keys only, each with its default."""
    return {
        "type": "object",
        "default": {},
        "additionalProperties": False,
        "properties": properties,
    }


_SAMPLING = _section(
    n={"type": "integer", "minimum": 2, "default": 4},
    temperature={"type": "number", "minimum": 0, "default": 1.0},
    max_tokens={"type": "integer", "minimum": 1, "default": 12},
)

TOY = register(
    Method(
        name="toy",
        roles=("speaker",),
        tables={"replies": "toy_replies"},
        scoring_drop={},
        score=score,
        summarize=summarize,
        role_samples=role_samples,
        stages={"replies": "toy_replies"},
        rules=str(HERE / "toy.smk"),
        config_schema=_section(
            prompts={"type": "integer", "minimum": 1, "default": 4},
            share_weights={"type": "boolean", "default": False},
            speaker=_SAMPLING,
        ),
        specs={"toy_replies": REPLIES},
        report=False,
        solver=SOLVER,
        warmup_examples=warmup_examples,
        rates=("vowel_share",),
    )
)
