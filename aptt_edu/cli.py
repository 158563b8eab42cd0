"""The ``aptt-edu`` command (also ``python -m aptt_edu``).

``aptt-edu notebooks DEST [--lang en|de] [--edition worked|exercises] [--force]`` copies the course
notebooks that ship with the package into ``DEST``; every other command line (``run``, ``compare``
and their flags) goes to the training command of ``aptt_edu.train``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aptt_edu.course_files import EDITIONS, LANGUAGES, copy_notebooks


def _notebooks_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aptt-edu notebooks",
        description="Copy the course notebooks into a folder of your own, then open them with "
        "`jupyter lab DEST`.",
    )
    p.add_argument("dest", help="target folder (created if missing)")
    p.add_argument("--lang", choices=LANGUAGES, default="en", help="language (en)")
    p.add_argument(
        "--edition",
        choices=EDITIONS,
        default="worked",
        help="worked: every notebook with its code, outputs and solutions (default); "
        "exercises: the learner edition, stubs to fill in and no outputs",
    )
    p.add_argument("--force", action="store_true", help="overwrite notebooks that already exist")
    return p


def notebooks_main(argv: Sequence[str]) -> int:
    """``aptt-edu notebooks ...``: copy the notebooks; a problem ends with a one-line message."""
    parser = _notebooks_parser()
    args = parser.parse_args(argv)
    try:
        copied = copy_notebooks(
            args.dest, lang=args.lang, edition=args.edition, overwrite=args.force
        )
    except (FileExistsError, FileNotFoundError) as e:
        parser.error(str(e))
    print(f"copied {len(copied)} notebooks ({args.edition}, {args.lang}) to {args.dest}/")
    print(f"open them with: jupyter lab {args.dest}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``aptt-edu`` and ``python -m aptt_edu``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["notebooks"]:
        return notebooks_main(args[1:])
    if args[:1] in (["-h"], ["--help"]):  # the training command's help, after the one it hides
        print(
            "aptt-edu notebooks DEST [--lang en|de] [--edition worked|exercises] [--force]\n"
            "    copy the course notebooks into DEST (aptt-edu notebooks --help for more)\n"
            "aptt-edu [run|compare] [options]\n"
            "    train the tiny model, or compare the output-side variants; their options:\n",
            flush=True,
        )
    from aptt_edu.train import main as train_main  # imported here: `notebooks` needs no torch

    return train_main(args)
