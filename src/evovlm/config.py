"""The config leaf: the schema, its defaults, and one-line errors that name the key.

Imports nothing of evovlm, so every module may import it. The JSON Schema ships inside the
package (``evovlm/schemas/config.schema.yaml``); the workflow validates against the same file.
:func:`check_schema` fills defaults in place (like Snakemake's ``validate``) and raises
:class:`ConfigError` whose message is a single line:
``config key 'mmzero.proposer.n': 1 is less than the minimum of 2. Fix: proposals per prompt ...``.
A run's whole check, with the registered methods and plug-ins, is
:func:`evovlm.experiment.validate_config`; the model-folder checks are in :mod:`evovlm.modeling`.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

# Package data (pyproject.toml), so an installed evovlm finds it outside a checkout too.
DEFAULT_SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"
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


def check_schema(config: dict, schema: dict) -> dict:
    """Check ``config`` against ``schema`` in place: text numbers coerced, the first error as a
    one-line :class:`ConfigError` (an unknown key first), then the defaults filled in."""
    from jsonschema import Draft202012Validator

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
