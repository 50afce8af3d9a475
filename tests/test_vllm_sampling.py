"""Sampling values vLLM refuses or changes are refused by the config check, before any job, with
one line naming the key: temperature 0 for a role (its group of n > 1 samples; vLLM refuses
n > 1 greedy), above 2 (refused) and in (0, 0.01) (silently raised to 0.01). Evaluation samples
one answer: 0 (greedy) is fine there."""

import copy

import pytest
import yaml

from evovlm.config import ConfigError
from evovlm.experiment import validate_config
from tests.conftest import REPO

ROLES = [
    ("mmzero", "proposer"),
    ("mmzero", "coder"),
    ("mmzero", "solver"),
    ("evolmm", "proposer"),
    ("evolmm", "solver"),
]


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _with(config, section, role, value):
    cfg = copy.deepcopy(config)
    target = cfg.setdefault(section, {})
    if role:
        target = target.setdefault(role, {})
    target["temperature"] = value
    return cfg


@pytest.mark.parametrize("section,role", ROLES)
@pytest.mark.parametrize("value", [0, 0.005, 2.5])
def test_a_role_temperature_vllm_cannot_honour_is_refused(config, section, role, value):
    with pytest.raises(ConfigError) as info:
        validate_config(_with(config, section, role, value))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"config key '{section}.{role}.temperature'")
    assert "0.01 to 2" in message


@pytest.mark.parametrize("value", [0.01, 0.7, 2])
def test_a_role_temperature_in_range_passes(config, value):
    validate_config(_with(config, "mmzero", "coder", value))


@pytest.mark.parametrize("value,ok", [(0, True), (0.5, True), (0.005, False), (2.5, False)])
def test_the_evaluation_temperature_may_be_greedy(config, value, ok):
    cfg = _with(config, "eval", None, value)
    if ok:
        validate_config(cfg)
        return
    with pytest.raises(ConfigError, match=r"^config key 'eval.temperature'.*0.01 to 2"):
        validate_config(cfg)
