"""The cells that let a notebook run where the package is not installed: Colab, Binder, a download.

``build.py`` puts two cells right after each notebook's title:

1. a Markdown cell with "Open in Colab" and "Launch Binder" links to *this* notebook in the
   repository (text links, no badge images: the docs site loads nothing from other hosts);
2. an install cell that installs ``aptt-edu`` from the same repository only if ``import aptt_edu``
   would fail. Colab already has PyTorch, so pip adds just this small package; Binder builds its
   image from ``binder/postBuild`` (CPU PyTorch) and so skips it; in a local venv and under the
   notebook tests the package is installed and the cell does nothing.

The repository URL comes from one place, ``[project.urls] Source`` in ``pyproject.toml``, which the
docs site uses for its repository and edit links as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)/?$")

LINKS = {
    "en": "**Run it yourself:** [Open in Colab]({colab}) · [Launch Binder]({binder}) · "
    "or locally: `pip install aptt-edu` and `aptt-edu notebooks my-course` (see Installation).",
    "de": "**Selbst ausführen:** [In Colab öffnen]({colab}) · [Binder starten]({binder}) · "
    "oder lokal: `pip install aptt-edu` und `aptt-edu notebooks mein-kurs` (siehe Installation).",
}

INSTALL = """\
# Only where the package is missing (Colab, a downloaded notebook): install it from the repository.
# In a local set-up, on Binder and under the notebook tests this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("aptt_edu") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "aptt-edu @ git+{repo}"], check=True
    )"""


def repo_url() -> str:
    """The repository URL from ``pyproject.toml`` (``[project.urls] Source``)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Source"]
    if not isinstance(url, str) or not GITHUB.match(url):
        raise ValueError(
            f"[project.urls] Source must be https://github.com/OWNER/REPO, got {url!r}"
        )
    return url.rstrip("/")


def header_cells(notebook_path: str, lang: str) -> list[tuple[str, str]]:
    """The two header cells of one notebook as ``(cell_type, source)`` pairs.

    Args:
        notebook_path: The notebook's path inside the repository, e.g. ``notebooks/en/01_x.ipynb``.
        lang: ``"en"`` or ``"de"``: the language of the links cell (the install cell is shared).

    Returns:
        ``[("markdown", links), ("code", install)]``.
    """
    url = repo_url()
    m = GITHUB.match(url)
    assert m is not None  # repo_url() checked it
    owner, repo = m["owner"], m["repo"]
    colab = f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/{notebook_path}"
    binder = f"https://mybinder.org/v2/gh/{owner}/{repo}/HEAD?labpath={notebook_path}"
    return [
        ("markdown", LINKS[lang].format(colab=colab, binder=binder)),
        ("code", INSTALL.format(repo=url)),
    ]
