"""Config validation: JSON Schema with defaults, one-line errors that name the key.

``validate_config(config, schema_path)`` fills defaults in place (like Snakemake's
``validate``) and raises :class:`ConfigError` whose message is a single line:
``config key 'mmzero.proposer.n': 1 is less than the minimum of 2. Fix: proposals per prompt ...``.
Beyond the schema it checks what a schema cannot: that a local model path exists.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
EMBEDDED = "embedded"


class ConfigError(ValueError):
    """A user-fixable problem with the configuration (message is one line)."""


def load_schema(path: str | Path | None = None) -> dict:
    schema_path = Path(path) if path else DEFAULT_SCHEMA
    with open(schema_path) as fh:
        return yaml.safe_load(fh)


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Insert defaults of missing keys, recursively (objects only)."""
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)


_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _coerce_text(value: Any, schema: dict) -> Any:
    """Numbers and booleans written as text become the type the schema declares.

    Snakemake parses nested ``--config`` values with YAML's BaseLoader, so
    ``--config "train={max_steps: 8}"`` arrives as ``{"max_steps": "8"}``. Text that is not a
    number or boolean (``rounds: five``) is left for the schema to reject.
    """
    kind = schema.get("type")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            sub_schema = props.get(key, extra if isinstance(extra, dict) else {})
            value[key] = _coerce_text(sub, sub_schema)
        return value
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_coerce_text(v, schema["items"]) for v in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    kinds = kind if isinstance(kind, list) else [kind]  # e.g. ["null", integer]
    if "null" in kinds and text.lower() in ("null", "none", "~"):
        return None
    if "integer" in kinds and _INTEGER.fullmatch(text):
        return int(text)
    if "number" in kinds and _NUMBER.fullmatch(text):
        return float(text)
    if "boolean" in kinds and text.lower() in _BOOLEAN:
        return _BOOLEAN[text.lower()]
    if True in schema.get("enum", ()) and text.lower() in _BOOLEAN:  # e.g. [auto, true, false]
        return _BOOLEAN[text.lower()]
    return value


# YAML users write yes/no and on/off too (YAML 1.1 booleans).
_BOOLEAN = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _expected(sub: dict) -> str:
    """What a value of schema ``sub`` must be, in words: 'an integer >= 1', 'one of a, b'."""
    if "enum" in sub:
        return "one of " + ", ".join("null" if v is None else str(v) for v in sub["enum"])
    kinds = sub.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    words = {
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false (yes/no)",
        "string": "a text",
        "array": "a list",
        "object": "a mapping of keys",
        "null": "null",
    }
    text = " or ".join(words.get(k, k) for k in kinds) or "a valid value"
    bounds = []
    for key, op in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in sub:
            bounds.append(f"{op} {sub[key]}")
    if "minLength" in sub:
        bounds.append(f"of at least {sub['minLength']} character(s)")
    if "minItems" in sub:
        bounds.append(f"of at least {sub['minItems']} item(s)")
    if "items" in sub and isinstance(sub["items"], dict) and "array" in kinds:
        bounds.append(f"of {_expected(sub['items'])}")
    return " ".join([text, *bounds])


def _key_path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path)


def _subschema(schema: dict, path: list) -> dict:
    node = schema
    for part in path:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node


def _one_line(error, schema: dict) -> str:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        parent = _subschema(schema, path)
        known = sorted(parent.get("properties", {}))
        extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        where = ".".join(map(str, path + extra[:1])) or "<top level>"
        return f"config key '{where}' is not a known key; " + _unknown_key_fix(
            str(extra[0]) if extra else "", known, path
        )
    key = _key_path(error) or "<top level>"
    description = ""
    for depth in range(len(path), -1, -1):  # nearest described ancestor
        description = _subschema(schema, path[:depth]).get("description", "")
        if description:
            break
    message = error.message.replace("\n", " ")
    if len(message) > 200:
        message = message[:200] + "..."
    # The failing (sub)schema says what is expected; the key's description says what it is for.
    failing = error.schema if isinstance(error.schema, dict) else {}
    if error.validator in (
        "type",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "minItems",
    ):
        own = _subschema(schema, path)
        expected = _expected({**own, **failing} if own else failing)
        fix = f"; fix: give {expected}" + (f" ({description})" if description else "")
    elif error.validator in _STRUCTURE_FIXES:
        key, fix = _STRUCTURE_FIXES[error.validator](error, schema, key)
    else:
        fix = f"; fix: {description}" if description else ""
    return f"config key '{key}': {message}{fix}"


