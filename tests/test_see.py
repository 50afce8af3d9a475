"""Simple pictures (issue 30, "a base that sees"): answers read back from the drawing itself,
chance levels, varied phrasing, determinism, the opt-in benchmark and warm-up examples."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from evovlm import parse, synth

SVG_NS = "{http://www.w3.org/2000/svg}"
N = 400  # 80 per kind


@pytest.fixture(scope="module")
def items() -> list[synth.SeeItem]:
    return synth.generate_see_items(N, seed=0)


def _read_drawing(svg: str) -> dict:
    """What the SVG draws, read from its elements alone (not from the item's data): the shapes
    (tag, colour, extent, centre x) and the bars (colour, height, label) with the axis unit."""
    root = ET.fromstring(svg)
    by_hex = {v: k for k, v in synth.SEE_COLOURS.items()}
    shapes, bars, ticks, labels = [], [], {}, []
    elements = list(root)[1:]  # the first element is the white background
    for el in elements:
        tag = el.tag.removeprefix(SVG_NS)
        fill = el.get("fill")
        if tag == "circle":
            r = float(el.get("r"))
            shapes.append(("circle", by_hex[fill], 2 * r, float(el.get("cx"))))
        elif tag == "polygon":
            pts = [tuple(map(float, p.split(","))) for p in el.get("points").split()]
            xs = [x for x, _ in pts]
            shapes.append(("triangle", by_hex[fill], max(xs) - min(xs), sum(xs) / 3))
        elif tag == "rect" and fill in by_hex:
            w, h = float(el.get("width")), float(el.get("height"))
            x, y = float(el.get("x")), float(el.get("y"))
            if w == h and not any(e.tag.endswith("line") for e in elements):
                shapes.append(("square", by_hex[fill], w, x + w / 2))
            else:
                bars.append({"colour": by_hex[fill], "height": h, "x": x + w / 2, "top": y})
        elif tag == "text" and re.fullmatch(r"\d", el.text or ""):
            ticks[int(el.text)] = float(el.get("y"))
        elif tag == "text":
            labels.append((float(el.get("x")), el.text))
    unit = (ticks[0] - ticks[synth.SEE_MAX_BAR]) / synth.SEE_MAX_BAR if ticks else None
    for bar in bars:
        bar["value"] = round(bar["height"] / unit)
        bar["label"] = min(labels, key=lambda lab: abs(lab[0] - bar["x"]))[1]
    return {"shapes": shapes, "bars": bars}


def _answer_from_drawing(item: synth.SeeItem) -> str:
    drawn = _read_drawing(item.svg)
    shapes, bars = drawn["shapes"], drawn["bars"]
    q = item.question
    if item.kind == "shape":
        (shape,) = shapes
        return shape[0]
    if item.kind == "colour":
        (shape,) = shapes
        return shape[1]
    if item.kind == "count":
        if m := re.search(r"How many (circle|square|triangle)s", q):
            assert {s[0] for s in shapes} == {m.group(1)}
        return str(len(shapes))
    if item.kind == "compare":
        things = (
            [(s[3], s[2], s[1]) for s in shapes]
            if shapes
            else [(b["x"], b["height"], b["colour"]) for b in bars]
        )
        assert len(things) == 2
        left, right = sorted(things)
        winner = left if left[1] > right[1] else right
        assert left[1] != right[1]
        if "left" in q:
            return "left" if winner is left else "right"
        assert left[2] in q and right[2] in q
        return winner[2]
    if item.kind == "bar_value":
        m = re.search(r"[Bb]ar ([ABC])\b", q)
        if m is None:  # "the bar": only where there is one
            (bar,) = bars
            return str(bar["value"])
        return str(next(b["value"] for b in bars if b["label"] == m.group(1)))
    raise AssertionError(item.kind)


def test_answers_match_the_drawing(items):
    for item in items:
        assert item.answer == _answer_from_drawing(item), (item.item_id, item.question)


def test_kinds_chance_and_answer_sets(items):
    """Each kind's answers cover its answer set, and chance is 1 / the set's size (compare: two
    options named in every question)."""
    answers = {
        "shape": set(synth.SEE_SHAPES),
        "colour": set(synth.SEE_COLOURS),
        "count": {str(i) for i in range(1, synth.SEE_MAX_COUNT + 1)},
        "bar_value": {str(i) for i in range(1, synth.SEE_MAX_BAR + 1)},
    }
    by_kind = {k: [it for it in items if it.kind == k] for k in synth.SEE_KINDS}
    assert all(len(v) == N // len(synth.SEE_KINDS) for v in by_kind.values())
    for kind, options in answers.items():
        seen = {it.answer for it in by_kind[kind]}
        assert seen == options, kind
        assert synth.SEE_CHANCE[kind] == pytest.approx(1 / len(options))
        assert all(it.chance == synth.SEE_CHANCE[kind] for it in by_kind[kind])
    assert synth.SEE_CHANCE["compare"] == 0.5
    # No kind is answered by one majority answer (a constant guess stays near chance).
    for kind in synth.SEE_KINDS:
        top = Counter(it.answer for it in by_kind[kind]).most_common(1)[0][1]
        assert top / len(by_kind[kind]) < 2.5 * synth.SEE_CHANCE[kind], kind


def test_phrasing_varies_per_kind(items):
    for kind in synth.SEE_KINDS:
        # Questions with their labels and colours masked: the templates in use.
        templates = {
            re.sub(r"\b(" + "|".join(synth.SEE_COLOURS) + r"|[ABC])\b", "_", it.question)
            for it in items
            if it.kind == kind
        }
        assert len(templates) >= 4, (kind, templates)


def test_deterministic_prefix_stable_and_seeds_differ():
    a = synth.generate_see_items(20, seed=5)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in synth.generate_see_items(20, seed=5)]
    assert [x.to_dict() for x in a[:7]] == [x.to_dict() for x in synth.generate_see_items(7, 5)]
    b = synth.generate_see_items(20, seed=6)
    assert sum(x.svg != y.svg for x, y in zip(a, b, strict=True)) >= 15
    assert a[3].item_id == "see-5-00003-compare"
    assert synth.see_kind(a[4].item_id) == "bar_value"
    assert synth.see_kind("synth-5-00003-table-easy") is None
    assert [x.kind for x in synth.generate_see_items(4, 0, kinds=["count"])] == ["count"] * 4
    with pytest.raises(ValueError, match="unknown see kinds"):
        synth.generate_see_items(2, 0, kinds=["texture"])


def test_held_out_items_are_other_items():
    """The evaluation's seed draws other pictures than the warm-up's (kinds with few possible
    pictures, one bar of five values, can recur; most do not)."""
    train = {(it.svg, it.question) for it in synth.generate_see_items(2000, seed=0)}
    held = synth.generate_see_items(400, seed=1000)
    assert sum((it.svg, it.question) in train for it in held) < len(held) // 10


def test_items_render_in_the_sandbox(items):
    from PIL import Image

    from evovlm.render import RenderConfig, render_svg

    for item in items[:10]:
        result = render_svg(item.svg, RenderConfig(width=112, height=112))
        assert result.ok, (item.item_id, result.error)
        image = Image.open(io.BytesIO(result.png)).convert("RGB")
        assert image.size == (112, 112)
        assert len(image.getcolors(maxcolors=1 << 16)) > 2  # not blank


def test_benchmark_is_opt_in_with_80_per_kind():
    from evovlm.evaluate import EvalConfig, build_benchmark

    default = build_benchmark(EvalConfig.from_dict({"builtin_items": 1}))
    assert default["benchmark"].unique().to_list() == ["procedural"]
    frame = build_benchmark(EvalConfig.from_dict({"builtin_items": 1, "see_items": 80}))
    see = frame.filter(frame["benchmark"] == "see")
    assert see.height == 400
    assert Counter(synth.see_kind(i) for i in see["item_id"]) == {k: 80 for k in synth.SEE_KINDS}
    # each row's kind and chance reach the per-kind accuracy table
    assert see["kind"].to_list() == [synth.see_kind(i) for i in see["item_id"]]
    assert see["chance"].null_count() == 0 and see["chance"].max() <= 0.5
    first = synth.make_see_item(1000, 0, "shape")  # eval.seed's items, not the warm-up's
    assert (see["question"][0], see["answer"][0]) == (first.question, first.answer)


@pytest.mark.parametrize("role", ["solver", "evolmm_solver"])
def test_warmup_examples_speak_the_role_format(role):
    from evovlm import methods
    from evovlm.warmup import build_see_examples

    method = "mmzero" if role == "solver" else "evolmm"
    examples = build_see_examples(10, seed=0, solver=methods.get(method).solver)
    items = synth.generate_see_items(10, seed=0)
    for ex, item in zip(examples, items, strict=True):
        text = ex["completion"][0]["content"][0]["text"]
        if role == "solver":
            prediction, ok = parse.parse_solver(text)
        else:
            prediction, ok = parse.parse_answer_tag(text), True
        assert ok and prediction == item.answer
        prompt = str(ex["prompt"])
        assert item.question in prompt and ex["kind"] == item.kind
        assert len(ex["images"]) == 1


@pytest.mark.parametrize("whole_reply", [0.0, 0.5, 1.0])
def test_pictures_put_their_fixed_reply_in_the_prompt(tiny_model_dir, whole_reply):
    """A picture's completion is its answer and the reply's end, but for the share
    ``whole_reply``; a format example's completion stays the whole reply; prompt + completion
    is always the whole templated conversation."""
    from evovlm import methods
    from evovlm.modeling import load_processor
    from evovlm.warmup import as_text, build_examples, build_see_examples

    processor = load_processor(tiny_model_dir)
    see = build_see_examples(40, seed=0, solver=methods.get("mmzero").solver)
    fmt = build_examples(1, seed=0, roles=("solver",))
    texts = as_text(see + fmt, processor, whole_reply, seed=0)
    whole = 0
    for ex, text in zip(see + fmt, texts, strict=True):
        full = processor.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=False)
        assert text["prompt"] + text["completion"] == full
        assert text["prompt"].count("<|image_pad|>") == len(ex["images"]) == 1
        reply = ex["completion"][0]["content"][0]["text"]
        if text["completion"].startswith(reply):
            whole += "answer" in ex
        else:
            assert "answer" in ex and text["completion"].startswith(ex["answer"] + "}")
            assert reply.split(ex["answer"])[0] in text["prompt"]
    if whole_reply in (0.0, 1.0):
        assert whole == 40 * whole_reply
    else:
        assert 10 <= whole <= 30


def test_warmup_config_see_is_off_by_default_and_checked():
    from evovlm.config import ConfigError
    from evovlm.experiment import validate_config
    from evovlm.warmup import WarmupConfig

    cfg = WarmupConfig()
    assert cfg.see == {} and cfg.lr_scheduler_type == "linear"
    full = validate_config({"warmup": {"see": {"items": 3}}})
    assert full["warmup"]["see"] == {
        "items": 3,
        "kinds": [],
        "learning_rate": 1e-3,
        "batch_size": 16,
        "replay": 1.0,
        "proposals": 0,
        "whole_reply": 0.25,
    }
    assert full["eval"]["see_items"] == 0
    with pytest.raises(ConfigError, match="warmup.see.kinds"):
        validate_config({"warmup": {"see": {"kinds": ["texture"]}}})


def test_config_overlay_is_valid_and_lists_the_see_topics():
    """config/see.yaml merged over config/config.yaml (as Snakemake merges --configfile files)."""
    from pathlib import Path

    import yaml
    from snakemake.utils import update_config

    from evovlm.experiment import validate_config

    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    overlay = yaml.safe_load((repo / "config" / "see.yaml").read_text())
    update_config(config, overlay)
    config = validate_config(config)
    assert config["mmzero"]["seed_topics"] == list(synth.SEE_TOPICS)
    assert config["eval"]["see_items"] >= 80
    assert config["warmup"]["items"] == 192  # the format items stay


def test_real_warmup_teaches_simple_pictures_after_the_formats(tiny_model_dir, tmp_path):
    """A short real warm-up (TRL SFT): the format phase, then the picture phase with the
    format examples replayed, one pass."""
    import json

    from evovlm import methods
    from evovlm.modeling import load_model
    from evovlm.warmup import WarmupConfig, warmup_model

    cfg = WarmupConfig.from_dict(
        {
            "items": 1,
            "epochs": 2.0,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "lr_scheduler_type": "cosine",
            "see": {"items": 10, "kinds": ["colour", "count"], "batch_size": 4},
        }
    )
    summary = warmup_model(tiny_model_dir, tmp_path / "warm", cfg)
    # The format examples, 2 epochs of batch 4; then 10 pictures and the format examples again
    # (warmup.see.replay 1.0), one pass of batch 4.
    n_format = summary["examples"]
    assert summary["steps"] == 2 * -(-n_format // 4)
    assert "solver" in summary["examples_per_role"]
    assert set(summary["examples_per_role"]) <= set(methods.get("mmzero").warmup_roles)
    see = summary["see"]
    assert see["examples_per_kind"] == {"colour": 5, "count": 5}
    assert see["examples"] == 10 + n_format and see["steps"] == -(-(10 + n_format) // 4)
    assert see["examples_per_role"]["solver"] == 10 + summary["examples_per_role"]["solver"]
    saved = json.loads((tmp_path / "warm" / "evovlm_warmup.json").read_text())
    assert saved["config"]["see"]["items"] == 10 and saved["see"] == see
    assert load_model(tmp_path / "warm", dtype="float32", device="cpu") is not None


def test_per_example_loss_weighs_each_example_the_same():
    """A one-token answer and a long reply count the same: the mean of the two examples' own
    means, not the mean over their tokens."""
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    from evovlm.warmup import per_example_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 5)
    labels = torch.tensor([[-100, -100, -100, -100, -100, 3], [-100, 1, 2, 3, 4, 0]])
    loss = per_example_loss(SimpleNamespace(logits=logits), labels)
    tokens = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none")
    short, long_ = tokens[0, 4], tokens[1, :].mean()
    assert torch.isclose(loss, (short + long_) / 2)
    assert not torch.isclose(loss, (tokens[0, 4] + tokens[1].sum()) / 6)
    # an example with no trainable token is left out, not counted as zero
    labels[0] = -100
    assert torch.isclose(per_example_loss(SimpleNamespace(logits=logits), labels), long_)


def test_see_proposals_name_their_kind_parse_and_draw_their_caption():
    """``warmup.see.proposals``: Proposer examples whose topic names the picture's kind (the
    chart examples draw theirs at random), and the SVG that draws the same picture."""
    from evovlm import methods, prompts, warmup

    m = methods.get("mmzero")
    plain = warmup.warmup_examples(warmup.WarmupConfig.from_dict({"items": 4}), m)
    cfg = warmup.WarmupConfig.from_dict({"items": 4, "see": {"items": 1, "proposals": 10}})
    more = warmup.warmup_examples(cfg, m)
    assert more[: len(plain)] == plain  # proposals 0 (the default) adds nothing
    extra = more[len(plain) :]
    assert Counter(e["role"] for e in extra) == {"proposer": 10, "coder_svg": 10}
    items = synth.generate_see_items(10, seed=cfg.seed + 1)
    for item, proposer, coder in zip(items, extra[0::2], extra[1::2], strict=True):
        topic = synth.see_topic(item)
        assert topic in synth.SEE_TOPICS and topic in proposer["prompt"][-1]["content"][0]["text"]
        fields_ = parse.parse_proposal(proposer["completion"][0]["content"][0]["text"])
        assert fields_.ok, fields_.error
        assert (fields_.easy_question, fields_.easy_answer) == (item.question, item.answer)
        assert fields_.hard_question != item.question or item.kind in ("count", "compare")
        assert prompts.format_code(item.svg, "svg") in coder["completion"][0]["content"][0]["text"]
    kinds = {synth.see_topic(item) for item in synth.generate_see_items(50, seed=1)}
    assert kinds == set(synth.SEE_TOPICS[:6])  # every kind's topic, compare's two pictures
