"""Builds the English and German notebooks from one bilingual source file per notebook.

Translated notebook trees drift: someone fixes a code cell in English and forgets the German twin.
Here each notebook has *one* source, ``notebooks/src/NN_name.py``, in Jupytext's "percent" format,
where every Markdown cell comes as an English/German pair and every code cell exists once::

    # %% [markdown] en
    # ## Softmax by hand
    # %% [markdown] de
    # ## Softmax von Hand
    # %%
    probs = logits.softmax(-1)

Right after the title, every notebook gets the cells of ``hosted.py`` (Colab/Binder links and an
install cell that only acts where the package is missing).

A Markdown cell without a language goes to both notebooks. A code cell header may carry nbval tags,
``# %% tags=["nbval-ignore-output"]``, and two tags of the exercises:

* ``tags=["solution"]`` — the worked solution of the exercise stub above it. The **worked edition**
  (``notebooks/<lang>/``, what nbval runs and the site renders) keeps it, collapsed in Jupyter
  (``source_hidden``) and folded on the site; the **learner edition** (``notebooks/exercises/<lang>/``)
  leaves it out, so each ``check(...)`` there says "not solved yet".
* ``tags=["language"]`` on a code cell with a language (``# %% en tags=["language"]``) — the one code
  cell allowed to differ between the languages: it sets ``LANG``, the language of the feedback.

Running this script writes both editions *without outputs*; ``make notebooks`` then executes the
worked edition in place (the learner edition stays clean, as a learner starts it). The parity test
(``tests/test_notebook_parity.py``) checks the result, not this script.

Usage: ``python notebooks/build.py [NAME ...]`` (all sources when no name is given).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hosted import header_cells

HERE = Path(__file__).resolve().parent
LANGS = ("en", "de")
HEADER = re.compile(
    r"^# %%(?P<md> \[markdown\])?(?: (?P<lang>en|de))?(?: tags=(?P<tags>\[.*\]))?\s*$"
)


@dataclass
class Cell:
    """One cell of a source file: its kind, language (``None``: both), tags and lines."""

    kind: str  # "markdown" or "code"
    lang: str | None
    tags: list[str]
    line: int  # 1-based line of its `# %%` header in the source, for error messages
    lines: list[str] = field(default_factory=list)


class SourceError(ValueError):
    """A source file breaks the bilingual format; the message names the file and line."""


def parse(source: str, name: str = "<source>") -> list[Cell]:
    """Splits a percent-format source into cells and checks that Markdown comes in pairs.

    Raises:
        SourceError: An English Markdown cell not followed by its German twin, or a German one
            without the English cell before it.
    """
    cells: list[Cell] = []
    for number, line in enumerate(source.splitlines(), start=1):
        m = HEADER.match(line)
        if m:
            tags = json.loads(m["tags"]) if m["tags"] else []
            cells.append(Cell("markdown" if m["md"] else "code", m["lang"], tags, number))
        elif cells:
            if cells[-1].kind == "markdown":
                line = line[2:] if line.startswith("# ") else line.lstrip("#")
            cells[-1].lines.append(line)
    for i, cell in enumerate(cells):
        if cell.kind != "markdown" or cell.lang is None:
            continue
        after = cells[i + 1] if i + 1 < len(cells) else None
        before = cells[i - 1] if i > 0 else None
        if cell.lang == "en" and not (after and after.kind == "markdown" and after.lang == "de"):
            raise SourceError(
                f"{name}:{cell.line}: English Markdown cell without its German twin "
                "(a `# %% [markdown] de` cell must follow it)"
            )
        if cell.lang == "de" and not (before and before.kind == "markdown" and before.lang == "en"):
            raise SourceError(
                f"{name}:{cell.line}: German Markdown cell without the English cell before it"
            )
    return cells


def to_notebook(cells: list[Cell], lang: str, learner: bool = False) -> dict[str, object]:
    """The nbformat-4 JSON of one language's notebook (no outputs), worked or learner edition."""
    out: list[dict[str, object]] = []
    for cell in cells:
        if cell.lang not in (None, lang):
            continue
        solution = "solution" in cell.tags
        if solution and learner:
            continue
        cell_id = f"cell-{len(out):03d}"  # stable ids keep diffs of re-executed notebooks small
        lines = list(cell.lines)
        while lines and not lines[-1].strip():
            lines.pop()
        text = "\n".join(lines)
        src = [ln + "\n" for ln in text.split("\n")]
        src[-1] = src[-1].rstrip("\n")
        meta: dict[str, object] = {"tags": cell.tags} if cell.tags else {}
        if solution:  # collapsed in Jupyter: the learner opens it after trying
            meta["jupyter"] = {"source_hidden": True}
        if cell.kind == "markdown":
            out.append({"cell_type": "markdown", "id": cell_id, "metadata": meta, "source": src})
        else:
            out.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": cell_id,
                    "metadata": meta,
                    "outputs": [],
                    "source": src,
                }
            )
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def build(src: Path) -> None:
    """Writes ``<lang>/<name>.ipynb`` and ``exercises/<lang>/<name>.ipynb`` from ``src``."""
    cells = parse(src.read_text(encoding="utf-8"), str(src.relative_to(HERE.parent)))
    for lang, learner in [(lang, learner) for learner in (False, True) for lang in LANGS]:
        folder = HERE / "exercises" / lang if learner else HERE / lang
        target = folder / f"{src.stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = to_notebook(cells, lang, learner)
        # after the title: Colab/Binder links and the install cell for hosted runtimes (hosted.py)
        extra: list[dict[str, object]] = [
            {
                "cell_type": kind,
                "id": f"hosted-{i}",
                "metadata": {},
                "source": text.splitlines(True),
            }
            | ({"execution_count": None, "outputs": []} if kind == "code" else {})
            for i, (kind, text) in enumerate(
                header_cells(str(target.relative_to(HERE.parent)), lang)
            )
        ]
        body = nb["cells"]
        assert isinstance(body, list)
        body[1:1] = extra
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {target.relative_to(HERE.parent)}")


if __name__ == "__main__":
    names = sys.argv[1:]
    sources = sorted((HERE / "src").glob("*.py"))
    try:
        for s in sources:
            if not names or s.stem in names:
                build(s)
    except SourceError as e:
        sys.exit(str(e))
