"""The method registry: each built-in method is one plug-in object that the generic rules call."""

from __future__ import annotations

import ast
from pathlib import Path

import polars as pl
import pytest

from evovlm import methods
from evovlm.methods.mmzero.rewards import MMZeroRewardConfig, score_mmzero


def test_builtin_methods_are_registered_with_their_roles_and_tables():
    mm, evo = methods.get("mmzero"), methods.get("evolmm")
    assert mm.roles == ("proposer", "coder", "solver")
    assert set(mm.tables) == {"proposals", "programs", "renders", "answers"}
    assert evo.roles == ("proposer", "solver")
    assert evo.tables["answers"] == "evolmm_answers"
    with pytest.raises(ValueError, match="unknown method 'dpo'"):
        methods.get("dpo")


def test_a_registered_toy_method_is_found_by_name():
    toy = methods.register(
        methods.Method(
            name="toy",
            roles=("solver",),
            tables={"answers": "answers"},
            scoring_drop={},
            score=lambda tables, cfg: {"solver": tables["answers"].with_columns(reward=1.0)},
            summarize=lambda tables, scored, trained, timings, extra=None: {"funnel": {}},
            role_samples=lambda tables, scored, options=None: scored,
        )
    )
    try:
        assert methods.get("toy") is toy
        frame = pl.DataFrame({"sample_id": ["a"]})
        assert toy.score({"answers": frame}, None)["solver"]["reward"].to_list() == [1.0]
    finally:
        methods.REGISTRY.pop("toy")


def test_plugin_scoring_is_the_method_scoring():
    from test_metrics import _round

    proposals, programs, renders, answers, expected = _round()
    tables = {"proposals": proposals, "programs": programs, "renders": renders, "answers": answers}
    got = methods.get("mmzero").score(tables, {})
    direct = score_mmzero(proposals, programs, renders, answers, MMZeroRewardConfig())
    for role in expected:
        assert got[role].equals(direct[role]) and got[role].equals(expected[role])


def test_the_schema_names_the_builtin_methods_and_the_registry_adds_plugins():
    from evovlm.config import load_schema
    from evovlm.experiment import schema_with_methods

    schema = load_schema()
    assert schema["properties"]["method"]["enum"] == list(methods.BUILTIN)
    toy = methods.register(
        methods.Method(
            name="toy2",
            roles=("speaker",),
            tables={},
            scoring_drop={},
            score=lambda tables, cfg=None: {},
            summarize=lambda *a, **k: {},
            role_samples=lambda *a, **k: {},
            config_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
        )
    )
    try:
        extended = schema_with_methods(schema)
        assert extended["properties"]["method"]["enum"] == [*methods.BUILTIN, "toy2"]
        assert extended["properties"]["toy2"]["properties"]["n"] == {"type": "integer"}
        assert "toy2" in extended["properties"]["rewards"]["properties"]
        assert "toy2" not in schema["properties"]  # the loaded schema itself is untouched
        assert "speaker" in methods.all_roles()
    finally:
        methods.REGISTRY.pop(toy.name)


# What other modules look up by method name is a field of the Method: a plug-in declares its own.

REPO = Path(__file__).resolve().parents[1]
_LOOKUPS = (
    "src/evovlm/evaluate.py",
    "src/evovlm/warmup.py",
    "src/evovlm/compare.py",
    "src/evovlm/hfio.py",
    "workflow/scripts/build_gallery.py",
    "workflow/scripts/evaluate_policy.py",
    "workflow/scripts/warmup_tiny_model.py",
    "workflow/scripts/write_model_card.py",
)


@pytest.mark.parametrize("path", _LOOKUPS)
def test_no_stage_branches_on_a_builtin_method_name(path):
    """A comparison with, a dict keyed by, or an index by "mmzero"/"evolmm" outside methods/
    is a lookup a plug-in cannot join (a default argument's value is no branch)."""
    names = set(methods.BUILTIN)
    found = []
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            parts = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Subscript):
            parts = [node.slice]
        else:
            continue
        found += [node.lineno for p in parts if isinstance(p, ast.Constant) and p.value in names]
    assert not found, f"{path} branches on a method name at line(s) {found}"


