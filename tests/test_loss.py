r"""`LanguageModelingLoss` and the textbook label-smoothing formula against independent references.

The reference of record is PyTorch's own ``F.cross_entropy`` on the flattened fp32 logits (the
issue's contract): values *and* gradients must agree to 1e-6 relative for fp32, fp16 and bf16
logits, every reduction, with and without label smoothing and padding. A second, slower reference
is the formula of the class docstring written out in float64, so that the tests do not only say
"the library calls PyTorch" but also "PyTorch computes what the docstring says".
"""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import aptt_edu.loss.language_modeling as lm_module
from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    label_smoothed_cross_entropy_textbook,
    shift_labels,
)

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
REDUCTIONS = ["mean", "sum", "none"]
REL = 1e-6  # the contract's relative tolerance


def reference(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """The issue's reference: ``F.cross_entropy`` on the flattened fp32 logits."""
    B, T, V = logits.shape
    out = F.cross_entropy(
        logits.reshape(-1, V).float(),  # (B*T, V)
        labels.reshape(-1).long(),  # (B*T,)
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        reduction=reduction,
    )
    return out.view(B, T) if reduction == "none" else out


def assert_rel_close(actual: torch.Tensor, expected: torch.Tensor, rel: float = REL) -> None:
    """``|a - e| <= rel·|e| + rel·max|e|`` elementwise, same dtype and shape.

    The ``rel·max|e|`` floor keeps entries that are tiny next to the largest one (a gradient of
    1e-12 beside one of 1e-2) from demanding more digits than fp32 has; zeros must stay zeros.
    """
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    scale = float(expected.detach().abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * scale)


def grad_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance for gradients *of* ``dtype`` logits.

    Both sides compute the gradient in fp32 (agreeing to 1e-6) and round it to the logits' dtype at
    the end. A 16-bit gradient can only agree to its own precision: one rounding step, ``eps``.
    """
    return REL if dtype == torch.float32 else torch.finfo(dtype).eps


def make_case(
    B: int,
    T: int,
    V: int,
    dtype: torch.dtype = torch.float32,
    pad_frac: float = 0.25,
    ignore_index: int = -100,
    scale: float = 3.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ``(B, T, V)`` logits (a leaf that requires grad) and ``(B, T)`` labels with padding."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, T, V, generator=g) * scale).to(dtype).requires_grad_()  # (B, T, V)
    labels = torch.randint(0, V, (B, T), generator=g)  # (B, T)
    labels[torch.rand(B, T, generator=g) < pad_frac] = ignore_index
    return logits, labels


def loss_and_grad(
    fn: object, logits: torch.Tensor, labels: torch.Tensor, upstream_seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Calls ``fn(logits, labels)`` and backpropagates a fixed random upstream gradient."""
    x = logits.detach().clone().requires_grad_()
    out = fn(x, labels)  # type: ignore[operator]
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(upstream_seed))
    (grad,) = torch.autograd.grad(out, x, g.to(out.dtype))
    return out.detach(), grad


# --------------------------------------------------------------------------------------------
# The contract: equal to F.cross_entropy, values and gradients.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
def test_equals_cross_entropy_values_and_grads(
    dtype: torch.dtype, reduction: str, label_smoothing: float
) -> None:
    logits, labels = make_case(B=3, T=7, V=53, dtype=dtype)  # (3, 7, 53), (3, 7)
    assert (labels == -100).any() and (labels != -100).any()  # the case really has padding
    fn = LanguageModelingLoss(53, label_smoothing=label_smoothing, reduction=reduction)  # type: ignore[arg-type]
    loss, grad = loss_and_grad(fn, logits, labels)
    ref_loss, ref_grad = loss_and_grad(
        lambda x, y: reference(x, y, label_smoothing=label_smoothing, reduction=reduction),
        logits,
        labels,
    )
    assert loss.dtype == torch.float32  # always fp32, whatever the logits
    assert loss.shape == ((3, 7) if reduction == "none" else ())
    assert_rel_close(loss, ref_loss)
    assert grad.dtype == dtype
    assert_rel_close(grad, ref_grad, grad_tolerance(dtype))


