"""Reading a pipeline table with one clear line when the file is broken.

:func:`read_table` wraps :func:`evovlm.schema.read_parquet`: a missing file, a truncated or
corrupt Parquet file, a missing column, a column of the wrong type or one whose pages cannot be
decoded all become a :class:`TableError` whose message names the file and, where one is to
blame, the column. :func:`read_or_exit` is for the rule scripts: it prints that line and exits
with status 1 instead of a traceback from deep inside pyarrow.
"""

from __future__ import annotations

import os
import sys

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from evovlm.schema import SchemaError, TableSpec, read_parquet

__all__ = ["TableError", "read_or_exit", "read_table"]


class TableError(SchemaError):
    """A table file that cannot be read as its spec says; the message is one line."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _diagnose(path: str | os.PathLike, spec: TableSpec | None, exc: BaseException) -> str:
    """Which part of the file is broken: the file as a whole, or one column's data."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as whole:  # noqa: BLE001 - any failure here means the footer is unreadable
        return f"{path}: not a readable Parquet file (truncated or corrupt: {_first_line(whole)})"
    names = list(spec.names) if spec is not None else []
    names += [n for n in parquet.schema_arrow.names if n not in names]
    for name in names:
        if name not in parquet.schema_arrow.names:
            continue
        try:
            parquet.read(columns=[name])
        except Exception as column:  # noqa: BLE001
            table = f" of table {spec.name!r}" if spec is not None else ""
            return f"{path}: column {name!r}{table} is unreadable (truncated or corrupt: {_first_line(column)})"
    return f"{path}: cannot be read ({_first_line(exc)})"


def read_table(path: str | os.PathLike, spec: TableSpec | None) -> pl.DataFrame:
    """The table at ``path``, checked against ``spec`` (see :func:`evovlm.schema.read_parquet`);
    :class:`TableError` with one line naming the file (and column) when it cannot be."""
    try:
        return read_parquet(path, spec)
    except SchemaError as exc:
        raise TableError(_first_line(exc)) from None
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TableError(f"{path}: is a folder, not a Parquet file") from None
    except (OSError, ValueError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
        raise TableError(_diagnose(path, spec, exc)) from None


def read_or_exit(path: str | os.PathLike, spec: TableSpec | None) -> pl.DataFrame:
    """:func:`read_table` for rule scripts: on a broken file, print ``error: <line>`` (to the
    script's stderr, its log in a workflow, and to the console) and exit with status 1."""
    try:
        return read_table(path, spec)
    except TableError as exc:
        message = f"error: {exc}"
        print(message, file=sys.stderr, flush=True)
        if sys.__stderr__ is not None and sys.stderr is not sys.__stderr__:
            print(message, file=sys.__stderr__, flush=True)
        raise SystemExit(1) from None
