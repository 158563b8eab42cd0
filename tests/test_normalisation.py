r"""Loss normalisation for split batches: the parts must add up to the full batch.

When a batch is split into micro-batches (gradient accumulation) or across processes, the loss of
each part must be its *sum* divided by the valid-target count :math:`N` of the **whole** batch,

.. math::  \sum_m \frac{S_m}{N} = \frac{\sum_m S_m}{N} = \mathcal{L}_\text{full},

not its own mean :math:`S_m / N_m`: the mean of those means weights every token of a short part
more than a token of a long one (the gradient-accumulation bug of Oct 2024, see notebook 06). The
tests use parts with very different amounts of padding, so that the wrong recipe fails visibly, and
compare values *and* gradients with the full batch. Multi-token prediction needs one count per
term, because depth :math:`k` is scored on ``labels[:, k:]``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.linear_cross_entropy import linear_cross_entropy
from aptt_edu.model import GPT, GPTConfig
from aptt_edu.training import TrainConfig, check_config, compute_loss, train

V, T = 11, 8
PADS = [0, 6, 1, 7, 3]  # padded targets at the end of each row: very uneven valid counts


def padded_labels(pads: list[int] = PADS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` of ``len(pads)`` rows; row ``b`` ends in ``pads[b]`` ignored targets."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, V, (len(pads), T), generator=g)  # (B, T)
    labels = torch.randint(0, V, (len(pads), T), generator=g)  # (B, T)
    for b, pad in enumerate(pads):
        labels[b, T - pad :] = -100
    return inputs, labels


def micro_batches(n: int) -> list[slice]:
    """Row slices of an uneven split of ``len(PADS)`` rows into ``n`` parts (like tensor_split)."""
    bounds = torch.arange(len(PADS)).tensor_split(n)
    return [slice(int(b[0]), int(b[-1]) + 1) for b in bounds]


def grads(model: nn.Module) -> list[torch.Tensor]:
    return [
        p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()
    ]


def max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------------------------
# LanguageModelingLoss: one term, one count
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_parts", [2, 3])
def test_sum_over_global_count_equals_full_batch_and_mean_of_means_does_not(n_parts: int) -> None:
    torch.manual_seed(0)
    head = nn.Linear(16, V)  # stands in for a model: hidden -> logits
    # rows of different difficulty (scale), as short and long documents are in real data
    scale = torch.tensor([0.2, 3.0, 1.0, 4.0, 0.5]).view(-1, 1, 1)
    hidden = torch.randn(len(PADS), T, 16) * scale  # (B, T, d)
    _, labels = padded_labels()
    fn = LanguageModelingLoss(V, label_smoothing=0.1)
    parts = micro_batches(n_parts)
    assert len({int((labels[s] != -100).sum()) for s in parts}) == n_parts  # uneven counts

    full = fn(head(hidden), labels)
    full.backward()
    g_full = grads(head)

    # the fix: every part divided by the whole batch's count N, summed
    N = int((labels != -100).sum())
    head.zero_grad()
    fixed = sum(fn(head(hidden[s]), labels[s], num_items_in_batch=N) for s in parts)
    assert isinstance(fixed, torch.Tensor)
    fixed.backward()
    torch.testing.assert_close(fixed, full, rtol=0, atol=1e-6)
    assert max_diff(grads(head), g_full) < 1e-6

    # the bug: the mean of per-part means (each part divided by its own count)
    head.zero_grad()
    naive = sum(fn(head(hidden[s]), labels[s]) for s in parts) / n_parts
    assert isinstance(naive, torch.Tensor)
    naive.backward()
    assert abs(float(naive.detach() - full.detach())) > 1e-2
    assert max_diff(grads(head), g_full) > 1e-3


def test_linear_cross_entropy_parts_add_up_too() -> None:
    hidden = torch.randn(len(PADS), T, 16, requires_grad=True)  # (B, T, d)
    weight = torch.randn(V, 16, requires_grad=True)  # (V, d)
    _, labels = padded_labels()
    full = linear_cross_entropy(hidden, weight, labels, chunk_size=7)
    g_full = torch.autograd.grad(full, (hidden, weight))
    N = (labels != -100).sum()
    parts = sum(
        linear_cross_entropy(hidden[s], weight, labels[s], chunk_size=7, num_items_in_batch=N)
        for s in micro_batches(3)
    )
    assert isinstance(parts, torch.Tensor)
    g_parts = torch.autograd.grad(parts, (hidden, weight))
    torch.testing.assert_close(parts, full, rtol=0, atol=1e-6)
    assert max_diff(list(g_parts), list(g_full)) < 1e-6


# --------------------------------------------------------------------------------------------
# MultiTokenPredictionLoss: D + 1 terms, D + 1 counts
# --------------------------------------------------------------------------------------------


def test_count_items_counts_each_depth_and_adds_up_over_rows() -> None:
    _, labels = padded_labels()
    fn = MultiTokenPredictionLoss(V, mtp_depth=3)
    counts = fn.count_items(labels)
    valid = labels != -100
    assert counts.dtype == torch.int64 and counts.shape == (4,)
    assert counts.tolist() == [int(valid[:, k:].sum()) for k in range(4)]
    # rows split across parts (micro-batches, ranks): the counts are the sum of the parts' counts
    assert sum(fn.count_items(labels[s]) for s in micro_batches(3)).tolist() == counts.tolist()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        fn.count_items(labels[0])


@pytest.mark.parametrize("mtp", ["simple", "deepseek"])
@pytest.mark.parametrize("as_tensor", [True, False])
def test_mtp_parts_add_up_to_the_full_batch_per_term(mtp: str, as_tensor: bool) -> None:
    """A tiny GPT with D = 2: value of every term and every parameter's gradient, full vs parts."""
    torch.manual_seed(0)
    D = 2
    model = GPT(GPTConfig(vocab_size=V, block_size=T, d_model=16, mtp=mtp, mtp_depth=D))  # type: ignore[arg-type]
    fn = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=0.3, label_smoothing=0.1)
    inputs, labels = padded_labels()

    full, full_parts = fn(*model(inputs), labels)
    full.backward()
    g_full = grads(model)

    counts = fn.count_items(labels)  # (D+1,), of the *whole* batch
    norm = counts if as_tensor else counts.tolist()
    model.zero_grad()
    sums = dict.fromkeys(full_parts, 0.0)
    for s in micro_batches(3):
        total, parts = fn(*model(inputs[s]), labels[s], num_items_in_batch=norm)
        total.backward()  # gradients accumulate over the micro-batches
        for name, value in parts.items():
            sums[name] += float(value.detach())
    for name, value in full_parts.items():
        assert sums[name] == pytest.approx(float(value.detach()), abs=1e-6), name
    assert max_diff(grads(model), g_full) < 1e-6


