"""Evaluation: benchmark building and loading, grading of predictions, intervals, a real run."""

import io
import json
import re

import polars as pl
import pytest
from PIL import Image

from evovlm import synth
from evovlm.config import ConfigError, load_schema
from evovlm.engines import RequestOutput, Sample
from evovlm.evaluate import (
    BenchmarkError,
    EvalConfig,
    accuracy_table,
    build_benchmark,
    builtin_benchmark,
    evaluate,
    is_correct,
    load_benchmark,
    question_text,
    wilson_interval,
)
from evovlm.experiment import validate_config
from evovlm.schema import BENCHMARK, EVAL, read_parquet, write_parquet


def _png(color="red", size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


class RecordedEngine:
    """Replies recorded per question (a stand-in for the model in unit tests)."""

    def __init__(self, replies: dict[str, str]):
        self.replies = replies
        self.requests = []

    def generate(self, requests, progress=False):
        self.requests += requests
        out = []
        for request in requests:
            text = request.messages[-1]["content"][-1]["text"]
            reply = next(r for q, r in self.replies.items() if text.startswith(q))
            out.append(RequestOutput(prompt_ids=[1], samples=[Sample(reply, [2], [-0.1], "stop")]))
        return out


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (5, 10, 0.2366, 0.7634), (1, 1, 0.2065, 1.0)],
)
def test_wilson_interval_known_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_of_nothing():
    assert wilson_interval(0, 0) == (None, None)


@pytest.mark.parametrize(
    ("prediction", "answer", "choices", "expected"),
    [
        ("86", "86", None, True),
        ("86.0", "86", None, True),
        ("1,000", "1000", None, True),
        ("85", "86", None, False),
        (None, "86", None, False),
        ("B", "B", ["3", "5"], True),
        ("B", "5", ["3", "5"], True),  # letter whose option is the answer
        ("(B)", "5", ["3", "5"], True),
        ("5", "B", ["3", "5"], True),  # option text for an answer given as a letter
        ("A", "5", ["3", "5"], False),
        ("C", "5", ["3", "5"], False),  # a letter past the options
        ("3", "B", ["3", "5"], False),
    ],
)
def test_is_correct(prediction, answer, choices, expected):
    assert is_correct(prediction, answer, choices) is expected


def test_question_text_lists_choices_with_letters():
    text = question_text("Which is larger?", ["3", "5"])
    assert text.splitlines() == [
        "Which is larger?",
        "Choices:",
        "A. 3",
        "B. 5",
        "Answer with the letter of the correct choice.",
    ]
    assert question_text("Plain?", None) == "Plain?"


def test_builtin_benchmark_two_questions_per_item_with_exact_answers():
    frame = builtin_benchmark(7, seed=1000)
    items = synth.generate_items(7, seed=1000)
    assert frame.height == 14
    assert frame["benchmark"].unique().to_list() == ["procedural"]
    expected = [(it.easy_question, it.easy_answer) for it in items] + [
        (it.hard_question, it.hard_answer) for it in items
    ]
    assert sorted(zip(frame["question"], frame["answer"], strict=True)) == sorted(expected)
    for image in frame["image"]:
        assert Image.open(io.BytesIO(image["bytes"])).format == "PNG"


def test_builtin_benchmark_is_reproducible_and_not_the_warmup_items():
    a, b = builtin_benchmark(4, seed=1000), builtin_benchmark(4, seed=1000)
    assert a.equals(b)
    # Captions carry every drawn label and value: the evaluation pictures are a fresh draw, not
    # the warm-up's. Kinds with few distinct pictures (a rectangle's two sides) can recur.
    warmup_captions = {it.caption for it in synth.generate_items(192, seed=0)}
    eval_items = synth.generate_items(32, seed=1000)
    assert sum(it.caption in warmup_captions for it in eval_items) < len(eval_items) // 4


def test_load_parquet_benchmark_with_image_structs_and_choices(tmp_path):
    path = tmp_path / "chartqa.parquet"
    pl.DataFrame(
        {
            "id": ["q1", "q2"],
            "question": ["What is the top value?", "Which bar is red?"],
            "answer": ["42", "B"],
            "choices": [None, ["blue", "red"]],
            "image": [{"bytes": _png(), "path": None}, {"bytes": _png("blue"), "path": None}],
        }
    ).write_parquet(path)
    frame = load_benchmark("chartqa", path)
    assert frame["item_id"].to_list() == ["chartqa-q1", "chartqa-q2"]
    assert frame["choices"].to_list() == [None, ["blue", "red"]]
    assert Image.open(io.BytesIO(frame["image"][0]["bytes"])).size == (40, 30)


def test_load_jsonl_benchmark_with_relative_image_paths(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img/a.png").write_bytes(_png())
    path = tmp_path / "bench.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"question": f"Q{i}?", "answer": str(i), "images": ["img/a.png"]})
            for i in range(3)
        )
    )
    frame = load_benchmark("local", path, max_items=2)
    assert frame["item_id"].to_list() == ["local-0", "local-1"]
    assert frame["answer"].to_list() == ["0", "1"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"question": "Q?", "image": "a.png"}], "lacks column(s) ['answer']"),
        ([{"question": "Q?", "answer": "1"}], "lacks column(s) ['image or images']"),
        ([{"question": "Q?", "answer": "1", "image": "missing.png"}], "does not exist"),
        ([{"question": "Q?", "answer": "1", "image": "bad.png"}], "does not decode"),
    ],
)
def test_bad_benchmark_files_are_clear_errors(tmp_path, rows, message):
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(BenchmarkError, match=re.escape(message)):
        load_benchmark("b", path)


