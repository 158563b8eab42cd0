r"""`MultiTokenPredictionLoss`: the total, the loss dict, and — above all — the label alignment.

Depth ``k`` at position ``i`` predicts :math:`t_{i+k+1}` (DeepSeek-V3 §2.2), which with shifted
labels is ``labels[:, i+k]``: ``mtp_logits[k-1]`` is ``(B, T-k, V)`` and is scored against
``labels[:, k:]``. An off-by-one here trains the model on the wrong token without any error, so the
alignment test below builds logits that are right for *exactly one* shift and checks that only the
correct shift gives a near-zero loss.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss


def ce(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Reference mean cross-entropy over valid positions (``F.cross_entropy`` on fp32)."""
    V = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, V).float(), labels.reshape(-1), label_smoothing=label_smoothing
    )


def random_case(
    B: int, T: int, V: int, D: int, seed: int = 0, pad: int = 2
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """Main logits ``(B, T, V)``, ``D`` MTP logits ``(B, T-k, V)`` and labels with right padding."""
    g = torch.Generator().manual_seed(seed)
    main = torch.randn(B, T, V, generator=g, requires_grad=True)  # (B, T, V)
    mtp = [
        torch.randn(B, T - k, V, generator=g, requires_grad=True)  # (B, T-k, V)
        for k in range(1, D + 1)
    ]
    labels = torch.randint(0, V, (B, T), generator=g)  # (B, T)
    labels[0, T - min(pad, T - D - 1) :] = -100  # right padding in row 0, a target left per depth
    return main, mtp, labels


# --------------------------------------------------------------------------------------------
# The total and the dict
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("D", [1, 2, 3])
@pytest.mark.parametrize("average_over_depth", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_total_is_main_plus_weighted_sum(
    D: int, average_over_depth: bool, label_smoothing: float
) -> None:
    lam = 0.3
    main, mtp, labels = random_case(B=2, T=8, V=13, D=D)
    fn = MultiTokenPredictionLoss(13, D, lam, label_smoothing, -100, average_over_depth)
    total, parts = fn(main, mtp, labels)

    assert list(parts) == ["main_loss", *[f"mtp_loss_{k}" for k in range(1, D + 1)], "total_loss"]
    assert parts["total_loss"] is total
    assert all(v.dtype == torch.float32 and v.shape == () for v in parts.values())

    main_ref = ce(main, labels, label_smoothing)
    mtp_ref = [ce(mtp[k - 1], labels[:, k:], label_smoothing) for k in range(1, D + 1)]
    weight = lam / D if average_over_depth else lam
    assert fn.depth_weight == pytest.approx(weight)
    torch.testing.assert_close(parts["main_loss"], main_ref, rtol=1e-6, atol=0)
    for k in range(1, D + 1):
        torch.testing.assert_close(parts[f"mtp_loss_{k}"], mtp_ref[k - 1], rtol=1e-6, atol=0)
    torch.testing.assert_close(total, main_ref + weight * sum(mtp_ref), rtol=1e-6, atol=0)

    # gradients: each depth's logits receive exactly `weight` times its own loss' gradient
    total.backward()
    for k in range(1, D + 1):
        (own,) = torch.autograd.grad(ce(mtp[k - 1], labels[:, k:], label_smoothing), mtp[k - 1])
        assert mtp[k - 1].grad is not None
        torch.testing.assert_close(mtp[k - 1].grad, weight * own, rtol=1e-6, atol=1e-9)


def test_no_mtp_logits_gives_the_main_loss_only() -> None:
    main, _, labels = random_case(B=2, T=6, V=11, D=2)
    total, parts = MultiTokenPredictionLoss(11, mtp_depth=2)(main, None, labels)
    assert list(parts) == ["main_loss", "total_loss"]
    assert parts["total_loss"] is total
    torch.testing.assert_close(total, ce(main, labels), rtol=1e-6, atol=0)


def test_lambda_zero_leaves_main_loss_and_no_mtp_gradient() -> None:
    main, mtp, labels = random_case(B=2, T=6, V=11, D=1)
    total, parts = MultiTokenPredictionLoss(11, mtp_lambda=0.0)(main, mtp, labels)
    torch.testing.assert_close(total, parts["main_loss"])
    assert parts["mtp_loss_1"].item() > 0
    total.backward()
    assert mtp[0].grad is not None and not mtp[0].grad.any()


@st.composite
def mtp_cases(draw: st.DrawFn) -> tuple[int, int, int, int, int, float, bool]:
    D = draw(st.integers(1, 3))
    return (
        draw(st.integers(1, 3)),  # B
        draw(st.integers(D + 1, D + 6)),  # T > D, so every depth has a position
        draw(st.integers(2, 30)),  # V
        D,
        draw(st.integers(0, 2**16)),  # seed
        draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])),  # lambda
        draw(st.booleans()),  # average_over_depth
    )


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(case=mtp_cases())
def test_random_shapes(case: tuple[int, int, int, int, int, float, bool]) -> None:
    B, T, V, D, seed, lam, avg = case
    main, mtp, labels = random_case(B, T, V, D, seed=seed, pad=1)
    total, _ = MultiTokenPredictionLoss(V, D, lam, average_over_depth=avg)(main, mtp, labels)
    weight = lam / D if avg else lam
    expected = ce(main, labels) + weight * sum(
        ce(mtp[k - 1], labels[:, k:]) for k in range(1, D + 1)
    )
    torch.testing.assert_close(total, expected, rtol=1e-6, atol=1e-7)
    assert torch.isfinite(total)


