"""Presets with the papers' values (config/presets/) and the embedded demo file
(config/embedded.yaml): the values the jobs receive, read from the workflow as Snakemake loads it
for a dry run (the rules' params), with the hub models faked in an offline Hugging Face cache."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

PRESETS = REPO / "config" / "presets"
EMBEDDED = REPO / "config" / "embedded.yaml"

# Loads the workflow like `snakemake -n` does (config files, --config, every rule's params) and
# prints the resolved config and each rule's static params.
_LOAD = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(
            config=json.loads(sys.argv[1]), configfiles=[Path(p) for p in json.loads(sys.argv[2])]
        ),
        snakefile=Path(sys.argv[3]),
        workdir=Path(sys.argv[4]),
    )
    w = wf._workflow
    params = {r.name: {k: v for k, v in r.params.items() if not callable(v)} for r in w.rules}
    print(json.dumps({"config": w.config, "params": params}, default=str))
"""


def _fake_hub(root, *repo_ids):
    """An offline Hugging Face cache holding each repo id's config.json (no weights)."""
    for repo_id in repo_ids:
        repo = root / ("models--" + repo_id.replace("/", "--"))
        (repo / "snapshots" / "abc123").mkdir(parents=True)
        (repo / "snapshots" / "abc123" / "config.json").write_text("{}")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("abc123")
    return root


def load(tmp_path, *configfiles, **overrides) -> dict:
    """The resolved config and the rules' params for these --configfile / --config values."""
    import os

    hub = _fake_hub(
        tmp_path / "hf",
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "Qwen/Qwen3-VL-8B-Instruct",
        "acme/vl-7b",
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub), CUDA_VISIBLE_DEVICES="")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    args = [json.dumps(overrides), json.dumps([str(f) for f in configfiles])]
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, *args, str(REPO / "Snakefile"), str(work)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            out.update(_flat(value, name))
        else:
            out[name] = value
    return out


def _get(config, dotted):
    for part in dotted.split("."):
        config = config[part]
    return config


def test_the_embedded_default_gets_its_demo_values(tmp_path):
    # The quick start's demo numbers (docs/results.md): lr 3e-4 x 12 steps of 16, k 2, m 4, 96 tokens,
    # 224 px.
    got = load(tmp_path)
    config, params = got["config"], got["params"]
    assert config["model"]["base"] == "embedded"
    for key, value in _flat(yaml.safe_load(EMBEDDED.read_text())).items():
        assert _get(config, key) == value, key
    train = params["train_policy"]["train"]
    assert (train["learning_rate"], train["max_steps"]) == (3.0e-4, 12)
    assert train["per_device_train_batch_size"] == 16
    assert params["write_code"]["k"] == 2 and params["sample_answers"]["m"] == 4
    assert params["sample_answers"]["sampling"]["max_tokens"] == 96
    assert params["propose_concepts"]["prompts_per_topic"] == 10
    assert params["render_images"]["render"]["width"] == 224
    assert params["evaluate_policy"]["eval"]["max_tokens"] == 96


def test_the_command_line_wins_over_the_demo_file(tmp_path):
    # .test/config_*.yaml and --config layer on the demo values, as on config/config.yaml before.
    got = load(tmp_path, REPO / ".test" / "config_mmzero.yaml", seed=3)
    train = got["params"]["train_policy"]["train"]
    assert (train["learning_rate"], train["max_steps"]) == (1.0e-4, 4)
    assert got["params"]["propose_concepts"]["prompts_per_topic"] == 1
    assert got["params"]["sample_answers"]["sampling"]["max_tokens"] == 96  # from the demo file
    assert got["config"]["seed"] == 3


def test_the_experiments_own_config_file_wins_over_the_demo_file(tmp_path):
    # A folder's config/config.yaml (snakemake --directory DIR) is the experiment's own choice:
    # the demo values fill only what it leaves out. Before, the demo file was layered on top and
    # turned a disabled warm-up back on.
    (tmp_path / "work" / "config").mkdir(parents=True)
    text = (REPO / "config" / "config.yaml").read_text()
    own = "\nwarmup: {enabled: false}\ntrain: {learning_rate: 1.0e-5}\n"
    (tmp_path / "work" / "config" / "config.yaml").write_text(text + own)
    got = load(tmp_path)
    assert got["config"]["warmup"]["enabled"] is False
    train = got["params"]["train_policy"]["train"]
    assert (train["learning_rate"], train["max_steps"]) == (1.0e-5, 12)  # 12: from the demo file


