"""Chunked linear + cross-entropy against the naive path it replaces.

The reference everywhere is ``LanguageModelingLoss(V, ...)(F.linear(hidden, weight, bias), labels)``:
the full ``(B, T, V)`` logits, then the package's own, separately tested loss. Values and gradients
(w.r.t. hidden, weight, bias) must agree to 1e-5.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from aptt_edu.heads.language_modeling import CombinedLMHead
from aptt_edu.loss import LinearCrossEntropyLoss, linear_cross_entropy
from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    MultiTokenPredictionLoss,
    Reduction,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _inputs(
    B: int = 3,
    T: int = 7,
    d: int = 16,
    V: int = 37,
    bias: bool = False,
    pad: int = 2,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Leaf ``hidden (B, T, d)``, ``weight (V, d)``, ``bias (V,)`` and labels with ``pad`` ignored."""
    hidden = torch.randn(B, T, d, dtype=dtype, requires_grad=True)
    weight = (torch.randn(V, d, dtype=dtype) / d**0.5).requires_grad_()
    b = torch.randn(V, dtype=dtype, requires_grad=True) if bias else None
    labels = torch.randint(0, V, (B, T))
    labels.view(-1)[torch.randperm(B * T)[:pad]] = -100
    return hidden, weight, b, labels


def _grads(out: torch.Tensor, upstream: torch.Tensor, *leaves: torch.Tensor | None) -> list[Any]:
    """Gradients of ``(out * upstream).sum()`` w.r.t. the non-None leaves."""
    present = [t for t in leaves if t is not None]
    return list(torch.autograd.grad(out, present, upstream))


def _naive(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    labels: torch.Tensor,
    **kwargs: Any,
) -> torch.Tensor:
    num_items = kwargs.pop("num_items_in_batch", None)
    loss_fn = LanguageModelingLoss(weight.shape[0], **kwargs)
    return loss_fn(F.linear(hidden, weight, bias), labels, num_items_in_batch=num_items)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 4, 5, 21, 1024])  # 5 does not divide N = 21
