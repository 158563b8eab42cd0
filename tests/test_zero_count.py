"""One meaning of ``num_items_in_batch=0`` in every loss: 0 is read as 1.

A whole-batch count of 0 means no part has a target, so every part's sum is 0 and the loss is
``0 / 1 = 0.0`` with zero gradients, like the all-padding rule. (HF's ``ForCausalLMLoss`` returns
``0 / 0 = NaN`` there.) Checked for an int and a tensor, in all three entry points.
"""

from __future__ import annotations

import pytest
import torch

from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.linear_cross_entropy import linear_cross_entropy

B, T, D, V = 2, 4, 3, 5
ZEROS = [0, torch.tensor(0), torch.tensor(0.0)]


@pytest.mark.parametrize("zero", ZEROS, ids=["int", "int tensor", "float tensor"])
def test_zero_count_gives_zero_loss_and_zero_grads(zero: int | torch.Tensor) -> None:
    y = torch.full((B, T), -100)  # no target anywhere
    logits = torch.randn(B, T, V, requires_grad=True)
    hidden = torch.randn(B, T, D, requires_grad=True)
    weight = torch.randn(V, D, requires_grad=True)
    mtp_fn = MultiTokenPredictionLoss(V, mtp_depth=1)
    counts = torch.stack([torch.as_tensor(zero)] * 2) if isinstance(zero, torch.Tensor) else [0, 0]
    losses = {
        "LanguageModelingLoss": LanguageModelingLoss(V)(logits, y, num_items_in_batch=zero),
        "MultiTokenPredictionLoss (main only)": mtp_fn(logits, None, y, num_items_in_batch=zero)[0],
        "MultiTokenPredictionLoss (D=1)": mtp_fn(
            logits, [logits[:, 1:] * 2], y, num_items_in_batch=counts
        )[0],
        "linear_cross_entropy": linear_cross_entropy(hidden, weight, y, num_items_in_batch=zero),
    }
    for name, loss in losses.items():
        assert loss.item() == 0.0, name
        leaves = [hidden, weight] if name == "linear_cross_entropy" else [logits]
        for g in torch.autograd.grad(loss, leaves):
            assert torch.count_nonzero(g).item() == 0, name
            assert torch.isfinite(g).all(), name


def test_zero_count_equals_the_own_count_rule() -> None:
    """``num_items_in_batch=0`` on an all-padding batch is what ``None`` gives: 0.0."""
    y = torch.full((B, T), -100)
    logits = torch.randn(B, T, V)
    fn = LanguageModelingLoss(V)
    assert fn(logits, y, num_items_in_batch=0).item() == fn(logits, y).item() == 0.0


@pytest.mark.parametrize("count", [3, torch.tensor(3)], ids=["int", "tensor"])
def test_nonzero_count_is_used_as_given(count: int | torch.Tensor) -> None:
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, V, (B, T), generator=g)
    hidden = torch.randn(B, T, D, generator=g)
    weight = torch.randn(V, D, generator=g)
    logits = hidden @ weight.T
    reference = (
        torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="sum") / 3
    )
    torch.testing.assert_close(
        LanguageModelingLoss(V)(logits, y, num_items_in_batch=count), reference
    )
    torch.testing.assert_close(
        linear_cross_entropy(hidden, weight, y, num_items_in_batch=count), reference
    )
    torch.testing.assert_close(
        MultiTokenPredictionLoss(V)(logits, None, y, num_items_in_batch=count)[0], reference
    )


def test_negative_count_is_refused_everywhere() -> None:
    y = torch.zeros(B, T, dtype=torch.long)
    with pytest.raises(ValueError, match="num_items_in_batch must be >= 0"):
        LanguageModelingLoss(V)(torch.zeros(B, T, V), y, num_items_in_batch=-1)
    with pytest.raises(ValueError, match="num_items_in_batch must be >= 0"):
        linear_cross_entropy(torch.zeros(B, T, D), torch.zeros(V, D), y, num_items_in_batch=-1)
    with pytest.raises(ValueError, match="num_items_in_batch must be >= 0"):
        MultiTokenPredictionLoss(V)(torch.zeros(B, T, V), None, y, num_items_in_batch=-1)