def _unknown_key_fix(name: str, known: list[str], path: list) -> str:
    """'did you mean' the nearest known key (difflib), else the keys known at that level."""
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        where = ".".join(map(str, [*path, close[0]]))
        return f"did you mean '{where}'? fix: rename it to '{where}' (or remove it)"
    return f"fix: remove or rename it (known here: {', '.join(known)})"


def _described(sub: dict) -> str:
    return f" ({sub['description']})" if sub.get("description") else ""


def _max_items_fix(error, schema: dict, key: str) -> tuple[str, str]:
    own = _subschema(schema, list(error.absolute_path))
    return key, f"; fix: give a list of at most {error.validator_value} item(s){_described(own)}"


def _unique_fix(error, schema: dict, key: str) -> tuple[str, str]:
    seen, twice = [], []
    for item in error.instance if isinstance(error.instance, list) else []:
        (twice if item in seen and item not in twice else seen).append(item)
    shown = ", ".join(repr(v) for v in twice)
    return key, f"; fix: give each value once (repeated: {shown})"


def _pattern_fix(error, schema: dict, key: str) -> tuple[str, str]:
    own = _subschema(schema, list(error.absolute_path))
    return key, (f"; fix: give a text matching {error.validator_value}{_described(own)}")


def _required_fix(error, schema: dict, key: str) -> tuple[str, str]:
    # The error sits on the parent mapping; name the missing key itself.
    missing = next((k for k in error.validator_value if k not in (error.instance or {})), "")
    path = [*error.absolute_path, missing]
    own = _subschema(schema, path)
    return ".".join(map(str, path)), f"; fix: add '{missing}'{_described(own)}"


_STRUCTURE_FIXES = {
    "maxItems": _max_items_fix,
    "uniqueItems": _unique_fix,
    "pattern": _pattern_fix,
    "required": _required_fix,
}


def validate_config(config: dict, schema: dict | str | Path | None = None) -> dict:
    """Validate ``config`` in place (defaults filled) and return it; raise ConfigError."""
    from jsonschema import Draft202012Validator

    if not isinstance(schema, dict):
        schema = load_schema(schema)
    if not isinstance(config, dict):
        raise ConfigError("config must be a mapping of keys to values (check the YAML file)")
    schema = schema_with_methods(schema, config)
    _coerce_text(config, schema)
    errors = sorted(
        Draft202012Validator(schema).iter_errors(config),
        key=lambda e: (len(list(e.absolute_path)), _key_path(e), e.validator),
    )
    if errors:
        # Report an unknown key first: a typo usually explains the other errors.
        unknown = [e for e in errors if e.validator == "additionalProperties"]
        raise ConfigError(_one_line((unknown or errors)[0], schema))
    _fill_defaults(config, schema)
    check_model_path(config)
    check_benchmark_paths(config)
    from evovlm.train.config import check_trl_options  # imports TRL only for train.trl options

    check_trl_options(config.get("train", {}).get("trl"))
    check_logger(config)
    return config


# train.report_to -> modules any of which the logger needs (transformers' is_*_available checks).
LOGGER_MODULES = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}


def check_logger(config: dict) -> None:
    """The logger ``train.report_to`` names must import (else TRL fails only in the first
    training job, after a round of generation)."""
    import importlib.util

    name = config.get("train", {}).get("report_to", "none")
    modules = LOGGER_MODULES.get(name, ())
    if modules and not any(importlib.util.find_spec(m) for m in modules):
        raise ConfigError(
            f"config key 'train.report_to': {name} is not installed; "
            f"fix: pip install {modules[0]}, or set report_to: none"
        )