@st.composite
def lm_cases(draw: st.DrawFn) -> dict[str, object]:
    return {
        "B": draw(st.integers(1, 3)),
        "T": draw(st.integers(1, 6)),
        "V": draw(st.integers(1, 40)),
        "dtype": draw(st.sampled_from(DTYPES)),
        "pad_frac": draw(st.sampled_from([0.0, 0.3, 1.0])),
        # -100 (the default), another negative id, and 0: a *real* id used as the pad id
        "ignore_index": draw(st.sampled_from([-100, -1, 0])),
        "scale": draw(st.sampled_from([0.1, 3.0, 30.0])),
        "seed": draw(st.integers(0, 2**16)),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "label_smoothing": draw(st.sampled_from([0.0, 0.05, 0.3, 1.0])),
    }


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(case=lm_cases())
def test_equals_cross_entropy_random_shapes(case: dict[str, object]) -> None:
    case = dict(case)  # popped below; leave hypothesis' example intact for its report
    reduction, ls = str(case.pop("reduction")), float(case.pop("label_smoothing"))  # type: ignore[arg-type]
    ignore_index = int(case["ignore_index"])  # type: ignore[call-overload]
    dtype = case["dtype"]
    logits, labels = make_case(**case)  # type: ignore[arg-type]
    V = logits.shape[-1]
    fn = LanguageModelingLoss(V, ignore_index, ls, reduction)  # type: ignore[arg-type]
    loss, grad = loss_and_grad(fn, logits, labels)
    ref_loss, ref_grad = loss_and_grad(
        lambda x, y: reference(x, y, ignore_index, ls, reduction), logits, labels
    )
    if reduction == "mean" and not (labels != ignore_index).any():
        # the one deliberate difference: no valid target -> 0.0 (PyTorch: 0/0 = NaN)
        assert loss.item() == 0.0 and not grad.any()
        return
    assert_rel_close(loss, ref_loss)
    assert_rel_close(grad, ref_grad, grad_tolerance(dtype))  # type: ignore[arg-type]


def test_matches_the_docstring_formula_in_float64() -> None:
    r"""$\ell_i = (1-\varepsilon)(-\log p_{i,y_i}) + \varepsilon \frac{1}{V}\sum_v (-\log p_{i,v})$,
    mean over valid $i$ — written out by hand in float64, independent of ``F.cross_entropy``."""
    eps, V = 0.2, 31
    logits, labels = make_case(B=2, T=9, V=V, pad_frac=0.3)
    z = logits.detach().double()  # (B, T, V)
    log_p = z - z.logsumexp(dim=-1, keepdim=True)  # (B, T, V)
    valid = labels != -100  # (B, T)
    nll = -log_p.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    uniform = -log_p.mean(dim=-1)  # (B, T)
    per_token = ((1 - eps) * nll + eps * uniform) * valid  # (B, T), 0 where ignored
    expected = per_token.sum() / valid.sum()

    for reduction, want in [("mean", expected), ("sum", per_token.sum()), ("none", per_token)]:
        got = LanguageModelingLoss(V, label_smoothing=eps, reduction=reduction)(logits, labels)  # type: ignore[arg-type]
        assert_rel_close(got.double(), want, rel=1e-6)


def test_padding_positions_do_not_change_the_mean() -> None:
    """Appending ignored positions with arbitrary logits leaves the mean (and its gradient) alone."""
    fn = LanguageModelingLoss(17)
    logits, labels = make_case(B=2, T=5, V=17, pad_frac=0.0)
    extra = torch.randn(2, 3, 17) * 50  # (2, 3, 17) garbage where there is no target
    padded_logits = torch.cat([logits.detach(), extra], dim=1).requires_grad_()  # (2, 8, 17)
    padded_labels = torch.cat([labels, torch.full((2, 3), -100)], dim=1)  # (2, 8)
    short = fn(logits, labels)
    long = fn(padded_logits, padded_labels)
    assert_rel_close(long, short)
    long.backward()
    short.backward()
    assert padded_logits.grad is not None and logits.grad is not None
    assert not padded_logits.grad[:, 5:].any()  # ignored positions get exactly zero gradient
    assert_rel_close(padded_logits.grad[:, :5], logits.grad)


