"""Parquet schemas of every stage, declared once, checked on write and on read.

Writes are atomic (temp file in the same folder, then ``os.replace``) so an interrupted job
never leaves a half file behind. A missing column or a wrong type is a :class:`SchemaError`
naming the file and the column. Each file carries the ``datasets`` features of its columns
(:func:`with_features`), so image columns load as PIL images, and the mode the umask gives
(:func:`honour_umask`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # Hugging Face image struct
TOKENS = pa.list_(pa.int32())
LOGPROBS = pa.list_(pa.float32())


class SchemaError(ValueError):
    pass


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, pa.DataType], ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(list(self.columns))

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]


_COMPLETION = (
    ("seed", pa.int64()),
    ("prompt", pa.string()),  # chat messages as JSON (images as {"type": "image"} placeholders)
    ("prompt_ids", TOKENS),
    ("completion", pa.string()),
    ("completion_ids", TOKENS),
    ("logprobs", LOGPROBS),  # sampling policy's per-token log-probabilities
    ("finish_reason", pa.string()),
)

PROPOSALS = TableSpec(
    "proposals",
    (
        ("round", pa.int32()),
        ("proposal_id", pa.string()),
        ("group_id", pa.string()),  # one Proposer prompt (topic x prompt index)
        ("topic", pa.string()),
        ("sample_index", pa.int32()),
        *_COMPLETION,
        ("parse_ok", pa.bool_()),
        ("parse_error", pa.string()),
        ("content_type", pa.string()),
        ("caption", pa.string()),
        ("easy_question", pa.string()),
        ("easy_answer", pa.string()),
        ("hard_question", pa.string()),
        ("hard_answer", pa.string()),
    ),
)

PROGRAMS = TableSpec(
    "programs",
    (
        ("round", pa.int32()),
        ("program_id", pa.string()),
        ("proposal_id", pa.string()),
        ("group_id", pa.string()),  # the proposal: k programs per proposal
        ("language", pa.string()),
        ("sample_index", pa.int32()),
        *_COMPLETION,
        ("code", pa.string()),
        ("extract_status", pa.string()),  # ok | empty | not_code
    ),
)

RENDERS = TableSpec(
    "renders",
    (
        ("program_id", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("image", IMAGE),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("render_ms", pa.float64()),
    ),
)

ANSWERS = TableSpec(
    "answers",
    (
        ("round", pa.int32()),
        ("answer_id", pa.string()),
        ("program_id", pa.string()),
        ("proposal_id", pa.string()),
        ("question_kind", pa.string()),  # easy | hard
        ("group_id", pa.string()),  # (image, question): program_id + question kind
        ("question", pa.string()),
        ("sample_index", pa.int32()),
        *_COMPLETION,
        ("answer", pa.string()),  # content of the last \boxed{}, null when absent
        ("format_ok", pa.bool_()),
    ),
)

REWARDS = TableSpec(
    "rewards",
    (
        ("sample_id", pa.string()),
        ("group_id", pa.string()),
        ("reward", pa.float64()),
    ),
)

IMAGES = TableSpec(
    "images",
    (
        ("round", pa.int32()),
        ("image_id", pa.string()),
        ("source", pa.string()),  # path relative to evolmm.image_dir
        ("image", IMAGE),
        ("width", pa.int32()),
        ("height", pa.int32()),
    ),
)

QUESTIONS = TableSpec(
    "questions",
    (
        ("round", pa.int32()),
        ("question_id", pa.string()),
        ("image_id", pa.string()),
        ("group_id", pa.string()),  # the image: n questions per image
        ("sample_index", pa.int32()),
        *_COMPLETION,
        ("parse_ok", pa.bool_()),
        ("parse_error", pa.string()),
        ("question", pa.string()),
        ("rationale", pa.string()),
    ),
)

EVOLMM_ANSWERS = TableSpec(
    "evolmm_answers",
    (
        ("round", pa.int32()),
        ("answer_id", pa.string()),
        ("question_id", pa.string()),
        ("image_id", pa.string()),
        ("group_id", pa.string()),  # the question: N answers per question
        ("sample_index", pa.int32()),
        *_COMPLETION,
        ("answer", pa.string()),  # inside <answer>, else the last non-empty line
        ("words_before_answer", pa.int32()),
    ),
)

BENCHMARK = TableSpec(
    "benchmark",
    (
        ("benchmark", pa.string()),  # "procedural" (built in) or the name given in eval.benchmarks
        ("item_id", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("choices", pa.list_(pa.string())),  # multiple-choice options, or null
        ("image", IMAGE),
    ),
)

EVAL = TableSpec(
    "eval",
    (
        ("policy", pa.string()),  # "base" or "round_<r>" (that round's trained Solver)
        ("benchmark", pa.string()),
        ("item_id", pa.string()),
        ("question", pa.string()),
        ("reference", pa.string()),
        ("completion", pa.string()),
        ("prediction", pa.string()),  # the reply's last \boxed{}, or null
        ("format_ok", pa.bool_()),
        ("correct", pa.bool_()),
    ),
)

SPECS = {
    s.name: s
    for s in (
        PROPOSALS,
        PROGRAMS,
        RENDERS,
        ANSWERS,
        REWARDS,
        IMAGES,
        QUESTIONS,
        EVOLMM_ANSWERS,
        BENCHMARK,
        EVAL,
    )
}


# ---------------------------------------------------------------------------------------------
# Hugging Face features

# Arrow type -> datasets Value dtype.
_VALUE = {
    pa.bool_(): "bool",
    pa.int8(): "int8",
    pa.int16(): "int16",
    pa.int32(): "int32",
    pa.int64(): "int64",
    pa.uint8(): "uint8",
    pa.uint32(): "uint32",
    pa.uint64(): "uint64",
    pa.float16(): "float16",
    pa.float32(): "float32",
    pa.float64(): "float64",
    pa.string(): "string",
    pa.large_string(): "large_string",
    pa.binary(): "binary",
    pa.large_binary(): "large_binary",
    pa.null(): "null",
}


def feature(dtype: pa.DataType) -> dict[str, Any]:
    """The ``datasets`` feature (as its JSON dict) of one Arrow type; image structs are Image()."""
    if dtype.equals(IMAGE):
        return {"_type": "Image"}
    if dtype in _VALUE:
        return {"dtype": _VALUE[dtype], "_type": "Value"}
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return {"feature": feature(dtype.value_type), "_type": "List"}
    if pa.types.is_struct(dtype):
        return {dtype.field(i).name: feature(dtype.field(i).type) for i in range(dtype.num_fields)}
    if pa.types.is_timestamp(dtype):
        return {"dtype": f"timestamp[{dtype.unit}]", "_type": "Value"}
    from datasets import Features  # anything else: let datasets name it

    return Features.from_arrow_schema(pa.schema([("x", dtype)])).to_dict()["x"]


def with_features(table: pa.Table) -> pa.Table:
    """``table`` with the ``datasets`` features of its columns in the ``huggingface`` metadata."""
    features = {f.name: feature(f.type) for f in table.schema}
    metadata = dict(table.schema.metadata or {})
    metadata[b"huggingface"] = json.dumps({"info": {"features": features}}).encode()
    return table.replace_schema_metadata(metadata)


# ---------------------------------------------------------------------------------------------
# File modes


def current_umask() -> int:
    """The process's umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: str | os.PathLike) -> None:
    """Give ``path`` (a file, or a folder and everything in it) the mode a plain ``open`` or
    ``mkdir`` would: ``tempfile.mkstemp`` and safetensors create files 0600, so atomic writes and
    saved weights would otherwise be unreadable to the group and others whatever the umask."""
    mask = current_umask()
    path = Path(path)
    targets = [path]
    if path.is_dir():
        targets += list(path.rglob("*"))
    for target in targets:
        if target.is_symlink():
            continue
        executable = target.is_dir() or target.stat().st_mode & 0o100
        os.chmod(target, (0o777 if executable else 0o666) & ~mask)