def test_one_count_for_every_depth_would_be_wrong() -> None:
    """Why the argument takes D + 1 counts: depth k has fewer targets than the main term."""
    torch.manual_seed(0)
    fn = MultiTokenPredictionLoss(V, mtp_depth=2)
    _, labels = padded_labels()
    main = torch.randn(len(PADS), T, V)
    mtp = [torch.randn(len(PADS), T - k, V) for k in (1, 2)]
    _, full = fn(main, mtp, labels)
    n_main = int((labels != -100).sum())
    wrong = sum(
        fn(main[s], [z[s] for z in mtp], labels[s], num_items_in_batch=[n_main] * 3)[1][
            "mtp_loss_2"
        ]
        for s in micro_batches(2)
    )
    assert abs(float(wrong - full["mtp_loss_2"])) > 1e-3
    with pytest.raises(ValueError, match="each MTP depth k has its own count"):
        fn(main, mtp, labels, num_items_in_batch=n_main)


def test_default_is_unchanged_per_term_mean() -> None:
    """Backward compatible: without a normaliser every term is the mean over its own targets."""
    fn = MultiTokenPredictionLoss(V, mtp_depth=2, mtp_lambda=0.5, average_over_depth=True)
    _, labels = padded_labels()
    main = torch.randn(len(PADS), T, V)
    mtp = [torch.randn(len(PADS), T - k, V) for k in (1, 2)]
    total, parts = fn(main, mtp, labels)

    def ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(z.reshape(-1, V), y.reshape(-1), ignore_index=-100)

    expected = [ce(main, labels), ce(mtp[0], labels[:, 1:]), ce(mtp[1], labels[:, 2:])]
    torch.testing.assert_close(parts["main_loss"], expected[0])
    torch.testing.assert_close(parts["mtp_loss_2"], expected[2])
    torch.testing.assert_close(total, expected[0] + 0.25 * (expected[1] + expected[2]))
    # the full batch's own counts as normalisers change nothing
    total_n, _ = fn(main, mtp, labels, num_items_in_batch=fn.count_items(labels))
    torch.testing.assert_close(total_n, total, rtol=0, atol=1e-6)
    # without MTP logits a single count is the main term's
    main_only, _ = fn(main, None, labels, num_items_in_batch=int((labels != -100).sum()))
    torch.testing.assert_close(main_only, expected[0])


def test_a_zero_count_gives_zero_not_nan() -> None:
    fn = MultiTokenPredictionLoss(V, mtp_depth=1)
    main = torch.randn(2, T, V, requires_grad=True)
    mtp = [torch.randn(2, T - 1, V, requires_grad=True)]
    labels = torch.full((2, T), -100)
    labels[:, 0] = 3  # only the main term has targets; depth 1 (labels[:, 1:]) has none
    counts = fn.count_items(labels)
    assert counts.tolist() == [2, 0]
    total, parts = fn(main, mtp, labels, num_items_in_batch=counts)
    assert float(parts["mtp_loss_1"].detach()) == 0.0 and torch.isfinite(total)
    total.backward()
    assert mtp[0].grad is not None and torch.equal(mtp[0].grad, torch.zeros_like(mtp[0]))