def test_matches_naive_values_and_grads(
    reduction: Reduction, label_smoothing: float, bias: bool, chunk_size: int
) -> None:
    hidden, weight, b, labels = _inputs(bias=bias)
    kw: dict[str, Any] = {"label_smoothing": label_smoothing, "reduction": reduction}
    ref = _naive(hidden, weight, b, labels, **kw)
    out = linear_cross_entropy(hidden, weight, labels, b, chunk_size=chunk_size, **kw)
    assert out.shape == ref.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, **TOL)
    # An upstream gradient other than 1 (a per-token one for 'none') exercises the chain rule.
    upstream = torch.rand_like(ref) + 0.5
    for got, want in zip(
        _grads(out, upstream, hidden, weight, b),
        _grads(ref, upstream, hidden, weight, b),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **TOL)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    B=st.integers(1, 3),
    T=st.integers(1, 9),
    d=st.integers(1, 12),
    V=st.integers(2, 40),
    chunk_size=st.integers(1, 30),
    label_smoothing=st.sampled_from([0.0, 0.05, 1.0]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    pad_fraction=st.floats(0.0, 1.0),
)
def test_property_random_shapes(
    B: int,
    T: int,
    d: int,
    V: int,
    chunk_size: int,
    label_smoothing: float,
    reduction: Reduction,
    pad_fraction: float,
) -> None:
    hidden, weight, b, labels = _inputs(B, T, d, V, bias=True, pad=int(pad_fraction * B * T))
    kw: dict[str, Any] = {"label_smoothing": label_smoothing, "reduction": reduction}
    ref = _naive(hidden, weight, b, labels, **kw)
    out = linear_cross_entropy(hidden, weight, labels, b, chunk_size=chunk_size, **kw)
    torch.testing.assert_close(out, ref, **TOL)
    upstream = torch.ones_like(ref)
    for got, want in zip(
        _grads(out, upstream, hidden, weight, b),
        _grads(ref, upstream, hidden, weight, b),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("num_items", [50, torch.tensor(50)])
def test_num_items_in_batch(num_items: int | torch.Tensor) -> None:
    hidden, weight, _, labels = _inputs()
    ref = _naive(hidden, weight, None, labels, num_items_in_batch=num_items)
    out = linear_cross_entropy(hidden, weight, labels, num_items_in_batch=num_items, chunk_size=4)
    torch.testing.assert_close(out, ref, **TOL)
    for got, want in zip(
        torch.autograd.grad(out, [hidden, weight]),
        torch.autograd.grad(ref, [hidden, weight]),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_all_padding_gives_zero_loss_and_zero_grads(reduction: Reduction) -> None:
    hidden, weight, b, labels = _inputs(bias=True)
    labels.fill_(-100)
    out = linear_cross_entropy(
        hidden, weight, labels, b, reduction=reduction, label_smoothing=0.1, chunk_size=4
    )
    assert torch.equal(out, torch.zeros_like(out))  # 0.0, not NaN
    out.sum().backward()
    for t in (hidden, weight, b):
        assert t is not None and t.grad is not None
        assert torch.equal(t.grad, torch.zeros_like(t))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_float64(reduction: Reduction) -> None:
    hidden, weight, b, labels = _inputs(B=2, T=3, d=4, V=5, bias=True, pad=1, dtype=torch.float64)

    def f(h: torch.Tensor, w: torch.Tensor, bb: torch.Tensor) -> torch.Tensor:
        return linear_cross_entropy(
            h, w, labels, bb, reduction=reduction, label_smoothing=0.1, chunk_size=4
        )

    assert torch.autograd.gradcheck(f, (hidden, weight, b))


def test_tied_weight_gradients_accumulate() -> None:
    """Embedding and head share one Parameter: its gradient is the sum of both uses."""
    V, d = 29, 8
    ids = torch.randint(0, V, (2, 6))
    labels = torch.roll(ids, -1, dims=1)
    labels[:, -1] = -100
    grads = []
    for chunked in (False, True):
        torch.manual_seed(1)
        emb = nn.Embedding(V, d)
        mix = nn.Linear(d, d)  # a stand-in for the Transformer trunk
        hidden = torch.tanh(mix(emb(ids)))  # (B, T, d)
        if chunked:
            loss = linear_cross_entropy(hidden, emb.weight, labels, chunk_size=5)
        else:
            loss = LanguageModelingLoss(V)(F.linear(hidden, emb.weight), labels)
        loss.backward()
        assert emb.weight.grad is not None
        grads.append((loss.detach(), emb.weight.grad.clone(), mix.weight.grad))
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, **TOL)
    # both uses contribute: rows of tokens that were only *targets* still get a gradient
    assert grads[1][1].abs().sum() > 0


def test_mtp_each_depth_through_the_function() -> None:
    """main + λ Σ_k linear_cross_entropy(h_k, W_k, labels[:, k:]) == MultiTokenPredictionLoss."""
    B, T, d, V, D = 2, 8, 12, 31, 2
    head = CombinedLMHead(d, V, use_mtp=True, mtp_depth=D, tie_weights=False).train()
    hidden = torch.randn(B, T, d, requires_grad=True)
    labels = torch.randint(0, V, (B, T))
    labels[:, -1] = -100
    mtp_loss = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=0.3, label_smoothing=0.1)

    main_logits, mtp_logits = head(hidden)
    ref_total, ref_parts = mtp_loss(main_logits, mtp_logits, labels)
    params = [hidden, *head.parameters()]
    ref_grads = torch.autograd.grad(ref_total, params)

    assert head.mtp_head is not None
    main = linear_cross_entropy(hidden, head.lm_head.weight, labels, label_smoothing=0.1)
    depths = [
        linear_cross_entropy(
            hidden[:, :-k],  # (B, T-k, d): the same trunk output feeds every depth here
            mtp_k.weight,
            labels[:, k:],  # (B, T-k): depth k predicts labels[:, i+k]
            label_smoothing=0.1,
            chunk_size=3,
        )
        for k, mtp_k in enumerate(head.mtp_head.heads, start=1)
    ]
    total = main + mtp_loss.depth_weight * sum(depths)
    torch.testing.assert_close(total, ref_total, **TOL)
    torch.testing.assert_close(main, ref_parts["main_loss"], **TOL)
    for k, loss_k in enumerate(depths, start=1):
        torch.testing.assert_close(loss_k, ref_parts[f"mtp_loss_{k}"], **TOL)
    for got, want in zip(torch.autograd.grad(total, params), ref_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op creates."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_never_more_than_one_chunk_of_logits(reduction: Reduction) -> None:
    """No op in forward or backward creates a tensor larger than a (chunk, V) block."""
    N, d, V, chunk = 64, 4, 50, 8  # N*V = 3200, chunk*V = 400, V*d = 200
    hidden, weight, _, labels = _inputs(B=2, T=N // 2, d=d, V=V)
    with _LargestTensor() as chunked:
        linear_cross_entropy(
            hidden, weight, labels, reduction=reduction, chunk_size=chunk
        ).sum().backward()
    assert chunked.largest == chunk * V
    with _LargestTensor() as naive:
        _naive(hidden, weight, None, labels, reduction=reduction).sum().backward()
    assert naive.largest == N * V


def test_no_grad_mode_and_second_backward() -> None:
    hidden, weight, _, labels = _inputs()
    with torch.no_grad():
        value = linear_cross_entropy(hidden, weight, labels, chunk_size=4)
    assert value.grad_fn is None
    out = linear_cross_entropy(hidden, weight, labels, chunk_size=4)
    torch.testing.assert_close(out, value, **TOL)
    first = torch.autograd.grad(out, [hidden, weight], retain_graph=True)
    second = torch.autograd.grad(out, [hidden, weight])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, atol=0.0, rtol=0.0)


def test_only_weight_requires_grad() -> None:
    hidden, weight, _, labels = _inputs()
    hidden = hidden.detach()
    out = linear_cross_entropy(hidden, weight, labels, chunk_size=4)
    (got,) = torch.autograd.grad(out, [weight])
    (want,) = torch.autograd.grad(_naive(hidden, weight, None, labels), [weight])
    torch.testing.assert_close(got, want, **TOL)


def test_bfloat16_close_to_naive() -> None:
    """bf16 hidden/weight: 16-bit products, fp32 softmax; close to the naive bf16 path."""
    hidden, weight, _, labels = _inputs(B=2, T=16, d=32, V=64, dtype=torch.bfloat16)
    out = linear_cross_entropy(hidden, weight, labels, chunk_size=7)
    ref = _naive(hidden, weight, None, labels)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, atol=1e-2, rtol=1e-2)
    for got, want in zip(
        torch.autograd.grad(out, [hidden, weight]),
        torch.autograd.grad(ref, [hidden, weight]),
        strict=True,
    ):
        assert got.dtype == torch.bfloat16
        torch.testing.assert_close(got, want, atol=2e-3, rtol=5e-2)


