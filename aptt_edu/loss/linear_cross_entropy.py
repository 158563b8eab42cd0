r"""Linear + cross-entropy in chunks: the language-model loss without the ``(B, T, V)`` logits.

**Why the logits dominate memory.** The head turns ``N = B·T`` hidden states of width :math:`d`
into :math:`N \times V` scores. With :math:`V` = 50k–130k that matrix is far larger than anything
else in the step. For ``N = 4096`` tokens, ``d = 512``, ``V = 50,000`` in fp32 (4 bytes a number):

::

    tensor                                          elements   bytes
    hidden states h                                 N·d          8.4 MB
    head weight W, and its gradient (each)          V·d        102 MB
    logits z = h Wᵀ                                 N·V        819 MB
    log-probabilities (saved by log_softmax)        N·V        819 MB
    ∂L/∂(log p)  (backward)                         N·V        819 MB
    ∂L/∂z        (backward)                         N·V        819 MB

The naive path, ``LanguageModelingLoss(head(hidden), labels)``, holds two to four of the
:math:`N \cdot V \cdot 4`-byte matrices at once: about :math:`3 \times 819` MB ≈ 2.5 GB at its peak,
24 times the head's own weight — and it grows linearly with the number of tokens in the batch.

**The fix.** The loss is a sum over tokens, and so is every gradient:

.. math::
    \mathcal{L} = \sum_i w_i\,\ell_i(z_i), \qquad
    \frac{\partial \mathcal{L}}{\partial h_i} = w_i\,\delta_i W, \qquad
    \frac{\partial \mathcal{L}}{\partial W} = \sum_i w_i\,\delta_i^\top h_i, \qquad
    \frac{\partial \mathcal{L}}{\partial b} = \sum_i w_i\,\delta_i,

with :math:`\delta_i = \partial \ell_i / \partial z_i` (a row of :math:`V` numbers) and :math:`w_i`
the reduction's weight of token :math:`i` (``1/N_valid`` for the mean, 0 for ignored tokens). Nothing
needs all rows of :math:`z` at once. :func:`linear_cross_entropy` walks over the tokens in chunks of
``C`` rows; for each chunk it computes the logits, the loss, :math:`\delta` *and the gradients*
(during the forward pass), then reuses the same ``(C, V)`` buffer for the next chunk. Peak memory:

.. math::
    \underbrace{C \cdot V \cdot 4}_{\text{one chunk of logits}}
    + \underbrace{V \cdot d \cdot 4}_{\partial\mathcal{L}/\partial W\ \text{(fp32)}}
    + \underbrace{N \cdot d \cdot 4}_{\partial\mathcal{L}/\partial h}
    \quad\text{instead of}\quad \approx 3 \cdot N \cdot V \cdot 4,

e.g. 102 MB + 102 MB + 8 MB with the default ``C = 512``, about 1/10 of the naive peak; as the
batch grows, only the small :math:`N \cdot d` term grows with it. (The gradient of
``W`` is allocated by the naive path too, as ``weight.grad``.) ``benchmarks/bench_chunked_loss.py``
measures both.

**Cost.** The forward pass does the three matrix products a training step needs anyway (the logits,
:math:`\delta W`, :math:`\delta^\top h`), so the time stays close to the naive path's. The backward
pass only multiplies the stored gradients by the incoming scalar :math:`\partial(\text{total}) /
\partial \mathcal{L}` (the MTP weight :math:`\lambda`, say). With ``reduction='none'`` the incoming
gradient is one number per token, unknown during the forward pass, so the backward pass recomputes
each chunk's logits instead: one extra matrix product (≈ 4/3 of the time). Either way the backward
pass needs no more memory than the forward pass did.

**Label convention:** ``labels[b, t]`` is the id of the token that must follow position ``t``
(already shifted, see :func:`~aptt_edu.loss.language_modeling.shift_labels`); ``ignore_index``
marks positions without a target. The result equals
:class:`~aptt_edu.loss.language_modeling.LanguageModelingLoss` on ``F.linear(hidden, weight, bias)``
— label smoothing, ``ignore_index``, every reduction, ``num_items_in_batch`` and the all-padding rule
(mean over zero targets = 0.0 with zero gradients) included — values and gradients to 1e-5 (tested).

The same idea ships, with fused GPU kernels, as Liger-Kernel's ``LigerFusedLinearCrossEntropyLoss``
(Hsu et al., 2024, arXiv:2410.10989) and Apple's Cut Cross-Entropy (Wijmans et al., 2024,
arXiv:2411.09009). This file is the readable version in plain PyTorch; it runs on CPU and CUDA.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu._checks import (
    check_hidden,
    check_labels,
    check_loss_options,
    check_positive_int,
    zero_count_as_one,
)
from aptt_edu.loss.language_modeling import Reduction

__all__ = ["DEFAULT_CHUNK_SIZE", "LinearCrossEntropyLoss", "linear_cross_entropy"]

#: Tokens per chunk. The three matrix products per chunk, ``(C, d) x (d, V)`` and its two
#: transposes, stay large enough to run at full speed; one chunk of fp32 logits is ``C * V * 4``
#: bytes (102 MB for ``V = 50,000``), about the size of the head's weight, so the chunk buffer and
#: the fp32 weight gradient together stay ≤ 1/8 of the naive peak at ``B·T = 4096``. A larger chunk
#: buys little speed (``benchmarks/bench_chunked_loss.py --chunk-size``).
DEFAULT_CHUNK_SIZE = 512


# ----------------------------------------------------------------------------------------------
# Per-chunk building blocks. Each one does a single step of the math, in place where it can, so
# that the (C, V) buffer is the only large tensor alive.
# ----------------------------------------------------------------------------------------------


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the softmax, the loss and the gradient sums: fp32 (fp64 for fp64 inputs)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _log_probs_chunk(
    h_c: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor
) -> torch.Tensor:
    r"""Writes :math:`\log p = \log\mathrm{softmax}(h_c W^\top + b)` into the buffer ``out``.

    ``h_c`` is ``(C, d)``, ``out`` is ``(C, V)`` fp32. The matrix product runs in the dtype of the
    head (as ``nn.Linear`` would); the softmax always runs in fp32.
    """
    # $z = h W^\top + b$, one row of V scores per token
    if h_c.dtype == out.dtype:
        if bias is None:
            torch.mm(h_c, weight.t(), out=out)  # (C, V)
        else:
            torch.addmm(bias, h_c, weight.t(), out=out)  # (C, V)
    else:  # bf16 / fp16 head: 16-bit product, upcast once into the fp32 buffer
        out.copy_(F.linear(h_c, weight, bias))  # (C, V)
    # $\log p_v = z_v - \log\sum_u e^{z_u}$, in place: the buffer now holds log-probabilities
    return torch.log_softmax(out, dim=-1, out=out)  # (C, V)


def _per_token_loss(log_p: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    r"""The label-smoothed cross-entropy of each row, from log-probabilities ``(C, V)``.

    With :math:`q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / V`,
    :math:`\ell = -\sum_v q_v \log p_v = (1-\varepsilon)(-\log p_y) + \frac{\varepsilon}{V}\sum_v (-\log p_v)`.
    """
    # $-\log p_{y}$: pick each row's target column
    nll = -log_p.gather(1, y[:, None]).squeeze(1)  # (C,)
    if label_smoothing == 0.0:
        return nll
    V = log_p.shape[1]
    # $\frac{1}{V}\sum_v (-\log p_v)$: cross-entropy against the uniform distribution
    smooth = -log_p.sum(dim=1) / V  # (C,)
    # $\ell = (1-\varepsilon)\,\mathrm{nll} + \varepsilon\,\mathrm{smooth}$
    return (1.0 - label_smoothing) * nll + label_smoothing * smooth


def _grad_wrt_logits_(log_p: torch.Tensor, y: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    r"""Turns the buffer of log-probabilities into :math:`\delta = \partial\ell/\partial z = p - q`, in place.

    Derivation: :math:`\ell = \log\sum_u e^{z_u} - \sum_v q_v z_v` (because :math:`\sum_v q_v = 1`), so
    :math:`\partial \ell / \partial z_v = \mathrm{softmax}(z)_v - q_v = p_v - q_v`.
    """
    V = log_p.shape[1]
    p = log_p.exp_()  # (C, V): $p = e^{\log p}$
    if label_smoothing != 0.0:
        p.sub_(label_smoothing / V)  # $p - \varepsilon / V$ for every column
    # ... and $-(1-\varepsilon)$ more at the target column: $\delta = p - q$
    src = torch.full((p.shape[0], 1), -(1.0 - label_smoothing), dtype=p.dtype, device=p.device)
    return p.scatter_add_(1, y[:, None], src)  # (C, V)


def _backprop_chunk(
    delta: torch.Tensor,
    h_c: torch.Tensor,
    weight: torch.Tensor,
    row_weight: torch.Tensor,
    grad_h_c: torch.Tensor | None,
    grad_w: torch.Tensor | None,
    grad_b: torch.Tensor | None,
) -> None:
    r"""Adds one chunk's contribution to the three gradients (the ``None`` ones are skipped).

    ``delta`` is :math:`\delta` ``(C, V)``, ``row_weight`` :math:`w` ``(C,)``. The weight of a row is
    applied to the small ``(C, d)`` side of each product, never to the ``(C, V)`` buffer:
    :math:`\sum_i w_i \delta_i^\top h_i = \delta^\top (w \odot h)`.
    """
    # The products run in the head's dtype (fp32, or bf16 like the naive path's backward).
    delta_m = delta if delta.dtype == weight.dtype else delta.to(weight.dtype)  # (C, V)
    w_col = row_weight[:, None]  # (C, 1)
    if grad_h_c is not None:
        # $\partial\mathcal{L}/\partial h_i = w_i\,\delta_i W$
        torch.mm(delta_m, weight, out=grad_h_c)  # (C, d)
        grad_h_c.mul_(w_col)
    if grad_w is not None:
        # $\partial\mathcal{L}/\partial W \mathrel{+}= \delta^\top (w \odot h)$, summed in fp32
        h_weighted = (h_c * w_col).to(weight.dtype)  # (C, d)
        if weight.dtype == grad_w.dtype:
            grad_w.addmm_(delta_m.t(), h_weighted)  # (V, d)
        else:
            grad_w.add_(torch.mm(delta_m.t(), h_weighted))  # (V, d)
    if grad_b is not None:
        # $\partial\mathcal{L}/\partial b \mathrel{+}= \delta^\top w$
        grad_b.addmv_(delta.t(), row_weight)  # (V,)


def _chunked_pass(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    y: torch.Tensor,
    row_weight: torch.Tensor,
    label_smoothing: float,
    chunk_size: int,
    *,
    want_loss: bool,
    need_grads: tuple[bool, bool, bool],
) -> tuple[torch.Tensor | None, ...]:
    r"""Walks the tokens chunk by chunk; the forward pass and the ``'none'`` backward both use it.

    Args:
        hidden: ``(N, d)``; weight ``(V, d)``; bias ``(V,)`` or None.
        y: ``(N,)`` int64 targets, any valid id at ignored positions (their ``row_weight`` is 0).
        row_weight: ``(N,)`` :math:`w_i`, the factor of token ``i``'s loss and gradients.
        want_loss: Return :math:`w_i \ell_i` per token.
        need_grads: Which of the gradients w.r.t. ``(hidden, weight, bias)`` to compute.

    Returns:
        ``(per_token (N,), grad_hidden (N, d), grad_weight (V, d), grad_bias (V,))``, each None
        where not asked for; all but ``grad_hidden`` in the accumulation dtype.
    """
    N, V = hidden.shape[0], weight.shape[0]
    acc, dev = _accumulation_dtype(hidden.dtype), hidden.device
    need_h, need_w, need_b = need_grads
    per_token = torch.zeros(N, dtype=acc, device=dev) if want_loss else None  # (N,)
    grad_h = torch.empty_like(hidden) if need_h else None  # (N, d)
    grad_w = torch.zeros(weight.shape, dtype=acc, device=dev) if need_w else None  # (V, d)
    grad_b = torch.zeros(V, dtype=acc, device=dev) if need_b and bias is not None else None

    # The only large tensor: one chunk of logits, reused for every chunk.
    buffer = torch.empty(min(chunk_size, N), V, dtype=acc, device=dev)  # (C, V)
    for start in range(0, N, chunk_size):
        end = min(start + chunk_size, N)
        h_c, y_c, w_c = hidden[start:end], y[start:end], row_weight[start:end]
        log_p = _log_probs_chunk(h_c, weight, bias, buffer[: end - start])  # (C, V)
        if per_token is not None:
            # $w_i \ell_i$: 0 at ignored positions
            per_token[start:end] = _per_token_loss(log_p, y_c, label_smoothing) * w_c
        if need_h or need_w or grad_b is not None:
            delta = _grad_wrt_logits_(log_p, y_c, label_smoothing)  # (C, V), overwrites log_p
            g_h = None if grad_h is None else grad_h[start:end]
            _backprop_chunk(delta, h_c, weight, w_c, g_h, grad_w, grad_b)
    return per_token, grad_h, grad_w, grad_b


# ----------------------------------------------------------------------------------------------
# The autograd Function: forward walks the chunks; backward scales (or, for 'none', recomputes).
# ----------------------------------------------------------------------------------------------


class _LinearCrossEntropyFunction(torch.autograd.Function):
    """Chunked ``cross_entropy(hidden @ weight.T + bias, labels)`` on flattened ``(N, d)`` tokens."""

    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,  # (N, d)
        weight: torch.Tensor,  # (V, d)
        bias: torch.Tensor | None,  # (V,)
        labels: torch.Tensor,  # (N,) int64
        ignore_index: int,
        label_smoothing: float,
        reduction: str,
        chunk_size: int,
        denominator: torch.Tensor,  # (): N_valid, num_items_in_batch, or 1 for 'sum'
        want_grads: bool,
    ) -> torch.Tensor:
        valid = labels != ignore_index  # (N,)
        y = labels.masked_fill(~valid, 0)  # (N,): any in-range id; ignored rows get w = 0
        row_weight = valid.to(_accumulation_dtype(hidden.dtype))  # (N,): 1 target, 0 padding
        # 'mean'/'sum': the upstream gradient is one scalar, so compute the gradients now and scale
        # them in backward. 'none': one upstream number per token, unknown yet -> recompute later.
        grads_now = want_grads and reduction != "none"
        need = tuple(grads_now and bool(n) for n in ctx.needs_input_grad[:3])
        per_token, grad_h, grad_w, grad_b = _chunked_pass(
            hidden,
            weight,
            bias,
            y,
            row_weight,
            label_smoothing,
            chunk_size,
            want_loss=True,
            need_grads=(need[0], need[1], need[2]),
        )
        assert per_token is not None
        ctx.reduction, ctx.weight_dtype = reduction, weight.dtype
        if reduction == "none":
            ctx.ignore_index, ctx.label_smoothing = ignore_index, label_smoothing
            ctx.chunk_size = chunk_size
            ctx.save_for_backward(hidden, weight, bias, labels)
            return per_token  # (N,)
        # Saved through save_for_backward, not as ctx attributes: autograd frees saved tensors
        # after the backward pass (unless retain_graph=True), so the (V, d) gradient does not stay
        # alive for as long as the loss tensor is referenced.
        ctx.save_for_backward(grad_h, grad_w, grad_b, denominator)
        # $\mathcal{L} = \frac{1}{\mathrm{denominator}} \sum_i \ell_i$ (the denominator is 1 for 'sum')
        return per_token.sum() / denominator

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        no_grads: tuple[None, ...] = (None,) * 7  # labels, ignore_index, …, want_grads
        if ctx.reduction == "none":
            # Recompute each chunk, now that the per-token upstream gradient $g_i$ is known:
            # $w_i = g_i \cdot [y_i \neq \text{ignore}]$.
            hidden, weight, bias, labels = ctx.saved_tensors
            valid = labels != ctx.ignore_index  # (N,)
            row_weight = grad_output.to(_accumulation_dtype(hidden.dtype)) * valid  # (N,)
            _, grad_h, grad_w, grad_b = _chunked_pass(
                hidden,
                weight,
                bias,
                labels.masked_fill(~valid, 0),
                row_weight,
                ctx.label_smoothing,
                ctx.chunk_size,
                want_loss=False,
                need_grads=(
                    ctx.needs_input_grad[0],
                    ctx.needs_input_grad[1],
                    ctx.needs_input_grad[2],
                ),
            )
        else:
            # Chain rule with the scalar upstream gradient $g = \partial\,\text{total}/\partial\mathcal{L}$:
            # every stored gradient is multiplied by $g / \text{denominator}$. New tensors, so the
            # stored ones stay intact for a second backward (retain_graph=True, gradcheck).
            grad_h, grad_w, grad_b, denominator = ctx.saved_tensors
            scale = grad_output / denominator  # ()
            grad_h = None if grad_h is None else grad_h * scale.to(grad_h.dtype)  # (N, d)
            grad_w = None if grad_w is None else grad_w * scale  # (V, d)
            grad_b = None if grad_b is None else grad_b * scale  # (V,)
        return (
            grad_h,
            None if grad_w is None else grad_w.to(ctx.weight_dtype),  # no copy for fp32
            None if grad_b is None else grad_b.to(ctx.weight_dtype),
            *no_grads,
        )


# ----------------------------------------------------------------------------------------------
# Public API: a function and a module, with the checks of the rest of the package.
# ----------------------------------------------------------------------------------------------


def _check_options(label_smoothing: float, reduction: str, chunk_size: int) -> None:
    """Validates the scalar options shared by the function and the module."""
    check_loss_options(label_smoothing, reduction)
    check_positive_int("chunk_size", chunk_size)


def _check_head(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    labels: torch.Tensor,
    ignore_index: int,
) -> None:
    """Validates ``hidden (B, T, d)``, ``weight (V, d)``, ``bias (V,)`` and ``labels (B, T)`` shapes."""
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise TypeError(f"weight must be floating point, got dtype {weight.dtype}")
    if weight.dim() != 2:
        raise ValueError(
            f"weight must have shape (V, d), like the head's nn.Linear weight, got "
            f"{tuple(weight.shape)}"
        )
    V, d = weight.shape
    check_hidden("hidden", hidden, d)
    if hidden.dtype != weight.dtype:
        raise TypeError(
            f"hidden ({hidden.dtype}) and weight ({weight.dtype}) must share a dtype, as in "
            f"F.linear; cast one of them (e.g. hidden.to(weight.dtype))"
        )
    if hidden.device != weight.device:
        raise ValueError(f"hidden is on {hidden.device} but weight on {weight.device}")
    if bias is not None:
        if not isinstance(bias, torch.Tensor):
            raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
        if bias.dtype != weight.dtype:
            raise TypeError(f"bias ({bias.dtype}) must have weight's dtype ({weight.dtype})")
        if tuple(bias.shape) != (V,):
            raise ValueError(f"bias must have shape (V,) = ({V},), got {tuple(bias.shape)}")
        if bias.device != weight.device:
            raise ValueError(f"bias is on {bias.device} but weight on {weight.device}")
    check_labels("labels", labels, tuple(hidden.shape[:2]), V, ignore_index)


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    r"""``LanguageModelingLoss(F.linear(hidden, weight, bias), labels)`` without the full logits.

    Processes ``chunk_size`` tokens at a time with a custom :class:`torch.autograd.Function`, so at
    most one ``(chunk_size, V)`` block of logits exists in the forward and the backward pass (see
    the module docstring for the memory math). Values and gradients with respect to ``hidden``,
    ``weight`` and ``bias`` equal the naive path's to 1e-5.

    Args:
        hidden: ``(B, T, d)`` final hidden states, fp32 (or bf16/fp16: the products run in that
            dtype, the softmax in fp32).
        weight: ``(V, d)`` head weight, e.g. ``model.head.lm_head.weight`` — tied to the input
            embedding or not; the gradient is added to whatever else uses the same parameter.
        labels: ``(B, T)`` integer ids, already shifted: ``labels[b, t]`` is the token that must
            follow position ``t``; ``ignore_index`` marks positions without a target.
        bias: Optional ``(V,)`` head bias.
        ignore_index: Label value that marks positions to skip.
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        reduction: ``'mean'`` over valid positions (0.0 with zero gradients if there are none),
            ``'sum'``, or ``'none'`` for a ``(B, T)`` tensor that is 0 at ignored positions.
        chunk_size: Tokens per chunk; peak extra memory is about ``chunk_size * V * 4`` bytes.
        num_items_in_batch: For ``'mean'``: divide the sum by this count instead of this call's
            own number of valid targets (gradient accumulation), as in ``LanguageModelingLoss``;
            a count of 0 is read as 1 (loss 0.0, zero gradients).

    Returns:
        A scalar fp32 tensor (``'mean'``, ``'sum'``) or an fp32 ``(B, T)`` tensor (``'none'``);
        fp64 for fp64 inputs (so that ``torch.autograd.gradcheck`` can check it).

    Raises:
        TypeError: Non-tensor or non-floating ``hidden``/``weight``/``bias``, mismatched dtypes,
            non-integer labels.
        ValueError: Shapes that do not fit ``(B, T, d)``, ``(V, d)``, ``(V,)``, ``(B, T)``; labels
            outside ``[0, V)``; bad ``label_smoothing``, ``reduction``, ``chunk_size`` or
            ``num_items_in_batch``; tensors on different devices.

    Example:
        >>> hidden = torch.randn(2, 5, 8)
        >>> weight = torch.randn(11, 8)                  # (V, d) = (11, 8)
        >>> labels = torch.randint(0, 11, (2, 5))
        >>> naive = F.cross_entropy(F.linear(hidden, weight).reshape(-1, 11), labels.reshape(-1))
        >>> chunked = linear_cross_entropy(hidden, weight, labels, chunk_size=3)
        >>> bool(torch.allclose(naive, chunked, atol=1e-5))
        True

    With multi-token prediction, each depth goes through the same function (``h_k`` is ``(B, T-k, d)``
    and ``W_k`` its head's weight); the combination is the one of ``MultiTokenPredictionLoss``::

        main = linear_cross_entropy(h, W, labels)
        mtp = [linear_cross_entropy(h_k, W_k, labels[:, k:]) for k, (h_k, W_k) in enumerate(..., 1)]
        total = main + mtp_loss_fn.depth_weight * sum(mtp)
    """
    _check_options(label_smoothing, reduction, chunk_size)
    _check_head(hidden, weight, bias, labels, ignore_index)
    B, T, d = hidden.shape
    device = hidden.device
    # int64 ids: in int16/uint8, comparing with ignore_index=-100 would wrap around
    labels_flat = labels.reshape(B * T).long()  # (N,)
    acc = _accumulation_dtype(hidden.dtype)  # fp32 (fp64 for fp64 inputs, e.g. gradcheck)

    # The normaliser of 'mean': $\max(N_\text{valid}, 1)$, or the caller's count; 1 for 'sum'.
    if reduction == "mean" and num_items_in_batch is not None:
        # 0 is read as 1 (loss 0.0, zero gradients), as in LanguageModelingLoss
        count = zero_count_as_one("num_items_in_batch", num_items_in_batch)
        denominator = torch.as_tensor(count, dtype=acc, device=device)
    elif reduction == "mean":
        denominator = (labels_flat != ignore_index).sum().clamp(min=1).to(acc)
    else:
        denominator = torch.ones((), dtype=acc, device=device)

    # Only spend the two gradient products when a backward pass can follow.
    want_grads = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (hidden, weight, bias)
    )
    out = _LinearCrossEntropyFunction.apply(  # type: ignore[no-untyped-call]
        hidden.reshape(B * T, d),  # (N, d)
        weight,  # (V, d)
        bias,  # (V,) or None
        labels_flat,  # (N,)
        ignore_index,
        float(label_smoothing),
        reduction,
        chunk_size,
        denominator.reshape(()),
        want_grads,
    )
    out = cast(torch.Tensor, out)
    return out.view(B, T) if reduction == "none" else out  # (B, T) or ()


class LinearCrossEntropyLoss(nn.Module):
    r"""Module form of :func:`linear_cross_entropy`: the head's matrix product and the loss in one.

    Use it in place of ``LanguageModelingLoss(...)(head(hidden), labels)`` — it takes the hidden
    states and the head's weight instead of the logits, and never builds the ``(B, T, V)`` tensor.

    Args:
        vocab_size: :math:`V`; ``weight`` must be ``(V, d)``.
        ignore_index: Label value that marks positions to skip.
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``, as in ``LanguageModelingLoss``.
        chunk_size: Tokens per chunk (memory ≈ ``chunk_size * V * 4`` bytes).

    Example:
        >>> loss_fn = LinearCrossEntropyLoss(vocab_size=5)
        >>> hidden, weight = torch.zeros(1, 3, 4), torch.randn(5, 4)   # zero hidden: uniform p
        >>> round(loss_fn(hidden, weight, torch.tensor([[1, 4, -100]])).item(), 4)  # log(5)
        1.6094
    """

    def __init__(
        self,
        vocab_size: int,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        _check_options(label_smoothing, reduction, chunk_size)
        self.vocab_size = vocab_size
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.reduction: Reduction = reduction
        self.chunk_size = chunk_size

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        labels: torch.Tensor,
        bias: torch.Tensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Computes the loss; see :func:`linear_cross_entropy` for the arguments.

        Raises:
            ValueError: ``weight.shape[0] != vocab_size``, and everything
                :func:`linear_cross_entropy` raises.
        """
        if isinstance(weight, torch.Tensor) and (
            weight.dim() != 2 or weight.shape[0] != self.vocab_size
        ):
            raise ValueError(
                f"weight must have shape (vocab_size={self.vocab_size}, d), got "
                f"{tuple(weight.shape)}"
            )
        return linear_cross_entropy(
            hidden,
            weight,
            labels,
            bias,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction=self.reduction,
            chunk_size=self.chunk_size,
            num_items_in_batch=num_items_in_batch,
        )

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}, "
            f"chunk_size={self.chunk_size}"
        )
