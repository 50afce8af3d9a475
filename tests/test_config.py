import copy
import subprocess
import sys

import pytest
import yaml

from evovlm.config import ConfigError, load_schema
from evovlm.experiment import validate_config
from tests.conftest import REPO


@pytest.fixture
def config():
    with open(REPO / "config" / "config.yaml") as fh:
        return yaml.safe_load(fh)


def test_default_config_is_valid_and_defaults_filled(config):
    validated = validate_config(copy.deepcopy(config))
    assert validated["rounds"] >= 1
    assert validated["engine"]["backend"] == "auto"
    assert "max_pixels" in validated["tiny"]  # a section absent from the file gets defaults


def _error(config, **patch) -> str:
    cfg = copy.deepcopy(config)
    for dotted, value in patch.items():
        node = cfg
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("patch", "key", "hint"),
    [
        ({"roundz": 3}, "'roundz'", "not a known key"),
        ({"rounds": 0}, "'rounds'", "minimum of 1"),
        ({"rounds": "five"}, "'rounds'", "not of type 'integer'"),
        ({"mmzero__proposer__n": 1}, "'mmzero.proposer.n'", "minimum of 2"),
        ({"mmzero__coder__k": 1}, "'mmzero.coder.k'", "minimum of 2"),
        ({"mmzero__solver__m": 1}, "'mmzero.solver.m'", "minimum of 2"),
        ({"mmzero__solver__temprature": 1.0}, "'mmzero.solver.temprature'", "not a known key"),
        ({"model__base": "./no/such/model"}, "'model.base'", "does not exist"),
        ({"engine__backend": "tpu"}, "'engine.backend'", "is not one of"),
        ({"method": "dpo"}, "'method'", "is not one of"),
        ({"shards": 0}, "'shards'", "minimum of 1"),
    ],
)
def test_bad_keys_give_one_line_naming_the_key(config, patch, key, hint):
    message = _error(config, **patch)
    assert key in message
    assert hint in message


def test_hub_id_is_accepted_without_a_local_folder(config):
    # validate_config checks the form only; the hub check (check_hub_model) runs in the workflow.
    config["model"]["base"] = "Qwen/Qwen2.5-VL-3B-Instruct"
    validate_config(config)


@pytest.mark.parametrize(
    ("patch", "fix"),
    [
        ({"rounds": "five"}, "fix: give an integer >= 1 ("),
        ({"train__learning_rate": "fast"}, "fix: give a number >= 0 ("),
        ({"engine__backend": "tpu"}, "fix: give one of auto, hf, vllm ("),
        ({"eval__enabled": "maybe"}, "fix: give true or false (yes/no) ("),
    ],
)
def test_type_errors_say_what_is_expected(config, patch, fix):
    assert fix in _error(config, **patch)


@pytest.mark.parametrize(
    ("text", "value"), [("yes", True), ("On", True), ("no", False), ("off", False), ("true", True)]
)
def test_yaml_yes_no_on_off_are_booleans(config, text, value):
    # snakemake --config "eval={enabled: yes}" passes the text "yes" (YAML BaseLoader).
    config["eval"] = {"enabled": text}
    assert validate_config(config)["eval"]["enabled"] is value


# Sections whose keys are another library's options, checked against it before any job.
OPEN_MAPPINGS = {"train.trl"}  # trl.GRPOConfig fields: evovlm.train.config.check_trl_options


def test_every_schema_key_has_type_default_and_description():
    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            where = f"{path}.{key}".strip(".")
            assert "type" in sub, f"{where} has no type"
            assert "default" in sub, f"{where} has no default"
            assert sub.get("description"), f"{where} has no description"
            if sub.get("type") == "object" and where in OPEN_MAPPINGS:
                assert sub.get("additionalProperties") is True, where
            elif sub.get("type") == "object":
                assert sub.get("additionalProperties") is False, f"{where} accepts unknown keys"
                walk(sub, where)

    walk(load_schema(), "")


