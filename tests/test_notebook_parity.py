"""The English and German notebooks must not drift apart.

Same file names, identical code cells (only Markdown differs), and the same sequence of Markdown
heading levels, so that a section added in one language without the other fails CI. The one code
cell allowed to differ is tagged ``language``: it sets ``LANG``, the language of the exercises'
feedback, and must set it to the notebook's own language.

The learner edition (``notebooks/exercises/<lang>``) is the worked edition without the cells tagged
``solution`` and without outputs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EN, DE = NOTEBOOKS / "en", NOTEBOOKS / "de"
LEARNER = NOTEBOOKS / "exercises"
HEADING = re.compile(r"^(#{1,6})\s", re.MULTILINE)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.ipynb")}


def _cells(path: Path, kind: str, skip_tag: str | None = None) -> list[str]:
    """The sources of one kind of cell; a ``language`` cell reads as a placeholder."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for c in nb["cells"]:
        tags = c.get("metadata", {}).get("tags", [])
        if c["cell_type"] != kind or skip_tag in tags:
            continue
        out.append("<language cell>" if "language" in tags else "".join(c["source"]))
    return out


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


CAPTION = {"en": "*Figure:*", "de": "*Abbildung:*"}


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("name", PAIRS)
def test_every_figure_has_a_caption(name: str, lang: str) -> None:
    """A plot is followed by a caption cell in the notebook's language.

    The caption says what the figure shows (and, in German, what its English labels mean); the
    docs site turns it into the image's alt text (docs/hooks/notebooks.py).
    """
    cells = json.loads((NOTEBOOKS / lang / name).read_text(encoding="utf-8"))["cells"]
    missing = []
    for i, cell in enumerate(cells):
        outputs = cell.get("outputs", []) if cell["cell_type"] == "code" else []
        if not any(k.startswith("image/") for out in outputs for k in out.get("data", {})):
            continue
        after = cells[i + 1] if i + 1 < len(cells) else None
        text = (
            "".join(after["source"]).lstrip() if after and after["cell_type"] == "markdown" else ""
        )
        if not text.startswith(CAPTION[lang]):
            missing.append(f"cell {i}: {''.join(cell['source']).splitlines()[-1][:60]!r}")
    assert not missing, (
        f"{lang}/{name}: figures without a {CAPTION[lang]} cell after them: {missing}"
    )


@pytest.mark.parametrize("name", PAIRS)
def test_language_cell_sets_the_notebooks_language(name: str) -> None:
    for folder, lang in ((EN, "en"), (DE, "de")):
        nb = json.loads((folder / name).read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if "language" in c.get("metadata", {}).get("tags", [])]
        if not cells:
            continue
        assert len(cells) == 1, f"{lang}/{name}: {len(cells)} language cells"
        assert f'LANG = "{lang}"' in "".join(cells[0]["source"]), f"{lang}/{name}"


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("name", PAIRS)
def test_learner_edition_is_the_worked_one_without_solutions(name: str, lang: str) -> None:
    worked, learner = NOTEBOOKS / lang / name, LEARNER / lang / name
    assert learner.is_file(), f"{learner} missing: run python notebooks/build.py"
    assert _cells(learner, "code") == _cells(worked, "code", skip_tag="solution")

    def prose(path: Path) -> list[str]:  # the Colab/Binder cell links to each edition's own file
        return [t for t in _cells(path, "markdown") if "colab.research.google.com" not in t]

    assert prose(learner) == prose(worked)
    nb = json.loads(learner.read_text(encoding="utf-8"))
    assert not any(c.get("outputs") for c in nb["cells"]), f"{learner} has outputs"
    assert not any("solution" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


@pytest.mark.parametrize("name", PAIRS)
def test_reads_no_file_of_the_repository(name: str) -> None:
    # A notebook copied out of the wheel (`aptt-edu notebooks DEST`) has no checkout beside it: its
    # code may use the installed package only, never benchmarks/, tests/ or a path found via __file__.
    code = "\n".join(_cells(EN / name, "code"))
    for marker in ("benchmarks", "sys.path", "__file__", "parents[", "notebooks/", "tests/"):
        assert marker not in code, f"{name}: a code cell mentions {marker!r}"


def _build_module() -> ModuleType:
    """``notebooks/build.py`` as a module (it imports ``hosted`` from its own folder)."""
    import importlib
    import sys

    sys.path.insert(0, str(NOTEBOOKS))
    try:
        return importlib.import_module("build")
    finally:
        sys.path.remove(str(NOTEBOOKS))


def test_build_rejects_a_markdown_cell_without_its_twin() -> None:
    build = _build_module()
    lonely_en = "# %%\nx = 1\n# %% [markdown] en\n# ## Hello\n# %%\ny = 2\n"
    with pytest.raises(build.SourceError, match=r"^x\.py:3: English Markdown cell without its"):
        build.parse(lonely_en, "x.py")
    with pytest.raises(build.SourceError, match=r"^x\.py:1: German Markdown cell without"):
        build.parse("# %% [markdown] de\n# ## Hallo\n", "x.py")
    pair = build.parse("# %% [markdown] en\n# ## Hello\n# %% [markdown] de\n# ## Hallo\n", "x.py")
    assert [(c.lang, c.lines) for c in pair] == [("en", ["## Hello"]), ("de", ["## Hallo"])]
    for src in sorted((NOTEBOOKS / "src").glob("*.py")):  # every source of the course pairs up
        build.parse(src.read_text(encoding="utf-8"), src.name)
