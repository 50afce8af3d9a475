"""Pseudo-label accuracy: how often the Solver's own labelling procedure gets the answer right.

MM-Zero (and EvoLMM) label an image's questions by majority vote over the Solver's m samples;
the share of the largest answer cluster is the agreement, and the mid-band filter keeps images
whose easy agreement is high and hard agreement is middling. The Solver then trains on those labels.
Nothing in the loop checks them. Here the same procedure runs on the procedural benchmark items
(and the simple pictures of ``eval.see_items``: one question an image, whose one agreement
stands for both of the filter's), whose answers are exact: each round's sampling Solver answers every item m times, the majority
label is graded against the reference, overall, per agreement band, and among the labels the
mid-band filter keeps and drops. The result shows whether the filter keeps good labels or feeds
the Solver its own mistakes.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from evovlm import parse, prompts, synth
from evovlm.engines import Request
from evovlm.evaluate import BUILTIN
from evovlm.grade import agreement, grade
from evovlm.methods.mmzero.rewards import MMZeroRewardConfig, mid_band
from evovlm.stages import png_to_image, request_seed, sampling_params

BANDS = 5  # agreement bands [0, 0.2), [0.2, 0.4) ... [0.8, 1.0], as in metrics.json's histograms

SAMPLES_SCHEMA = {
    "round": pl.Int32,
    "item_id": pl.String,  # "<item>-easy" | "<item>-hard"
    "image_id": pl.String,  # the procedural item (one image, an easy and a hard question)
    "question_kind": pl.String,
    "question": pl.String,
    "reference": pl.String,
    "sample_index": pl.Int32,
    "completion": pl.String,
    "answer": pl.String,
}


def band_name(c: float, bins: int = BANDS) -> str:
    i = min(int(c * bins), bins - 1)
    return f"{i / bins:.1f}-{(i + 1) / bins:.1f}"


def sample_labels(
    engine,
    benchmark: pl.DataFrame,
    *,
    round_: int,
    m: int,
    sampling: dict[str, Any],
    seed: int,
) -> pl.DataFrame:
    """m Solver answers per procedural benchmark question (and simple picture), exactly as
    ``sample_answers`` asks."""
    checked = pl.col("benchmark").is_in([BUILTIN, synth.SEE_BENCHMARK])
    items = benchmark.filter(checked).sort("item_id").to_dicts()
    requests = [
        Request(
            messages=prompts.render_messages("solver", question=row["question"]),
            images=[png_to_image(row["image"]["bytes"])],
            sampling=sampling_params(sampling, m),
            seed=request_seed(seed, round_, "pseudolabel", row["item_id"]),
        )
        for row in items
    ]
    rows = []
    for row, output in zip(items, engine.generate(requests), strict=True):
        image_id, _, kind = row["item_id"].rpartition("-")
        for j, sample in enumerate(output.samples):
            answer, _ = parse.parse_solver(sample.text)
            rows.append(
                {
                    "round": round_,
                    "item_id": row["item_id"],
                    "image_id": image_id,
                    "question_kind": kind,
                    "question": row["question"],
                    "reference": row["answer"],
                    "sample_index": j,
                    "completion": sample.text,
                    "answer": answer,
                }
            )
    return pl.DataFrame(rows, schema=SAMPLES_SCHEMA)


def label_table(samples: pl.DataFrame, cfg: MMZeroRewardConfig | None = None) -> pl.DataFrame:
    """One row per question: majority label, agreement, band, correct, and the mid-band verdict.

    ``samples`` needs item_id, image_id, question_kind, reference and answer (one row per sample).
    An image is kept when its easy and hard agreements pass ``rewards.mid_band``; both of its
    labels are then training labels (as in ``score_mmzero``). A question with no valid answer has
    no label (never correct).
    """
    cfg = cfg or MMZeroRewardConfig()
    rows = []
    for (item_id,), group in samples.sort("item_id", "sample_index").group_by(
        ["item_id"], maintain_order=True
    ):
        first = group.row(0, named=True)
        label, c = agreement(group["answer"].to_list(), rel_tol=cfg.grade_rel_tol)
        rows.append(
            {
                "item_id": item_id,
                "image_id": first["image_id"],
                "question_kind": first["question_kind"],
                "reference": first["reference"],
                "samples": group.height,
                "label": label,
                "agreement": float(c),
                "band": band_name(c),
                "correct": label is not None
                and grade(label, first["reference"], rel_tol=cfg.grade_rel_tol),
            }
        )
    table = pl.DataFrame(
        rows,
        schema={
            "item_id": pl.String,
            "image_id": pl.String,
            "question_kind": pl.String,
            "reference": pl.String,
            "samples": pl.Int64,
            "label": pl.String,
            "agreement": pl.Float64,
            "band": pl.String,
            "correct": pl.Boolean,
        },
    )
    return table.join(_verdicts(table, cfg), on="image_id", how="left").sort("item_id")


def _verdicts(table: pl.DataFrame, cfg: MMZeroRewardConfig) -> pl.DataFrame:
    """``in_band`` per image. A picture with one question of its own kind (``eval.see_items``:
    shape, colour, ...) has no easy/hard pair; its one agreement stands for both, so the filter
    is the same rule. (It used to count as 0.0, so those pictures were never kept and the kept
    labels were the chart items' only.)"""
    agreement = pl.col("agreement")
    kind = pl.col("question_kind")
    per_image = table.group_by("image_id", maintain_order=True).agg(
        easy=agreement.filter(kind == "easy").first(),
        hard=agreement.filter(kind == "hard").first(),
        single=pl.when(pl.len() == 1).then(agreement.filter(~kind.is_in(["easy", "hard"])).first()),
    )
    per_image = per_image.with_columns(
        easy=pl.coalesce("easy", "single").fill_null(0.0),
        hard=pl.coalesce("hard", "single").fill_null(0.0),
    )
    kept = mid_band(per_image["easy"].to_list(), per_image["hard"].to_list(), cfg)
    return pl.DataFrame(
        {"image_id": per_image["image_id"], "in_band": kept},
        schema={"image_id": pl.String, "in_band": pl.Boolean},
    )


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def summarize(labels: pl.DataFrame) -> dict[str, Any]:
    """Overall, per-kind and per-band label accuracy, and what the mid-band filter keeps."""

    def block(frame: pl.DataFrame) -> dict[str, Any]:
        n = frame.height
        labelled = int(frame["label"].is_not_null().sum()) if n else 0
        correct = int(frame["correct"].sum()) if n else 0
        return {
            "n": n,
            "labelled": labelled,
            "correct": correct,
            "accuracy": _rate(correct, n),
            "accuracy_of_labelled": _rate(correct, labelled),
        }

    bands = {}
    for i in range(BANDS):
        name = band_name(i / BANDS)
        bands[name] = block(labels.filter(pl.col("band") == name))
    kept = labels.filter(pl.col("in_band"))
    dropped = labels.filter(~pl.col("in_band"))
    return {
        "overall": block(labels),
        # the Solver's mean agreement on these items: the collapse check compares it round over
        # round with the kept labels' accuracy (evovlm.report.collapse_check)
        "mean_agreement": float(labels["agreement"].mean()) if labels.height else None,
        "by_kind": {
            kind: block(labels.filter(pl.col("question_kind") == kind))
            for kind in ("easy", "hard", *sorted(set(labels["question_kind"]) - {"easy", "hard"}))
        },
        "by_band": bands,
        "filter": {
            "kept": kept.height,
            "kept_correct": int(kept["correct"].sum()) if kept.height else 0,
            "kept_wrong": kept.height - (int(kept["correct"].sum()) if kept.height else 0),
            "kept_accuracy": _rate(int(kept["correct"].sum()) if kept.height else 0, kept.height),
            "dropped": dropped.height,
            "dropped_correct": int(dropped["correct"].sum()) if dropped.height else 0,
            "dropped_accuracy": _rate(
                int(dropped["correct"].sum()) if dropped.height else 0, dropped.height
            ),
        },
    }


def collapse_since(
    previous: dict[str, Any],
    previous_labels: pl.DataFrame | None,
    summary: dict[str, Any],
    labels: pl.DataFrame | None,
) -> dict[str, Any]:
    """The collapse check (``evovlm.report.collapse_check``) of this round's labels against the
    previous round's: agreement, kept labels' accuracy, ``warning`` and ``beyond_noise``."""
    from evovlm.report import collapse_check

    (check,) = collapse_check(
        {previous["round"]: previous, summary["round"]: summary},
        {previous["round"]: previous_labels, summary["round"]: labels},
    )
    return check


def collapse_stop_message(check: dict[str, Any]) -> str | None:
    """The one line that stops the run (config ``stop_on_collapse: true``) when a round-over-
    round check (``evovlm.report.collapse_check``) warns; None when it does not."""
    if not check.get("warning"):
        return None
    (a0, a1), (k0, k1) = check["agreement"], check["kept_accuracy"]
    strength = "beyond 2 SE" if check.get("beyond_noise") else "within 2 SE"
    return (
        f"error: stop_on_collapse: round {check['from']} -> {check['to']}: the Solver's agreement "
        f"rose {a0:.3f} -> {a1:.3f} while the accuracy of the labels the mid-band filter keeps "
        f"fell {k0:.3f} -> {k1:.3f} ({strength}); set stop_on_collapse: false to go on"
    )
