"""Methods as plug-ins: one :class:`Method` object per self-play method, in a registry.

A method names its roles, the round tables its scoring reads (name -> table spec), how it scores
a round, how it summarises one, and how its scored samples become each role's training rows. The
generic rules (``score_rewards``, ``summarize_round``, ``train_policy``) and their scripts look
the method up by ``config["method"]`` and call it; only the generation rules differ per method.
What other modules would otherwise look up by method name is a field here too: the Solver's
answer format (:class:`SolverFormat`: evaluation and the warm-up's simple pictures), the format
warm-up's roles and examples, the rates ``evovlm compare`` shows, the round's gallery, each role's
prompt templates (the model card) and the "auto" train settings. A new method is a module that
calls :func:`register`: besides the functions above it names its generation stages (stage ->
table spec), the Snakemake file with its generation rules, its config section's JSON schema and
its table specs and prompt templates. A module outside the package is
loaded by the config key ``plugins`` (:func:`load_plugins`); nothing else in the workflow changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from evovlm.methods.base import REGISTRY, Frames, Method, SolverFormat, register

__all__ = [
    "BUILTIN",
    "REGISTRY",
    "Frames",
    "Method",
    "SolverFormat",
    "all_roles",
    "all_stages",
    "from_config",
    "get",
    "load_plugins",
    "register",
]

BUILTIN = ("mmzero", "evolmm")


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import the built-in methods and each module of ``modules`` (each registers its method)."""
    _load_builtin()
    for module in modules or ():
        importlib.import_module(module)


def from_config(config: Mapping[str, Any]) -> Method:
    """The run's method: the config's ``plugins`` loaded, then ``method`` looked up."""
    load_plugins(config.get("plugins") or ())
    return get(config["method"])


def get(name: str) -> Method:
    _load_builtin()
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def all_roles() -> list[str]:
    """Every registered method's roles (the workflow's role wildcard), in registration order."""
    _load_builtin()
    return list(dict.fromkeys(r for m in REGISTRY.values() for r in m.roles))


def all_stages() -> list[str]:
    """Every registered method's generation stages (the workflow's stage wildcard)."""
    _load_builtin()
    return list(dict.fromkeys(s for m in REGISTRY.values() for s in m.stages))


def _load_builtin() -> None:
    # Lazy: the built-in methods import the reward, metrics and training modules (about a second:
    # they build their config dataclasses from the schema), which the Method record does not need.
    from evovlm.methods import evolmm, mmzero  # noqa: F401  (registers them)
