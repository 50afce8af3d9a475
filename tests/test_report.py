"""The report's parts on small hand-made inputs: pseudo-label accuracy, figures, the summary
table, the gallery, Parquet features metadata and checkpoints that load the Hugging Face way."""

import io
import json
import shutil

import numpy as np
import polars as pl
import pytest
from PIL import Image

from evovlm import hfio, report
from evovlm.methods.evolmm.gallery import evolmm_gallery
from evovlm.methods.mmzero import pseudolabel
from evovlm.methods.mmzero.gallery import mmzero_gallery
from evovlm.methods.mmzero.rewards import MMZeroRewardConfig
from evovlm.schema import RENDERS, frame_from_rows, write_parquet
from tests.conftest import solver_samples

# ---------------------------------------------------------------------------------------------
# Pseudo-label accuracy


REFS = {"a-easy": "3", "a-hard": "10", "b-easy": "7", "b-hard": "2.5"}


def test_oracle_solver_labels_everything_right():
    table = solver_samples({k: [v] * 4 for k, v in REFS.items()}, REFS)
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
    table = solver_samples({k: ["7"] * 4 for k in REFS}, REFS)
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
    labels = pseudolabel.label_table(solver_samples(answers, REFS), MMZeroRewardConfig())
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


def test_one_question_pictures_pass_the_filter_on_their_one_agreement():
    # eval.see_items' pictures ask one question each (kind shape, colour, ...), no easy/hard
    # pair: the filter (easy >= 0.5, hard in [0.25, 0.75]) reads the one agreement as both.
    # They used to count as agreement 0.0, so none was ever kept.
    refs = {"p1-colour": "red", "p2-colour": "red", "p3-shape": "circle", "q-easy": "3"}
    answers = {
        "p1-colour": ["red", "red", "blue", "green"],  # 0.5: kept, right
        "p2-colour": ["blue", "blue", "blue", "red"],  # 0.75: kept, wrong
        "p3-shape": ["circle"] * 4,  # 1.0: above the hard band, dropped
        "q-easy": ["3"] * 4,  # an easy question without its hard one: dropped, as before
    }
    labels = pseudolabel.label_table(solver_samples(answers, refs), MMZeroRewardConfig())
    kept = {r["item_id"]: r["in_band"] for r in labels.to_dicts()}
    assert kept == {"p1-colour": True, "p2-colour": True, "p3-shape": False, "q-easy": False}
    out = pseudolabel.summarize(labels)
    assert out["filter"]["kept"] == 2 and out["filter"]["kept_correct"] == 1
    assert out["filter"]["dropped_correct"] == 2
    assert out["by_kind"]["colour"]["n"] == 2 and out["by_kind"]["shape"]["correct"] == 1
    assert out["by_kind"]["easy"]["n"] == 1 and out["by_kind"]["hard"]["n"] == 0


def test_question_without_a_valid_answer_has_no_label_and_is_wrong():
    answers = {"a-easy": [None] * 4, "a-hard": ["10"] * 4}
    out = pseudolabel.summarize(pseudolabel.label_table(solver_samples(answers, REFS)))
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
    labels = pseudolabel.summarize(pseudolabel.label_table(solver_samples(answers, REFS)))
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


def three_policies(correct: list[int], low: list[float], high: list[float]) -> pl.DataFrame:
    """Evaluation accuracy of the base policy and two rounds on 64 procedural items."""
    return pl.DataFrame(
        {
            "policy": ["base", "round_1", "round_2"],
            "benchmark": ["procedural"] * 3,
            "n": [64] * 3,
            "correct": correct,
            "accuracy": [c / 64 for c in correct],
            "ci95_low": low,
            "ci95_high": high,
            "boxed_rate": [1.0] * 3,
        }
    )