def test_small_integer_label_dtypes() -> None:
    hidden, weight, _, labels = _inputs()
    out16 = linear_cross_entropy(hidden, weight, labels.to(torch.int16), chunk_size=4)
    torch.testing.assert_close(out16, linear_cross_entropy(hidden, weight, labels), **TOL)


def test_module_matches_function_and_repr() -> None:
    hidden, weight, b, labels = _inputs(bias=True)
    loss_fn = LinearCrossEntropyLoss(37, label_smoothing=0.1, reduction="sum", chunk_size=5)
    out = loss_fn(hidden, weight, labels, b)
    ref = linear_cross_entropy(
        hidden, weight, labels, b, label_smoothing=0.1, reduction="sum", chunk_size=5
    )
    torch.testing.assert_close(out, ref, atol=0.0, rtol=0.0)
    assert "chunk_size=5" in repr(loss_fn) and "vocab_size=37" in repr(loss_fn)


def test_ignore_index_other_than_default() -> None:
    hidden, weight, _, labels = _inputs()
    labels[labels == -100] = 0
    labels[0, :3] = 7  # token id 7 now means "no target"
    ref = _naive(hidden, weight, None, labels, ignore_index=7)
    out = linear_cross_entropy(hidden, weight, labels, ignore_index=7, chunk_size=4)
    torch.testing.assert_close(out, ref, **TOL)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"hidden": [[1.0]]}, TypeError, "hidden must be a torch.Tensor"),
        ({"hidden": torch.ones(3, 7, 16, dtype=torch.long)}, TypeError, "floating point"),
        ({"hidden": torch.randn(21, 16)}, ValueError, r"\(B, T, d_model=16\)"),
        ({"hidden": torch.randn(3, 7, 15)}, ValueError, r"\(B, T, d_model=16\)"),
        ({"hidden": torch.randn(3, 7, 16, dtype=torch.float64)}, TypeError, "share a dtype"),
        ({"weight": torch.randn(37)}, ValueError, r"weight must have shape \(V, d\)"),
        ({"weight": torch.ones(37, 16, dtype=torch.long)}, TypeError, "weight must be floating"),
        ({"bias": torch.randn(36)}, ValueError, r"bias must have shape \(V,\)"),
        ({"bias": torch.randn(37, dtype=torch.float64)}, TypeError, "bias"),
        ({"labels": torch.zeros(3, 6, dtype=torch.long)}, ValueError, "labels must have shape"),
        ({"labels": torch.full((3, 7), 37)}, ValueError, r"must lie in \[0, 37\)"),
        ({"labels": torch.zeros(3, 7)}, TypeError, "integer tensor"),
        ({"label_smoothing": 1.5}, ValueError, "label_smoothing"),
        ({"reduction": "avg"}, ValueError, "reduction must be one of"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
        ({"chunk_size": 2.5}, TypeError, "chunk_size must be an int"),
        ({"num_items_in_batch": -1}, ValueError, "num_items_in_batch must be >= 0"),
        ({"num_items_in_batch": "10"}, TypeError, "num_items_in_batch"),
    ],
)
def test_bad_inputs(change: dict[str, Any], error: type[Exception], match: str) -> None:
    hidden, weight, _, labels = _inputs()
    kwargs: dict[str, Any] = {"hidden": hidden, "weight": weight, "labels": labels, "bias": None}
    kwargs.update(change)
    with pytest.raises(error, match=match):
        linear_cross_entropy(**kwargs)


