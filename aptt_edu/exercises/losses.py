"""Exercises on the losses: cross-entropy, label smoothing, perplexity (notebook 01).

Each exercise is graded against the library (:class:`~aptt_edu.loss.language_modeling.LanguageModelingLoss`,
:class:`~aptt_edu.loss.metrics.PerplexityMetric`); the wrong variants below exist only to recognise
a learner's mistake and say which one it is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aptt_edu.exercises._grader import Case, FunctionExercise
from aptt_edu.loss.language_modeling import LanguageModelingLoss
from aptt_edu.loss.metrics import PerplexityMetric

__all__ = ["CROSS_ENTROPY", "LABEL_SMOOTHING", "PERPLEXITY"]


def _logits_and_labels(
    seed: int, B: int, T: int, V: int, pad: int = 0, scale: float = 2.0, ignore_index: int = -100
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded ``(B, T, V)`` logits and ``(B, T)`` labels, the last ``pad`` positions ignored."""
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(B, T, V, generator=g)
    labels = torch.randint(0, V, (B, T), generator=g)
    if pad:
        labels[:, T - pad :] = ignore_index
    return logits, labels


def _loss_cases(with_big: bool) -> list[Case]:
    cases = [
        Case({"en": "B=2, T=5, V=7", "de": "B=2, T=5, V=7"}, _logits_and_labels(0, 2, 5, 7)),
        Case({"en": "with padding", "de": "mit Padding"}, _logits_and_labels(1, 3, 6, 11, pad=2)),
        Case(
            {"en": "ignore_index=-1", "de": "ignore_index=-1"},
            _logits_and_labels(2, 2, 4, 5, pad=1, ignore_index=-1),
            {"ignore_index": -1},
        ),
        Case({"en": "T=1, V=2", "de": "T=1, V=2"}, _logits_and_labels(3, 4, 1, 2)),
    ]
    if with_big:
        big = _logits_and_labels(4, 2, 3, 6, pad=1, scale=60.0)
        big[0][0, 0, 0] = 100.0  # one logit of 100: exp(100) overflows float32
        cases.append(Case({"en": "logits near ±100", "de": "Logits nahe ±100"}, big))
    return cases


