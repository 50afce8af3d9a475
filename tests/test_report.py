"""The report's parts on small hand-made inputs: pseudo-label accuracy, figures, the summary
table, the gallery, Parquet features metadata and checkpoints that load the Hugging Face way."""

import io
import json
import shutil

import numpy as np
import polars as pl
import pytest
from PIL import Image

from evovlm import hfio, pseudolabel, report
from evovlm.rewards import MMZeroRewardConfig
from evovlm.schema import RENDERS, frame_from_rows, write_parquet

# ---------------------------------------------------------------------------------------------
# Pseudo-label accuracy


def samples(answers: dict[str, list[str | None]], references: dict[str, str]) -> pl.DataFrame:
    """One row per sample; keys are '<image>-easy' / '<image>-hard'."""
    rows = []
    for item_id, values in answers.items():
        image_id, _, kind = item_id.rpartition("-")
        for j, answer in enumerate(values):
            rows.append(
                {
                    "round": 1,
                    "item_id": item_id,
                    "image_id": image_id,
                    "question_kind": kind,
                    "question": "q",
                    "reference": references[item_id],
                    "sample_index": j,
                    "completion": "",
                    "answer": answer,
                }
            )
    return pl.DataFrame(rows, schema=pseudolabel.SAMPLES_SCHEMA)


REFS = {"a-easy": "3", "a-hard": "10", "b-easy": "7", "b-hard": "2.5"}


def test_oracle_solver_labels_everything_right():
    table = samples({k: [v] * 4 for k, v in REFS.items()}, REFS)
    labels = pseudolabel.label_table(table)
    out = pseudolabel.summarize(labels)
    assert out["overall"] == {
        "n": 4,
        "labelled": 4,
        "correct": 4,
        "accuracy": 1.0,
        "accuracy_of_labelled": 1.0,
    }
    assert out["by_band"]["0.8-1.0"]["n"] == 4
    # Unanimous hard answers are outside the mid band [0.25, 0.75]: nothing is kept.
    assert out["filter"]["kept"] == 0
    assert out["filter"]["dropped_correct"] == 4


def test_constant_solver_is_right_only_where_the_reference_is_the_constant():
    table = samples({k: ["7"] * 4 for k in REFS}, REFS)
    out = pseudolabel.summarize(pseudolabel.label_table(table))
    assert out["overall"]["correct"] == 1  # only b-easy's answer is 7
    assert out["overall"]["accuracy"] == pytest.approx(0.25)
    assert out["by_kind"]["easy"]["accuracy"] == pytest.approx(0.5)
    assert out["by_kind"]["hard"]["accuracy"] == 0.0


def test_mid_band_filter_counts_kept_right_and_wrong_labels():
    answers = {
        # image a: easy unanimous and right, hard 2 of 4 agree on a wrong value -> kept
        "a-easy": ["3", "3", "3", "3"],
        "a-hard": ["11", "11", "10", "9"],
        # image b: easy agreement 0.25 (< 0.5) -> dropped, whatever the hard question says
        "b-easy": ["7", "1", "2", "4"],
        "b-hard": ["2.5", "2.5", "1", None],
    }
    labels = pseudolabel.label_table(samples(answers, REFS), MMZeroRewardConfig())
    row = {r["item_id"]: r for r in labels.to_dicts()}
    assert row["a-hard"]["label"] == "11" and row["a-hard"]["agreement"] == 0.5
    assert row["a-easy"]["in_band"] and row["a-hard"]["in_band"]
    assert not row["b-easy"]["in_band"] and not row["b-hard"]["in_band"]
    # b-hard: 2 of the 3 valid answers agree (None is not a vote).
    assert row["b-hard"]["agreement"] == pytest.approx(2 / 3) and row["b-hard"]["correct"]
    out = pseudolabel.summarize(labels)
    assert out["filter"]["kept"] == 2
    assert out["filter"]["kept_correct"] == 1 and out["filter"]["kept_wrong"] == 1
    assert out["filter"]["kept_accuracy"] == 0.5
    assert out["by_band"]["0.4-0.6"]["n"] == 1 and out["by_band"]["0.4-0.6"]["correct"] == 0


