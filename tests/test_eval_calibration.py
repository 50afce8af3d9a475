"""Evaluation that can see a change (per-kind accuracy beside chance, the paired exact McNemar
test, a larger built-in benchmark) and calibration (kept against dropped labels, the collapse
warning and ``stop_on_collapse``), issue 30."""

import io
import json
import subprocess
import sys
from types import SimpleNamespace

import polars as pl
import pytest
from PIL import Image

from evovlm import compare, report, synth
from evovlm.config import ConfigError, load_schema
from evovlm.evaluate import (
    BenchmarkError,
    EvalConfig,
    build_benchmark,
    builtin_benchmark,
    kind_accuracy_table,
    load_benchmark,
    mcnemar_exact,
    paired_table,
)
from evovlm.experiment import validate_config
from evovlm.methods.mmzero import pseudolabel
from evovlm.methods.mmzero.rewards import MMZeroRewardConfig
from evovlm.schema import EVAL, read_parquet, write_parquet
from tests.conftest import REPO, solver_samples

# ---------------------------------------------------------------------------------------------
# The exact McNemar test


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        # two-sided: 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096 = 158 / 4096
        (10, 2, 158 / 4096),
        (2, 10, 158 / 4096),  # symmetric
        (5, 0, 2 / 32),  # 2 * (1/2)^5
        (3, 3, 1.0),
        (0, 0, 1.0),  # no discordant pair: no evidence
        # 2 * P(X <= 5), X ~ Bin(25, 1/2) = 2 * (1 + 25 + 300 + 2300 + 12650 + 53130) / 2^25
        (20, 5, 2 * 68406 / 2**25),
    ],
)
def test_mcnemar_exact_matches_hand_computed_values(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-9)


def test_mcnemar_of_b10_c2_is_0_0386():
    assert round(mcnemar_exact(10, 2), 4) == 0.0386


def eval_rows(policy: str, correct: list[bool], kinds=None, chance=None, bench="procedural"):
    kinds = kinds or [None] * len(correct)
    chance = chance or [None] * len(correct)
    return [
        {
            "policy": policy,
            "benchmark": bench,
            "item_id": f"q{i}",
            "question": "q",
            "reference": "r",
            "completion": "c",
            "prediction": "p",
            "format_ok": True,
            "correct": ok,
            "kind": kind,
            "chance": ch,
        }
        for i, (ok, kind, ch) in enumerate(zip(correct, kinds, chance, strict=True))
    ]


def test_paired_table_pairs_items_by_id_and_counts_discordant_pairs(tmp_path):
    # 14 items: both right on 1, round only on 10, base only on 2, neither on 1
    base = [True] + [False] * 10 + [True] * 2 + [False]
    round_ = [True] + [True] * 10 + [False] * 2 + [False]
    rows = eval_rows("base", base) + eval_rows("round_1", round_)[::-1]  # any order
    write_parquet(pl.DataFrame(rows), tmp_path / "e.parquet", EVAL)  # the schema fits
    results = read_parquet(tmp_path / "e.parquet", EVAL)
    (row,) = paired_table(results, ["base", "round_1"]).to_dicts()
    assert (row["policy"], row["against"], row["n"]) == ("round_1", "base", 14)
    assert (row["only_policy"], row["only_against"]) == (10, 2)
    assert (row["policy_correct"], row["against_correct"]) == (11, 3)
    assert row["difference"] == pytest.approx(8 / 14)
    assert row["p"] == pytest.approx(158 / 4096)


# ---------------------------------------------------------------------------------------------
# Per-kind accuracy and chance levels