def _nll(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Per-position NLL (0 at ignored positions) — only for building the wrong variants."""
    V = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, V), labels.reshape(-1), ignore_index=ignore_index, reduction="none"
    )


# --- cross-entropy --------------------------------------------------------------------------------


def _ce_reference(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    loss: torch.Tensor = LanguageModelingLoss(logits.shape[-1], ignore_index=ignore_index)(
        logits, labels
    )
    return loss


def _ce_mean_includes_ignored(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    return _nll(logits, labels, ignore_index).sum() / labels.numel()


def _ce_sum_not_mean(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    return _nll(logits, labels, ignore_index).sum()


def _ce_no_max_shift(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100
) -> torch.Tensor:
    valid = labels != ignore_index
    z, y = logits[valid], labels[valid]  # (N, V), (N,)
    log_z = torch.log(torch.exp(z).sum(-1))  # overflows for logits above ~88 in float32
    return (log_z - z.gather(1, y[:, None]).squeeze(1)).mean()


CROSS_ENTROPY = FunctionExercise(
    name="cross_entropy",
    description="fn(logits (B,T,V), labels (B,T), ignore_index=-100) -> 0-dim: mean NLL over "
    "the positions whose label is not ignore_index",
    cases=lambda: _loss_cases(with_big=True),
    reference=_ce_reference,
    mistakes={
        "mean_includes_ignored": _ce_mean_includes_ignored,
        "sum_not_mean": _ce_sum_not_mean,
        "no_max_shift": _ce_no_max_shift,
    },
    hints={
        "mean_includes_ignored": {
            "en": "you divide by all B·T positions. Ignored positions (padding, the last position) "
            "have no target: count only the valid ones, N = (labels != ignore_index).sum().",
            "de": "Sie teilen durch alle B·T Positionen. Ignorierte Positionen (Padding, die "
            "letzte Position) haben kein Ziel: Zählen Sie nur die gültigen, "
            "N = (labels != ignore_index).sum().",
        },
        "sum_not_mean": {
            "en": "you return the sum of the NLLs. The loss is their mean over the valid "
            "positions, so that it does not grow with the batch size.",
            "de": "Sie geben die Summe der NLL zurück. Der Verlust ist ihr Mittelwert über die "
            "gültigen Positionen, damit er nicht mit der Batchgröße wächst.",
        },
        "no_max_shift": {
            "en": "right on ordinary logits, but inf/nan for logits near 100: exp(100) overflows "
            "float32. Subtract the row maximum before exp (log-sum-exp trick): "
            "log Σ exp(z) = m + log Σ exp(z − m), m = max z.",
            "de": "richtig bei gewöhnlichen Logits, aber inf/nan bei Logits nahe 100: exp(100) "
            "läuft in float32 über. Ziehen Sie vor dem exp das Zeilenmaximum ab "
            "(Log-Sum-Exp-Trick): log Σ exp(z) = m + log Σ exp(z − m), m = max z.",
        },
    },
    grad_inputs=(0,),
)

# --- label smoothing ------------------------------------------------------------------------------


def _smoothing_cases() -> list[Case]:
    a, b, c = _loss_cases(with_big=False)[:3]
    return [
        Case({"en": "ε=0.1", "de": "ε=0.1"}, (*a.args, 0.1)),
        Case({"en": "ε=0.3, with padding", "de": "ε=0,3, mit Padding"}, (*b.args, 0.3)),
        Case(
            {"en": "ε=0.2, ignore_index=-1", "de": "ε=0,2, ignore_index=-1"},
            (*c.args, 0.2),
            {"ignore_index": -1},
        ),
    ]


def _ls_reference(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float, ignore_index: int = -100
) -> torch.Tensor:
    loss = LanguageModelingLoss(
        logits.shape[-1], ignore_index=ignore_index, label_smoothing=epsilon
    )
    out: torch.Tensor = loss(logits, labels)
    return out


def _ls_excludes_target(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float, ignore_index: int = -100
) -> torch.Tensor:
    valid = labels != ignore_index
    log_p = logits[valid].log_softmax(-1)  # (N, V)
    V = logits.shape[-1]
    q = torch.full_like(log_p, epsilon / (V - 1))  # ε over the V-1 other classes
    q.scatter_(1, labels[valid][:, None], 1 - epsilon)
    return -(q * log_p).sum(-1).mean()


def _ls_missing_uniform(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float, ignore_index: int = -100
) -> torch.Tensor:
    return (1 - epsilon) * _ce_reference(logits, labels, ignore_index)


LABEL_SMOOTHING = FunctionExercise(
    name="label_smoothing",
    description="fn(logits, labels, epsilon, ignore_index=-100) -> 0-dim: label-smoothed "
    "cross-entropy, equal to F.cross_entropy(..., label_smoothing=epsilon)",
    cases=_smoothing_cases,
    reference=_ls_reference,
    mistakes={
        "smoothing_excludes_target": _ls_excludes_target,
        "missing_uniform_term": _ls_missing_uniform,
    },
    hints={
        "smoothing_excludes_target": {
            "en": "you spread ε over the V−1 other classes. PyTorch's (and Szegedy et al.'s) "
            "target is (1−ε)·onehot + ε/V over *all* V classes, the true one included.",
            "de": "Sie verteilen ε auf die V−1 anderen Klassen. Das Ziel von PyTorch (und von "
            "Szegedy et al.) ist (1−ε)·onehot + ε/V über *alle* V Klassen, die richtige "
            "eingeschlossen.",
        },
        "missing_uniform_term": {
            "en": "you return only (1−ε)·CE. The smoothed loss adds ε times the cross-entropy "
            "against the uniform distribution: ε · mean over v of (−log p_v).",
            "de": "Sie geben nur (1−ε)·CE zurück. Der geglättete Verlust addiert ε mal die "
            "Kreuzentropie gegen die Gleichverteilung: ε · Mittel über v von (−log p_v).",
        },
    },
    grad_inputs=(0,),
)

# --- perplexity -----------------------------------------------------------------------------------


def _ppl_reference(nll_sums: list[float], token_counts: list[int]) -> float:
    metric = PerplexityMetric()
    for s, n in zip(nll_sums, token_counts, strict=True):
        metric._accumulate(torch.tensor(s, dtype=torch.float64), torch.tensor(n))
    return float(metric.compute())


def _ppl_mean_of_perplexities(nll_sums: list[float], token_counts: list[int]) -> float:
    return sum(math.exp(s / n) for s, n in zip(nll_sums, token_counts, strict=True)) / len(nll_sums)


PERPLEXITY = FunctionExercise(
    name="perplexity",
    description="fn(nll_sums: list[float], token_counts: list[int]) -> float: the data set's "
    "perplexity from per-batch sums of NLL and per-batch token counts",
    cases=lambda: [
        Case(
            {"en": "two batches of 256 and 3 tokens", "de": "zwei Batches mit 256 und 3 Tokens"},
            ([256 * 5.0, 0.0], [256, 3]),
        ),
        Case({"en": "three batches", "de": "drei Batches"}, ([40.0, 12.5, 90.0], [20, 10, 30])),
        Case({"en": "one batch", "de": "ein Batch"}, ([23.0], [10])),
    ],
    reference=_ppl_reference,
    mistakes={"mean_of_perplexities": _ppl_mean_of_perplexities},
    hints={
        "mean_of_perplexities": {
            "en": "you average the batches' perplexities. That weights a 3-token batch like a "
            "256-token one. Sum first: exp(Σ nll_sums / Σ token_counts).",
            "de": "Sie mitteln die Perplexitäten der Batches. Damit zählt ein Batch aus 3 Tokens "
            "so viel wie einer aus 256. Erst summieren: exp(Σ nll_sums / Σ token_counts).",
        },
    },
)