# --------------------------------------------------------------------------------------------
# Edge cases: all padding, extreme logits, label dtypes.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_all_padding_mean_is_zero_with_zero_grad(
    dtype: torch.dtype, label_smoothing: float
) -> None:
    logits, labels = make_case(B=2, T=4, V=11, dtype=dtype, pad_frac=1.0)
    assert (labels == -100).all()
    loss = LanguageModelingLoss(11, label_smoothing=label_smoothing)(logits, labels)
    loss.backward()
    assert loss.dtype == torch.float32 and loss.item() == 0.0
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all() and not logits.grad.any()
    # ... which is the deliberate difference from PyTorch, whose mean over nothing is 0/0:
    assert torch.isnan(reference(logits, labels, label_smoothing=label_smoothing))


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_all_padding_sum_and_none_are_zero_like_pytorch(reduction: str) -> None:
    logits, labels = make_case(B=2, T=4, V=11, pad_frac=1.0)
    loss = LanguageModelingLoss(11, label_smoothing=0.1, reduction=reduction)(logits, labels)  # type: ignore[arg-type]
    assert not loss.any()
    torch.testing.assert_close(
        loss, reference(logits, labels, label_smoothing=0.1, reduction=reduction)
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_extreme_logits_stay_finite(dtype: torch.dtype, reduction: str) -> None:
    """Logits of ±1e4 (softmax probabilities of exactly 0 in fp32) still give finite numbers."""
    g = torch.Generator().manual_seed(3)
    V = 13
    signs = torch.randint(0, 2, (2, 6, V), generator=g) * 2 - 1  # (2, 6, V) of ±1
    logits = (signs * 1e4).to(dtype).requires_grad_()  # (2, 6, V)
    labels = torch.randint(0, V, (2, 6), generator=g)
    labels[0, 0] = -100
    fn = LanguageModelingLoss(V, label_smoothing=0.1, reduction=reduction)  # type: ignore[arg-type]
    loss, grad = loss_and_grad(fn, logits, labels)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    # a label on a -1e4 logit costs ~2e4 nats: the loss really is extreme, not clipped
    assert float(loss.abs().max()) > 1e3
    ref_loss, ref_grad = loss_and_grad(
        lambda x, y: reference(x, y, label_smoothing=0.1, reduction=reduction), logits, labels
    )
    assert_rel_close(loss, ref_loss)
    assert_rel_close(grad, ref_grad, grad_tolerance(dtype))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8])
def test_any_integer_label_dtype_gives_the_int64_result(dtype: torch.dtype) -> None:
    logits, labels = make_case(B=2, T=5, V=100, pad_frac=0.3)
    fn = LanguageModelingLoss(100)
    assert_rel_close(fn(logits, labels.to(dtype)), fn(logits, labels))


def test_int16_labels_with_a_vocabulary_wider_than_int16() -> None:
    """Regression: the range check compared int16 labels with ``vocab_size`` in int16 arithmetic,
    where 40000 wraps to a negative number, and rejected every valid id."""
    V = 40_000
    logits = torch.randn(1, 3, V)
    labels = torch.tensor([[5, 32_000, -100]], dtype=torch.int16)
    assert_rel_close(LanguageModelingLoss(V)(logits, labels), reference(logits, labels))


def test_uint8_label_156_is_a_token_not_padding() -> None:
    """Regression: in uint8 arithmetic ``-100`` wraps to 156, so id 156 was counted as padding in
    the mean's denominator while still being scored — the mean came out twice too large."""
    V = 200
    logits = torch.randn(1, 2, V)
    labels = torch.tensor([[156, 3]], dtype=torch.uint8)  # both are real targets
    got = LanguageModelingLoss(V)(logits, labels)
    assert_rel_close(got, reference(logits, labels.long()))


# --------------------------------------------------------------------------------------------
# The optional normaliser num_items_in_batch (gradient accumulation).
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_tensor", [False, True])
def test_num_items_in_batch_makes_micro_batches_add_up(as_tensor: bool) -> None:
    """Two micro-batches with different padding, each divided by the *whole* batch's valid count,
    add up to the full-batch mean — and so do their gradients."""
    fn = LanguageModelingLoss(23, label_smoothing=0.1)
    logits, labels = make_case(B=4, T=6, V=23, pad_frac=0.0)
    labels[0, 1:] = -100  # micro-batch 1 has 7 targets, micro-batch 2 has 12
    full = fn(logits, labels)
    (full_grad,) = torch.autograd.grad(full, logits)

    n_total = int((labels != -100).sum())
    n: int | torch.Tensor = torch.tensor(n_total) if as_tensor else n_total
    parts = fn(logits[:2], labels[:2], num_items_in_batch=n) + fn(
        logits[2:], labels[2:], num_items_in_batch=n
    )
    (parts_grad,) = torch.autograd.grad(parts, logits)
    assert_rel_close(parts, full)
    assert_rel_close(parts_grad, full_grad)
    # without the normaliser the two means are weighted equally, which is *not* the full mean
    naive = (fn(logits[:2], labels[:2]) + fn(logits[2:], labels[2:])) / 2
    assert abs(naive.item() - full.item()) > 1e-3


