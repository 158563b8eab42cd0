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
import tokenize
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
    "aptt_edu.loss.language_modeling": 490,
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


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The ``aptt_edu`` modules a file imports at run time (module level or inside functions).

    ``from aptt_edu import training`` imports the module ``aptt_edu.training``; relative imports
    are resolved against ``name``; importing ``a.b.c`` also runs the packages ``a.b`` and ``a``.
    """
    package = name if (ROOT / Path(*name.split("."))).is_dir() else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from ..loss import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    ours = {m for m in found if m == "aptt_edu" or m.startswith("aptt_edu.")}
    parents = {".".join(m.split(".")[:n]) for m in ours for n in range(1, m.count(".") + 1)}
    return (ours | parents) - {name} - _ancestors(name)


def _ancestors(name: str) -> set[str]:
    """A module's own parent packages: Python runs them before the module, never after."""
    return {".".join(name.split(".")[:n]) for n in range(1, name.count(".") + 1)}


def _layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise AssertionError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name}")


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


MODULES = _modules()
GRAPH = {name: _imports(path, name, set(MODULES)) for name, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_only_downward(name: str) -> None:
    upward = [m for m in GRAPH[name] if _layer(m) > _layer(name)]
    assert not upward, f"{name} (layer {_layer(name)}) imports from above: {upward}"


def test_no_import_cycles() -> None:
    graph = {n: {m for m in deps if m in MODULES} for n, deps in GRAPH.items()}
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_find_planted_faults(tmp_path: Path) -> None:
    """An upward import in each spelling, and a cycle, are found by the helpers the tests use."""
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
    planted = tmp_path / "planted.py"
    modules = set(MODULES)
    for line in (
        "from aptt_edu import training",
        "import aptt_edu.training.loop",
        "def f():\n    from aptt_edu.training import train",
        "from ..training import loop",  # relative, from aptt_edu.loss.planted
    ):
        planted.write_text(line + "\n", encoding="utf-8")
        found = _imports(planted, "aptt_edu.loss.planted", modules)
        assert any(_layer(m) > _layer("aptt_edu.loss") for m in found), (line, found)
    planted.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                       "    from aptt_edu.training import History\n", encoding="utf-8")  # fmt: skip
    assert _imports(planted, "aptt_edu.plotting", modules) == set()  # annotations only
    # importing a submodule runs its package: loss.metrics -> loss (-> its __init__'s imports)
    assert "aptt_edu.loss" in GRAPH["aptt_edu.training.loop"]


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
# In a non-raw string, "\frac" is a form feed and "ac", "\nabla" a newline and "abla": LaTeX
# commands whose first letter is an escape. \a \b \f \v before a letter are never meant; \n \r \t
# before a letter are, except in strings that hold math.
_ALWAYS_WRONG = re.compile(r"(?<!\\)\\[abfv][A-Za-z]")
_WRONG_IN_MATH = re.compile(r"(?<!\\)\\[nrt](?:abla|ho|au|heta|imes|ext|ight|ilde|op|m)")


def _swallowed_escapes(path: Path) -> list[str]:
    """``file:line`` of non-raw string literals in which an escape ate a LaTeX command."""
    bad = []
    with path.open(encoding="utf-8") as f:
        for tok in tokenize.generate_tokens(f.readline):
            if tok.type != tokenize.STRING:
                continue
            prefix = tok.string[: len(tok.string) - len(tok.string.lstrip("rRbBuUfF"))]
            if "r" in prefix.lower():
                continue
            math = ":math:" in tok.string or "$" in tok.string or ".. math::" in tok.string
            if _ALWAYS_WRONG.search(tok.string) or (math and _WRONG_IN_MATH.search(tok.string)):
                bad.append(f"{path.name}:{tok.start[0]}")
    return bad


def test_no_latex_command_is_eaten_by_an_escape(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    for text in ('"""\\frac{1}{2}"""', '"""$\\nabla f$"""', '""":math:`\\tau`"""'):
        planted.write_text(f"x = {text}\n", encoding="utf-8")
        assert _swallowed_escapes(planted) == ["planted.py:1"], text
    planted.write_text('x = r"""\\frac"""\ny = "a\\nb"\n', encoding="utf-8")
    assert _swallowed_escapes(planted) == []  # raw strings; a newline in plain text
    bad = [hit for p in _python_sources() for hit in _swallowed_escapes(p)]
    assert not bad, f"escape sequences in non-raw strings that hold LaTeX: {bad}"


def _python_sources() -> list[Path]:
    return [p for p in SOURCES if p.suffix == ".py"]


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
