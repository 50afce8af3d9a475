"""The package's import graph: no circle, layers that point down, a config leaf.

Every ``import evovlm...``, ``from evovlm... import ...`` and relative import in ``src/evovlm``
is an edge, at module level or inside a function: a function-local import still runs, later, so
it cannot hide a circle. Importing ``evovlm.a.b`` from outside ``evovlm.a`` runs
``evovlm/a/__init__.py`` first, so that is an edge to ``evovlm.a`` too.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Low to high: a module imports from its own layer or below. The config leaf imports nothing of
# the package; ``methods`` sits on the generic layers it combines; the entry layer (the checks of
# a whole run, the training job, reports, the command line) sits on the methods.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("leaf", ("evovlm", "evovlm.config")),
    (
        "base",
        (
            "evovlm.schema",
            "evovlm.tables",
            "evovlm.record",
            "evovlm.grade",
            "evovlm.parse",
            "evovlm.prompts",
            "evovlm.gpus",
            "evovlm.modeling",
            "evovlm.processor",
            "evovlm.hfio",
            "evovlm.sandbox",
        ),
    ),
    (
        "generic",
        (
            "evovlm.engines",
            "evovlm.render",
            "evovlm.sandbox.replay",
            "evovlm.synth",
            "evovlm.stages",
            "evovlm.tiny",
            "evovlm.report",
            "evovlm.rewards",
            "evovlm.metrics",
            "evovlm.train",
        ),
    ),
    ("methods", ("evovlm.methods",)),
    (
        "entry",
        (
            "evovlm.experiment",
            "evovlm.train.job",
            "evovlm.train.__main__",
            "evovlm.warmup",
            "evovlm.evaluate",
            "evovlm.methods.mmzero.pseudolabel",
            "evovlm.compare",
            "evovlm.jobs",
            "evovlm.__main__",
        ),
    ),
]

# Imports that point from a lower layer up, each with its reason (at most 4).
UPWARD: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    local: bool  # inside a function


def _modules(src: Path = SRC) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package)."""
    found = {}
    for path in sorted((src / "evovlm").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        package = parts[-1] == "__init__"
        if package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, package)
    return found


def _module_of(name: str, modules) -> str | None:
    """The longest module prefix of a dotted name (a name imported from a module is not one)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _local_nodes(tree: ast.AST) -> set[int]:
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    return inside


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
    return [
        f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin
        for alias in node.names
    ]


def third_party(name: str, src: Path = SRC) -> set[str]:
    """The top-level packages outside evovlm that module ``name`` imports at module level."""
    modules = _modules(src)
    path, _ = modules[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = _local_nodes(tree)
    out = set()
    for node in ast.walk(tree):
        if id(node) in inside or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        out.update(n.split(".")[0] for n in names if n and n.split(".")[0] != "evovlm")
    return out


def import_graph(src: Path = SRC) -> dict[str, list[Edge]]:
    """Module -> its edges to other package modules (module-level and function-local)."""
    modules = _modules(src)
    graph: dict[str, list[Edge]] = {name: [] for name in modules}
    for name, (path, package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inside = _local_nodes(tree)
        own_package = name if package else name.rpartition(".")[0]
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for dotted in _targets(node, own_package, modules):
                target = _module_of(dotted, modules) if dotted.startswith("evovlm") else None
                if target is None:
                    continue
                parts = target.split(".")
                # the target's packages run first, unless they are this module's own
                chain = [".".join(parts[:i]) for i in range(1, len(parts))]
                for hop in [*(p for p in chain if p not in ancestors), target]:
                    if hop != name and hop in modules:
                        graph[name].append(Edge(name, hop, node.lineno, id(node) in inside))
    return graph


def cycles(graph: dict[str, list[Edge]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter({e.target for e in graph[root]}))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter({e.target for e in graph[child]})))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def layer_of(module: str) -> int:
    """The layer of ``module``: its own entry, else its nearest listed package's."""
    best, depth = None, -1
    for level, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and name.count(".") > depth:
                best, depth = level, name.count(".")
    if best is None:
        raise KeyError(f"{module} is in no layer of tests/test_imports.py LAYERS; add it")
    return best


def _describe(edges) -> str:
    return "; ".join(
        f"{e.source} -> {e.target} (line {e.line}{', in a function' if e.local else ''})"
        for e in edges
    )


# ---------------------------------------------------------------------------------------------


def test_the_package_has_no_import_circle():
    graph = import_graph()
    found = cycles(graph)
    detail = [
        _describe(e for m in component for e in graph[m] if e.target in component)
        for component in found
    ]
    assert not found, f"import circles: {found}\n" + "\n".join(detail)


def test_the_config_leaf_imports_nothing_of_the_package():
    graph = import_graph()
    assert [e for e in graph["evovlm.config"] if e.target != "evovlm"] == []
    assert third_party("evovlm.config") <= {
        "__future__",
        "copy",
        "os",
        "re",
        "pathlib",
        "typing",
        "yaml",
    }


def test_every_module_has_a_layer_and_imports_point_down():
    graph = import_graph()
    upward = [
        e for edges in graph.values() for e in edges if layer_of(e.target) > layer_of(e.source)
    ]
    unexplained = [e for e in upward if (e.source, e.target) not in UPWARD]
    assert not unexplained, "imports from a lower layer up: " + _describe(unexplained)
    assert len(UPWARD) <= 4


def test_the_graph_sees_a_function_local_circle(tmp_path):
    """The check itself: a circle closed only by a function-local import is found."""
    package = tmp_path / "evovlm"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from evovlm.sub import high\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "high.py").write_text("from .. import low\n")
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["evovlm.low", "evovlm.sub.high"]]
    assert any(e.local for e in graph["evovlm.low"])


@pytest.mark.parametrize("module", ["evovlm.config"])
def test_the_leaf_imports_alone(module):
    """Importing the leaf in a fresh interpreter loads no other package module."""
    import subprocess

    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith('evovlm')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == str(sorted({"evovlm", module}))
