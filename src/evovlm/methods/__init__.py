"""Methods as plug-ins: one :class:`Method` object per self-play method, in a registry.

A method names its roles, the round tables its scoring reads (name -> table spec), how it scores
a round, how it summarises one, and how its scored samples become each role's training rows. The
generic rules (``score_rewards``, ``summarize_round``, ``train_policy``) and their scripts look
the method up by ``config["method"]`` and call it; only the generation rules differ per method.
A new method is a module that calls :func:`register` (and, for the workflow, its generation
rules and templates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

Frames = Mapping[str, pl.DataFrame]


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
    # extra per-round files the summary reads (name -> path pattern under results/round_{r}/)
    summary_files: Mapping[str, str] = field(default_factory=dict)


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    _load_builtin()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def _load_builtin() -> None:
    from evovlm.methods import evolmm, mmzero  # noqa: F401  (registers them)
