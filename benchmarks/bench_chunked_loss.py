r"""Naive vs chunked linear + cross-entropy: peak memory and time of one forward + backward step.

    python benchmarks/bench_chunked_loss.py --quick          # main size only (B·T = 4096)
    python benchmarks/bench_chunked_loss.py                  # main size + a sweep of B·T, and a plot
    python benchmarks/bench_chunked_loss.py --device cuda    # on a GPU (also tries Liger-Kernel)

The *naive* step is what a training loop does without the fix,
``LanguageModelingLoss(V)(F.linear(hidden, W), labels).backward()``: the ``(B·T, V)`` logits, the
log-probabilities and two gradients of that size live in memory. The *chunked* step is
:func:`aptt_edu.loss.linear_cross_entropy.linear_cross_entropy`, which never holds more than one
``(chunk_size, V)`` block. ``liger`` is Liger-Kernel's ``LigerFusedLinearCrossEntropyLoss``, timed
and measured only when it imports (it needs a CUDA GPU and Triton).

**Memory** is measured per variant in a *fresh process*, so no variant inherits another's freed
pages or allocator caches: on CPU the peak resident set size (``VmHWM`` in ``/proc/self/status``,
reset just before the step; ``ru_maxrss`` where that is unavailable) minus the resident size just
before the step; on CUDA ``torch.cuda.max_memory_allocated()`` minus the allocation before the
step. Both count only what the loss step adds on top of its inputs, *including* the new
``weight.grad`` and ``hidden.grad`` (both variants allocate them).

**Time** is compared as a *ratio* within one run: the variants alternate in the same process, and
the ratio chunked / naive is taken per repetition and then the median — on a shared machine the
absolute seconds drift, the ratio much less.

Targets: at ``V = 50,000, d = 512, B·T = 4096``, chunked peak memory ≤ 1/8 of naive and
chunked time ≤ 1.3 x naive. The table and a plot of memory vs tokens go to ``--out`` (default
``runs/bench_chunked/``, not in git). The last line printed is always
``chunked: memory_ratio=R1 time_ratio=R2`` (chunked ÷ naive at the main size).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

from aptt_edu.loss.linear_cross_entropy import DEFAULT_CHUNK_SIZE
from aptt_edu.memory import VARIANTS, make_inputs, peak_bytes_of_step
from aptt_edu.memory import make_step as library_step

MEMORY_TARGET = 1 / 8  # chunked peak memory ≤ naive / 8
TIME_TARGET = 1.3  # chunked time ≤ 1.3 x naive
MIB = 2**20


# ---------------------------------------------------------------------------------------------
# Inputs and the three variants of one training step of the loss
# ---------------------------------------------------------------------------------------------


def make_step(
    variant: str,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_size: int,
) -> Callable[[], None]:
    """One forward + backward of the loss, as a closure."""
    if variant in VARIANTS:  # the library's two steps (aptt_edu.memory)
        return library_step(variant, hidden, weight, labels, chunk_size)
    if variant == "liger":
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        liger = LigerFusedLinearCrossEntropyLoss(ignore_index=-100)
        d = hidden.shape[-1]

        def step() -> None:
            liger(weight, hidden.reshape(-1, d), labels.reshape(-1)).backward()

    else:
        raise ValueError(f"unknown variant {variant!r}")
    return step


def liger_available(device: str) -> bool:
    """Whether Liger-Kernel imports (it runs on CUDA only)."""
    if device != "cuda":
        return False
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss  # noqa: F401
    except Exception:  # ImportError, or Triton failing to initialise
        return False
    return True


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------------------------
# Memory: one step in a fresh child process
# ---------------------------------------------------------------------------------------------


def measure_memory_here(args: argparse.Namespace) -> dict[str, Any]:
    """Child-process body: builds the inputs, runs one step, returns the step's peak in bytes."""
    dtype = getattr(torch, args.dtype)
    hidden, weight, labels = make_inputs(args.n, args.vocab, args.d_model, dtype, args.device)
    step = make_step(args.variant, hidden, weight, labels, args.chunk_size)
    peak, method = peak_bytes_of_step(step, args.device)
    return {"peak_bytes": peak, "method": method}