def test_snakemake_stops_before_any_job_on_a_bad_key(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--config", "rounds=0"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "config error" in line]
    assert lines == [
        "config error: config key 'rounds': 0 is less than the minimum of 1; "
        "fix: give an integer >= 1 (number of self-play rounds (at least 1); "
        "raising it never reruns finished rounds)"
    ]


def _dataclass_sections():
    from evovlm.evaluate import EvalConfig
    from evovlm.render import RenderConfig
    from evovlm.tiny import TinySpec
    from evovlm.warmup import WarmupConfig

    sections = {
        ("render",): RenderConfig,
        ("tiny",): TinySpec,
        ("warmup",): WarmupConfig,
        ("eval",): EvalConfig,
    }
    try:
        from evovlm.methods.evolmm.rewards import EvoLMMRewardConfig
        from evovlm.methods.mmzero.rewards import MMZeroRewardConfig

        sections[("rewards", "mmzero")] = MMZeroRewardConfig
        sections[("rewards", "evolmm")] = EvoLMMRewardConfig
        from evovlm.train import TrainConfig

        sections[("train",)] = TrainConfig
    except ImportError:
        pass
    return sections


@pytest.mark.parametrize("path", list(_dataclass_sections()), ids=lambda p: ".".join(p))
def test_schema_sections_match_the_library_dataclasses(path):
    """Keys and defaults of the schema are those of the dataclass the stage builds."""
    import dataclasses

    cls = _dataclass_sections()[path]
    node = load_schema()
    for part in path:
        node = node["properties"][part]
    schema_defaults = {k: v["default"] for k, v in node["properties"].items()}
    class_defaults = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            class_defaults[f.name] = f.default
        else:
            class_defaults[f.name] = f.default_factory()
    normalise = lambda d: {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}  # noqa: E731
    assert normalise(schema_defaults) == normalise(class_defaults)


# Sections whose dataclass is generated from the schema (evovlm.config.schema_dataclass).
_DECLARED_ONCE = ["render", "tiny", "warmup", "eval", "rewards.mmzero", "rewards.evolmm", "train"]


@pytest.mark.parametrize("path", _DECLARED_ONCE)
def test_a_section_is_declared_once_and_its_dataclass_generated(path):
    """The dataclass of the section has the schema's keys, in its order, with its defaults and
    its descriptions as help: there is no second declaration to drift."""
    import dataclasses

    from evovlm.config import section_schema

    cls = _dataclass_sections()[tuple(path.split("."))]
    node = section_schema(path)["properties"]
    fields = dataclasses.fields(cls)
    assert [f.name for f in fields] == list(node)
    for f in fields:
        assert f.metadata["help"] == node[f.name]["description"], f.name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert default == node[f.name]["default"], f.name
        if node[f.name]["type"] == "number":
            assert isinstance(default, float), f.name


@pytest.mark.parametrize(
    ("patch", "path", "expected"),
    [
        ({"warmup__items": "48"}, ("warmup", "items"), 48),
        ({"mmzero__proposer__temperature": "0.8"}, ("mmzero", "proposer", "temperature"), 0.8),
        ({"train__learning_rate": "1e-5"}, ("train", "learning_rate"), 1e-5),
        ({"train__gradient_checkpointing": "false"}, ("train", "gradient_checkpointing"), False),
        ({"mmzero__share_weights": "True"}, ("mmzero", "share_weights"), True),
        # a key of type [null, integer]: both spellings from the command line
        ({"train__passes": "1"}, ("train", "passes"), 1),
        ({"train__passes": "null"}, ("train", "passes"), None),
    ],
)
def test_numbers_and_booleans_written_as_text_are_read_as_such(config, patch, path, expected):
    """Snakemake hands nested --config values over as strings (YAML BaseLoader)."""
    cfg = copy.deepcopy(config)
    ((dotted, value),) = patch.items()
    node = cfg
    *parents, last = dotted.split("__")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    validate_config(cfg)
    for part in path:
        cfg = cfg[part]
    assert cfg == expected and type(cfg) is type(expected)


@pytest.mark.parametrize(
    ("patch", "hint"),
    [
        ({"warmup__items": "4.5"}, "'warmup.items': '4.5' is not of type 'integer'"),
        ({"train__gradient_checkpointing": "maybe"}, "is not of type 'boolean'"),
        ({"mmzero__proposer__temperature": "hot"}, "is not of type 'number'"),
    ],
)
def test_text_that_is_not_the_declared_type_is_still_an_error(config, patch, hint):
    assert hint in _error(config, **patch)


def test_nested_command_line_overrides_reach_the_workflow():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "-F",
            "--cores",
            "1",
            "--quiet",
            "rules",
            "--config",
            "rounds=1",
            "warmup={items: 48}",
            "train={max_steps: 2, method: lora}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "config error" not in proc.stderr


@pytest.mark.parametrize(
    ("patch", "key", "fix"),
    [
        (
            {"mmzero__solver_train_questions": ["hard", "hard"]},
            "'mmzero.solver_train_questions'",
            "fix: give each value once (repeated: 'hard')",
        ),
        (
            {"mmzero__coder_render_band": [0.1, 0.5, 0.9]},
            "'mmzero.coder_render_band'",
            "fix: give a list of at most 2 item(s) (",
        ),
        (
            {"eval__benchmarks": [{"name": "chart qa", "path": "x.parquet"}]},
            "'eval.benchmarks.0.name'",
            "fix: give a text matching ^[A-Za-z0-9_.-]+$ (short name",
        ),
        (
            {"eval__benchmarks": [{"name": "chartqa"}]},
            "'eval.benchmarks.0.path'",
            "fix: add 'path' (local .parquet or .jsonl file)",
        ),
    ],
)
def test_structure_errors_say_how_to_fix_not_what_the_key_is(config, patch, key, fix):
    message = _error(config, **patch)
    assert f"config key {key}:" in message
    assert fix in message


@pytest.mark.parametrize(
    ("patch", "suggestion"),
    [
        ({"roundz": 3}, "did you mean 'rounds'? fix: rename it to 'rounds'"),
        ({"train__learnin_rate": 1e-3}, "did you mean 'train.learning_rate'?"),
        ({"mmzero__solver__temprature": 1.0}, "did you mean 'mmzero.solver.temperature'?"),
    ],
)
def test_unknown_keys_get_the_nearest_known_key(config, patch, suggestion):
    assert suggestion in _error(config, **patch)


def test_unknown_key_without_a_near_one_lists_the_known_keys(config):
    message = _error(config, xyzzy=1)
    assert "did you mean" not in message and "known here: engine, eval" in message


@pytest.mark.parametrize("logger", ["wandb", "tensorboard"])
def test_a_logger_that_is_not_installed_stops_naming_report_to(config, logger, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    hidden = {"wandb", "tensorboard", "tensorboardX"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )
    message = _error(config, train__report_to=logger)
    assert message.startswith(f"config key 'train.report_to': {logger} is not installed")


def test_an_installed_logger_passes(config, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: real("json") if name == "wandb" else real(name, *a),
    )
    config["train"] = {"report_to": "wandb"}
    validate_config(config)


_TRAIN_PARAMS = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(config=json.loads(sys.argv[1])),
        snakefile=Path(sys.argv[2]),
        workdir=Path(sys.argv[3]),
    )
    print(json.dumps(wf._workflow.get_rule("train_policy").params.train))
"""


def _train_params(tmp_path, overrides: dict) -> dict:
    import json

    proc = subprocess.run(
        [sys.executable, "-c", _TRAIN_PARAMS, json.dumps(overrides), str(REPO / "Snakefile")]
        + [str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_logging_and_resume_keys_are_no_training_params(tmp_path):
    # A rule's params are a rerun trigger: switching TRL checkpoints or logging must not retrain.
    plain = _train_params(tmp_path, {})
    logged = _train_params(tmp_path, {"train": {"keep_trl_checkpoints": True, "save_steps": 0}})
    assert plain == logged
    assert "report_to" not in plain
    assert plain["learning_rate"] > 0  # the keys that change a checkpoint stay