@pytest.fixture
def toy():
    """The toy plug-in of tests/toy_plugin, registered; afterwards the registry, the prompt
    templates and the table specs are as they were (importing it registers into all three, and a
    later test in the session must not see its templates: test_prompts checks every template is
    package data)."""
    import importlib
    import sys

    from evovlm import prompts, schema

    saved = [(d, dict(d)) for d in (methods.REGISTRY, prompts.ROLES, schema.SPECS)]
    image_roles = set(prompts.IMAGE_ROLES)
    sys.path.insert(0, str(REPO / "tests" / "toy_plugin"))
    try:
        module = importlib.import_module("toy_method")
        yield methods.register(module.TOY)
    finally:
        sys.path.remove(str(REPO / "tests" / "toy_plugin"))
        sys.modules.pop("toy_method", None)
        for live, before in saved:
            live.clear()
            live.update(before)
        prompts.IMAGE_ROLES.clear()
        prompts.IMAGE_ROLES.update(image_roles)


def test_a_plugin_brings_its_warmup_examples_and_its_solvers_format(toy):
    from evovlm.warmup import WarmupConfig, see_examples, warmup_examples

    cfg = WarmupConfig.from_dict({"items": 3, "epochs": 1.0, "see": {"items": 2}})
    examples = warmup_examples(cfg, toy) + see_examples(cfg, toy)
    assert [e["role"] for e in examples] == ["toy_speaker"] * 3 + ["toy_solver"] * 2
    for example in examples[3:]:
        text = example["completion"][0]["content"][0]["text"]
        prediction, ok = toy.solver.extract(text)
        assert ok and prediction and text == f"Answer: {prediction}"
        assert len(example["images"]) == 1


def test_a_plugin_solver_is_evaluated_in_its_own_format(toy):
    from test_evaluate import RecordedEngine

    from evovlm.evaluate import EvalConfig, build_benchmark, evaluate

    items = build_benchmark(EvalConfig(builtin_items=1, seed=5))
    replies = {items["question"][0]: "Answer: " + items["answer"][0], items["question"][1]: "no"}
    engine = RecordedEngine(replies)
    frame = evaluate(engine, items, "round_1", EvalConfig(), seed=0, method="toy")
    assert frame["correct"].to_list() == [True, False]
    assert frame["format_ok"].to_list() == [True, False]
    assert '"Answer:"' in engine.requests[0].messages[-1]["content"][-1]["text"]


def test_compare_shows_the_rates_the_method_in_metrics_json_names(tmp_path, toy):
    """metrics.json records its method: compare takes that method's rates (a plug-in's too),
    not a guess from the rate names."""
    import json

    from evovlm import compare

    for name, method, rates in (
        ("evo", "evolmm", {"parse_rate": 0.5, "render_rate": 0.4}),
        ("toy", "toy", {"vowel_share": 0.4, "other": 0.1}),
    ):
        d = tmp_path / name / "results/round_1"
        d.mkdir(parents=True)
        metrics = {"round": 1, "method": method, "rates": rates, "rewards": {}}
        (d / "metrics.json").write_text(json.dumps(metrics))
    header = compare.table([compare.load_run(tmp_path / "evo")]).splitlines()[0]
    assert "mean_entropy" in header and "render_rate" not in header
    header = compare.table([compare.load_run(tmp_path / "toy")]).splitlines()[0]
    assert "vowel_share" in header and "other" not in header


def test_the_train_sections_auto_values_are_the_methods_train_defaults():
    """TrainConfig knows no method by name: "auto" resolves from the Method it is given (a
    plug-in's own train_defaults too), and a bare name is refused rather than guessed."""
    from evovlm.train import TRAIN_DEFAULTS, TrainConfig

    def knobs(c: TrainConfig) -> tuple:
        return (c.method, c.freeze_vision_tower, c.kl_control, c.scale_rewards)

    evo = TrainConfig.from_dict({}, methods.get("evolmm"))
    assert knobs(evo) == ("lora", True, "adaptive", "none")
    mm = TrainConfig.from_dict({}, methods.get("mmzero"))
    assert knobs(mm) == ("full", False, "fixed", "group")
    assert TrainConfig.from_dict({}) == mm and dict(methods.get("mmzero").train_defaults) == (
        TRAIN_DEFAULTS
    )
    toy = TrainConfig.from_dict({}, {"method": "lora", "kl_control": "adaptive"})
    assert (toy.method, toy.kl_control, toy.scale_rewards) == ("lora", "adaptive", "group")
    with pytest.raises(TypeError, match=r"evovlm.methods.get\(name\)"):
        TrainConfig.from_dict({}, "evolmm")
