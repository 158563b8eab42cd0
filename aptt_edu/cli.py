"""The ``aptt-edu`` command (also ``python -m aptt_edu``)::

    aptt-edu notebooks DEST [--lang en|de] [--edition worked|exercises] [--force]
    aptt-edu [run] --steps 300 --mtp deepseek --out runs/deepseek      # one training run
    aptt-edu compare --out runs/compare                                # the five variants
    aptt-edu --text-file my_text.txt --out runs/text                   # characters of any text
    aptt-edu --grad-accum 4 --chunked-loss --out runs/accum
    torchrun --nproc_per_node 2 -m aptt_edu --grad-accum 2 --out runs/ddp   # 2 processes (gloo)

The training options are generated from the fields of
:class:`~aptt_edu.training.config.TrainConfig`: every field is a flag (``seq_len`` is
``--seq-len``, a ``bool`` is ``--tie-weights``/``--no-tie-weights``), its help is the field's
metadata, and a flag that is not given keeps the field's default. Bad arguments end with a one-line
message and exit status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aptt_edu.course_files import EDITIONS, LANGUAGES, copy_notebooks

if TYPE_CHECKING:  # annotations only: `aptt-edu notebooks` must start without importing torch
    from aptt_edu.data import LMData
    from aptt_edu.training import TrainConfig

__all__ = ["main", "notebooks_main", "train_main", "train_parser"]

# compare() sets these per variant (`name` too), so they may not be given with `compare`
VARIANT_FIELDS = ("label_smoothing", "tie_weights", "mtp", "name")


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


def train_parser() -> argparse.ArgumentParser:
    """The parser of the training command: ``mode``, ``--out`` and one flag per config field."""
    from aptt_edu.training.config import TrainConfig  # imported here: `notebooks` needs no torch

    p = argparse.ArgumentParser(
        prog="aptt-edu",
        description="Train the tiny GPT on the toy language (or a text file), or compare the "
        "output-side variants (baseline, label smoothing, weight tying, MTP, DeepSeek MTP).",
    )
    p.add_argument(
        "mode",
        nargs="?",
        choices=("run", "compare"),
        default="run",
        help="'run' (default): one training run; 'compare': all variants, plot, table",
    )
    p.add_argument("--out", default=None, help="output folder (default runs/train or runs/compare)")
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag, kind = "--" + f.name.replace("_", "-"), hints[f.name]
        options: dict[str, Any] = {
            "dest": f.name,
            "default": argparse.SUPPRESS,  # not given: the field's default, and we can tell
            "help": f"{f.metadata['help']} (default: {f.default})",
        }
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        elif typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(kind), **options)
        else:  # int, float, str, or `str | None`: the non-None type converts the text
            (convert,) = [t for t in typing.get_args(kind) or (kind,) if t is not type(None)]
            p.add_argument(flag, type=convert, metavar=f.name.upper(), **options)
    return p


def train_main(argv: Sequence[str]) -> int:
    """``aptt-edu [run|compare] ...``: train one model, or compare the variants.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process joins a ``gloo`` process group, trains
    its share, and writes ``final_rank{r}.json`` with the final global metrics; only rank 0 writes
    the rest of the output folder.
    """
    from aptt_edu.training import TrainConfig, check_batch_split, check_config, compare, load_data

    parser = train_parser()
    given = vars(parser.parse_args(argv))
    mode, out_arg = given.pop("mode"), given.pop("out")
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    if mode == "compare":
        _check_compare_flags(parser, given, world)
    try:
        cfg = TrainConfig(**given)
        check_config(cfg)
        check_batch_split(cfg.batch_size, cfg.grad_accum, world)
        data = load_data(cfg)  # reads and checks the text file, if any
    except ValueError as e:
        parser.error(str(e))
    start = time.perf_counter()
    if mode == "run":
        return _run(cfg, data, Path(out_arg or "runs/train"), start)
    out = Path(out_arg or "runs/compare")
    histories = compare(out, config=cfg, data=data)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"{len(histories)} runs in {time.perf_counter() - start:.1f} s; wrote {out}/")
    return 0


def _check_compare_flags(
    parser: argparse.ArgumentParser, given: dict[str, Any], world: int
) -> None:
    """``compare`` sets the variant fields itself, runs in one process and needs the logits."""
    clash = ["--" + name.replace("_", "-") for name in VARIANT_FIELDS if name in given]
    if clash:
        parser.error(f"{', '.join(clash)}: compare sets these per variant; leave them out")
    if world > 1:
        parser.error("compare runs in one process; start it without torchrun")
    if given.get("chunked_loss"):
        parser.error("--chunked-loss: compare includes the DeepSeek variant, which needs logits")


def _run(cfg: TrainConfig, data: LMData, out: Path, start: float) -> int:
    """One training run (on every rank under ``torchrun``); rank 0 alone writes ``out``."""
    import torch

    from aptt_edu.distributed import init_from_env, rank_and_world_size
    from aptt_edu.plotting import save_loss_curves
    from aptt_edu.training import train

    joined = init_from_env("gloo")  # under torchrun: join the process group (CPU: gloo)
    try:
        hist = train(cfg, data)
        rank, world = rank_and_world_size()
        if world > 1:  # every rank's view of the final global numbers (they must agree)
            final = {
                "train_loss": hist.train_loss[-1],
                "val_loss": hist.val_loss[-1],
                "val_perplexity": hist.val_perplexity[-1],
                "val_accuracy": hist.val_accuracy[-1],
            }
            # one file per rank: lines printed by several processes to one pipe can interleave
            out.mkdir(parents=True, exist_ok=True)
            (out / f"final_rank{rank}.json").write_text(json.dumps(final), encoding="utf-8")
            # every rank done before any tears the group down: a rank that destroys it while
            # another is still inside gloo can abort that one ("terminate called ...")
            torch.distributed.barrier()
        if rank != 0:
            return 0
    finally:
        if joined:
            torch.distributed.destroy_process_group()
    hist.save(out / "history.json")
    save_loss_curves({"run": hist}, out / "loss_curves.png")
    floor = f" (floor H = {hist.entropy_rate:.4f})" if hist.entropy_rate is not None else ""
    procs = f" ({hist.world_size} processes)" if hist.world_size > 1 else ""
    print(
        f"final val loss {hist.val_loss[-1]:.4f}{floor}, perplexity "
        f"{hist.val_perplexity[-1]:.3f}, accuracy {hist.val_accuracy[-1]:.3f}; "
        f"{time.perf_counter() - start:.1f} s{procs}; wrote {out}/history.json"
    )
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
    return train_main(args)
