"""Input checks shared by the losses, metrics and heads.

Every public entry point validates its tensors *before* doing any math, so that a learner who passes
the wrong thing gets a sentence naming the argument and the shapes seen — not a silent broadcast, an
opaque CUDA assert or a NaN three steps later.
"""

from __future__ import annotations

import torch


def check_logits(name: str, logits: torch.Tensor, vocab_size: int, ndim: int = 3) -> None:
    """Checks that ``logits`` is a floating tensor of rank ``ndim`` whose last dim is ``vocab_size``.

    Raises:
        TypeError: ``logits`` is not a tensor or not floating point.
        ValueError: wrong rank or last dimension.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"{name} must be floating point (fp32, fp16 or bf16), got dtype {logits.dtype}"
        )
    if logits.dim() != ndim:
        raise ValueError(
            f"{name} must have {ndim} dims (B, T, V), got shape {tuple(logits.shape)}"
            if ndim == 3
            else f"{name} must have {ndim} dims, got shape {tuple(logits.shape)}"
        )
    if logits.shape[-1] != vocab_size:
        raise ValueError(
            f"{name}.shape[-1] must equal vocab_size={vocab_size}, got shape {tuple(logits.shape)}"
        )


def check_values_here(t: torch.Tensor) -> bool:
    """Whether a check that *reads tensor values* is free here: eager mode and a CPU tensor.

    Reading a value (``bool(bad.any())``) copies it to the host. On a GPU that is a device -> host
    synchronisation that stalls the launch queue at every call, and under ``torch.compile`` it is a
    graph break (``fullgraph=True`` fails). So the label-range check runs only in eager mode on CPU
    tensors, where it costs one pass over the labels. Elsewhere an out-of-range label is caught by
    PyTorch itself: on CUDA ``F.cross_entropy``/``gather`` raise a device-side assert
    (``RuntimeError: CUDA error: device-side assert triggered``, reported asynchronously, at the
    next synchronising call); a compiled graph on CPU raises an ``IndexError``/``RuntimeError`` from
    the kernel or reads a wrong value. Shape and dtype checks read no values and run everywhere.
    """
    return not torch.compiler.is_compiling() and t.device.type == "cpu"


def check_labels(
    name: str,
    labels: torch.Tensor,
    expected_shape: tuple[int, ...],
    vocab_size: int,
    ignore_index: int,
) -> None:
    """Checks that ``labels`` are integer ids in ``[0, vocab_size)`` or ``ignore_index``.

    The value range is checked only where that needs no host synchronisation (eager mode, CPU
    tensors; see :func:`check_values_here`); shape and dtype always.

    Raises:
        TypeError: ``labels`` is not an integer tensor.
        ValueError: wrong shape, or an id outside ``[0, vocab_size)`` that is not ``ignore_index``.
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must be an integer tensor of token ids, got dtype {labels.dtype}")
    if tuple(labels.shape) != tuple(expected_shape):
        raise ValueError(
            f"{name} must have shape {tuple(expected_shape)} to match the logits, "
            f"got {tuple(labels.shape)}"
        )
    if not check_values_here(labels):
        return
    ids = labels.long()  # compare in int64: in int16/uint8, vocab_size or -100 would wrap around
    bad = (ids != ignore_index) & ((ids < 0) | (ids >= vocab_size))
    if bool(bad.any()):
        seen = ids[bad]
        raise ValueError(
            f"{name} must lie in [0, {vocab_size}) or equal ignore_index={ignore_index}; "
            f"found {seen.numel()} bad value(s), e.g. {int(seen[0])} (min {int(seen.min())}, "
            f"max {int(seen.max())})"
        )


def check_hidden(name: str, hidden: torch.Tensor, d_model: int) -> None:
    """Checks that ``hidden`` is a floating ``(B, T, d_model)`` tensor.

    Raises:
        TypeError: not a floating tensor.
        ValueError: wrong rank or width.
    """
    if not isinstance(hidden, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(hidden).__name__}")
    if not hidden.is_floating_point():
        raise TypeError(f"{name} must be floating point, got dtype {hidden.dtype}")
    if hidden.dim() != 3 or hidden.shape[-1] != d_model:
        raise ValueError(
            f"{name} must have shape (B, T, d_model={d_model}), got {tuple(hidden.shape)}"
        )


def check_room_for_depth(name: str, hidden: torch.Tensor, mtp_depth: int) -> None:
    """MTP depth ``k`` reads positions ``0 .. T-k-1``, so every depth needs ``T > mtp_depth``.

    Raises:
        ValueError: ``hidden`` has ``T <= mtp_depth`` positions.
    """
    T = hidden.shape[1]
    if mtp_depth >= T:
        raise ValueError(
            f"{name} has T={T} positions; MTP depth {mtp_depth} needs T > {mtp_depth} "
            f"(shape {tuple(hidden.shape)})"
        )


def check_positive_int(name: str, value: int) -> None:
    """Raises ``TypeError``/``ValueError`` unless ``value`` is an ``int`` >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


REDUCTIONS = ("mean", "sum", "none")


def check_loss_options(label_smoothing: float, reduction: str) -> None:
    """The options every cross-entropy in the package shares.

    Raises:
        ValueError: ``label_smoothing`` outside ``[0, 1]`` or an unknown ``reduction``.
    """
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def zero_count_as_one(name: str, count: int | float | torch.Tensor) -> int | float | torch.Tensor:
    """Validates a caller's normaliser (``num_items_in_batch``) and reads a count of 0 as 1.

    **The zero-count rule** of every loss in the package: ``mean = sum / N`` with ``N = 0`` means
    that no part of the batch has a single target, so every part's sum is 0 and the loss is
    ``0 / 1 = 0.0`` with zero gradients — the same as the all-padding rule for the call's own count,
    and never ``0 / 0 = NaN``. (Hugging Face's ``ForCausalLMLoss`` divides by the count as given and
    returns NaN there.) For a tensor the rule is ``torch.where(N == 0, 1, N)``, which needs no host
    synchronisation; only Python numbers can be checked for a negative value.

    Raises:
        TypeError: Neither an int, a float nor a 0-dim tensor (``bool`` is refused).
        ValueError: A negative Python number.
    """
    if isinstance(count, bool) or not isinstance(count, (int, float, torch.Tensor)):
        raise TypeError(
            f"{name} must be a count (int, float or 0-dim tensor), got {type(count).__name__}"
        )
    if isinstance(count, torch.Tensor):
        if count.dim() != 0:
            raise TypeError(f"{name} must be a 0-dim tensor, got shape {tuple(count.shape)}")
        # $N \leftarrow 1$ where $N = 0$: exact, and no .item()
        return torch.where(count == 0, torch.ones_like(count), count)
    if not count >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {count}")
    return 1 if count == 0 else count
