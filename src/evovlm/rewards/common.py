"""What every method's rewards share: the reward configs, reward components and how they are
combined, and the frame helpers of the scoring pass.

A :class:`Component` is one named term of a role's reward: a function over the role's whole
table that returns one column, and the config field holding its weight. ``score_mmzero`` stores
each component in its own column and the reward is ``sum_c weight_c * column_c`` (a missing value
counts 0), in the order the role's components are listed: :func:`combine`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import polars as pl

from evovlm.config import schema_dataclass, section_schema

_C = TypeVar("_C")


def _from_dict(cls: type[_C], data: Mapping[str, Any] | None) -> _C:
    data = dict(data or {})
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    values = {}
    for name, value in data.items():
        default = getattr(cls, name)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError(f"{cls.__name__}.{name} must be a string, got {value!r}")
            values[name] = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{cls.__name__}.{name} must be a number, got {value!r}")
            values[name] = type(default)(value) if isinstance(default, float) else value
    config = cls(**values)
    config.validate()  # type: ignore[attr-defined]
    return config


class _RewardConfig:
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        """Build from the ``rewards.<method>`` config mapping; ValueError on an unknown key."""
        return _from_dict(cls, data)

    def validate(self) -> None:
        if self.grade_rel_tol < 0:  # type: ignore[attr-defined]
            raise ValueError(f"{self._section}.grade_rel_tol must be >= 0")

    _section = "rewards"


@schema_dataclass("rewards.mmzero", frozen=True)
class MMZeroRewardConfig(_RewardConfig):
    """Constants of the MM-Zero rewards (config ``rewards.mmzero``); defaults from docs/spec.md.
    Each key, its default and its help are declared once, in the schema's ``rewards.mmzero``."""

    _section = "rewards.mmzero"

    def validate(self) -> None:
        if not 0 < self.diversity_threshold <= 1:
            raise ValueError("rewards.mmzero.diversity_threshold must be in (0, 1]")
        if not 0 <= self.content_type_share < 1:
            raise ValueError("rewards.mmzero.content_type_share must be in [0, 1)")
        if not self.hard_agreement_min <= self.hard_agreement_max:
            raise ValueError("rewards.mmzero.hard_agreement_min must not exceed hard_agreement_max")
        super().validate()


@schema_dataclass("rewards.evolmm", frozen=True)
class EvoLMMRewardConfig(_RewardConfig):
    """Constants of the EvoLMM rewards (config ``rewards.evolmm``); defaults from docs/spec.md.
    Each key, its default and its help are declared once, in the schema's ``rewards.evolmm``."""

    _section = "rewards.evolmm"

    def validate(self) -> None:
        # The schema's enum names the Solver rewards of evovlm.rewards.evolmm
        # (EVOLMM_SOLVER_REWARDS; tests/test_rewards.py holds the two equal).
        names = section_schema(self._section)["properties"]["solver_reward"]["enum"]
        if self.solver_reward not in names:
            raise ValueError(
                f"rewards.evolmm.solver_reward must be one of {sorted(names)}, "
                f"got {self.solver_reward!r}"
            )
        if self.entropy_sigma <= 0:
            raise ValueError("rewards.evolmm.entropy_sigma must be > 0")
        if self.length_scale_words <= 0:
            raise ValueError("rewards.evolmm.length_scale_words must be > 0")
        super().validate()


MMZERO_DEFAULTS = MMZeroRewardConfig()
EVOLMM_DEFAULTS = EvoLMMRewardConfig()


# ---------------------------------------------------------------------------------------------
# Components


@dataclass(frozen=True)
class Component:
    """One term of a role's reward: ``compute(table, cfg)`` is its column (stored under
    ``name``), ``weight`` the config field that multiplies it in the reward."""

    name: str
    weight: str
    compute: Callable[[pl.DataFrame, Any], pl.Series]


def add_components(table: pl.DataFrame, components: Sequence[Component], cfg) -> pl.DataFrame:
    """``table`` with each component's column (each computed once, in order)."""
    for component in components:
        table = table.with_columns(component.compute(table, cfg).alias(component.name))
    return table


def combine(components: Sequence[Component], cfg) -> pl.Expr:
    """``sum_c weight_c * column_c`` in the components' order, a missing value counting 0."""
    total = None
    for component in components:
        term = pl.col(component.name).cast(pl.Float64).fill_null(0.0) * float(
            getattr(cfg, component.weight)
        )
        total = term if total is None else total + term
    return pl.lit(0.0) if total is None else total


def floats(name: str, values: Sequence[float | None]) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64)


# ---------------------------------------------------------------------------------------------
# Frames


def require(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks column(s) {', '.join(missing)}")
    return frame.select(columns)


def left_join(left: pl.DataFrame, right: pl.DataFrame, on: str) -> pl.DataFrame:
    """Left join that keeps the left frame's row order (``right`` has one row per key)."""
    return left.with_row_index("_row").join(right, on=on, how="left").sort("_row").drop("_row")


def rows_frame(table: pl.DataFrame, schema: Mapping[str, Any]) -> pl.DataFrame:
    """The role's output: the schema's columns in its order and types, sorted by ``sample_id``
    (stable)."""
    out = table.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])
    return out.sort("sample_id", maintain_order=True)
