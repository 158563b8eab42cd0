r"""How much does ``LanguageModelingLoss`` cost over a raw ``F.cross_entropy``? (target: <= 1.10x)

``LanguageModelingLoss`` adds input checks, an fp32 cast, a ``reduction='none'`` pass and its own
masked mean on top of PyTorch's fused kernel. This script measures what that costs for one
forward + backward pass at the size of a real LM batch — ``B=8, T=512, V=50,000``, i.e. 204.8 M
logits, 819 MB in fp32 — and at a small size:

* **time**: median of several repeats in this process, after one warm-up; the two variants are
  interleaved (A B A B ...) so that a noisy neighbour on the machine slows both alike. One torch
  thread by default (``--threads``): on a shared machine every parallel region waits for the
  slowest core, and the wrapper's small extra ops would then measure the OS scheduler, not the
  wrapper.
* **peak memory**: each variant runs once in a *fresh* subprocess, started before this process
  allocates anything large. It allocates its inputs, resets the kernel's peak-RSS counter
  (``/proc/self/clear_refs``, Linux), notes the current RSS as the baseline, runs forward +
  backward, and reports ``peak RSS - baseline``: the memory the loss itself needed, inputs
  excluded. The peak is read as ``VmHWM`` from ``/proc/self/status``; :func:`resource.getrusage` is
  the fallback elsewhere. (``ru_maxrss`` alone misleads here: Linux carries the *parent's* RSS at
  fork time into the child's ``ru_maxrss``, and ``clear_refs`` does not reset that part.)

Usage::

    python benchmarks/bench_loss.py                # B=8 T=512 V=50,000 and B=4 T=128 V=5,000
    python benchmarks/bench_loss.py --quick        # smaller sizes, fewer repeats (seconds)
    python benchmarks/bench_loss.py --label-smoothing 0.1 --check   # exit 1 above the target

The last line per size reads ``time_ratio=… memory_ratio=…`` (aptt / torch; 1.00 = no overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from aptt_edu.loss.language_modeling import LanguageModelingLoss

TARGET = 1.10  # the budget for the wrapper's overhead, time and memory alike
FULL_SIZES = [(8, 512, 50_000), (4, 128, 5_000)]  # (B, T, V)
QUICK_SIZES = [(1, 256, 50_000), (4, 128, 5_000)]
VARIANTS = ("torch", "aptt")
MiB = 2**20

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_loss(variant: str, V: int, label_smoothing: float) -> LossFn:
    """The two things compared: PyTorch's kernel called directly, and the library's module."""
    if variant == "torch":

        def raw(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            # the reference: flattened fp32 logits, mean over non-ignored targets
            return F.cross_entropy(
                logits.reshape(-1, V).float(),  # (B*T, V)
                labels.reshape(-1),  # (B*T,)
                ignore_index=-100,
                label_smoothing=label_smoothing,
            )

        return raw
    module = LanguageModelingLoss(V, label_smoothing=label_smoothing)
    return lambda logits, labels: module(logits, labels)


def make_inputs(B: int, T: int, V: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits that require grad, ``(B, T, V)``, and labels ``(B, T)`` with ~10 % padding."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g).requires_grad_()  # (B, T, V)
    labels = torch.randint(0, V, (B, T), generator=g)  # (B, T)
    labels[torch.rand(B, T, generator=g) < 0.1] = -100  # padding / no target
    return logits, labels


def step(fn: LossFn, logits: torch.Tensor, labels: torch.Tensor) -> None:
    """One forward + backward pass; the gradient is dropped so every step allocates it anew."""
    fn(logits, labels).backward()
    logits.grad = None


# ----------------------------------------------------------------------------------------------
# Memory: one fresh process per variant
# ----------------------------------------------------------------------------------------------


def current_rss() -> int:
    """Resident set size now, in bytes (Linux ``/proc``; else the peak so far, a safe stand-in)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def peak_rss() -> int:
    """Peak resident set size of this process since the last reset, in bytes.

    Linux: ``VmHWM`` of ``/proc/self/status``. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:   123456 kB"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> bool:
    """Sets the peak-RSS counter back to the current RSS (Linux >= 4.0). True if that worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_worker(variant: str, B: int, T: int, V: int, label_smoothing: float) -> None:
    """Runs in the fresh subprocess: prints ``{"peak_delta": bytes, "exact": bool}`` as JSON."""
    fn = make_loss(variant, V, label_smoothing)
    # warm up on a tiny batch first: thread pools and kernel set-up are not the loss' memory
    step(fn, *make_inputs(1, 2, V))
    logits, labels = make_inputs(B, T, V)
    exact = reset_peak_rss()
    # without the reset, an earlier transient peak above the baseline would hide part of the step
    exact = exact or peak_rss() <= current_rss()
    baseline = current_rss()  # inputs included, so they are subtracted out
    step(fn, logits, labels)
    print(json.dumps({"peak_delta": peak_rss() - baseline, "exact": exact}))


