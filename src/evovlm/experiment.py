"""A run's config as an experiment: the checks that need the registered methods and the
package's other layers, and the record of which experiment a ``results/`` folder holds.

:func:`validate_config` is the whole check the workflow makes before any job: plug-ins loaded
and their config sections added to the schema (:func:`schema_with_methods`), the schema
(:func:`evovlm.config.check_schema`), the model folder (:func:`evovlm.modeling.check_model_path`),
benchmark files, ``train.trl`` options and the logger. Its errors are one-line
:class:`~evovlm.config.ConfigError`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

from evovlm import methods
from evovlm.config import (
    EMBEDDED,
    ConfigError,
    check_benchmark_paths,
    check_logger,
    check_schema,
    load_schema,
)
from evovlm.methods.evolmm.stages import IMAGE_SUFFIXES, first_readable_image
from evovlm.metrics import write_json
from evovlm.modeling import check_model_path
from evovlm.train.config import check_trl_options


def validate_config(config: dict, schema: dict | str | Path | None = None) -> dict:
    """Validate ``config`` in place (defaults filled) and return it; raise ConfigError."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    if not isinstance(config, dict):
        raise ConfigError("config must be a mapping of keys to values (check the YAML file)")
    schema = schema_with_methods(schema, config)
    check_schema(config, schema)
    check_model_path(config)
    check_benchmark_paths(config)
    check_trl_options(config.get("train", {}).get("trl"))  # imports TRL only for train.trl options
    check_logger(config)
    return config


def schema_with_methods(schema: dict, config: dict | None = None) -> dict:
    """``schema`` with the registered methods: ``method`` accepts every registered name, and a
    plug-in method (loaded from the config's ``plugins``) brings its config and reward sections.
    """
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


def check_image_dir(config: dict) -> None:
    """EvoLMM's ``evolmm.image_dir`` must be a folder with at least one image PIL can open:
    a run on an empty or missing folder would exit 0 having trained on nothing. Checked before
    any job (a stop at the first readable image, so a large folder costs one decode)."""
    if config.get("method") != "evolmm":
        return
    folder = config.get("evolmm", {}).get("image_dir", EMBEDDED)
    if folder == EMBEDDED:
        return
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
    path = Path(results) / EXPERIMENT_RECORD
    if not path.is_file():
        write_json(experiment_identity(config), path)
    return path


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