def schema_with_methods(schema: dict, config: dict | None = None) -> dict:
    """``schema`` with the registered methods: ``method`` accepts every registered name, and a
    plug-in method (loaded from the config's ``plugins``) brings its config and reward sections.
    """
    from evovlm import methods

    modules = (config or {}).get("plugins") or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError("config key 'plugins': not a list of module names; fix: give a list")
    for module in modules:
        try:
            methods.load_plugins([module])
        except Exception as exc:  # noqa: BLE001  (any import failure is the user's to fix)
            raise ConfigError(
                f"config key 'plugins': cannot import {module!r} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "fix: give a module on the Python path that calls evovlm.methods.register"
            ) from None
    methods.load_plugins()
    schema = copy.deepcopy(schema)
    props = schema["properties"]
    plugins = [m for name, m in methods.REGISTRY.items() if name not in methods.BUILTIN]
    props["method"]["enum"] = [*methods.BUILTIN, *(m.name for m in plugins)]
    empty = {"type": "object", "default": {}, "properties": {}}
    for method in plugins:
        section = copy.deepcopy(dict(method.config_schema or empty))
        section.setdefault("default", {})
        props[method.name] = section
        reward = copy.deepcopy(dict(method.reward_schema or empty))
        reward.setdefault("default", {})
        props["rewards"]["properties"][method.name] = reward
    return schema


def check_benchmark_paths(config: dict) -> None:
    benchmarks = config.get("eval", {}).get("benchmarks", [])
    names = [b["name"] for b in benchmarks]
    for i, bench in enumerate(benchmarks):
        if names.count(bench["name"]) > 1 or bench["name"] == "procedural":
            raise ConfigError(
                f"config key 'eval.benchmarks.{i}.name': {bench['name']!r} is used twice or is "
                "reserved; fix: give every benchmark its own name (not 'procedural')"
            )
        bench["path"] = str(Path(bench["path"]).expanduser())  # rules see the expanded path
        if not Path(bench["path"]).is_file():
            raise ConfigError(
                f"config key 'eval.benchmarks.{i}.path': file {bench['path']!r} does not exist; "
                "fix: point it at a local .parquet or .jsonl benchmark file"
            )


_PYTHON_TYPES = {
    "integer": int,
    "number": float,
    "boolean": bool,
    "string": str,
    "array": list,
    "object": dict,
}


def section_schema(path: str, schema: dict | None = None) -> dict:
    """The schema node of config section ``path`` ("train", "rewards.mmzero")."""
    node = schema or load_schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node


def section_defaults(path: str) -> dict:
    """The defaults of config section ``path`` as the schema declares them (a deep copy)."""
    section: dict = {}
    _fill_defaults(section, section_schema(path))
    return section


def schema_dataclass(path: str, **options):
    """Class decorator: a dataclass whose fields are the keys of config section ``path`` in the
    schema, in its order, with its defaults (the one declaration of each key: its type, default
    and help live in ``config.schema.yaml``; the class body holds only behaviour). The field's
    ``metadata["help"]`` is the schema's description; a ``number`` default is a float.
    ``options`` go to :func:`dataclasses.dataclass` (``frozen=True``)."""
    import dataclasses

    def wrap(cls):
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        for key, sub in section_schema(path)["properties"].items():
            kind = sub.get("type")
            annotations[key] = _PYTHON_TYPES.get(kind, Any) if isinstance(kind, str) else Any
            default = sub["default"]
            if kind == "number" and isinstance(default, int) and not isinstance(default, bool):
                default = float(default)
            meta = {"help": sub.get("description", "")}
            if isinstance(default, (list, dict)):
                value = dataclasses.field(
                    default_factory=lambda d=default: copy.deepcopy(d), metadata=meta
                )
            else:
                value = dataclasses.field(default=default, metadata=meta)
            setattr(cls, key, value)
        cls.__annotations__ = annotations
        return dataclasses.dataclass(cls, **options)

    return wrap


def section_from_dict(cls, data: dict | None, section: str):
    """Build the dataclass ``cls`` of config section ``section``; an unknown key is a ValueError
    naming the section and the known keys."""
    from dataclasses import fields

    data = dict(data or {})
    known = sorted(f.name for f in fields(cls))
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown {section} config key(s) {unknown}; known keys: {known}")
    return cls(**data)


# What a model folder must hold (any one name per kind): the checks of `model.base`.
MODEL_FILES = {
    "config": ("config.json",),
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"),
    "processor": ("preprocessor_config.json", "processor_config.json"),
}


