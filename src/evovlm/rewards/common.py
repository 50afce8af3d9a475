"""What every method's rewards share: the base of the reward configs (each method's own config
sits with its rewards), reward components and how they are combined, and the frame helpers of the
scoring pass.

A :class:`Component` is one named term of a role's reward: a function over the role's whole
table that returns one column, and the config field holding its weight (none: weight 1).
``score_mmzero`` and ``score_evolmm`` compute each component as its own column and the reward is
``sum_c weight_c * column_c`` (a missing value counts 0), in the order the role's components are
listed: :func:`combine`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import polars as pl

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
        if default is None or isinstance(default, tuple | list):  # a list of names, or none
            if value is not None and (
                not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value)
            ):
                raise ValueError(f"{cls.__name__}.{name} must be a list of names, got {value!r}")
            values[name] = None if value is None else tuple(value)
        elif isinstance(default, str):
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


class RewardConfig:
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None):
        """Build from the ``rewards.<method>`` config mapping; ValueError on an unknown key."""
        return _from_dict(cls, data)

    def validate(self) -> None:
        if self.grade_rel_tol < 0:  # type: ignore[attr-defined]
            raise ValueError(f"{self._section}.grade_rel_tol must be >= 0")

    _section = "rewards"


# ---------------------------------------------------------------------------------------------
# Components


@dataclass(frozen=True)
class Component:
    """One term of a role's reward: ``compute(table, cfg)`` is its column (stored under
    ``name``), ``weight`` the config field that multiplies it in the reward."""

    name: str
    weight: str | None  # None: the term counts as it is (weight 1)
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
        term = pl.col(component.name).cast(pl.Float64).fill_null(0.0)
        if component.weight is not None:
            term = term * float(getattr(cfg, component.weight))
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