def test_kind_accuracy_beside_chance_level():
    rows = eval_rows(
        "round_1",
        [True, True, False, False, True, True, True, False],
        kinds=["shape"] * 4 + ["bar_chart"] * 2 + ["mixed"] * 2,
        chance=[0.25] * 4 + [None] * 2 + [0.5, None],
    )
    table = {r["kind"]: r for r in kind_accuracy_table(pl.DataFrame(rows), ["round_1"]).to_dicts()}
    assert table["shape"]["accuracy"] == 0.5 and table["shape"]["chance"] == 0.25
    # one-sided exact binomial: P(X >= 2), X ~ Bin(4, 1/4) = 1 - (81 + 108) / 256
    assert table["shape"]["p_above_chance"] == pytest.approx(67 / 256)
    assert table["bar_chart"]["chance"] is None  # open numeric answers: no chance level
    assert table["bar_chart"]["p_above_chance"] is None
    assert table["mixed"]["chance"] is None  # one item without a level: none for the kind


def test_builtin_items_carry_their_synth_kind():
    frame = builtin_benchmark(len(synth.KINDS), seed=1000)
    assert sorted(frame["kind"].to_list()) == sorted(list(synth.KINDS) * 2)
    assert frame["chance"].null_count() == frame.height  # numbers, percentages: open answers


