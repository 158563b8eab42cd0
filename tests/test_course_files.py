"""aptt_edu.course_files: finding the shipped notebooks and copying them out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aptt_edu import course_files

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("lang", ["en", "de"])
def test_copy_worked_edition(tmp_path: Path, lang: str) -> None:
    copied = course_files.copy_notebooks(tmp_path / "nb", lang=lang)
    expected = sorted(p.name for p in (REPO / "notebooks" / lang).glob("*.ipynb"))
    assert [p.name for p in copied] == expected and len(expected) >= 6
    for path in copied:  # real notebooks, byte for byte
        assert path.read_bytes() == (REPO / "notebooks" / lang / path.name).read_bytes()
        assert json.loads(path.read_text())["nbformat"] == 4


def test_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    first = course_files.copy_notebooks(tmp_path)[0]
    first.write_text("my own work")
    with pytest.raises(FileExistsError, match=first.name):
        course_files.copy_notebooks(tmp_path)
    assert first.read_text() == "my own work"
    course_files.copy_notebooks(tmp_path, overwrite=True)
    assert first.read_text() != "my own work"


@pytest.mark.parametrize(
    "kwargs, match",
    [({"lang": "fr"}, "lang must be one of"), ({"edition": "solutions"}, "edition must be one of")],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        course_files.copy_notebooks(tmp_path, **kwargs)


def test_cli_copies_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aptt_edu.cli import main

    assert main(["notebooks", str(tmp_path / "c"), "--lang", "de"]) == 0
    assert "copied" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "c").glob("*.ipynb")) == sorted(
        p.name for p in (REPO / "notebooks" / "de").glob("*.ipynb")
    )
    with pytest.raises(SystemExit) as info:  # argparse's one-line error, exit status 2
        main(["notebooks", str(tmp_path / "c")])
    assert info.value.code == 2
    assert "already exist" in capsys.readouterr().err


def test_top_level_help_names_the_notebooks_command(capsys: pytest.CaptureFixture[str]) -> None:
    from aptt_edu.cli import main

    with pytest.raises(SystemExit) as info:  # argparse's --help of the training command exits 0
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("aptt-edu notebooks DEST") and "--edition" in out and "--steps" in out
