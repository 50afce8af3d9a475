"""An experiment remembers its config: ``results/config.yaml``.

The first run in a folder writes the resolved config (defaults filled) beside its results. Later
commands in that folder (another run, ``--report``, a dry run) start from that record instead of
``config/config.yaml`` (and, for the embedded model, ``config/embedded.yaml``); what the command line gives (``--configfile``, ``--config``) is layered on
it. A change that would make the results a different experiment stops before any job, naming the
keys, unless the command line asks for it with ``new_experiment=true``. Execution-only keys (how
the run is executed, never what it computes) may differ, and ``rounds`` may be raised (a run is
continued with ``--config rounds=5``). A second experiment goes in its own folder:
``snakemake --directory DIR`` with the same Snakefile.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

RECORD = "results/config.yaml"
# The command-line flag that accepts a change of this folder's experiment (never recorded).
NEW_EXPERIMENT = "new_experiment"

# Keys (or sections) that change how a run executes, never its results: they may differ from
# the record. engine.*: the engines give the same samples (tests/test_engine_contract.py);
# shards: the same rows (tests/test_workflow_e2e.py); the rest are places, logging and resume.
EXECUTION_ONLY = (
    "engine",
    "shards",
    "resources_dir",
    "train.report_to",
    "train.keep_trl_checkpoints",
    "train.save_steps",
    "stop_on_collapse",  # whether to stop on a warning, never what a round computes
)

_TRUE = {"true", "yes", "on", "1"}


def execution_keys(section: str) -> list[str]:
    """The execution-only keys of config section ``section`` (``train`` -> report_to, ...)."""
    prefix = section + "."
    return [k[len(prefix) :] for k in EXECUTION_ONLY if k.startswith(prefix)]


def result_params(config: dict, section: str) -> dict:
    """Config section ``section`` without its execution-only keys: a rule's params, so that
    switching logging on (train.report_to) never reruns training."""
    skip = set(execution_keys(section))
    return {k: v for k, v in config[section].items() if k not in skip}


def pop_flag(config: dict) -> bool:
    """Remove ``new_experiment`` from ``config`` (it is no config key); True when it was set."""
    value = config.pop(NEW_EXPERIMENT, False)
    return value is True or str(value).strip().lower() in _TRUE


def load_record(path: str | Path = RECORD) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    with open(path) as fh:
        record = yaml.safe_load(fh)
    return record if isinstance(record, dict) else None


def layer(record: dict, overrides: dict) -> dict:
    """The record with the command line's overrides on top (nested keys merged, as Snakemake
    merges ``--config`` into a config file; a list is replaced whole)."""
    out = copy.deepcopy(record)

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = copy.deepcopy(value)

    merge(out, {k: v for k, v in overrides.items() if k != NEW_EXPERIMENT})
    return out


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict) or not config:
        return {prefix: config} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _execution_only(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in EXECUTION_ONLY)


def changed_keys(record: dict, config: dict) -> list[str]:
    """Dotted keys whose value in ``config`` makes it another experiment than ``record``: every
    difference except execution-only keys and a raised ``rounds``."""
    old, new = _flat(record), _flat(config)
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b or _execution_only(key):
            continue
        if key == "rounds" and isinstance(a, int) and isinstance(b, int) and b > a:
            continue
        changed.append(key)
    return changed


def change_message(record: dict, config: dict, keys: list[str], path: str = RECORD) -> str:
    """One line: which keys differ from the record, and the two ways on."""
    old, new = _flat(record), _flat(config)
    shown = ", ".join(f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in keys[:6])
    more = f" and {len(keys) - 6} more" if len(keys) > 6 else ""
    return (
        f"{path} holds this folder's experiment and the command line changes {shown}{more}; "
        "fix: run it as a new experiment in its own folder (snakemake --directory DIR ...), "
        f"or add --config {NEW_EXPERIMENT}=true to change this one (reruns what the keys touch)"
    )


def write_record(config: dict, path: str | Path = RECORD) -> None:
    """Write the resolved config (atomically: a half-written record would hide the experiment)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# This folder's experiment: the resolved config of its runs (written by the workflow).\n"
        "# Later commands here start from it; see README, 'One folder, one experiment'.\n"
        + yaml.safe_dump(copy.deepcopy(config), sort_keys=False)
    )
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text)
    tmp.replace(path)