def test_question_without_a_valid_answer_has_no_label_and_is_wrong():
    answers = {"a-easy": [None] * 4, "a-hard": ["10"] * 4}
    out = pseudolabel.summarize(pseudolabel.label_table(samples(answers, REFS)))
    assert out["overall"]["labelled"] == 1 and out["overall"]["correct"] == 1
    assert out["overall"]["accuracy"] == 0.5 and out["overall"]["accuracy_of_labelled"] == 1.0
    assert out["by_band"]["0.0-0.2"]["n"] == 1


# ---------------------------------------------------------------------------------------------
# Figures and summary


def metrics_of(r: int, extra_rate: bool = False) -> dict:
    rates = {"parse_rate": 0.5 + 0.1 * r, "render_rate": 0.4, "boxed_rate": 0.9}
    if extra_rate:
        rates["solver_agreement"] = 0.6
    return {
        "round": r,
        "funnel": {"proposals": 32, "proposals_parsed": 20, "programs": 40, "renders_ok": 16},
        "rates": rates,
        "render_status": {"ok": 16, "timeout": 3, "error": 21},
        "rewards": {
            "proposer": {"n": 32, "mean": 0.2 * r, "std": 0.3, "min": -1.0, "max": 1.0},
            "coder": {"n": 40, "mean": 0.1, "std": 0.5, "min": -0.5, "max": 1.2},
            "solver": {"n": 128, "mean": 0.55, "std": 0.2, "min": 0.0, "max": 1.0},
        },
        "agreement_histograms": {
            "easy_agreement": {
                "0.0-0.2": 0,
                "0.2-0.4": 3,
                "0.4-0.6": 5,
                "0.6-0.8": 2,
                "0.8-1.0": 6,
            },
            "hard_agreement": {
                "0.0-0.2": 1,
                "0.2-0.4": 6,
                "0.4-0.6": 4,
                "0.6-0.8": 4,
                "0.8-1.0": 1,
            },
        },
    }


def train_summary(copied: bool = False) -> dict:
    history = [
        {
            "step": s,
            "loss": 0.1 / s,
            "reward": 0.2 * s,
            "kl": 0.01 * s,
            "entropy": 2.0 - 0.1 * s,
            "clip_ratio/region_mean": 0.05,
        }
        for s in range(1, 5)
    ]
    history.append({"step": 4, "train_runtime": 3.0, "train_loss": 0.05})
    if copied:
        return {"copied_previous": True, "roles": {"coder": {"skipped": True}}}
    return {"copied_previous": False, "roles": {"proposer": {"log_history": history}}}