def test_num_items_in_batch_divides_the_sum() -> None:
    logits, labels = make_case(B=2, T=5, V=19)
    total = LanguageModelingLoss(19, reduction="sum")(logits, labels)
    got = LanguageModelingLoss(19)(logits, labels, num_items_in_batch=40)
    assert_rel_close(got, total / 40)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_num_items_in_batch_is_ignored_unless_mean(reduction: str) -> None:
    logits, labels = make_case(B=2, T=5, V=19)
    fn = LanguageModelingLoss(19, reduction=reduction)  # type: ignore[arg-type]
    torch.testing.assert_close(fn(logits, labels, num_items_in_batch=1000), fn(logits, labels))


# --------------------------------------------------------------------------------------------
# The textbook formula.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_textbook_equals_fast_path(
    dtype: torch.dtype, label_smoothing: float, ignore_index: int
) -> None:
    logits, labels = make_case(B=3, T=6, V=29, dtype=dtype, ignore_index=ignore_index)
    fast, fast_grad = loss_and_grad(
        LanguageModelingLoss(29, ignore_index, label_smoothing), logits, labels
    )
    slow, slow_grad = loss_and_grad(
        lambda x, y: label_smoothed_cross_entropy_textbook(x, y, label_smoothing, ignore_index),
        logits,
        labels,
    )
    assert slow.dtype == torch.float32
    assert_rel_close(slow, fast)
    assert_rel_close(slow_grad, fast_grad, grad_tolerance(dtype))


def test_textbook_all_padding_is_zero() -> None:
    logits, labels = make_case(B=2, T=3, V=7, pad_frac=1.0)
    out = label_smoothed_cross_entropy_textbook(logits, labels, 0.1)
    out.backward()
    assert out.item() == 0.0 and logits.grad is not None and not logits.grad.any()


def test_label_smoothing_one_is_cross_entropy_against_uniform() -> None:
    """ε = 1 makes the target uniform: the loss no longer depends on the labels at all."""
    logits, labels = make_case(B=2, T=4, V=9, pad_frac=0.0)
    fn = LanguageModelingLoss(9, label_smoothing=1.0)
    other = (labels + 1) % 9
    assert_rel_close(fn(logits, labels), fn(logits, other))
    expected = -F.log_softmax(logits.detach().float(), -1).mean()
    assert_rel_close(fn(logits, labels), expected)


# --------------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_gradcheck(reduction: str, label_smoothing: float) -> None:
    """Finite differences agree with autograd.

    The loss computes in fp32 by design (fp64 logits are cast down, like the contract's reference
    ``logits.float()``), so the finite-difference step and tolerances are fp32-sized: a step of
    1e-6 would vanish in fp32 rounding. A wrong gradient (a missing 1/N, a wrong sign, smoothing
    left out) is off by far more than 1e-3.
    """
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)  # (2, 3, 5)
    labels = torch.tensor([[1, -100, 4], [0, 2, -100]])  # (2, 3)
    fn = LanguageModelingLoss(5, label_smoothing=label_smoothing, reduction=reduction)  # type: ignore[arg-type]
    assert torch.autograd.gradcheck(
        lambda z: fn(z, labels), (x,), eps=1e-3, atol=1e-3, rtol=1e-3, raise_exception=True
    )


def test_gradcheck_textbook() -> None:
    x = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1, -100, 4], [0, 2, 3]])
    assert torch.autograd.gradcheck(
        lambda z: label_smoothed_cross_entropy_textbook(z, labels, 0.3),
        (x,),
        eps=1e-3,
        atol=1e-3,
        rtol=1e-3,
    )


# --------------------------------------------------------------------------------------------
# shift_labels and the module's examples
# --------------------------------------------------------------------------------------------


def test_shift_labels() -> None:
    ids = torch.tensor([[5, 7, 2, 9], [1, 0, 0, 0]])
    inputs, labels = shift_labels(ids, pad_token_id=0)
    assert torch.equal(inputs, ids) and inputs.data_ptr() != ids.data_ptr()
    assert labels.tolist() == [[7, 2, 9, -100], [-100, -100, -100, -100]]
    _, labels = shift_labels(ids, ignore_index=-1)
    assert labels.tolist() == [[7, 2, 9, -1], [0, 0, 0, -1]]


def test_uniform_logits_give_log_v() -> None:
    V = 37
    loss = LanguageModelingLoss(V)(torch.zeros(2, 3, V), torch.randint(0, V, (2, 3)))
    assert math.isclose(loss.item(), math.log(V), rel_tol=1e-6)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(lm_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_extra_repr_names_the_settings() -> None:
    text = repr(LanguageModelingLoss(10, ignore_index=-1, label_smoothing=0.1, reduction="sum"))
    for part in ("vocab_size=10", "ignore_index=-1", "label_smoothing=0.1", "reduction='sum'"):
        assert part in text