def test_builtin_items_take_a_chance_level_their_generator_states(monkeypatch):
    item = synth.generate_items(1, seed=3)[0]
    stated = SimpleNamespace(**item.to_dict(), easy_chance=0.5, chance=0.2)
    monkeypatch.setattr(synth, "generate_items", lambda n, seed: [stated])
    frame = builtin_benchmark(1, seed=3)
    assert frame["chance"].to_list() == [0.5, 0.2]  # easy: its own; hard: the item's


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_local_benchmark_kind_and_chance_columns(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    rows = [
        {"question": "Q?", "answer": "A", "choices": ["x", "y", "z", "w"], "image": "a.png"},
        {"question": "Q?", "answer": "3", "image": "a.png", "kind": "count", "chance": 0.2},
        {"question": "Q?", "answer": "3", "image": "a.png", "kind": "count"},
    ]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    frame = load_benchmark("simple", path)
    assert frame["kind"].to_list() == [None, "count", "count"]
    assert frame["chance"].to_list() == [0.25, 0.2, None]
    path.write_text(json.dumps({**rows[1], "chance": 2}))
    with pytest.raises(BenchmarkError, match=r"b.jsonl row 0: chance 2 is not a number in"):
        load_benchmark("simple", path)


def test_builtin_benchmark_size_reaches_400_questions():
    """eval.builtin_items sizes the built-in benchmark: 200 items ask 400 questions."""
    frame = build_benchmark(EvalConfig.from_dict({"builtin_items": 200}))
    assert frame.height == 400 and frame["item_id"].n_unique() == 400
    counts = frame.group_by("kind").len()["len"].to_list()
    assert max(counts) - min(counts) <= 2  # the kinds take turns
    assert EvalConfig.from_dict({}).builtin_items == 32  # the default stays as it was


# ---------------------------------------------------------------------------------------------
# evovlm compare: paired test and per-kind table


def _run(folder, correct_per_policy: dict[str, list[bool]], kinds=None):
    for r in range(1, len(correct_per_policy)):
        d = folder / f"results/round_{r}"
        d.mkdir(parents=True)
        metrics = {"rates": {"parse_rate": 0.5}, "rewards": {"solver": {"mean": 0.1}}}
        (d / "metrics.json").write_text(json.dumps(metrics))
    (folder / "results/eval").mkdir(parents=True)
    accuracy = []
    for policy, correct in correct_per_policy.items():
        pl.DataFrame(eval_rows(policy, correct, kinds, [0.5] * len(correct))).write_parquet(
            folder / f"results/eval/{policy}.parquet"
        )
        k, n = sum(correct), len(correct)
        accuracy.append(
            {"policy": policy, "correct": k, "n": n, "accuracy": k / n}
            | {"ci95_low": 0.0, "ci95_high": 1.0}
        )
    pl.DataFrame(accuracy).write_parquet(folder / "results/eval/accuracy.parquet")
    return folder


def test_compare_gives_round_n_against_base_and_control_with_exact_p(tmp_path, capsys):
    kinds = ["shape"] * 7 + ["colour"] * 7
    trained = _run(
        tmp_path / "trained",
        {
            "base": [True] + [False] * 10 + [True] * 2 + [False],
            "round_1": [True] * 3 + [False] * 11,
            "round_2": [True] + [True] * 10 + [False] * 2 + [False],
        },
        kinds,
    )
    control = _run(
        tmp_path / "control",
        {"base": [False] * 14, "round_1": [False] * 14, "round_2": [True] * 2 + [False] * 12},
        kinds,
    )
    assert compare.main([str(trained), str(control)]) == 0
    out = capsys.readouterr().out
    # round 2 vs base: b = 10, c = 2 -> p = 158/4096
    assert (
        "- procedural: trained round_2 vs base: 11 vs 3 of 14 (+0.571); right only by trained "
        "round_2 10, only by base 2; p = 0.0386"
    ) in out
    # round 2 vs the control's round 2: right only by trained 10 (items 1..10), only by control
    # 1 (item 0 is right in both; item 1 right in both) -> b = 9, c = 0 -> p = 2 / 2^9
    assert "trained round_2 vs control round_2: 11 vs 2 of 14" in out
    assert f"p = {2 / 2**9:.4f}" in out
    assert "| benchmark | kind | chance | base | trained round 2 | control round 2 |" in out
    assert "| procedural | shape | 0.50 | 1/7 | 7/7 | 2/7 |" in out
    assert "| procedural | colour | 0.50 | 2/7 | 4/7 | 0/7 |" in out


def test_compare_reads_runs_made_before_items_had_kinds(tmp_path, capsys):
    run = _run(tmp_path / "old", {"base": [True, False], "round_1": [True, True]})
    for policy in ("base", "round_1"):
        path = run / f"results/eval/{policy}.parquet"
        pl.read_parquet(path).drop("kind", "chance").write_parquet(path)
    assert compare.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "old round_1 vs base: 2 vs 1 of 2" in out and "p = 1.0000" in out
    assert "| procedural | (no kind) |  | 1/2 | 2/2 |" in out


# ---------------------------------------------------------------------------------------------
# Calibration: kept against dropped labels, collapse warning, stop_on_collapse


REFS = {"a-easy": "3", "a-hard": "10", "b-easy": "7", "b-hard": "2.5"}
# Recorded Solver answers of two rounds on the same items. Round 1: image a is kept (easy 0.75,
# hard 0.5) with both labels right; image b is dropped (hard agreement 1.0) with both wrong.
# Round 2: the Solver agrees more (mean 0.6875 -> 0.9375) and the kept labels are all wrong.
ROUND_1 = {
    "a-easy": ["3", "3", "3", "1"],
    "a-hard": ["10", "10", "9", "8"],
    "b-easy": ["1", "1", "2", "4"],
    "b-hard": ["9", "9", "9", "9"],
}
ROUND_2 = {
    "a-easy": ["4", "4", "4", "4"],
    "a-hard": ["11", "11", "11", "10"],
    "b-easy": ["7", "7", "7", "7"],
    "b-hard": ["2.5", "2.5", "2.5", "2.5"],
}


def recorded_round(answers, round_):
    labels = pseudolabel.label_table(solver_samples(answers, REFS, round_), MMZeroRewardConfig())
    return {"round": round_, **pseudolabel.summarize(labels)}, labels


def test_kept_and_dropped_label_accuracy_per_round():
    first, _ = recorded_round(ROUND_1, 1)
    second, _ = recorded_round(ROUND_2, 2)
    assert first["filter"]["kept_accuracy"] == 1.0 and first["filter"]["dropped_accuracy"] == 0.0
    assert second["filter"]["kept_accuracy"] == 0.0 and second["filter"]["dropped_accuracy"] == 1.0
    assert first["mean_agreement"] == pytest.approx(0.6875)
    assert second["mean_agreement"] == pytest.approx(0.9375)


def test_collapse_warning_from_recorded_rounds_and_its_stop_line():
    (first, labels_1), (second, labels_2) = recorded_round(ROUND_1, 1), recorded_round(ROUND_2, 2)
    check = pseudolabel.collapse_since(first, labels_1, second, labels_2)
    assert check["warning"] is True
    assert check["agreement"] == pytest.approx([0.6875, 0.9375])
    assert check["kept_accuracy"] == [1.0, 0.0]
    line = pseudolabel.collapse_stop_message(check)
    assert line.startswith("error: stop_on_collapse: round 1 -> 2: ")
    assert "0.688 -> 0.938" in line and "1.000 -> 0.000" in line and "\n" not in line
    # the other way round (agreement falls, kept labels improve): no warning, no stop
    back = pseudolabel.collapse_since(second, labels_2, {**first, "round": 3}, labels_1)
    assert back["warning"] is False and pseudolabel.collapse_stop_message(back) is None


def test_round_summary_holds_dropped_accuracy_bands_and_collapse_warning():
    first, _ = recorded_round(ROUND_1, 1)
    second, _ = recorded_round(ROUND_2, 2)
    metrics = {r: {"round": r, "rates": {"parse_rate": 0.5}, "rewards": {}} for r in (1, 2)}
    frame = report.summary_rows(metrics, None, {1: first, 2: second}, method="mmzero")
    assert frame["pseudolabel_kept_accuracy"].to_list() == [1.0, 0.0]
    assert frame["pseudolabel_dropped_accuracy"].to_list() == [0.0, 1.0]
    assert frame["pseudolabel_mean_agreement"].to_list() == pytest.approx([0.6875, 0.9375])
    assert frame["pseudolabel_collapse_warning"].to_list() == [None, True]
    assert frame["pseudolabel_band_80_100_accuracy"].to_list() == pytest.approx([0.0, 2 / 3])
    assert frame["pseudolabel_band_80_100_n"].to_list() == [1, 3]
    assert frame.schema["pseudolabel_collapse_warning"] == pl.Boolean


def test_report_shows_paired_test_kinds_dropped_labels_and_collapse():
    first, labels_1 = recorded_round(ROUND_1, 1)
    second, labels_2 = recorded_round(ROUND_2, 2)
    results = pl.DataFrame(
        eval_rows("base", [True] + [False] * 10 + [True] * 2 + [False], ["shape"] * 14, [0.25] * 14)
        + eval_rows("round_2", [True] * 11 + [False] * 3, ["shape"] * 14, [0.25] * 14)
    )
    order = ["base", "round_2"]
    from evovlm.evaluate import accuracy_table

    page = report.overview_html(
        {"method": "mmzero"},
        {r: {"round": r, "rates": {}, "rewards": {}} for r in (1, 2)},
        accuracy_table(results, order),
        {1: first, 2: second},
        {1: labels_1, 2: labels_2},
        paired=paired_table(results, order).to_dicts(),
        by_kind=kind_accuracy_table(results, order),
    )
    for text in (
        "exact McNemar",
        "<td>round_2</td><td>base</td><td>14</td><td>10</td><td>2</td><td>+0.571</td><td>0.0386",
        "<td>shape</td><td>0.25</td><td>3/14 = 0.214</td><td>11/14 = 0.786</td>",
        "dropped accuracy",
        "collapse warning",
        "agreement 0.8-1.0",
    ):
        assert text in page, text


# ---------------------------------------------------------------------------------------------
# stop_on_collapse: the config key and where the workflow stops


def test_stop_on_collapse_is_a_boolean_config_key_default_false():
    import yaml

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert validate_config(dict(config), load_schema()).get("stop_on_collapse") is False
    with pytest.raises(ConfigError, match="stop_on_collapse"):
        validate_config({**config, "stop_on_collapse": "maybe"}, load_schema())


def _planned_rules(*config: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-n", "-F", "--cores", "1", "--quiet", "rules"]
    cmd += ["--config", "rounds=2", *config, "--", "results/round_2/checkpoint/solver/config.json"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_stop_on_collapse_makes_the_next_training_wait_for_the_check():
    """With the key on, round 2's training needs round 2's pseudo-label check (which fails the
    run on a collapse warning); off (the default), training does not wait for it."""
    assert "pseudolabel" not in _planned_rules()
    assert "pseudolabel" in _planned_rules("stop_on_collapse=true")
