"""Functions that do one thing: none in ``src/`` is longer than 80 lines (``def`` line to last
line, decorators left out, as :mod:`ast` counts them)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LIMIT = 80


def long_functions(root: Path, limit: int = LIMIT) -> list[tuple[str, int]]:
    """``file:name`` and length of each function in ``root`` longer than ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append((f"{path.relative_to(root).as_posix()}:{node.name}", length))
    return found


def test_no_function_in_src_is_over_80_lines():
    too_long = long_functions(SRC)
    assert not too_long, f"functions over {LIMIT} lines: {too_long}"


def test_the_walk_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    assert long_functions(tmp_path) == [("m.py:long", LIMIT + 1)]
