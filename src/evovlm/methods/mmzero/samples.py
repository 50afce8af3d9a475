"""MM-Zero's training rows: each role's scored samples joined with their prompts and tokens."""

from __future__ import annotations

import polars as pl

from evovlm.train.grouping import SAMPLE_COLUMNS, join_samples


def mmzero_role_samples(
    proposals: pl.DataFrame | None,
    programs: pl.DataFrame | None,
    answers: pl.DataFrame | None,
    renders: pl.DataFrame | None,
    rewards: dict[str, pl.DataFrame],
    *,
    solver_questions: tuple[str, ...] | list[str] = ("hard",),
    coder_render_band: tuple[float, float] | list[float] | None = None,
) -> dict[str, pl.DataFrame]:
    """One frame per MM-Zero role in ``rewards``: the sample columns joined with the reward.

    Columns: sample_id, group_id, prompt, prompt_ids, completion_ids, logprobs, reward, image (PNG
    bytes or null). Solver rows keep only ``in_band`` rows when that column is present, and only
    the question kinds in ``solver_questions`` (MM-Zero trains the Solver on the hard question
    with its majority label). With ``coder_render_band = (lo, hi)``, Coder groups train only when
    their render rate lies in [lo, hi] (MM-Zero's filter).
    """
    tables = {
        "proposer": (proposals, "proposal_id"),
        "coder": (programs, "program_id"),
        "solver": (answers, "answer_id"),
    }
    out = {}
    for role, scored in rewards.items():
        table, id_col = tables[role]
        if table is None:
            raise ValueError(f"train: the {role} rewards need the {role} sample table")
        if role == "solver" and "in_band" in scored.columns:
            scored = scored.filter(pl.col("in_band").fill_null(False))
        if role == "solver":
            kind = (
                pl.col("question_kind")
                if "question_kind" in scored.columns
                else pl.col("group_id").str.extract(r"-(easy|hard)$")
            )
            scored = scored.filter(kind.is_in(list(solver_questions)))
        if role == "coder" and coder_render_band is not None and "rendered" in scored.columns:
            lo, hi = coder_render_band
            rate = pl.col("rendered").cast(pl.Float64).mean().over("group_id")
            scored = scored.filter(rate.is_between(lo, hi))
        frame = join_samples(table, id_col, scored)
        if role == "solver":
            if renders is None:
                raise ValueError("train: the solver rewards need renders.parquet (its images)")
            pictures = renders.select(
                "program_id", pl.col("image").struct.field("bytes").alias("image")
            )
            frame = frame.join(pictures, on="program_id", how="left")
        else:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Binary).alias("image"))
        out[role] = frame.select(SAMPLE_COLUMNS)
    return out
