"""EvoLMM's training rows: each role's scored samples joined with their prompts, tokens and
the round's image."""

from __future__ import annotations

import polars as pl

from evovlm.train.grouping import SAMPLE_COLUMNS, join_samples


def evolmm_role_samples(
    questions: pl.DataFrame | None,
    answers: pl.DataFrame | None,
    images: pl.DataFrame,
    rewards: dict[str, pl.DataFrame],
) -> dict[str, pl.DataFrame]:
    """Like MM-Zero's ``mmzero_role_samples`` for EvoLMM (both roles see the round's image)."""
    tables = {"proposer": (questions, "question_id"), "solver": (answers, "answer_id")}
    pictures = images.select("image_id", pl.col("image").struct.field("bytes").alias("image"))
    out = {}
    for role, scored in rewards.items():
        table, id_col = tables[role]
        if table is None:
            raise ValueError(f"train: the {role} rewards need the {role} sample table")
        if "in_band" in scored.columns:
            scored = scored.filter(pl.col("in_band").fill_null(False))
        frame = join_samples(table, id_col, scored).join(pictures, on="image_id", how="left")
        out[role] = frame.select(SAMPLE_COLUMNS)
    return out
