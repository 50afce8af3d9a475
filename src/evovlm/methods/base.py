"""The :class:`Method` record and the registry (re-exported by :mod:`evovlm.methods`; a method's
module imports them from here, so the registry's lookups can import the built-in methods)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from evovlm import schema

Frames = Mapping[str, pl.DataFrame]


@dataclass(frozen=True)
class SolverFormat:
    """How a method's Solver answers a question about a picture: what evaluation asks and reads,
    and what the warm-up's simple-picture items teach it to write."""

    # the role whose policy is evaluated (a lineage: results/round_{r}/checkpoint/<role>)
    role: str
    # the prompt template it is asked with (``question`` its one field)
    template: str
    # the reply -> (the prediction, whether the reply kept the format)
    extract: Callable[[str | None], tuple[str | None, bool]]
    # (reasoning, answer) -> a reply in that format
    write: Callable[[str, str], str]


@dataclass(frozen=True)
class Method:
    name: str
    roles: tuple[str, ...]
    # round tables read by scoring, the summary and training: file stem -> schema spec name
    tables: Mapping[str, str]
    # the tables' columns scoring does not need (dropped on read to save memory)
    scoring_drop: Mapping[str, tuple[str, ...]]
    # (tables, reward config mapping) -> {role: rewards frame}
    score: Callable[[Frames, Mapping[str, Any] | None], dict[str, pl.DataFrame]]
    # (tables, rewards, training summaries, stage seconds, extra inputs) -> metrics dict
    summarize: Callable[..., dict[str, Any]]
    # (tables, rewards, options) -> {role: training rows}
    role_samples: Callable[..., dict[str, pl.DataFrame]]
    # generation stages written as shards and gathered (stage -> table spec name)
    stages: Mapping[str, str] = field(default_factory=dict)
    # extra per-round files the summary reads (name -> path pattern under results/round_{r}/)
    summary_files: Mapping[str, str] = field(default_factory=dict)
    # (the run's config) -> options for role_samples
    sample_options: Callable[[Mapping[str, Any]], dict[str, Any]] = lambda config: {}
    # what "auto" means in the train section for this method
    train_defaults: Mapping[str, Any] = field(
        default_factory=lambda: {
            "method": "full",
            "freeze_vision_tower": False,
            "kl_control": "fixed",
        }
    )
    # A plug-in from outside the package: the Snakemake file with its generation rules (the
    # built-in methods' rule files are always included), the JSON schema of its config section
    # ``config[name]`` and of ``rewards.{name}``, and its table specs (name -> TableSpec).
    rules: str | None = None
    config_schema: Mapping[str, Any] | None = None
    reward_schema: Mapping[str, Any] | None = None
    specs: Mapping[str, Any] = field(default_factory=dict)
    # whether the report's per-round gallery and figures apply (they read MM-Zero/EvoLMM tables)
    report: bool = True
    # the Solver's answer format (evaluation and the warm-up's simple pictures); None: no Solver
    solver: SolverFormat | None = None
    # the format warm-up of the embedded model: the built-in prompt templates whose examples
    # evovlm.warmup.build_examples writes, and a plug-in's own (n_items, seed) -> examples
    warmup_roles: tuple[str, ...] = ()
    warmup_examples: Callable[[int, int], list[dict[str, Any]]] | None = None
    # the rates (metrics.json ``rates`` keys) that `evovlm compare` sets side by side
    rates: tuple[str, ...] = ()
    # (round, tables, rewards, k, seed) -> the round's gallery page (HTML); None: no gallery
    gallery: Callable[..., str] | None = None
    # role -> the prompt templates it answers (the model card shows them)
    templates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # whether the report checks pseudo-labels (the Solver's majority vote on the benchmark items)
    pseudolabels: bool = False

    def role_templates(self, roles: Iterable[str]) -> list[str]:
        """The prompt templates ``roles`` answer, in order."""
        return [t for role in roles for t in self.templates.get(role, ())]


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its table specs to :data:`evovlm.schema.SPECS`)."""
    for name, spec in method.specs.items():
        schema.SPECS.setdefault(name, spec)
    REGISTRY[method.name] = method
    return method