@pytest.mark.parametrize(
    ("num_items", "error", "message"),
    [
        ([5, 4], ValueError, "D\\+1 = 3 counts"),
        (torch.tensor([5, 4, 3, 2]), ValueError, "D\\+1 = 3 counts"),
        (torch.ones(3, 1), TypeError, "count"),
        ([5, True, 3], TypeError, "count"),
        ([5, -1, 3], ValueError, ">= 0"),
        ("12", TypeError, "count"),
        (2.5, TypeError, "count"),
    ],
)
def test_bad_normalisers_are_rejected(num_items: object, error: type, message: str) -> None:
    fn = MultiTokenPredictionLoss(V, mtp_depth=2)
    main = torch.randn(1, T, V)
    mtp = [torch.randn(1, T - k, V) for k in (1, 2)]
    with pytest.raises(error, match=message):
        fn(main, mtp, torch.zeros(1, T, dtype=torch.long), num_items_in_batch=num_items)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The training loop: gradient accumulation and the chunked loss give the full-batch run
# --------------------------------------------------------------------------------------------

# Tiny and fast; batch_size 7 splits into micro-batches of unequal size (3, 2, 2 rows).
TINY = dict(
    seq_len=12, toy_vocab_size=6, n_train_rows=64, n_val_rows=16, n_layer=1, n_head=2,
    d_model=16, batch_size=7, steps=4, eval_every=2, progress=False,
)  # fmt: skip


@pytest.mark.parametrize("mtp", ["none", "simple", "deepseek"])
def test_gradient_accumulation_reproduces_the_full_batch_run(mtp: str) -> None:
    full = train(TrainConfig(**TINY, mtp=mtp, mtp_depth=2))  # type: ignore[arg-type]
    accumulated = train(TrainConfig(**TINY, mtp=mtp, mtp_depth=2, grad_accum=3))  # type: ignore[arg-type]
    assert accumulated.config["grad_accum"] == 3 and accumulated.world_size == 1
    for series in ("train_loss", "main_loss", "grad_norm", "val_loss", "val_accuracy"):
        a, b = getattr(full, series), getattr(accumulated, series)
        assert a == pytest.approx(b, abs=1e-5), series
    for k in range(len(full.mtp_loss)):
        assert full.mtp_loss[k] == pytest.approx(accumulated.mtp_loss[k], abs=1e-5)


@pytest.mark.parametrize("mtp", ["none", "simple"])
@pytest.mark.parametrize("tie", [False, True])
def test_chunked_loss_trains_like_the_logits_path(mtp: str, tie: bool) -> None:
    cfg = TrainConfig(**TINY, mtp=mtp, mtp_depth=2, tie_weights=tie, label_smoothing=0.1)  # type: ignore[arg-type]
    logits = train(cfg)
    chunked = train(dataclasses.replace(cfg, chunked_loss=True, grad_accum=2))
    for series in ("train_loss", "main_loss", "grad_norm", "val_loss"):
        a, b = getattr(logits, series), getattr(chunked, series)
        assert a == pytest.approx(b, abs=1e-5), series


def test_compute_loss_chunked_equals_logits_with_normalisers() -> None:
    """One micro-batch of a larger batch: same total, parts and gradients on both paths."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, d_model=16, mtp="simple", mtp_depth=2))
    fn = MultiTokenPredictionLoss(V, mtp_depth=2, label_smoothing=0.1)
    inputs, labels = padded_labels()
    counts = fn.count_items(labels)  # of the whole batch; the call below sees rows 1..3 only
    results = []
    for chunked in (False, True):
        model.zero_grad()
        total, parts = compute_loss(model, fn, inputs[1:], labels[1:], counts, chunked=chunked)
        total.backward()
        results.append(({k: float(v.detach()) for k, v in parts.items()}, grads(model)))
    (parts_a, g_a), (parts_b, g_b) = results
    assert parts_a == pytest.approx(parts_b, abs=1e-6)
    assert max_diff(g_a, g_b) < 1e-6


def test_bad_accumulation_and_chunked_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="grad_accum must be a positive integer"):
        check_config(TrainConfig(grad_accum=0))
    with pytest.raises(ValueError, match="chunked_loss"):
        check_config(TrainConfig(chunked_loss=True, mtp="deepseek"))
    with pytest.raises(ValueError, match=r"batch_size=2 .* grad_accum=3"):
        train(TrainConfig(**{**TINY, "batch_size": 2, "grad_accum": 3}))  # type: ignore[arg-type]


def test_both_loss_paths_refuse_rows_too_short_for_the_mtp_depth() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, d_model=16, mtp="simple", mtp_depth=2))
    fn = MultiTokenPredictionLoss(V, mtp_depth=2)
    inputs = torch.randint(0, V, (3, 2))  # T = 2 positions, depth 2 needs T > 2
    labels = inputs.clone()
    for chunked in (False, True):
        with pytest.raises(
            ValueError, match="main_hidden has T=2 positions; MTP depth 2 needs T > 2"
        ):
            compute_loss(model, fn, inputs, labels, chunked=chunked)
