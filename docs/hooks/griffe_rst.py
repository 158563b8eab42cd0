"""Griffe extension: the docstrings' reStructuredText roles become Markdown that renders on the site.

The package's docstrings are Google style, but their math and cross-references use the reST roles a
reader of the source knows from Sphinx and PyTorch: ``:math:`\\lambda```, ``.. math::`` blocks,
``:class:`LanguageModelingLoss```. mkdocstrings renders docstrings as Markdown, where these would be
printed literally. Before rendering, this extension rewrites every docstring of the loaded package:

=================================  ===========================================================
reST                               Markdown (pymdownx.arithmatex / mkdocs-autorefs)
=================================  ===========================================================
``:math:`x```                      ``\\(x\\)`` (inline math, typeset by MathJax)
``.. math:: x`` + indented block   one ``\\[ … \\]`` block per paragraph (display math)
``:class:`X``` and friends         ``[`X`][full.path.X]`` when ``X`` is documented on this site,
                                   else ``` `X` ``` (``~a.b.X`` is shown as ``X``, as in Sphinx)
``text::`` before a literal block  ``text:`` (the indented block is Markdown code already)
``>>>`` doctest lines + output     a fenced ``pycon`` block (else Markdown reads ``>>>`` as quotes)
``====  ====`` simple tables       a Markdown table
=================================  ===========================================================

The source files stay as they are; only the rendered text changes. Loaded by mkdocstrings through
``plugins.mkdocstrings.handlers.python.options.extensions`` in ``mkdocs.yml``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

# The modules the site documents: one API page each, docs/en/api/<module>.md (read from there, so a
# new API page is linked without a second list to keep). Only objects in these are linked.
DOCUMENTED = tuple(
    sorted(
        p.stem for p in (Path(__file__).resolve().parent.parent / "en" / "api").glob("aptt_edu*.md")
    )
)

_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|obj|exc|data|const):`(~?)([^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
_LITERAL_INTRO = re.compile(r"(?<=\S)::[ \t]*$")
_TABLE_BORDER = re.compile(r"^[ \t]*=+(?: +=+)+[ \t]*$")


def _table_row(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """The cells of one row: split at runs of 2+ spaces if that gives one cell per column, else by
    the border's column positions."""
    cells = re.split(r" {2,}", line.strip())
    if len(cells) != len(spans):
        starts = [a for a, _ in spans] + [len(line)]
        cells = [line[starts[k] : starts[k + 1]].strip() for k in range(len(spans))]
    return [c.replace("|", "\\|") for c in cells]


def _simple_tables(text: str) -> str:
    """reST simple tables (``===  ===`` borders, an optional header) -> Markdown tables."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _TABLE_BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[i])]
        blocks: list[list[str]] = [[]]
        j = i + 1
        while j < len(lines):
            if _TABLE_BORDER.match(lines[j]):
                j += 1
                if len(blocks) == 2 or j >= len(lines) or not lines[j].strip():
                    break  # the closing border
                blocks.append([])
            elif lines[j].strip():
                blocks[-1].append(lines[j])
                j += 1
            else:
                j += 1
        header = blocks[0] if len(blocks) == 2 else blocks[0][:1]
        body = blocks[1] if len(blocks) == 2 else blocks[0][1:]
        rows = [_table_row(r, spans) for r in header + body]
        if out and out[-1].strip():
            out.append("")
        out.append(indent + "| " + " | ".join(rows[0]) + " |")
        out.append(indent + "|" + "---|" * len(spans))
        out += [indent + "| " + " | ".join(r) + " |" for r in rows[1:]]
        out.append("")
        i = j
    return "\n".join(out)


def _math_blocks(text: str) -> str:
    """``.. math::`` directives -> ``\\[ … \\]`` blocks, one per blank-line separated paragraph."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _MATH_DIRECTIVE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m["indent"]
        body: list[str] = [m["rest"].strip()] if m["rest"].strip() else []
        i += 1
        # The directive's content: the following lines indented deeper than it, blank lines included.
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        equations: list[list[str]] = [[]]
        for line in body:
            if line:
                equations[-1].append(line)
            elif equations[-1]:
                equations.append([])
        if out and out[-1].strip():
            out.append("")
        for eq in filter(None, equations):
            out += [f"{indent}\\[", *(f"{indent}{line}" for line in eq), f"{indent}\\]", ""]
    return "\n".join(out)


def _doctest_fences(text: str) -> str:
    """Wraps each run of doctest lines (``>>>``/``...`` plus their output) in a ``pycon`` fence."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].lstrip()
        if not (stripped.startswith(">>> ") or stripped == ">>>"):
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: len(lines[i]) - len(stripped)]
        block: list[str] = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        out += [f"{indent}```pycon", *block, f"{indent}```"]
    return "\n".join(out)


def _target(obj: griffe.Object, name: str, loader: griffe.GriffeLoader) -> str | None:
    """Full path of ``name`` as seen from ``obj``, if it is documented on the site; else None."""
    head, _, tail = name.partition(".")
    try:
        path = (
            name
            if name.startswith("aptt_edu.")
            else obj.resolve(head) + (f".{tail}" if tail else "")
        )
        target = loader.modules_collection[path]
    except Exception:  # unresolvable names (torch.*, typos) are shown as code
        return None
    if target.is_alias:
        try:
            target = target.final_target
        except Exception:
            return None
    path = target.path
    module = target.module.path if not target.is_module else path
    if module not in DOCUMENTED or any(part.startswith("_") for part in path.split(".")):
        return None
    if not target.is_module and not target.is_class and not target.docstring:
        return None  # mkdocstrings leaves out members without a docstring: no anchor to link to
    return str(path)


def convert(text: str, obj: griffe.Object, loader: griffe.GriffeLoader) -> str:
    """Rewrites one docstring (see the module docstring)."""
    text = _doctest_fences(_math_blocks(_simple_tables(text)))
    text = _INLINE_MATH.sub(lambda m: f"\\({m[1]}\\)", text)

    def role(m: re.Match[str]) -> str:
        short, name = m[1] == "~", m[2].strip()
        shown = name.rsplit(".", 1)[-1] if short else name
        target = _target(obj, name, loader)
        return f"[`{shown}`][{target}]" if target else f"`{shown}`"

    text = _ROLE.sub(role, text)
    lines = [_LITERAL_INTRO.sub(":", line) for line in text.split("\n")]
    return "\n".join(line for line in lines if line.strip() != "::")


class RstRolesToMarkdown(griffe.Extension):
    """Rewrites reST roles in every docstring once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None and not obj.is_alias:
            obj.docstring.value = convert(obj.docstring.value, obj, loader)