def not_blank(path) -> bool:
    """A figure with content: many colours, and ink (non-white pixels) beyond the frame lines."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    ink = (pixels < 200).any(axis=2).mean()
    return colours > 20 and ink > 0.02


def test_every_round_figure_is_written_and_not_blank(tmp_path):
    m = metrics_of(1, extra_rate=True)
    figures = {
        "rewards": report.plot_rewards,
        "rates": report.plot_rates,
        "status": report.plot_render_status,
        "agreement": report.plot_agreement,
    }
    for name, plot in figures.items():
        plot(m, tmp_path / f"{name}.png")
        assert not_blank(tmp_path / f"{name}.png"), name
    report.plot_training(
        {"proposer": train_summary(), "coder": train_summary(copied=True)},
        1,
        tmp_path / "training.png",
    )
    assert not_blank(tmp_path / "training.png")
    report.plot_rounds({1: metrics_of(1), 2: metrics_of(2, True)}, tmp_path / "rounds.png")
    assert not_blank(tmp_path / "rounds.png")
    accuracy = pl.DataFrame(
        {
            "policy": ["base", "round_1"],
            "benchmark": ["procedural"] * 2,
            "n": [64, 64],
            "correct": [10, 16],
            "accuracy": [10 / 64, 16 / 64],
            "ci95_low": [0.08, 0.15],
            "ci95_high": [0.26, 0.37],
            "boxed_rate": [0.9, 0.95],
        }
    )
    report.plot_eval(accuracy, tmp_path / "eval.png")
    assert not_blank(tmp_path / "eval.png")
    answers = {"a-easy": ["3"] * 4, "a-hard": ["11", "11", "10", "9"]}
    labels = pseudolabel.summarize(pseudolabel.label_table(samples(answers, REFS)))
    report.plot_pseudolabels({1: labels, 2: labels}, tmp_path / "pseudolabels.png")
    assert not_blank(tmp_path / "pseudolabels.png")


def test_rates_plot_shows_a_rate_added_later(tmp_path):
    plain, extra = tmp_path / "plain.png", tmp_path / "extra.png"
    report.plot_rates(metrics_of(1), plain)
    report.plot_rates(metrics_of(1, extra_rate=True), extra)
    assert Image.open(extra).size[0] > Image.open(plain).size[0]  # one more bar, wider figure


def test_training_history_keeps_step_entries_only():
    history = report.log_history(train_summary())
    assert [e["step"] for e in history] == [1, 2, 3, 4]
    assert all(e["role"] == "proposer" for e in history)


def test_summary_has_one_row_per_round_with_every_rate_reward_and_eval(tmp_path):
    accuracy = pl.DataFrame(
        {
            "policy": ["base", "round_1", "round_2"],
            "benchmark": ["procedural"] * 3,
            "n": [64] * 3,
            "correct": [10, 16, 20],
            "accuracy": [10 / 64, 16 / 64, 20 / 64],
            "ci95_low": [0.1] * 3,
            "ci95_high": [0.4] * 3,
            "boxed_rate": [1.0] * 3,
        }
    )
    labels = pseudolabel.summarize(
        pseudolabel.label_table(samples({k: [v] * 4 for k, v in REFS.items()}, REFS))
    )
    frame = report.summary_rows(
        {1: metrics_of(1), 2: metrics_of(2, extra_rate=True)},
        accuracy,
        {1: labels, 2: labels},
        method="mmzero",
    )
    assert frame["round"].to_list() == [1, 2]
    assert frame["rate_solver_agreement"].to_list() == [None, 0.6]
    assert frame["reward_proposer_mean"].to_list() == pytest.approx([0.2, 0.4])
    assert frame["eval_procedural_accuracy"].to_list() == pytest.approx([16 / 64, 20 / 64])
    assert frame["eval_procedural_base_accuracy"].to_list() == pytest.approx([10 / 64] * 2)
    assert frame["pseudolabel_accuracy"].to_list() == [1.0, 1.0]
    write_parquet(frame, tmp_path / "summary.parquet", None)
    assert pl.read_parquet(tmp_path / "summary.parquet").height == 2


def png(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_gallery_shows_image_text_answers_and_rewards():
    proposals = pl.DataFrame(
        {
            "proposal_id": ["p1"],
            "caption": ["A bar chart of <fruit>"],
            "topic": ["charts"],
            "content_type": ["bar"],
            "easy_question": ["How many bars?"],
            "easy_answer": ["3"],
            "hard_question": ["Sum of bars?"],
            "hard_answer": ["10"],
        }
    )
    programs = pl.DataFrame({"program_id": ["p1-c0"], "proposal_id": ["p1"], "language": ["svg"]})
    renders = pl.DataFrame(
        {"program_id": ["p1-c0"], "status": ["ok"], "image": [{"bytes": png(), "path": None}]}
    )
    answers = pl.DataFrame(
        {
            "answer_id": [f"p1-c0-{k}-a{j}" for k in ("easy", "hard") for j in range(2)],
            "program_id": ["p1-c0"] * 4,
            "question_kind": ["easy", "easy", "hard", "hard"],
            "sample_index": [0, 1, 0, 1],
            "answer": ["3", "4", "10", "10"],
        }
    )
    rewards = {
        "proposer": pl.DataFrame({"sample_id": ["p1"], "reward": [0.75]}),
        "coder": pl.DataFrame({"sample_id": ["p1-c0"], "reward": [1.25]}),
        "solver": pl.DataFrame(
            {
                "sample_id": answers["answer_id"],
                "reward": [1.0, 0.1, 1.0, 1.0],
                "label": ["3", "3", "10", "10"],
                "correct": [True, False, True, True],
                "easy_agreement": [0.5] * 4,
                "hard_agreement": [1.0] * 4,
                "in_band": [False] * 4,
            }
        ),
    }
    page = report.mmzero_gallery(1, proposals, programs, renders, answers, rewards)
    assert page.count("data:image/png;base64,") == 1
    assert "A bar chart of &lt;fruit&gt;" in page  # escaped
    for text in ("How many bars?", "Sum of bars?", "0.750", "1.250", "agreement 0.500"):
        assert text in page
    assert "1 of 1 rendered images" in page


# ---------------------------------------------------------------------------------------------
# Hugging Face interop


def test_datasets_decodes_image_column_to_pil_and_round_is_added(tmp_path):
    import datasets

    rows = [
        {
            "program_id": f"p{i}",
            "status": "ok",
            "error": None,
            "image": {"bytes": png(c), "path": None},
            "width": 16,
            "height": 16,
            "render_ms": 1.0,
        }
        for i, c in enumerate(("red", "blue"))
    ]
    path = tmp_path / "renders.parquet"
    write_parquet(frame_from_rows(rows, RENDERS), path, RENDERS, round_=2)
    ds = datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert isinstance(ds[0]["image"], Image.Image)
    assert ds[1]["image"].convert("RGB").getpixel((0, 0)) == (0, 0, 255)
    assert ds["round"] == [2, 2]


def test_feature_of_nested_types():
    import pyarrow as pa

    assert hfio.feature(pa.list_(pa.int32())) == {
        "feature": {"dtype": "int32", "_type": "Value"},
        "_type": "List",
    }
    assert hfio.feature(pa.struct([("a", pa.float64())])) == {
        "a": {"dtype": "float64", "_type": "Value"}
    }


def test_checkpoint_loads_with_auto_classes_and_pipeline(tiny_model_dir, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

    folder = tmp_path / "checkpoint"
    shutil.copytree(tiny_model_dir, folder)
    (folder / ".snakemake_timestamp").write_text("")
    hfio.prepare_checkpoint(folder)
    hfio.write_model_card(
        folder,
        {
            "base_model": "embedded",
            "method": "mmzero",
            "lineage": "solver",
            "roles": ["solver"],
            "round": 2,
            "train": {"learning_rate": 1e-4, "max_steps": 4},
            "summary": {"steps": 4, "groups_trained": 3, "groups_total": 5},
            "rates": {"parse_rate": 0.5, "solver_agreement": None},
        },
    )
    assert not (folder / ".snakemake_timestamp").exists()
    card = (folder / "README.md").read_text()
    for text in ("round 2", "mmzero", "`solver`", "| learning_rate | 0.0001 |", "parse_rate"):
        assert text in card, text
    assert json.loads((folder / "processor_config.json").read_text())["auto_map"]
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert processor.image_processor is not None
    assert AutoModelForImageTextToText.from_pretrained(folder) is not None
    pipe = pipeline("image-text-to-text", model=str(folder), trust_remote_code=True, device="cpu")
    image = Image.new("RGB", (64, 64), "red")
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": image}, {"type": "text", "text": "Colour?"}],
        }
    ]
    out = pipe(text=messages, max_new_tokens=4)
    assert out[0]["generated_text"][-1]["role"] == "assistant"


def test_evolmm_gallery_shows_image_questions_answers_and_rewards():
    images = pl.DataFrame(
        {"image_id": ["i1"], "source": ["charts/a.png"], "image": [{"bytes": png(), "path": None}]}
    )
    questions = pl.DataFrame(
        {
            "question_id": ["i1-q0", "i1-q1"],
            "image_id": ["i1", "i1"],
            "sample_index": [0, 1],
            "parse_ok": [True, False],
            "question": ["How many bars?", None],
        }
    )
    answers = pl.DataFrame(
        {
            "answer_id": ["i1-q0-a0", "i1-q0-a1"],
            "question_id": ["i1-q0", "i1-q0"],
            "sample_index": [0, 1],
            "answer": ["3", "4"],
        }
    )
    rewards = {
        "proposer": pl.DataFrame(
            {"sample_id": ["i1-q0", "i1-q1"], "reward": [0.625, 0.0], "label": ["3", None]}
        ),
        "solver": pl.DataFrame(
            {
                "sample_id": ["i1-q0-a0", "i1-q0-a1"],
                "reward": [0.5, 0.25],
                "majority": [True, False],
            }
        ),
    }
    page = report.evolmm_gallery(1, images, questions, answers, rewards)
    assert page.count("data:image/png;base64,") == 1
    for text in ("charts/a.png", "How many bars?", "0.625", "0.500", "0.250", "1 of 1 images"):
        assert text in page, text