def test_a_real_base_without_a_preset_gets_no_demo_value(tmp_path):
    """Issue 31, B1: `--config model={base: <a real model>}` planned the 7B run with the tiny
    model's lr 3e-4, 12 steps and 96-token Solver. Now every key of the demo file takes the
    schema's default (the methods' reference values where one key holds them)."""
    from evovlm.experiment import validate_config

    got = load(tmp_path, model={"base": "acme/vl-7b"})
    config = got["config"]
    defaults = validate_config({"model": {"base": "embedded"}})
    demo = _flat(yaml.safe_load(EMBEDDED.read_text()))
    leaked = {k: v for k, v in demo.items() if _get(config, k) == v and _get(defaults, k) != v}
    assert leaked == {}
    train = got["params"]["train_policy"]["train"]
    assert train["learning_rate"] == 1.0e-6
    assert got["params"]["sample_answers"]["sampling"]["max_tokens"] == 4096
    assert got["params"]["evaluate_policy"]["eval"]["max_tokens"] == 4096


MMZERO = ["mmzero-qwen2.5-vl-7b.yaml", "mmzero-qwen3-vl-8b.yaml"]


@pytest.mark.parametrize("name", MMZERO)
def test_an_mmzero_preset_reaches_the_jobs_with_the_reference_values(tmp_path, name):
    got = load(tmp_path, PRESETS / name)
    config, params = got["config"], got["params"]
    base = {"mmzero-qwen2.5-vl-7b.yaml": "Qwen/Qwen2.5-VL-7B-Instruct"}.get(
        name, "Qwen/Qwen3-VL-8B-Instruct"
    )
    assert config["model"]["base"] == base
    assert params["fetch_base_model"]["repo_id"] == base
    # MM-Zero reference (MM-zero_final/configs/*_80gb.yaml, scripts/main_svg.sh)
    assert params["propose_concepts"]["sampling"] == {
        "n": 4, "temperature": 1.0, "top_p": 0.99, "top_k": 0, "max_tokens": 2048
    }  # fmt: skip
    assert params["propose_concepts"]["prompts_per_topic"] == 156
    assert params["write_code"]["k"] == 4 and params["write_code"]["languages"] == ["svg"]
    assert params["write_code"]["sampling"]["max_tokens"] == 4096
    assert params["write_code"]["sampling"]["temperature"] == 0.7
    assert params["sample_answers"]["m"] == 8
    assert params["sample_answers"]["sampling"]["max_tokens"] == 4096
    assert config["mmzero"]["solver_train_questions"] == ["hard"]
    assert config["mmzero"]["coder_render_band"] == [0.25, 0.75]
    assert params["render_images"]["render"]["timeout_s"] == 30
    train = params["train_policy"]["train"]
    expected = {
        "method": "full",
        "learning_rate": 1.0e-6,
        "beta": 0.01,
        "kl_control": "fixed",
        "epsilon_low": 0.2,
        "epsilon_high": 0.3,
        "scale_rewards": "group",
        "passes": 1,
        "weight_decay": 0.01,
        "freeze_vision_tower": False,
        "sharding": "fsdp",
        "num_processes": 8,
    }
    assert {k: train[k] for k in expected} == expected
    step = train["per_device_train_batch_size"] * train["gradient_accumulation_steps"] * 8
    assert step == 256  # the reference Coder's update (64 prompts x 4)
    # no demo value anywhere: the demo file is not layered for a real model
    assert config["render"]["width"] == 1024 and config["eval"]["max_tokens"] == 4096


def test_the_evolmm_preset_reaches_the_jobs_with_the_reference_values(tmp_path):
    got = load(tmp_path, PRESETS / "evolmm-qwen2.5-vl-7b.yaml")
    config, params = got["config"], got["params"]
    assert config["method"] == "evolmm"
    assert params["fetch_base_model"]["repo_id"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert params["sample_images"]["n_images"] * config["rounds"] == 16180  # ref --total_steps
    assert params["answer_questions"]["sampling"] == {
        "n": 5, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_tokens": 128
    }  # fmt: skip
    assert params["ask_questions"]["sampling"]["max_tokens"] == 128
    assert config["evolmm"]["proposer_update_ratio"] == 25
    assert params["score_rewards"]["rewards"]["consistency_exponent"] == 0.7
    train = params["train_policy"]["train"]
    expected = {
        "method": "lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "learning_rate": 1.0e-6,
        "kl_control": "adaptive",
        "kl_init_beta": 0.001,
        "kl_target": 0.02,
        "kl_rate": 0.1,
        "kl_update": "exponential",
        "kl_carry": True,
        "scale_rewards": "none",
        "old_logprobs": "current",
        "passes": 1,
        "per_device_train_batch_size": 5,
    }
    assert {k: train[k] for k in expected} == expected


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_value_names_its_source(path):
    """Each value line carries a comment, or sits right under one (a block comment)."""
    lines = path.read_text().splitlines()
    bare = []
    for i, line in enumerate(lines):
        m = re.match(r"^\s*([A-Za-z_]+):\s*(\S.*)?$", line)
        if not m or not m.group(2) or m.group(2).startswith("#"):
            continue  # a comment, a blank line or a section header
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            bare.append(line.strip())
    assert bare == []