def measure_memory(
    variant: str, B: int, T: int, V: int, label_smoothing: float
) -> tuple[int, bool]:
    """Starts this script as ``--worker`` in a new interpreter and reads back its JSON line."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant]
    cmd += ["--size", f"{B},{T},{V}", "--label-smoothing", str(label_smoothing)]
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return int(result["peak_delta"]), bool(result["exact"])


# ----------------------------------------------------------------------------------------------
# Time: same process, interleaved, median
# ----------------------------------------------------------------------------------------------


def measure_time(B: int, T: int, V: int, label_smoothing: float, repeats: int) -> dict[str, float]:
    """Median seconds per forward + backward for each variant."""
    logits, labels = make_inputs(B, T, V)
    fns = {v: make_loss(v, V, label_smoothing) for v in VARIANTS}
    for fn in fns.values():  # warm-up: first-call set-up is not what we compare
        step(fn, logits, labels)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for v, fn in fns.items():  # A B A B ...: load from elsewhere hits both variants
            t0 = time.perf_counter()
            step(fn, logits, labels)
            times[v].append(time.perf_counter() - t0)
    return {v: statistics.median(ts) for v, ts in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per variant")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a ratio > {TARGET}")
    parser.add_argument("--size", default=None, help="one size 'B,T,V' instead of the presets")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.size:
        sizes = [tuple(int(x) for x in args.size.split(","))]  # type: ignore[misc]
    ls = args.label_smoothing

    if args.worker:  # we are the fresh subprocess of measure_memory
        memory_worker(args.worker, *sizes[0], ls)
        return 0

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), label_smoothing={ls}")
    print(f"{'size':<22} {'variant':<7} {'time ms (median)':>17} {'peak MiB (fresh)':>17}")
    # memory first: the subprocesses are forked while this process is still small
    mems = [{v: measure_memory(v, B, T, V, ls) for v in VARIANTS} for B, T, V in sizes]
    ok = True
    for (B, T, V), mem in zip(sizes, mems, strict=True):
        # a 50k-vocabulary step takes seconds on a CPU; a small one milliseconds
        repeats = args.repeats or (3 if args.quick else 5 if B * T * V > 10**8 else 30)
        med = measure_time(B, T, V, ls, repeats)
        label = f"B={B} T={T} V={V:,}"
        for v in VARIANTS:
            flag = "" if mem[v][1] else " (peak not reset: lower bound)"
            print(f"{label:<22} {v:<7} {med[v] * 1e3:>17.1f} {mem[v][0] / MiB:>17.1f}{flag}")
        time_ratio = med["aptt"] / med["torch"]
        memory_ratio = mem["aptt"][0] / max(mem["torch"][0], 1)
        within = time_ratio <= TARGET and memory_ratio <= TARGET
        ok = ok and within
        print(
            f"{label:<22} time_ratio={time_ratio:.3f} memory_ratio={memory_ratio:.3f} "
            f"(target <= {TARGET:.2f}: {'ok' if within else 'ABOVE'}; {repeats} repeats)"
        )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
