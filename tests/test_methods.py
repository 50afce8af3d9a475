"""The method registry: each built-in method is one plug-in object that the generic rules call."""

from __future__ import annotations

import polars as pl
import pytest

from evovlm import methods
from evovlm.rewards import MMZeroRewardConfig, score_mmzero


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


def test_the_train_sections_auto_values_are_the_methods_train_defaults():
    """TrainConfig knows no method by name: "auto" resolves from the Method it is given (a
    plug-in's own train_defaults too), and a bare name is refused rather than guessed."""
    from evovlm.train import TRAIN_DEFAULTS, TrainConfig

    evo = TrainConfig.from_dict({}, methods.get("evolmm"))
    assert (evo.method, evo.freeze_vision_tower, evo.kl_control, evo.scale_rewards) == (
        "lora",
        True,
        "adaptive",
        "none",
    )
    mm = TrainConfig.from_dict({}, methods.get("mmzero"))
    assert (mm.method, mm.freeze_vision_tower, mm.kl_control, mm.scale_rewards) == (
        "full",
        False,
        "fixed",
        "group",
    )
    assert TrainConfig.from_dict({}) == mm and dict(methods.get("mmzero").train_defaults) == (
        TRAIN_DEFAULTS
    )
    toy = TrainConfig.from_dict({}, {"method": "lora", "kl_control": "adaptive"})
    assert (toy.method, toy.kl_control, toy.scale_rewards) == ("lora", "adaptive", "group")
    with pytest.raises(TypeError, match=r"evovlm.methods.get\(name\)"):
        TrainConfig.from_dict({}, "evolmm")
