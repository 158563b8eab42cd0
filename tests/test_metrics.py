r"""`PerplexityMetric` and `TokenAccuracyMetric` against torchmetrics, the independent reference.

Perplexity must be accumulated as :math:`\exp(\sum \mathrm{NLL} / \sum N)` over all batches, never as
the mean of per-batch perplexities; one test builds a case where the two differ by a factor of 4.
"""

from __future__ import annotations

import doctest
import math

import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import Perplexity

import aptt_edu.loss.metrics as metrics_module
from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric

V = 17


def batches(ignore_index: int = -100, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Three batches of different shapes and different amounts of (right) padding per row."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for B, T, pads in [(2, 5, [0, 0]), (3, 9, [0, 4, 7]), (1, 4, [3])]:
        logits = torch.randn(B, T, V, generator=g) * 2  # (B, T, V)
        labels = torch.randint(0, V, (B, T), generator=g)  # (B, T)
        for row, pad in enumerate(pads):
            labels[row, T - pad :] = ignore_index
        out.append((logits, labels))
    return out


# --------------------------------------------------------------------------------------------
# Perplexity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_perplexity_single_batch_equals_torchmetrics(ignore_index: int) -> None:
    logits, labels = batches(ignore_index)[1]
    assert (labels == ignore_index).any()
    ours = PerplexityMetric(ignore_index)(logits, labels)
    theirs = Perplexity(ignore_index=ignore_index)(logits, labels)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs.double(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("use_call", [False, True])
def test_perplexity_accumulates_like_torchmetrics(use_call: bool) -> None:
    ours, theirs = PerplexityMetric(), Perplexity(ignore_index=-100)
    for logits, labels in batches():
        if use_call:
            # __call__ returns the batch value *and* accumulates, torchmetrics-style
            torch.testing.assert_close(
                ours(logits, labels), theirs(logits, labels).double(), rtol=1e-5, atol=0
            )
        else:
            ours.update(logits, labels)
            theirs.update(logits, labels)
    torch.testing.assert_close(ours.compute(), theirs.compute().double(), rtol=1e-5, atol=0)


def test_perplexity_reset_forgets_everything() -> None:
    ours = PerplexityMetric()
    data = batches()
    for logits, labels in data:
        ours.update(logits, labels)
    ours.reset()
    assert torch.isnan(ours.compute())  # no token seen since the reset
    ours.update(*data[0])
    torch.testing.assert_close(
        ours.compute(), Perplexity(ignore_index=-100)(*data[0]).double(), rtol=1e-5, atol=0
    )


def test_mean_of_batch_perplexities_is_not_the_perplexity() -> None:
    """Batch A: one token, uniform over 10 ids (PPL 10). Batch B: nine tokens predicted with
    certainty (PPL 1). Over all ten tokens the NLL is log(10)/10, so PPL = 10**0.1 ≈ 1.26 —
    while the mean of the two batch perplexities is 5.5."""
    a_logits, a_labels = torch.zeros(1, 1, 10), torch.tensor([[3]])  # uniform: NLL = log 10
    b_labels = torch.arange(9).view(1, 9)  # (1, 9)
    b_logits = torch.nn.functional.one_hot(b_labels, 10).float() * 100  # p(label) = 1 in fp32

    metric = PerplexityMetric()
    per_batch = [metric(a_logits, a_labels).item(), metric(b_logits, b_labels).item()]
    assert per_batch == pytest.approx([10.0, 1.0], rel=1e-6)
    accumulated = metric.compute().item()
    assert accumulated == pytest.approx(10**0.1, rel=1e-6)
    assert sum(per_batch) / 2 == pytest.approx(5.5, rel=1e-6)
    assert sum(per_batch) / 2 > 4 * accumulated
    # torchmetrics agrees with the accumulated value, not with the mean
    tm = Perplexity(ignore_index=-100)
    tm.update(a_logits, a_labels)
    tm.update(b_logits, b_labels)
    assert tm.compute().item() == pytest.approx(accumulated, rel=1e-5)


def test_perplexity_of_an_all_padding_batch_is_nan_and_adds_nothing() -> None:
    metric = PerplexityMetric()
    logits, labels = batches()[0]
    metric.update(logits, labels)
    before = metric.compute()
    assert torch.isnan(metric(logits, torch.full_like(labels, -100)))
    torch.testing.assert_close(metric.compute(), before)


def test_perplexity_accepts_16_bit_logits() -> None:
    logits, labels = batches()[1]
    half = PerplexityMetric()(logits.bfloat16(), labels)
    full = Perplexity(ignore_index=-100)(logits.bfloat16().float(), labels)
    torch.testing.assert_close(half, full.double(), rtol=1e-5, atol=0)


def test_metrics_do_not_track_gradients() -> None:
    logits, labels = batches()[0]
    logits.requires_grad_()
    assert not PerplexityMetric()(logits, labels).requires_grad
    assert not TokenAccuracyMetric()(logits, labels).requires_grad


# --------------------------------------------------------------------------------------------
# Token accuracy
# --------------------------------------------------------------------------------------------


def torchmetrics_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, top_k: int, ignore_index: int = -100
) -> torch.Tensor:
    """``MulticlassAccuracy(micro)`` on the flattened valid positions."""
    valid = labels != ignore_index  # (B, T)
    acc = MulticlassAccuracy(num_classes=V, top_k=top_k, average="micro")
    return acc(logits[valid], labels[valid])  # (N, V), (N,)


@pytest.mark.parametrize("top_k", [1, 2, 5])
@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_accuracy_single_batch_equals_torchmetrics(top_k: int, ignore_index: int) -> None:
    for logits, labels in batches(ignore_index):
        ours = TokenAccuracyMetric(ignore_index, top_k)(logits, labels)
        theirs = torchmetrics_accuracy(logits, labels, top_k, ignore_index)
        torch.testing.assert_close(ours, theirs.double(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("top_k", [1, 3])
def test_accuracy_accumulates_like_torchmetrics(top_k: int) -> None:
    ours = TokenAccuracyMetric(top_k=top_k)
    theirs = MulticlassAccuracy(num_classes=V, top_k=top_k, average="micro")
    for logits, labels in batches(seed=5):
        ours.update(logits, labels)
        valid = labels != -100
        theirs.update(logits[valid], labels[valid])
    torch.testing.assert_close(ours.compute(), theirs.compute().double(), rtol=1e-6, atol=0)
    ours.reset()
    assert torch.isnan(ours.compute())


def test_accuracy_hand_counted() -> None:
    """Four valid positions; the label is the top-1 logit at two and the second at one more."""
    logits = torch.tensor(
        [[[5.0, 1.0, 0.0], [0.0, 5.0, 1.0], [1.0, 5.0, 0.0], [0.0, 1.0, 5.0], [9.0, 0.0, 0.0]]]
    )  # (1, 5, 3)
    labels = torch.tensor([[0, 1, 0, 0, -100]])  # hit, hit, 2nd-best, 3rd-best, ignored
    assert TokenAccuracyMetric()(logits, labels).item() == pytest.approx(2 / 4)
    assert TokenAccuracyMetric(top_k=2)(logits, labels).item() == pytest.approx(3 / 4)
    assert TokenAccuracyMetric(top_k=3)(logits, labels).item() == pytest.approx(1.0)


def test_accuracy_call_returns_the_batch_value_and_accumulates() -> None:
    metric = TokenAccuracyMetric()
    logits = torch.eye(4).unsqueeze(0) * 3  # (1, 4, 4): predicts 0, 1, 2, 3
    right, wrong = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[1, 2, 3, -100]])
    assert metric(logits, right).item() == 1.0
    assert metric(logits, wrong).item() == 0.0
    assert metric.compute().item() == pytest.approx(4 / 7)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(metrics_module)
    assert result.attempted > 0 and result.failed == 0
    assert math.isclose(
        PerplexityMetric()(torch.zeros(1, 2, 10), torch.ones(1, 2).long()).item(),
        10.0,
        rel_tol=1e-6,
    )


def test_uint8_labels_count_id_156_as_a_token() -> None:
    """Regression: uint8 arithmetic turned ``ignore_index=-100`` into 156, so a real id 156 was
    left out of the token count (perplexity) and of the valid positions (accuracy)."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 3, 200, generator=g)  # (1, 3, 200)
    labels = torch.tensor([[156, 7, 156]])  # all three are real targets
    for metric in (PerplexityMetric(), TokenAccuracyMetric(top_k=100)):
        torch.testing.assert_close(metric(logits, labels.to(torch.uint8)), metric(logits, labels))
    assert TokenAccuracyMetric(top_k=200)(logits, labels.to(torch.uint8)).item() == 1.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_states_keep_their_precision_through_module_casts(dtype: torch.dtype) -> None:
    """A metric inside a model that is cast with ``.half()`` etc. still sums in fp64 / int64."""
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(4, 64, 50, generator=g) * 3, torch.randint(0, 50, (4, 64), generator=g))
        for _ in range(20)
    ]  # 5,120 tokens: an fp16 NLL sum would pass 65,504 and overflow
    ref_ppl, ref_acc = PerplexityMetric(), TokenAccuracyMetric(top_k=2)
    holder = torch.nn.ModuleDict(
        {
            "ppl": PerplexityMetric(),
            "acc": TokenAccuracyMetric(top_k=2),
            "lin": torch.nn.Linear(2, 2),
        }
    )
    holder.ppl.update(*batches[0])  # state before the cast must survive it exactly
    holder = holder.to(dtype)
    assert holder.lin.weight.dtype == dtype  # the cast did happen
    for logits, labels in batches[1:]:
        holder.ppl.update(logits, labels)
        holder.acc.update(logits, labels)
    for logits, labels in batches:
        ref_ppl.update(logits, labels)
    for logits, labels in batches[1:]:
        ref_acc.update(logits, labels)
    assert holder.ppl.nll_sum.dtype == torch.float64
    assert holder.ppl.token_count.dtype == torch.int64
    assert holder.acc.correct.dtype == torch.int64
    assert torch.equal(holder.ppl.compute(), ref_ppl.compute())
    assert torch.equal(holder.acc.compute(), ref_acc.compute())
    # .half() directly on the metric, and moving to the meta device and back with to_empty
    m = PerplexityMetric().half()
    assert m.nll_sum.dtype == torch.float64
    m = PerplexityMetric().to("meta").to_empty(device="cpu")
    assert m.nll_sum.dtype == torch.float64 and m.nll_sum.device.type == "cpu"