def test_benchmark_paths_are_checked_with_the_config(tmp_path):
    import yaml

    from tests.conftest import REPO

    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["eval"] = {"benchmarks": [{"name": "x", "path": str(tmp_path / "nope.parquet")}]}
    with pytest.raises(ConfigError, match=r"^config key 'eval.benchmarks.0.path': file "):
        validate_config(config, load_schema())
    config["eval"] = {"benchmarks": [{"name": "procedural", "path": __file__}]}
    with pytest.raises(ConfigError, match="eval.benchmarks.0.name"):
        validate_config(config, load_schema())


def test_evaluate_with_recorded_replies_grades_the_boxed_answer():
    items = build_benchmark(EvalConfig(builtin_items=2, seed=5))
    replies = {
        items["question"][0]: "<think>Read it.</think>\n\\boxed{" + items["answer"][0] + "}",
        items["question"][1]: "<think>Hmm.</think>\n\\boxed{not the answer}",
        items["question"][2]: "I cannot tell.",
        items["question"][3]: "\\boxed{" + items["answer"][3] + "}",
    }
    engine = RecordedEngine(replies)
    frame = evaluate(engine, items, "base", EvalConfig(), seed=0)
    assert frame["correct"].to_list() == [True, False, False, True]
    assert frame["prediction"].to_list()[2] is None
    assert frame["format_ok"].to_list() == [True, True, False, False]
    assert all(r.sampling.temperature == 0.0 and r.sampling.n == 1 for r in engine.requests)
    assert all(len(r.images) == 1 for r in engine.requests)


def test_evolmm_policies_are_asked_and_graded_in_their_own_format():
    """An EvoLMM Solver answers in <answer> tags: asked with the boxed prompt and graded on
    \\boxed{} it would score 0 whatever it knows (issue 14, item 9)."""
    items = build_benchmark(EvalConfig(builtin_items=2, seed=5))
    replies = {
        items["question"][0]: "It is clear. <answer>" + items["answer"][0] + "</answer>",
        items["question"][1]: "<answer>not the answer</answer>",
        items["question"][2]: "I think\n" + items["answer"][2],  # untagged: the last line
        # another method's format: EvoLMM reads the last line, and grade() sees through \\boxed
        items["question"][3]: "\\boxed{" + items["answer"][3] + "}",
    }
    engine = RecordedEngine(replies)
    frame = evaluate(engine, items, "round_1", EvalConfig(), seed=0, method="evolmm")
    assert frame["correct"].to_list() == [True, False, True, True]
    assert frame["format_ok"].to_list() == [True, True, False, False]
    prompt = engine.requests[0].messages[-1]["content"][-1]["text"]
    assert "<answer>" in prompt and "boxed" not in prompt
    mmzero = RecordedEngine(replies)
    boxed = evaluate(mmzero, items, "round_1", EvalConfig(), seed=0, method="mmzero")
    assert boxed["correct"].to_list() == [False, False, False, True]
    assert "boxed" in mmzero.requests[0].messages[-1]["content"][-1]["text"]


def test_accuracy_table_orders_policies_and_counts(tmp_path):
    rows = [
        ("round_1", "procedural", True, "1"),
        ("base", "procedural", False, None),
        ("base", "procedural", True, "2"),
        ("round_1", "procedural", True, "3"),
    ]
    results = pl.DataFrame(
        [
            {
                "policy": p,
                "benchmark": b,
                "item_id": str(i),
                "question": "q",
                "reference": "r",
                "completion": "c",
                "prediction": pred,
                "format_ok": False,
                "correct": c,
            }
            for i, (p, b, c, pred) in enumerate(rows)
        ]
    )
    write_parquet(results, tmp_path / "e.parquet", EVAL)  # the declared schema fits
    table = accuracy_table(read_parquet(tmp_path / "e.parquet", EVAL), ["base", "round_1"])
    assert table["policy"].to_list() == ["base", "round_1"]
    assert table["accuracy"].to_list() == [0.5, 1.0]
    assert table["boxed_rate"].to_list() == [0.5, 1.0]
    assert table["n"].to_list() == [2, 2]


def test_evaluate_runs_the_real_tiny_model(tiny_model_dir, tmp_path):
    from evovlm.stages import engine_from_config

    items = build_benchmark(EvalConfig(builtin_items=2, seed=1000))
    write_parquet(items, tmp_path / "bench.parquet", BENCHMARK)
    engine = engine_from_config(str(tiny_model_dir), {"backend": "hf"}, "float32")
    cfg = EvalConfig(max_tokens=8)
    first = evaluate(engine, read_parquet(tmp_path / "bench.parquet", BENCHMARK), "base", cfg)
    again = evaluate(engine, items, "base", cfg)
    assert first.height == items.height == 4
    assert first["completion"].to_list() == again["completion"].to_list()  # greedy
    assert first["item_id"].to_list() == items["item_id"].to_list()