# ---------------------------------------------------------------------------------------------
# Reading and writing


def empty_frame(spec: TableSpec) -> pl.DataFrame:
    return pl.from_arrow(spec.schema.empty_table())


def frame_from_rows(rows: list[dict], spec: TableSpec) -> pl.DataFrame:
    """Row dicts as a frame with the table's declared column types (empty rows: empty table)."""
    if not rows:
        return empty_frame(spec)
    return pl.DataFrame(rows, schema=empty_frame(spec).schema)


def _check(table: pa.Table, spec: TableSpec, path: str | os.PathLike) -> pa.Table:
    for name, dtype in spec.columns:
        if name not in table.column_names:
            raise SchemaError(f"{path}: missing column {name!r} of table {spec.name!r}")
        actual = table.schema.field(name).type
        if actual != dtype:
            try:
                table = table.set_column(
                    table.column_names.index(name), name, table.column(name).cast(dtype)
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"{path}: column {name!r} of table {spec.name!r} has type {actual}, expected {dtype}"
                ) from exc
    extra = [c for c in table.column_names if c not in spec.names]
    return table.select(spec.names + extra)


def write_parquet(
    df: pl.DataFrame | pa.Table,
    path: str | os.PathLike,
    spec: TableSpec | None,
    round_: int | None = None,
) -> None:
    """Check ``df`` against ``spec`` and write it atomically with zstd.

    ``round_``: add a ``round`` column (first) when the table has none. The file carries the
    ``datasets`` features in its metadata (image columns decode to PIL in ``datasets``).
    """
    table = df.to_arrow() if isinstance(df, pl.DataFrame) else df
    if round_ is not None and "round" not in table.column_names:
        table = table.add_column(0, "round", pa.array([round_] * table.num_rows, pa.int32()))
    if spec is not None:
        table = _check(table, spec, path)
    table = with_features(table)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        honour_umask(tmp)  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_parquet(path: str | os.PathLike, spec: TableSpec | None) -> pl.DataFrame:
    table = pq.read_table(path)
    if spec is not None:
        table = _check(table, spec, path)
    return pl.from_arrow(table)


def gather(paths: list[str], spec: TableSpec, out: str | os.PathLike) -> pl.DataFrame:
    """Concatenate shard files in stable order (by the table's id column) and write ``out``."""
    frames = [read_parquet(p, spec) for p in paths]
    frame = pl.concat(frames, how="vertical_relaxed") if frames else empty_frame(spec)
    frame = frame.sort(spec.names[1] if spec.names[0] == "round" else spec.names[0])
    write_parquet(frame, out, spec)
    return frame
