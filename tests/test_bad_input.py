"""Every public entry point rejects bad input with a sentence a learner can act on.

Each case checks the exception *type* and, with ``match``, that the message names the argument and
the shapes or values that were seen — not just that "something" was raised. Checks run before any
math, so a rejected call leaves a metric's running state untouched (last test).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest
import torch
from torch import nn

from aptt_edu import shift_labels
from aptt_edu.heads.deepseek_mtp import DeepSeekMTP
from aptt_edu.heads.language_modeling import (
    CombinedLMHead,
    LanguageModelingHead,
    MultiTokenPredictionHead,
)
from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    MultiTokenPredictionLoss,
)
from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric

V = 10
LOGITS = torch.randn(2, 3, V)  # (B, T, V)
LABELS = torch.randint(0, V, (2, 3))  # (B, T)


def lm_loss(logits: object, labels: object, **kwargs: object) -> Callable[[], object]:
    return lambda: LanguageModelingLoss(V, **kwargs)(logits, labels)  # type: ignore[arg-type]


def mtp_loss(mtp_logits: object, depth: int = 2) -> Callable[[], object]:
    return lambda: MultiTokenPredictionLoss(V, mtp_depth=depth)(LOGITS, mtp_logits, LABELS)  # type: ignore[arg-type]


def esc(text: str) -> str:
    return re.escape(text)


# (id, call, exception type, regex the message must match)
CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    # ---- LanguageModelingLoss: logits -------------------------------------------------------
    (
        "logits rank 2",
        lm_loss(torch.randn(6, V), LABELS),
        ValueError,
        esc("logits must have 3 dims (B, T, V), got shape (6, 10)"),
    ),
    (
        "logits rank 4",
        lm_loss(torch.randn(1, 2, 3, V), LABELS),
        ValueError,
        esc("logits must have 3 dims (B, T, V), got shape (1, 2, 3, 10)"),
    ),
    (
        "logits last dim != vocab_size",
        lm_loss(torch.randn(2, 3, V + 1), LABELS),
        ValueError,
        esc("logits.shape[-1] must equal vocab_size=10, got shape (2, 3, 11)"),
    ),
    (
        "integer logits",
        lm_loss(torch.zeros(2, 3, V, dtype=torch.long), LABELS),
        TypeError,
        "logits must be floating point.*torch.int64",
    ),
    (
        "logits not a tensor",
        lm_loss([[0.0] * V], LABELS),
        TypeError,
        "logits must be a torch.Tensor, got list",
    ),
    # ---- LanguageModelingLoss: labels --------------------------------------------------------
    (
        "float labels",
        lm_loss(LOGITS, LABELS.float()),
        TypeError,
        "labels must be an integer tensor.*torch.float32",
    ),
    (
        "bool labels",
        lm_loss(LOGITS, LABELS > 3),
        TypeError,
        "labels must be an integer tensor.*torch.bool",
    ),
    (
        "labels shape",
        lm_loss(LOGITS, torch.zeros(2, 4, dtype=torch.long)),
        ValueError,
        esc("labels must have shape (2, 3) to match the logits, got (2, 4)"),
    ),
    (
        "labels rank 1",
        lm_loss(LOGITS, torch.zeros(6, dtype=torch.long)),
        ValueError,
        esc("labels must have shape (2, 3) to match the logits, got (6,)"),
    ),
    (
        "label == vocab_size",
        lm_loss(LOGITS, torch.tensor([[0, 1, 10], [2, 3, 4]])),
        ValueError,
        esc("labels must lie in [0, 10) or equal ignore_index=-100; found 1 bad value(s), e.g. 10"),
    ),
    (
        "negative label that is not ignore_index",
        lm_loss(LOGITS, torch.tensor([[0, -1, 2], [-100, 3, -7]])),
        ValueError,
        esc("labels must lie in [0, 10) or equal ignore_index=-100; found 2 bad value(s)")
        + r".*min -7, max -1",
    ),
    (
        "-100 with another ignore_index",
        lm_loss(LOGITS, torch.tensor([[0, -100, 2], [1, 3, 4]]), ignore_index=-1),
        ValueError,
        esc("or equal ignore_index=-1; found 1 bad value(s), e.g. -100"),
    ),
    # ---- LanguageModelingLoss: constructor ---------------------------------------------------
    (
        "reduction invalid",
        lambda: LanguageModelingLoss(V, reduction="avg"),  # type: ignore[arg-type]
        ValueError,
        esc("reduction must be one of ('mean', 'sum', 'none'), got 'avg'"),
    ),
    (
        "label_smoothing > 1",
        lambda: LanguageModelingLoss(V, label_smoothing=1.5),
        ValueError,
        esc("label_smoothing must lie in [0, 1], got 1.5"),
    ),
    (
        "label_smoothing < 0",
        lambda: LanguageModelingLoss(V, label_smoothing=-0.1),
        ValueError,
        esc("label_smoothing must lie in [0, 1], got -0.1"),
    ),
    (
        "label_smoothing nan",
        lambda: LanguageModelingLoss(V, label_smoothing=math.nan),
        ValueError,
        esc("label_smoothing must lie in [0, 1], got nan"),
    ),
    (
        "vocab_size 0",
        lambda: LanguageModelingLoss(0),
        ValueError,
        "vocab_size must be >= 1, got 0",
    ),
    (
        "vocab_size float",
        lambda: LanguageModelingLoss(10.0),  # type: ignore[arg-type]
        TypeError,
        "vocab_size must be an int, got float",
    ),
    # ---- MultiTokenPredictionLoss ------------------------------------------------------------
    (
        "mtp_lambda < 0",
        lambda: MultiTokenPredictionLoss(V, mtp_lambda=-0.1),
        ValueError,
        esc("mtp_lambda must be >= 0, got -0.1"),
    ),
    (
        "mtp_lambda nan",
        lambda: MultiTokenPredictionLoss(V, mtp_lambda=math.nan),
        ValueError,
        "mtp_lambda must be >= 0, got nan",
    ),
    (
        "mtp_depth 0",
        lambda: MultiTokenPredictionLoss(V, mtp_depth=0),
        ValueError,
        "mtp_depth must be >= 1, got 0",
    ),
    (
        "mtp label_smoothing",
        lambda: MultiTokenPredictionLoss(V, label_smoothing=2.0),
        ValueError,
        esc("label_smoothing must lie in [0, 1], got 2.0"),
    ),
    (
        "too few MTP tensors",
        mtp_loss([torch.randn(2, 2, V)]),
        ValueError,
        esc("mtp_logits must hold mtp_depth=2 tensors, got 1 with shapes [(2, 2, 10)]"),
    ),
    (
        "too many MTP tensors",
        mtp_loss([torch.randn(2, 2, V)] * 2, depth=1),
        ValueError,
        esc("mtp_logits must hold mtp_depth=1 tensors, got 2 with shapes [(2, 2, 10), (2, 2, 10)]"),
    ),
    (
        "MTP tensor, not a list",
        mtp_loss(torch.randn(2, 2, V), depth=1),
        TypeError,
        "mtp_logits must be a list/tuple of D tensors.*got Tensor",
    ),
    (
        "MTP length T instead of T-1",
        mtp_loss([torch.randn(2, 3, V)], depth=1),
        ValueError,
        esc("mtp_logits[0] (depth k=1) must have shape (B, T-k, V) = (2, 2, 10), got (2, 3, 10)"),
    ),
    (
        "MTP depth 2 with length T-1",
        mtp_loss([torch.randn(2, 2, V), torch.randn(2, 2, V)]),
        ValueError,
        esc("mtp_logits[1] (depth k=2) must have shape (B, T-k, V) = (2, 1, 10), got (2, 2, 10)"),
    ),
    (
        "MTP vocabulary",
        mtp_loss([torch.randn(2, 2, V + 2)], depth=1),
        ValueError,
        esc("mtp_logits[0].shape[-1] must equal vocab_size=10, got shape (2, 2, 12)"),
    ),
    (
        "MTP integer logits",
        mtp_loss([torch.zeros(2, 2, V, dtype=torch.int32)], depth=1),
        TypeError,
        r"mtp_logits\[0\] must be floating point.*torch.int32",
    ),
    # ---- heads -------------------------------------------------------------------------------
    (
        "tie wrong shape",
        lambda: LanguageModelingHead(8, V).tie_embedding_weights(nn.Embedding(V + 1, 8)),
        ValueError,
        esc(
            "cannot tie: embedding.weight has shape (11, 8), the head needs "
            "(vocab_size, d_model) = (10, 8)"
        ),
    ),
    (
        "tie transposed",
        lambda: LanguageModelingHead(8, V).tie_embedding_weights(nn.Embedding(8, V)),
        ValueError,
        esc("embedding.weight has shape (8, 10), the head needs (vocab_size, d_model) = (10, 8)"),
    ),
    (
        "tie to a Linear",
        lambda: LanguageModelingHead(8, V).tie_embedding_weights(nn.Linear(8, V)),  # type: ignore[arg-type]
        TypeError,
        "embedding must be an nn.Embedding, got Linear",
    ),
    (
        "head hidden width",
        lambda: LanguageModelingHead(8, V)(torch.randn(2, 3, 7)),
        ValueError,
        esc("hidden must have shape (B, T, d_model=8), got (2, 3, 7)"),
    ),
    (
        "head hidden rank",
        lambda: LanguageModelingHead(8, V)(torch.randn(3, 8)),
        ValueError,
        esc("hidden must have shape (B, T, d_model=8), got (3, 8)"),
    ),
    (
        "head integer hidden",
        lambda: LanguageModelingHead(8, V)(torch.zeros(2, 3, 8, dtype=torch.long)),
        TypeError,
        "hidden must be floating point, got dtype torch.int64",
    ),
    (
        "head d_model 0",
        lambda: LanguageModelingHead(0, V),
        ValueError,
        "d_model must be >= 1, got 0",
    ),
    (
        "MTP head count",
        lambda: MultiTokenPredictionHead(8, V, mtp_depth=2)([torch.randn(2, 4, 8)]),
        ValueError,
        esc("mtp_hidden must hold mtp_depth=2 tensors, got 1 with shapes [(2, 4, 8)]"),
    ),
    (
        "MTP head length",
        lambda: MultiTokenPredictionHead(8, V, mtp_depth=2)(
            [torch.randn(2, 4, 8), torch.randn(2, 4, 8)]
        ),
        ValueError,
        esc("mtp_hidden[1] (depth k=2) must have length T-k = 3, got shape (2, 4, 8)"),
    ),
    (
        "MTP head rank 1 (regression: was an IndexError)",
        lambda: MultiTokenPredictionHead(8, V)([torch.randn(8)]),
        ValueError,
        esc("mtp_hidden[0] must have shape (B, T, d_model=8), got (8,)"),
    ),
    (
        "MTP head width",
        lambda: MultiTokenPredictionHead(8, V)([torch.randn(2, 4, 5)]),
        ValueError,
        esc("mtp_hidden[0] must have shape (B, T, d_model=8), got (2, 4, 5)"),
    ),
    (
        "MTP head tensor, not a list",
        lambda: MultiTokenPredictionHead(8, V)(torch.randn(2, 4, 8)),
        TypeError,
        "mtp_hidden must be a list/tuple of 1 tensors, got Tensor",
    ),
    (
        "combined head T <= depth",
        lambda: CombinedLMHead(8, V, mtp_depth=2, tie_weights=False)(torch.randn(1, 2, 8)),
        ValueError,
        esc("main_hidden has T=2 positions; MTP depth 2 needs T > 2 (shape (1, 2, 8))"),
    ),
    (
        "DeepSeekMTP input_ids shape",
        lambda: DeepSeekMTP(8, 2)(
            torch.randn(2, 5, 8),
            torch.zeros(2, 4, dtype=torch.long),
            nn.Embedding(V, 8),
            LanguageModelingHead(8, V),
        ),
        ValueError,
        esc("input_ids must have shape (B, T) = (2, 5) to match main_hidden, got (2, 4)"),
    ),
    (
        "DeepSeekMTP T <= D",
        lambda: DeepSeekMTP(8, 2, mtp_depth=3)(
            torch.randn(2, 3, 8),
            torch.zeros(2, 3, dtype=torch.long),
            nn.Embedding(V, 8),
            LanguageModelingHead(8, V),
        ),
        ValueError,
        "T=3 positions leave no target for MTP depth D=3",
    ),
    (
        "DeepSeekMTP hidden width",
        lambda: DeepSeekMTP(8, 2)(
            torch.randn(2, 5, 6),
            torch.zeros(2, 5, dtype=torch.long),
            nn.Embedding(V, 8),
            LanguageModelingHead(8, V),
        ),
        ValueError,
        esc("main_hidden must have shape (B, T, d_model=8), got (2, 5, 6)"),
    ),
    (
        "DeepSeekMTP depth 0",
        lambda: DeepSeekMTP(8, 2, mtp_depth=0),
        ValueError,
        "mtp_depth must be >= 1, got 0",
    ),
    # ---- metrics and shift_labels ------------------------------------------------------------
    (
        "perplexity labels out of range",
        lambda: PerplexityMetric()(LOGITS, torch.full((2, 3), V)),
        ValueError,
        esc("labels must lie in [0, 10) or equal ignore_index=-100; found 6 bad value(s), e.g. 10"),
    ),
    (
        "perplexity logits rank",
        lambda: PerplexityMetric()(torch.randn(6, V), LABELS),
        ValueError,
        esc("logits must have shape (B, T, V), got (6, 10)"),
    ),
    (
        "accuracy top_k > V",
        lambda: TokenAccuracyMetric(top_k=11)(LOGITS, LABELS),
        ValueError,
        esc("top_k=11 exceeds the vocabulary size V=10 of logits with shape (2, 3, 10)"),
    ),
    (
        "accuracy top_k 0",
        lambda: TokenAccuracyMetric(top_k=0),
        ValueError,
        "top_k must be >= 1, got 0",
    ),
    (
        "accuracy float labels",
        lambda: TokenAccuracyMetric()(LOGITS, LABELS.double()),
        TypeError,
        "labels must be an integer tensor.*torch.float64",
    ),
    (
        "shift_labels float ids",
        lambda: shift_labels(torch.zeros(2, 3)),
        TypeError,
        "input_ids must be an integer torch.Tensor, got torch.float32",
    ),
    (
        "shift_labels rank 1",
        lambda: shift_labels(torch.zeros(3, dtype=torch.long)),
        ValueError,
        esc("input_ids must have shape (B, T), got (3,)"),
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_rejected_with_a_useful_message(
    call: Callable[[], object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        call()


def test_good_input_of_the_same_cases_is_accepted() -> None:
    """The valid neighbours of the cases above pass — so the checks are not simply always on."""
    LanguageModelingLoss(V)(LOGITS, LABELS)
    LanguageModelingLoss(V, ignore_index=-1)(LOGITS, torch.tensor([[0, -1, 2], [1, 3, 9]]))
    LanguageModelingLoss(V, label_smoothing=1.0)(LOGITS, LABELS)
    MultiTokenPredictionLoss(V, mtp_depth=2, mtp_lambda=0.0)(
        LOGITS, [torch.randn(2, 2, V), torch.randn(2, 1, V)], LABELS
    )
    MultiTokenPredictionLoss(V, mtp_depth=1)(LOGITS, (torch.randn(2, 2, V),), LABELS)  # a tuple
    LanguageModelingHead(8, V).tie_embedding_weights(nn.Embedding(V, 8))
    MultiTokenPredictionHead(8, V, mtp_depth=2)([torch.randn(2, 4, 8), torch.randn(2, 3, 8)])
    TokenAccuracyMetric(top_k=V)(LOGITS, LABELS)


def test_rejected_update_leaves_metric_state_alone() -> None:
    ppl, acc = PerplexityMetric(), TokenAccuracyMetric()
    ppl.update(LOGITS, LABELS)
    acc.update(LOGITS, LABELS)
    before = ppl.compute(), acc.compute()
    bad = LABELS.clone()
    bad[0, 0] = V  # one out-of-range id
    for metric in (ppl, acc):
        with pytest.raises(ValueError, match="labels must lie in"):
            metric.update(LOGITS, bad)  # type: ignore[operator]
    torch.testing.assert_close((ppl.compute(), acc.compute()), before)
