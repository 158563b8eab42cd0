"""The package's layout as a test: imports go only downward, no cycles, modules one sitting long.

The layers, lowest first (a module may import from its own layer or below, never above)::

    0  base        labels, _checks, distributed, plotting, widgets, course_files, toy_language
    1  components  layers, loss/, heads/
    2  models      model, speculative, data, memory, integrations/, exercises/
    3  training    training/
    4  command     cli, __main__

Imports under ``if TYPE_CHECKING:`` are annotations only (they do not run), so they are left out;
an import inside a function runs when the function does, so it counts.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aptt_edu"

LAYERS = {
    "aptt_edu": 0,  # the package's __init__: the version and shift_labels
    "aptt_edu.labels": 0,
    "aptt_edu._checks": 0,
    "aptt_edu.distributed": 0,
    "aptt_edu.plotting": 0,
    "aptt_edu.widgets": 0,
    "aptt_edu.course_files": 0,
    "aptt_edu.toy_language": 0,
    "aptt_edu.layers": 1,
    "aptt_edu.loss": 1,
    "aptt_edu.heads": 1,
    "aptt_edu.model": 2,
    "aptt_edu.speculative": 2,
    "aptt_edu.data": 2,
    "aptt_edu.memory": 2,
    "aptt_edu.integrations": 2,
    "aptt_edu.exercises": 2,
    "aptt_edu.training": 3,
    "aptt_edu.cli": 4,
    "aptt_edu.__main__": 4,
}

# Modules longer than one sitting (~300 lines), each with the reason it stays one module.
LONG_MODULES = {
    # the import path of record (code outside this repository imports both losses from here);
    # more than half of it is the docstrings that derive the two losses and their normalisers
    "aptt_edu.loss.language_modeling": 480,
    # one idea: a custom autograd Function whose hand-written backward must sit next to its forward
    "aptt_edu.loss.linear_cross_entropy": 560,
}
MAX_LINES = 335


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path) -> set[str]:
    """The ``aptt_edu`` modules a file imports at run time (module level or inside functions)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m == "aptt_edu" or m.startswith("aptt_edu.")}


def _layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name}")


MODULES = _modules()
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_only_downward(name: str) -> None:
    upward = [m for m in GRAPH[name] if _layer(m) > _layer(name)]
    assert not upward, f"{name} (layer {_layer(name)}) imports from above: {upward}"


def test_no_import_cycles() -> None:
    # edges between modules (an import of a package is an edge to its __init__)
    graph = {n: {m for m in deps if m in MODULES and m != n} for n, deps in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_layering_test_can_fail() -> None:
    """A planted upward import and a planted cycle are found by the same helpers."""
    assert _layer("aptt_edu.training.loop") > _layer("aptt_edu.plotting")
    assert "aptt_edu.training" in _imports(PACKAGE / "cli.py")  # a function-level import counts
    assert "aptt_edu.training.history" not in _imports(PACKAGE / "plotting.py")  # TYPE_CHECKING


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_are_one_sitting_long(name: str) -> None:
    n = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    limit = LONG_MODULES.get(name, MAX_LINES)
    assert n <= limit, f"{name} has {n} lines (limit {limit}): split it, or state why not"


SOURCES = [
    p
    for pattern in ("aptt_edu/**/*.py", "tests/*.py", "notebooks/src/*.py", "notebooks/*.py",
                    "docs/**/*.md", "docs/hooks/*.py", "benchmarks/*.py", "examples/*.py", "*.md")
    for p in sorted(ROOT.glob(pattern))
]  # fmt: skip
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def test_sources_hold_no_control_characters() -> None:
    """A ``\\f`` or ``\\b`` that slipped into a non-raw docstring (``"\\frac"``) breaks its math."""
    assert len(SOURCES) > 50
    bad = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in SOURCES
        # split at "\n" only: str.splitlines() would also split at the very \f it should find
        for i, line in enumerate(p.read_text(encoding="utf-8").split("\n"), start=1)
        if CONTROL.search(line)
    ]
    assert not bad, f"control characters in: {bad}"
