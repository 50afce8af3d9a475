"""A broken table file makes the reading rule fail with one line naming the file (and the
column), not a traceback from inside pyarrow."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evovlm.schema import RENDERS
from evovlm.tables import TableError, read_table


def renders_table(n: int = 50) -> pa.Table:
    return pa.Table.from_pydict(
        {
            "program_id": [f"p{i}" for i in range(n)],
            "status": ["ok"] * n,
            "error": [None] * n,
            "image": [{"bytes": b"\x89PNG" + bytes(200), "path": None}] * n,
            "width": [448] * n,
            "height": [224] * n,
            "render_ms": [1.5] * n,
        },
        schema=RENDERS.schema,
    )


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_good_file_reads(tmp_path):
    path = tmp_path / "renders.parquet"
    pq.write_table(renders_table(), path)
    assert read_table(path, RENDERS).height == 50


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "renders.parquet"
    pq.write_table(renders_table(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(TableError) as exc:
        read_table(path, RENDERS)
    message = one_line(exc)
    assert message.startswith(f"{path}: ") and "truncated or corrupt" in message


def test_corrupt_column_pages_name_the_column(tmp_path):
    path = tmp_path / "renders.parquet"
    pq.write_table(renders_table(), path, compression="zstd")
    parquet = pq.ParquetFile(path)
    column = parquet.metadata.row_group(0).column(3)  # image.bytes
    start = column.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 20 : start + 60] = b"\xff" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(TableError) as exc:
        read_table(path, RENDERS)
    message = one_line(exc)
    assert message.startswith(f"{path}: ") and "'image'" in message, message


def test_missing_and_mistyped_columns(tmp_path):
    path = tmp_path / "renders.parquet"
    pq.write_table(renders_table().drop_columns(["status"]), path)
    with pytest.raises(TableError) as exc:
        read_table(path, RENDERS)
    assert one_line(exc) == f"{path}: missing column 'status' of table 'renders'"

    table = renders_table()
    table = table.set_column(4, "width", pa.array(["wide"] * table.num_rows))
    pq.write_table(table, path)
    with pytest.raises(TableError) as exc:
        read_table(path, RENDERS)
    message = one_line(exc)
    assert message.startswith(f"{path}: column 'width'") and "expected int32" in message


def test_missing_file_and_not_parquet(tmp_path):
    with pytest.raises(TableError) as exc:
        read_table(tmp_path / "nope.parquet", RENDERS)
    assert one_line(exc) == f"{tmp_path / 'nope.parquet'}: no such file"
    path = tmp_path / "text.parquet"
    path.write_text("program_id,status\np1,ok\n")
    with pytest.raises(TableError) as exc:
        read_table(path, RENDERS)
    assert "not a readable Parquet file" in one_line(exc)


def test_rule_script_exits_with_one_line(tmp_path):
    """What a rule script does (workflow/scripts/*.py call read_or_exit): status 1, one line on
    stderr, no traceback."""
    path = tmp_path / "renders.parquet"
    pq.write_table(renders_table(), path)
    path.write_bytes(path.read_bytes()[:300])
    script = textwrap.dedent(
        f"""
        from evovlm.schema import RENDERS
        from evovlm.tables import read_or_exit
        read_or_exit({str(path)!r}, RENDERS)
        print("not reached")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), out.stderr