def test_summary_has_one_row_per_round_with_every_rate_reward_and_eval(tmp_path):
    accuracy = three_policies([10, 16, 20], [0.1] * 3, [0.4] * 3)
    labels = pseudolabel.summarize(
        pseudolabel.label_table(solver_samples({k: [v] * 4 for k, v in REFS.items()}, REFS))
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
    page = mmzero_gallery(1, proposals, programs, renders, answers, rewards)
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
    page = evolmm_gallery(1, images, questions, answers, rewards)
    assert page.count("data:image/png;base64,") == 1
    for text in ("charts/a.png", "How many bars?", "0.625", "0.500", "0.250", "1 of 1 images"):
        assert text in page, text


# ---------------------------------------------------------------------------------------------
# Error bars, axes that fit, thumbnails that Chromium shows, the landing page


def _figure_of(plot, monkeypatch, *args):
    """Run ``plot`` and keep its matplotlib figure (report._save closes it)."""
    kept = {}
    real = report._save

    def keep(fig, path):
        kept["fig"] = fig
        real(fig, path)

    monkeypatch.setattr(report, "_save", keep)
    plot(*args)
    return kept["fig"]


def evolmm_metrics(r: int) -> dict:
    rates = {"answer_rate": 0.7, "mean_entropy": 1.57, "entropy_band_share": 0.4}
    counts = {"answer_rate": 115, "mean_entropy": 23, "entropy_band_share": 23}
    se = {"answer_rate": 0.043, "mean_entropy": 0.09, "entropy_band_share": 0.10}
    return {"round": r, "rates": rates, "rate_counts": counts, "rate_se": se, "rewards": {}}


def test_rate_plots_have_standard_error_bars_and_fit_evolmm_entropy(tmp_path, monkeypatch):
    from matplotlib.container import ErrorbarContainer

    m = evolmm_metrics(1)
    fig = _figure_of(report.plot_rates, monkeypatch, m, tmp_path / "rates.png")
    ax = fig.axes[0]
    errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(errorbars) == 1  # yerr drawn
    segments = errorbars[0].lines[2][0].get_segments()
    assert [s[1][1] - s[0][1] for s in segments] == pytest.approx([0.086, 0.18, 0.2])
    assert ax.get_ylim()[1] >= 1.57 + 0.09  # entropy (nats) and its bar fit
    fig = _figure_of(
        report.plot_rounds, monkeypatch, {1: m, 2: evolmm_metrics(2)}, tmp_path / "rounds.png"
    )
    rates_ax = fig.axes[0]
    assert sum(isinstance(c, ErrorbarContainer) for c in rates_ax.containers) == 3
    assert rates_ax.get_ylim()[1] >= 1.57 + 0.09


def photo(i: int, side: tuple[int, int] = (1280, 960)) -> bytes:
    """A photo-like JPEG (gradients and sensor noise) the size a camera folder holds."""
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0 : side[1], 0 : side[0]]
    base = np.stack([(x * (i + 1)) % 256, (y * 2 + i * 40) % 256, ((x + y) // 3) % 256], -1)
    pixels = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def photo_gallery(n: int = 8) -> str:
    ids = [f"img{i}" for i in range(n)]
    images = pl.DataFrame(
        {
            "image_id": ids,
            "source": [f"photos/{i}.jpg" for i in ids],
            "image": [{"bytes": photo(i), "path": None} for i in range(n)],
        }
    )
    questions = pl.DataFrame(
        {
            "question_id": [f"{i}-q0" for i in ids],
            "image_id": ids,
            "sample_index": [0] * n,
            "parse_ok": [True] * n,
            "question": ["How many people?"] * n,
        }
    )
    answers = pl.DataFrame(
        {
            "answer_id": [f"{i}-q0-a0" for i in ids],
            "question_id": [f"{i}-q0" for i in ids],
            "sample_index": [0] * n,
            "answer": ["3"] * n,
        }
    )
    return evolmm_gallery(1, images, questions, answers, {}, k=n)


def data_url(page: str) -> str:
    """The gallery as Snakemake's report embeds it (snakemake.report.common.data_uri_from_file)."""
    import base64

    encoded = base64.b64encode(page.encode()).decode()
    return f"data:text/html;charset=utf8;filename=gallery.html;base64,{encoded}"


CHROMIUM_URL_LIMIT = 2 * 1024 * 1024  # url::kMaxURLChars: Chromium opens no longer URL


def test_gallery_images_are_thumbnails_within_chromiums_url_limit():
    import base64
    import re

    page = photo_gallery()
    assert len(data_url(page)) < CHROMIUM_URL_LIMIT / 4
    sources = re.findall(r"src='data:(image/(?:png|jpeg));base64,([^']+)'", page)
    assert len(sources) == 8
    for _, encoded in sources:
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        assert max(image.size) == report.THUMBNAIL  # 1280x960 shrunk to 256x192


def test_line_art_thumbnail_stays_png_and_small_images_are_not_enlarged():
    mime, data = report.thumbnail(png())
    assert mime == "image/png"
    assert Image.open(io.BytesIO(data)).size == (16, 16)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/bootstrap.sh installs it)"
)


def chromium(*args: str) -> str:
    import subprocess

    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc.stdout


def iframe_ink(url: str, folder) -> float:
    """Share of non-white pixels of ``url`` shown in an iframe, as the report's content view
    shows a result (snakemake/report/html_reporter/template/components/content.js)."""
    wrapper, shot = folder / "iframe.html", folder / "iframe.png"
    wrapper.write_text(
        f"<html><body style='margin:0'><iframe src='{url}' width=1000 height=800 "
        "style='border:0'></iframe></body></html>"
    )
    chromium("--window-size=1000,800", f"--screenshot={shot}", wrapper.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    return float((pixels < 200).any(axis=2).mean())


def decoded_widths(page: str, folder) -> list[int]:
    """naturalWidth of every <img> of ``page`` after Chromium loaded it (0 = not decoded)."""
    import json
    import re

    script = (
        "<script>window.addEventListener('load', () => { const p = document.createElement('pre');"
        " p.id = 'decoded'; p.textContent = JSON.stringify([...document.images].map("
        "i => i.complete ? i.naturalWidth : 0)); document.body.appendChild(p); });</script>"
    )
    path = folder / "page.html"
    path.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", path.as_uri())
    found = re.search(r'<pre id="decoded">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1))


def report_galleries(page: str) -> dict[str, str]:
    """Each gallery's data URL in a Snakemake report.html (its JSON of results)."""
    import re

    out = {}
    for found in re.finditer(r'"(results/report/round_\d+/gallery\.html)": \{', page):
        url = re.compile(r'"data_uri": "(data:[^"]+)"').search(page, found.end())
        out[found.group(1)] = url.group(1)
    return out


def assert_galleries_show(report_html, folder) -> None:
    """Every gallery of a report: within Chromium's URL limit, visible in the report's iframe,
    and every image decoded."""
    import base64

    galleries = report_galleries(report_html.read_text())
    assert galleries
    for name, url in galleries.items():
        assert len(url) < CHROMIUM_URL_LIMIT, name
        page = base64.b64decode(url.split("base64,", 1)[1]).decode()
        widths = decoded_widths(page, folder)
        assert widths and all(w > 0 for w in widths), (name, widths)
        assert iframe_ink(url, folder) > 0.01, name  # a blank frame has none


@needs_chromium
def test_photo_gallery_shows_in_chromium_as_the_report_embeds_it(tmp_path):
    page = photo_gallery()
    widths = decoded_widths(page, tmp_path)
    assert widths == [report.THUMBNAIL] * 8
    assert iframe_ink(data_url(page), tmp_path) > 0.01  # images and text, not a blank frame


def labels_summary(kept: int, kept_correct: int, agreement_band: str) -> dict:
    bands = {b: {"n": 0} for b in ("0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0")}
    bands[agreement_band] = {"n": 100}
    return {
        "overall": {"n": 100, "accuracy": 0.5},
        "by_band": bands,
        "filter": {
            "kept": kept,
            "kept_correct": kept_correct,
            "kept_wrong": kept - kept_correct,
            "kept_accuracy": kept_correct / kept if kept else None,
        },
    }


def test_collapse_warning_when_agreement_rises_and_kept_labels_get_worse():
    summaries = {
        1: labels_summary(80, 60, "0.4-0.6"),
        2: labels_summary(80, 30, "0.8-1.0"),  # more agreement, kept accuracy 0.75 -> 0.375
        3: labels_summary(80, 70, "0.8-1.0"),  # agreement flat, accuracy back up
    }
    first, second = report.collapse_check(summaries)
    assert first["warning"] and first["beyond_noise"]
    assert first["agreement"] == pytest.approx([0.5, 0.9])
    assert first["kept_accuracy"] == pytest.approx([0.75, 0.375])
    assert second["warning"] is False


def test_landing_page_holds_eval_rates_with_se_labels_collapse_and_config():
    accuracy = three_policies([3, 4, 1], [0.016, 0.025, 0.003], [0.129, 0.150, 0.083])
    metrics = {
        r: {**metrics_of(r), "rate_se": {"parse_rate": 0.028}, "rate_counts": {"parse_rate": 320}}
        for r in (1, 2)
    }
    summaries = {1: labels_summary(80, 60, "0.4-0.6"), 2: labels_summary(80, 30, "0.8-1.0")}
    config = {"method": "mmzero", "model": {"base": "embedded"}, "train": {"learning_rate": 3e-4}}
    page = report.overview_html(config, metrics, accuracy, summaries)
    for text in (
        "1/64",
        "[0.003, 0.083]",  # Wilson interval of round 2
        "-0.031",  # round 2 vs base
        "the 95% intervals overlap",
        "Paired test",
        "not computed",
        "0.600 ± 0.028",  # round 1 parse rate with its SE
        "(n=320)",
        "0.750 ± 0.048",  # kept labels' accuracy with its SE
        "collapse warning (beyond 2 SE)",
        "learning_rate: 0.0003",  # the config
    ):
        assert text in page, text
    evolmm = report.overview_html({"method": "evolmm"}, {1: evolmm_metrics(1)})
    assert "Pseudo-label accuracy and the collapse warning: not computed" in evolmm
    assert "Evaluation is off" in evolmm


def test_pseudolabels_check_the_simple_pictures_too():
    """With ``eval.see_items`` the check labels the simple pictures beside the built-in items;
    a picture has one question, so the mid-band filter (an easy and a hard one) never keeps it."""
    from test_evaluate import RecordedEngine

    from evovlm.evaluate import EvalConfig, build_benchmark

    bench = build_benchmark(EvalConfig(builtin_items=1, see_items=1, seed=5))
    replies = {
        q: f"<think>t</think>\n\\boxed{{{a}}}"
        for q, a in bench.select("question", "answer").iter_rows()
    }
    samples = pseudolabel.sample_labels(
        RecordedEngine(replies), bench, round_=1, m=1, sampling={}, seed=0
    )
    assert set(samples["item_id"]) == set(bench["item_id"])
    labels = pseudolabel.label_table(samples)
    pictures = labels.filter(pl.col("item_id").str.starts_with("see-"))
    assert pictures.height == 5 and pictures["correct"].all()
    assert not pictures["in_band"].any()