# --------------------------------------------------------------------------------------------
# Alignment: only labels[:, k:] makes one-hot logits of depth k correct
# --------------------------------------------------------------------------------------------


def one_hot_logits(targets: torch.Tensor, V: int, margin: float = 30.0) -> torch.Tensor:
    """``(B, L)`` ids -> ``(B, L, V)`` logits that put ``margin`` on the id, 0 elsewhere."""
    return F.one_hot(targets, V).float() * margin  # (B, L, V)


@pytest.mark.parametrize("D", [1, 2, 3])
def test_alignment_only_the_correct_shift_scores_zero(D: int) -> None:
    """Build a token stream ``t_0 … t_{T+D+1}`` in which no id repeats within a row; the main head's
    labels are ``t_1 … t_T``. For depth ``k`` and a candidate shift ``s`` build logits of length
    ``T-k`` that are one-hot at ``t_{i+1+s}``: a model that predicts the token ``s`` steps after the
    main target. Only ``s = k`` (``labels[:, k:]``) may give ~0 loss; every other shift ~30 nats."""
    B, T, V = 2, 7, 24
    g = torch.Generator().manual_seed(0)
    stream = torch.stack([torch.randperm(V, generator=g)[: T + D + 2] for _ in range(B)])
    labels = stream[:, 1 : T + 1].clone()  # (B, T): labels[:, i] = t_{i+1}
    main = one_hot_logits(labels, V)  # (B, T, V), a perfect main head
    fn = MultiTokenPredictionLoss(V, mtp_depth=D)

    for k in range(1, D + 1):
        for s in range(0, D + 2):
            # depth-k logits that claim position i's target is t_{i+1+s}
            guess = one_hot_logits(stream[:, 1 + s : 1 + s + T - k], V)  # (B, T-k, V)
            mtp = [one_hot_logits(labels[:, j:], V) for j in range(1, D + 1)]  # all correct...
            mtp[k - 1] = guess  # ...except depth k, which uses shift s
            _, parts = fn(main, mtp, labels)
            loss_k = parts[f"mtp_loss_{k}"].item()
            if s == k:
                assert loss_k < 1e-6, (k, s, loss_k)
            else:
                assert loss_k > 25.0, (k, s, loss_k)
        assert parts["main_loss"].item() < 1e-6


