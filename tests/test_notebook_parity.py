"""The English and German notebooks must not drift apart.

Same file names, identical code cells (only Markdown differs), and the same sequence of Markdown
heading levels, so that a section added in one language without the other fails CI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EN, DE = NOTEBOOKS / "en", NOTEBOOKS / "de"
HEADING = re.compile(r"^(#{1,6})\s", re.MULTILINE)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.ipynb")}


def _cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def _heading_levels(path: Path) -> list[int]:
    levels: list[int] = []
    for text in _cells(path, "markdown"):
        # strip fenced code so "# comment" lines inside ``` blocks are not taken for headings
        text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        levels += [len(m.group(1)) for m in HEADING.finditer(text)]
    return levels


PAIRS = sorted(_names(EN) & _names(DE))


def test_same_notebook_names() -> None:
    assert _names(EN) == _names(DE), f"only in one language: {sorted(_names(EN) ^ _names(DE))}"


@pytest.mark.parametrize("name", PAIRS)
def test_identical_code_cells(name: str) -> None:
    en, de = _cells(EN / name, "code"), _cells(DE / name, "code")
    assert len(en) == len(de), f"{name}: {len(en)} English vs {len(de)} German code cells"
    for i, (a, b) in enumerate(zip(en, de, strict=True)):
        assert a == b, f"{name}: code cell {i} differs between en and de"


@pytest.mark.parametrize("name", PAIRS)
def test_same_heading_structure(name: str) -> None:
    assert _heading_levels(EN / name) == _heading_levels(DE / name), name


@pytest.mark.parametrize("name", PAIRS)
def test_committed_with_outputs(name: str) -> None:
    """Readers and the docs site see plots without running anything."""
    for lang in (EN, DE):
        nb = json.loads((lang / name).read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert any(c["outputs"] for c in code), (
            f"{lang.name}/{name} has no outputs; run make notebooks"
        )
        assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"]), (
            f"{lang.name}/{name} has no plot"
        )