def base_kind(base: str) -> str:
    """``embedded``, ``local`` (a folder; also any path that does not look like ``owner/name``)
    or ``hub`` (``owner/name`` with no such folder here)."""
    if base == EMBEDDED:
        return "embedded"
    if Path(base).expanduser().exists():
        return "local"
    if base.startswith((".", "/", "~")) or base.count("/") != 1:
        return "local"
    return "hub"


def missing_model_files(folder: str | Path) -> list[str]:
    """The kinds of :data:`MODEL_FILES` that ``folder`` lacks (empty = looks like a model)."""
    names = {p.name for p in Path(folder).iterdir()} if Path(folder).is_dir() else set()
    return [kind for kind, options in MODEL_FILES.items() if not names.intersection(options)]


def check_model_path(config: dict) -> None:
    base = config.get("model", {}).get("base", EMBEDDED)
    if base_kind(base) != "local":
        return
    path = Path(base).expanduser()
    if not path.exists():
        raise ConfigError(
            f"config key 'model.base': path {base!r} does not exist; "
            "fix: point it at a model folder, a hub id (owner/name) or 'embedded'"
        )
    missing = missing_model_files(path)
    if missing:
        wanted = "; ".join(f"{kind}: {' or '.join(MODEL_FILES[kind])}" for kind in missing)
        raise ConfigError(
            f"config key 'model.base': folder {base!r} is not a model (no {', '.join(missing)} "
            f"file); fix: point it at a saved model folder, which holds {wanted}"
        )


def check_image_dir(config: dict) -> None:
    """EvoLMM's ``evolmm.image_dir`` must be a folder with at least one image PIL can open:
    a run on an empty or missing folder would exit 0 having trained on nothing. Checked before
    any job (a stop at the first readable image, so a large folder costs one decode)."""
    if config.get("method") != "evolmm":
        return
    folder = config.get("evolmm", {}).get("image_dir", EMBEDDED)
    if folder == EMBEDDED:
        return
    from evovlm.methods.evolmm.stages import IMAGE_SUFFIXES, first_readable_image

    key = f"config key 'evolmm.image_dir': folder {folder!r}"
    fix = f"fix: point it at a folder of images ({', '.join(sorted(IMAGE_SUFFIXES))}) or 'embedded'"
    path = Path(folder).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"{key} {what}; {fix}")
    found, candidates = first_readable_image(path)
    if found is None:
        detail = f"{candidates} image file(s), none readable" if candidates else "no image file"
        raise ConfigError(f"{key} holds no readable image ({detail}); {fix}")
    config["evolmm"]["image_dir"] = str(path)  # rules see the expanded path


# The experiment ``results/`` was made by: written when a run starts, checked by every later run.
EXPERIMENT_RECORD = "experiment.json"


def experiment_identity(config: dict) -> dict[str, str | None]:
    """What a results folder cannot mix: method, base model and (EvoLMM) image folder."""
    evolmm = config.get("method") == "evolmm"
    return {
        "method": config.get("method"),
        "model.base": config.get("model", {}).get("base", EMBEDDED),
        "evolmm.image_dir": config.get("evolmm", {}).get("image_dir") if evolmm else None,
    }


def _same_place(a: str | None, b: str | None) -> bool:
    """Equal values, or two spellings of one local path (relative to the working directory)."""
    if a == b:
        return True
    if a is None or b is None or EMBEDDED in (a, b):
        return False
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return (pa.exists() or pb.exists()) and pa.resolve() == pb.resolve()


def _method_of_results(results: Path) -> str | None:
    """The method whose own round tables a results folder holds (for folders made before the
    record existed); None when it holds no round table."""
    from evovlm import methods

    methods.load_plugins()
    found = {p.stem for p in results.glob("round_*/*.parquet")}
    for name, method in methods.REGISTRY.items():
        others = set().union(*(m.tables for n, m in methods.REGISTRY.items() if n != name))
        if found & (set(method.tables) - others):
            return name
    return None