def test_alignment_respects_padding_per_depth() -> None:
    """Right padding in ``labels`` removes the matching positions of every depth: there the MTP
    logits may be anything (here: confidently wrong) without changing the loss."""
    T, V, D = 8, 20, 2  # one row
    stream = torch.randperm(V)[: T + 1].unsqueeze(0)  # (1, T+1) distinct ids
    labels = stream[:, 1:].clone()  # (1, T)
    labels[:, 5:] = -100  # targets t_6.. are padding
    main = one_hot_logits(labels.clamp(min=0), V)
    mtp = []
    for k in range(1, D + 1):
        z = one_hot_logits(labels[:, k:].clamp(min=0), V)  # (1, T-k, V), correct where valid
        z[:, 5 - k :] = one_hot_logits((labels[:, k:].clamp(min=0) + 1) % V, V)[:, 5 - k :]
        mtp.append(z)
    _, parts = MultiTokenPredictionLoss(V, mtp_depth=D)(main, mtp, labels)
    for name, value in parts.items():
        assert value.item() < 1e-6, (name, value)
    # and the wrong logits really are scored where the label is valid:
    mtp[0][:, 3] = one_hot_logits((labels[:, 4:5] + 1) % V, V)[:, 0]  # depth 1, target labels[:, 4]
    _, parts = MultiTokenPredictionLoss(V, mtp_depth=D)(main, mtp, labels)
    assert parts["mtp_loss_1"].item() > 5.0


def test_depth_k_without_any_valid_target_contributes_zero() -> None:
    """Labels that are valid only at position 0 leave depth ≥ 1 nothing to score: 0, not NaN."""
    main, mtp, labels = random_case(B=2, T=5, V=7, D=2)
    labels[:, 1:] = -100
    total, parts = MultiTokenPredictionLoss(7, mtp_depth=2)(main, mtp, labels)
    assert parts["mtp_loss_1"].item() == 0.0 and parts["mtp_loss_2"].item() == 0.0
    torch.testing.assert_close(total, parts["main_loss"])
    total.backward()
    assert all(z.grad is not None and not z.grad.any() for z in mtp)


def test_gradcheck() -> None:
    """Finite differences through the whole total, main and both depths at once. The losses compute
    in fp32 by design (see ``test_loss.test_gradcheck``), hence the fp32-sized step and tolerances."""
    g = torch.Generator().manual_seed(0)
    main = torch.randn(2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mtp1 = torch.randn(2, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mtp2 = torch.randn(2, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1, 4, 0, -100], [2, 2, 3, 1]])
    fn = MultiTokenPredictionLoss(5, mtp_depth=2, mtp_lambda=0.7, label_smoothing=0.1)

    def total(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return fn(a, [b, c], labels)[0]

    assert torch.autograd.gradcheck(total, (main, mtp1, mtp2), eps=1e-3, atol=1e-3, rtol=1e-3)


def test_extra_repr() -> None:
    text = repr(MultiTokenPredictionLoss(9, mtp_depth=2, mtp_lambda=0.1, average_over_depth=True))
    for part in ("vocab_size=9", "mtp_depth=2", "mtp_lambda=0.1", "average_over_depth=True"):
        assert part in text


def test_combine_weights_the_terms_and_refuses_a_wrong_number_of_them() -> None:
    fn = MultiTokenPredictionLoss(5, mtp_depth=2, mtp_lambda=0.3, average_over_depth=True)
    main, l1, l2 = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)
    total, parts = fn.combine(main, [l1, l2])
    assert total.item() == pytest.approx(1.0 + 0.3 / 2 * 6.0)
    assert set(parts) == {"main_loss", "mtp_loss_1", "mtp_loss_2", "total_loss"}
    assert fn.combine(main, [])[0] is main
    with pytest.raises(ValueError, match="mtp_losses must hold 0 or mtp_depth=2 terms, got 1"):
        fn.combine(main, [l1])


def test_normalisers_check_structure_before_values() -> None:
    fn = MultiTokenPredictionLoss(5, mtp_depth=2)
    with pytest.raises(ValueError, match="one count fits only the main term"):
        fn.normalisers(-3, with_mtp=True)
    with pytest.raises(ValueError, match="must hold D\\+1 = 3 counts"):
        fn.normalisers([-1, 4], with_mtp=True)
    with pytest.raises(ValueError, match="must be >= 0, got -1"):
        fn.normalisers([-1, 2, 3], with_mtp=True)
    with pytest.raises(TypeError, match="must be a count"):
        fn.normalisers([1.5, 2, 3], with_mtp=True)
