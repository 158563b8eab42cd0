"""The course notebooks that ship with the package, and copying them to a folder of your own.

A wheel carries the executed notebooks in ``aptt_edu/_notebooks/<edition>/<lang>/`` (the build
copies them there, see ``pyproject.toml``); a source checkout has them in ``notebooks/``. Either way
``copy_notebooks`` (the command ``aptt-edu notebooks DEST``) writes them where a learner can open
them with ``jupyter lab DEST``. The copies need nothing but the installed package: no notebook reads
a file of the repository.

Editions: ``worked``, every notebook with all its code and outputs, as on the docs site (each
exercise's solution collapsed below its stub); ``exercises``, the learner edition: the same
notebooks without the solutions and without outputs, so every exercise is the learner's to write
and its ``check(...)`` says "not solved yet" until then.
"""

from __future__ import annotations

import shutil
from pathlib import Path

EDITIONS = ("worked", "exercises")
LANGUAGES = ("en", "de")

_PACKAGE = Path(__file__).resolve().parent
# In a checkout: notebooks/<lang> (worked) and notebooks/exercises/<lang> (learner edition).
_CHECKOUT = {"worked": Path("notebooks"), "exercises": Path("notebooks/exercises")}


def notebook_dir(edition: str = "worked", lang: str = "en") -> Path:
    """Return the folder that holds one edition's notebooks in one language.

    Args:
        edition: ``"worked"`` or ``"exercises"``.
        lang: ``"en"`` or ``"de"``.

    Returns:
        The packaged folder if this is an installed wheel, else the checkout's ``notebooks/`` folder.

    Raises:
        ValueError: If ``edition`` or ``lang`` is not one of the known values.
        FileNotFoundError: If neither a packaged nor a checkout folder exists.
    """
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, got {edition!r}")
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    packaged = _PACKAGE / "_notebooks" / edition / lang
    checkout = _PACKAGE.parent / _CHECKOUT[edition] / lang
    for folder in (packaged, checkout):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    raise FileNotFoundError(
        f"no {edition} notebooks in {lang!r}: looked in {packaged} and {checkout}; "
        "reinstall the package from a wheel or run from a source checkout"
    )


def copy_notebooks(
    dest: str | Path, lang: str = "en", edition: str = "worked", *, overwrite: bool = False
) -> list[Path]:
    """Copy one edition's notebooks in one language into ``dest``.

    Args:
        dest: Target folder; created if missing.
        lang: ``"en"`` or ``"de"``.
        edition: ``"worked"`` or ``"exercises"`` (the learner edition).
        overwrite: Replace notebooks that already exist in ``dest``. Without it an existing file is
            an error, so a learner's own work is never overwritten silently.

    Returns:
        The paths of the copied notebooks, sorted.

    Raises:
        FileExistsError: If a notebook already exists in ``dest`` and ``overwrite`` is false (names
            every such file; nothing is copied then).
    """
    source = notebook_dir(edition, lang)
    target = Path(dest)
    notebooks = sorted(source.glob("*.ipynb"))
    clashes = [target / nb.name for nb in notebooks if (target / nb.name).exists()]
    if clashes and not overwrite:
        names = ", ".join(str(p) for p in clashes)
        raise FileExistsError(
            f"{names} already exist; pass overwrite=True (--force) to replace them"
        )
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(nb, target / nb.name)) for nb in notebooks]
