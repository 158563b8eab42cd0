r"""Peak memory of one forward + backward step of the LM loss, measured in a fresh process.

Two variants of the same step, at ``N = B·T`` tokens, vocabulary ``V`` and width ``d``:

* ``"naive"``: what a training loop does without a fused loss,
  ``LanguageModelingLoss(V)(F.linear(hidden, W), labels).backward()``; the ``(N, V)`` logits, the
  log-probabilities and gradients of that size live in memory at once (notebook 05, §2).
* ``"chunked"``: :func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy`, which never holds
  more than one ``(chunk_size, V)`` block.

Each measurement runs in a **fresh Python process** (``python -m aptt_edu.memory``), so that no
variant inherits another's freed pages or allocator caches. On CPU it reports how much the peak
resident set size grew during the step: Linux's ``VmHWM`` in ``/proc/self/status``, reset just before
the step, or ``ru_maxrss`` where that reset is unavailable; on CUDA
``torch.cuda.max_memory_allocated()`` minus the allocation before the step. Both include the new
``weight.grad`` and ``hidden.grad`` (both variants allocate them)::

    from aptt_edu.memory import measure_peak
    measure_peak("naive", 2048, vocab=32_000, d_model=64)    # bytes, about 3 N V 4 on CPU
    measure_peak("chunked", 2048, vocab=32_000, d_model=64)

``benchmarks/bench_chunked_loss.py`` uses the same functions and adds timing and Liger-Kernel.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

from aptt_edu.loss.language_modeling import LanguageModelingLoss
from aptt_edu.loss.linear_cross_entropy import DEFAULT_CHUNK_SIZE, linear_cross_entropy

__all__ = ["VARIANTS", "make_inputs", "make_step", "measure_peak", "peak_bytes_of_step"]

VARIANTS = ("naive", "chunked")


def make_inputs(
    n_tokens: int, vocab: int, d_model: int, dtype: torch.dtype, device: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``hidden (B, T, d)``, ``weight (V, d)`` (both requiring grad) and shifted ``labels (B, T)``.

    Rows of ``T = 1024`` tokens when ``n_tokens`` is a multiple of 1024, else one row.
    """
    gen = torch.Generator().manual_seed(seed)
    T = 1024 if n_tokens % 1024 == 0 else n_tokens
    B = n_tokens // T
    hidden = torch.randn(B, T, d_model, generator=gen).to(device, dtype).requires_grad_()
    weight = (torch.randn(vocab, d_model, generator=gen) / d_model**0.5).to(device, dtype)
    weight.requires_grad_()
    labels = torch.randint(0, vocab, (B, T), generator=gen).to(device)
    labels[:, -1] = -100  # the last position of each sequence has no target (shift_labels)
    return hidden, weight, labels


def make_step(
    variant: str,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Callable[[], None]:
    """One forward + backward of the loss as a closure; ``variant`` is ``"naive"`` or ``"chunked"``."""
    if variant == "naive":
        loss_fn = LanguageModelingLoss(weight.shape[0])

        def step() -> None:
            loss_fn(F.linear(hidden, weight), labels).backward()  # (B, T, V) logits

    elif variant == "chunked":

        def step() -> None:
            torch.autograd.backward(
                linear_cross_entropy(hidden, weight, labels, chunk_size=chunk_size)
            )

    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return step


def _proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Resets ``VmHWM`` to the current RSS (Linux ≥ 4.0); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_bytes_of_step(step: Callable[[], None], device: str) -> tuple[int, str]:
    """Runs ``step`` once; returns the bytes the peak grew by during it, and the method used.

    Meaningful only as the first big allocation of a fresh process (see the module docstring).
    """
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base, "cuda"
    base_kib = _proc_status_kib("VmRSS")
    if base_kib is not None and _reset_peak_rss():
        step()
        peak_kib = _proc_status_kib("VmHWM")
        method = "VmHWM"
    else:  # peak since the process started; the set-up before the step stays below its peak
        base_kib = base_kib or 0
        step()
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        method = "ru_maxrss"
    assert peak_kib is not None
    return (peak_kib - base_kib) * 1024, method


def measure_peak(
    variant: str,
    n_tokens: int,
    *,
    vocab: int,
    d_model: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dtype: str = "float32",
    device: str = "cpu",
    threads: int = 1,
) -> int:
    """Peak bytes one step of ``variant`` adds at ``n_tokens`` tokens, measured in a fresh process.

    Args:
        variant: ``"naive"`` or ``"chunked"``.
        n_tokens: ``N = B·T``.
        vocab: ``V``.
        d_model: ``d``.
        chunk_size: Rows per block of the chunked variant.
        dtype: ``"float32"`` or ``"bfloat16"`` (the dtype of ``hidden`` and ``weight``).
        device: ``"cpu"`` or ``"cuda"``.
        threads: CPU threads of the child process.

    Returns:
        Bytes, as an int.

    Raises:
        ValueError: An unknown variant or dtype, or a non-positive size.
        subprocess.CalledProcessError: The child process failed (its stderr is attached).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {dtype!r}")
    for name, value in (
        ("n_tokens", n_tokens),
        ("vocab", vocab),
        ("d_model", d_model),
        ("chunk_size", chunk_size),
        ("threads", threads),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    cmd = [
        sys.executable,
        "-m",
        "aptt_edu.memory",
        variant,
        str(n_tokens),
        str(vocab),
        str(d_model),
        str(chunk_size),
        dtype,
        device,
        str(threads),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"])


def _child(argv: list[str]) -> dict[str, object]:
    """Body of the fresh process: builds the inputs, runs one step, reports its peak."""
    p = argparse.ArgumentParser(prog="python -m aptt_edu.memory")
    for name in ("variant", "n", "vocab", "d_model", "chunk_size", "dtype", "device", "threads"):
        p.add_argument(name)
    a = p.parse_args(argv)
    torch.set_num_threads(int(a.threads))
    hidden, weight, labels = make_inputs(
        int(a.n), int(a.vocab), int(a.d_model), getattr(torch, a.dtype), a.device
    )
    step = make_step(a.variant, hidden, weight, labels, int(a.chunk_size))
    peak, method = peak_bytes_of_step(step, a.device)
    return {"peak_bytes": peak, "method": method}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1:])))