def measure_memory(variant: str, n: int, args: argparse.Namespace) -> int:
    """Peak bytes of one step of ``variant`` at ``n`` tokens, measured in a fresh process."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--_child",
        "--variant",
        variant,
        "--n",
        str(n),
        "--vocab",
        str(args.vocab),
        "--d-model",
        str(args.d_model),
        "--chunk-size",
        str(args.chunk_size),
        "--dtype",
        args.dtype,
        "--device",
        args.device,
        "--threads",
        str(args.threads),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"])


# ---------------------------------------------------------------------------------------------
# Time: variants alternate in this process; the ratio is taken per repetition
# ---------------------------------------------------------------------------------------------


def measure_times(
    variants: list[str], n: int, repeats: int, args: argparse.Namespace
) -> dict[str, list[float]]:
    """Seconds per step for each variant, ``repeats`` times, in alternating order."""
    dtype = getattr(torch, args.dtype)
    hidden, weight, labels = make_inputs(n, args.vocab, args.d_model, dtype, args.device)
    steps = {v: make_step(v, hidden, weight, labels, args.chunk_size) for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(repeats + 1):  # repetition 0 warms up and is not recorded
        order = variants if rep % 2 == 0 else variants[::-1]
        for v in order:
            hidden.grad = weight.grad = None
            gc.collect()
            _sync(args.device)
            t0 = time.perf_counter()
            steps[v]()
            _sync(args.device)
            if rep > 0:
                times[v].append(time.perf_counter() - t0)
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repetitions of ``num[r] / den[r]``."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def write_plot(rows: list[dict[str, Any]], variants: list[str], args: argparse.Namespace) -> Path:
    """Peak memory vs tokens, one line per variant, plus the size of one logits tensor."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens = [r["n"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for v, marker in zip(variants, "osd", strict=False):
        ax.plot(tokens, [r[f"{v}_mib"] for r in rows], marker=marker, label=v)
    logits_mib = [n * args.vocab * 4 / MIB for n in tokens]
    ax.plot(tokens, logits_mib, "k--", lw=1, label=r"one fp32 logits tensor $N \cdot V \cdot 4$")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:,.0f}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("tokens per step  N = B·T")
    ax.set_ylabel("peak memory of the loss step [MiB]")
    ax.set_title(f"V = {args.vocab:,}, d = {args.d_model}, {args.dtype}, {args.device}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(args.out) / "memory_vs_tokens.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_table(rows: list[dict[str, Any]], variants: list[str]) -> str:
    """A Markdown table: peak MiB, median seconds and the ratios to naive, per size."""
    head = ["tokens"]
    for v in variants:
        head += [f"{v} MiB", f"{v} s"]
    for v in variants[1:]:
        head += [f"{v}/naive mem", f"{v}/naive time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        cells = [f"{r['n']:,}"]
        for v in variants:
            cells += [f"{r[f'{v}_mib']:,.0f}", f"{r[f'{v}_s']:.2f}"]
        for v in variants[1:]:
            cells += [f"{r[f'{v}_mem_ratio']:.3f}", f"{r[f'{v}_time_ratio']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="run only the main size")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--vocab", type=int, default=50_000)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--tokens", type=int, default=4096, help="B·T of the main size")
    p.add_argument(
        "--sweep", type=int, nargs="+", default=[1024, 2048, 4096, 8192], help="B·T values"
    )
    p.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions at the main size")
    p.add_argument("--sweep-repeats", type=int, default=1, help="timed repetitions per sweep size")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-liger", action="store_true", help="skip Liger-Kernel even if importable")
    p.add_argument("--out", default="runs/bench_chunked")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    # internal: the fresh process that measures one variant's memory
    p.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", default="naive", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=4096, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if args._child:
        print(json.dumps(measure_memory_here(args)))
        return 0

    variants = ["naive", "chunked"]
    if not args.no_liger and liger_available(args.device):
        variants.append("liger")
    sizes = [args.tokens] if args.quick else sorted({*args.sweep, args.tokens})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"V={args.vocab:,} d={args.d_model} dtype={args.dtype} device={args.device} "
        f"threads={args.threads} chunk_size={args.chunk_size} repeats={args.repeats} "
        f"variants={variants}",
        flush=True,
    )

    rows: list[dict[str, Any]] = []
    for n in sizes:
        row: dict[str, Any] = {"n": n}
        for v in variants:
            row[f"{v}_mib"] = measure_memory(v, n, args) / MIB
        repeats = args.repeats if n == args.tokens else args.sweep_repeats
        times = measure_times(variants, n, repeats, args)
        for v in variants:
            row[f"{v}_s"] = statistics.median(times[v])
            row[f"{v}_all_s"] = times[v]
        for v in variants[1:]:
            row[f"{v}_mem_ratio"] = row[f"{v}_mib"] / row["naive_mib"]
            row[f"{v}_time_ratio"] = paired_ratio(times[v], times["naive"])
        rows.append(row)
        print(
            f"  N={n:>6,}: "
            + "  ".join(f"{v} {row[f'{v}_mib']:,.0f} MiB {row[f'{v}_s']:.2f} s" for v in variants),
            flush=True,
        )

    table = format_table(rows, variants)
    print()
    print(table)
    (out / "table.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    if len(rows) > 1:
        print(f"plot: {write_plot(rows, variants, args)}")
    main_row = next(r for r in rows if r["n"] == args.tokens)
    mem_ratio, time_ratio = main_row["chunked_mem_ratio"], main_row["chunked_time_ratio"]
    ok_mem, ok_time = mem_ratio <= MEMORY_TARGET, time_ratio <= TIME_TARGET
    print(
        f"targets at N={args.tokens:,}: memory ≤ {MEMORY_TARGET:.3f} x naive "
        f"({'met' if ok_mem else 'MISSED'}), time ≤ {TIME_TARGET} x naive "
        f"({'met' if ok_time else 'MISSED'})"
    )
    print(f"chunked: memory_ratio={mem_ratio:.3f} time_ratio={time_ratio:.2f}")
    return 0 if (ok_mem and ok_time) or not args.check else 1


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