def check_results_identity(config: dict, results: str | Path = "results") -> None:
    """Refuse to run in a ``results/`` made with another method, base model or image folder:
    its rounds would be reused and mixed with this run's (the summary then names this run's
    method over another's metrics, and the shared warm-up model is rebuilt over the old one)."""
    results = Path(results)
    record_path = results / EXPERIMENT_RECORD
    now = experiment_identity(config)
    if record_path.is_file():
        try:
            before = json.loads(record_path.read_text())
        except (OSError, ValueError):
            raise ConfigError(
                f"{record_path} is not readable JSON; fix: restore it, or move results/ away"
            ) from None
    elif results.is_dir():
        before = {"method": _method_of_results(results)}
        if before["method"] is None:
            return
    else:
        return
    for key in ("method", "model.base", "evolmm.image_dir"):
        if key not in before or key == "evolmm.image_dir" and before.get("method") != "evolmm":
            continue
        if not _same_place(before[key], now[key]):
            raise ConfigError(
                f"config key {key!r}: {now[key]!r}, but {results}/ holds a run made with "
                f"{before[key]!r} ({record_path if record_path.is_file() else 'its round tables'}"
                f"); fix: run in another folder (snakemake --directory DIR), move {results}/ "
                f"away, or set {key} back to {before[key]!r}"
            )


def record_experiment(config: dict, results: str | Path = "results") -> Path:
    """Write :data:`EXPERIMENT_RECORD` (method, model.base, evolmm.image_dir) into ``results``
    unless it is there (:func:`check_results_identity` has checked it matches)."""
    from evovlm.metrics import write_json

    path = Path(results) / EXPERIMENT_RECORD
    if not path.is_file():
        write_json(experiment_identity(config), path)
    return path


# Jobs write their progress bars into log files, where every redraw is kept: tqdm reads its
# defaults from TQDM_* variables (tqdm >= 4.66; Hugging Face's and TRL's bars are tqdm too), so
# a job started with these redraws every 30 s instead of every step.
QUIET_PROGRESS = {"TQDM_MININTERVAL": "30", "TQDM_MAXINTERVAL": "30"}


def quiet_progress_bars(environ=None) -> None:
    """Set :data:`QUIET_PROGRESS` in ``environ`` (default ``os.environ``, which jobs inherit),
    keeping any value the user set."""
    environ = os.environ if environ is None else environ
    for key, value in QUIET_PROGRESS.items():
        environ.setdefault(key, value)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_hub_model(repo_id: str, revision: str | None = None, timeout: float = 10.0) -> str:
    """Check that hub id ``repo_id`` can be fetched: cached locally, or (online) known to the hub.

    Returns ``"cached"`` or ``"hub"``; raises a one-line :class:`ConfigError` naming ``model.base``
    otherwise, within ``timeout`` seconds (no download, no retries).
    """
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str):
        return "cached"
    key = f"config key 'model.base': hub id {repo_id!r}"
    where = "; fix: point model.base at a local model folder, or fetch it once where the hub is reachable"
    if hub_offline():
        raise ConfigError(
            f"{key} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set{where}"
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        HfApi().model_info(repo_id, revision=revision, timeout=timeout)
    except GatedRepoError:
        raise ConfigError(
            f"{key} is gated; fix: accept its licence on the hub and set HF_TOKEN"
        ) from None
    except RevisionNotFoundError:
        raise ConfigError(
            f"config key 'model.revision': {revision!r} is not a revision of {repo_id!r}; "
            "fix: give a branch, tag or commit of the model"
        ) from None
    except RepositoryNotFoundError:
        raise ConfigError(
            f"{key} is neither a folder here nor a model on the hub; "
            "fix: check the spelling (owner/name), or point it at a local model folder"
        ) from None
    except Exception as exc:  # no network, DNS, proxy, timeout: all mean "cannot check"
        reason = type(exc).__name__
        raise ConfigError(
            f"{key} is not in the local Hugging Face cache and the hub cannot be reached "
            f"({reason}){where}"
        ) from None
    return "hub"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m evovlm validate-config")
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("--schema", default=None)
    args = parser.parse_args(argv)
    with open(args.config) as fh:
        config = yaml.safe_load(fh) or {}
    try:
        validate_config(config, args.schema)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 1
    yaml.safe_dump(config, sys.stdout, sort_keys=False)
    return 0