def test_module_rejects_bad_config_and_wrong_vocab() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        LinearCrossEntropyLoss(0)
    with pytest.raises(ValueError, match="chunk_size"):
        LinearCrossEntropyLoss(10, chunk_size=-1)
    with pytest.raises(ValueError, match="reduction"):
        LinearCrossEntropyLoss(10, reduction="max")  # type: ignore[arg-type]
    hidden, weight, _, labels = _inputs()
    with pytest.raises(ValueError, match=r"vocab_size=36"):
        LinearCrossEntropyLoss(36)(hidden, weight, labels)


def test_no_weight_sized_gradient_stays_alive_after_backward() -> None:
    """After ``backward()`` the graph of a still-referenced loss holds no (V, d) gradient."""
    import gc
    import weakref

    V, d = 37, 8
    hidden = torch.randn(2, 5, d, requires_grad=True)
    weight = torch.randn(V, d, requires_grad=True)
    labels = torch.randint(0, V, (2, 5))
    alive: list[weakref.ref[torch.Tensor]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        if tuple(t.shape) == (V, d) and t is not weight:
            alive.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = linear_cross_entropy(hidden, weight, labels, chunk_size=3)
    assert alive, "the forward pass saves the (V, d) weight gradient for backward"
    loss.backward()
    gc.collect()
    assert all(r() is None for r in alive), "a (V, d) gradient buffer outlived backward()"
    assert weight.grad is not None and loss.requires_grad  # the loss is still referenced
