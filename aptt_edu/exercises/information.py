"""Exercises on entropy and KL divergence, the two quantities behind every loss floor (notebook 00).

Graded against ``torch.distributions`` (``Categorical.entropy``, ``kl_divergence``), which compute
:math:`H(p) = -\\sum_v p_v \\log p_v` and :math:`\\mathrm{KL}(p \\,\\|\\, q) = \\sum_v p_v \\log(p_v / q_v)`
in nats, with :math:`0 \\log 0 = 0`.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, kl_divergence

from aptt_edu.exercises._grader import Case, FunctionExercise

__all__ = ["ENTROPY", "KL_DIVERGENCE"]


def _dist(seed: int, *shape: int, zeros: int = 0) -> torch.Tensor:
    """Seeded rows of probabilities ``(..., V)``; ``zeros`` entries of the first row set to 0."""
    p = (2 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))).softmax(-1)
    if zeros:
        flat = p.reshape(-1, shape[-1])
        flat[0, :zeros] = 0.0
        flat[0] /= flat[0].sum()
    return p


def _categorical_entropy(p: torch.Tensor) -> torch.Tensor:
    h: torch.Tensor = Categorical(probs=p).entropy()  # type: ignore[no-untyped-call]
    return h


def _entropy_cases() -> list[Case]:
    return [
        Case(
            {"en": "3 distributions over V=5", "de": "3 Verteilungen über V=5"}, (_dist(0, 3, 5),)
        ),
        Case({"en": "with p = 0 entries", "de": "mit Einträgen p = 0"}, (_dist(1, 2, 6, zeros=2),)),
        Case({"en": "one distribution, V=4", "de": "eine Verteilung, V=4"}, (_dist(2, 4),)),
    ]


ENTROPY = FunctionExercise(
    name="entropy",
    description="fn(p (..., V)) -> (...): the entropy -sum_v p_v log p_v of each distribution, in "
    "nats, with 0 log 0 = 0",
    cases=_entropy_cases,
    reference=_categorical_entropy,
    mistakes={
        "log2_not_ln": lambda p: -(torch.special.xlogy(p, p)).sum(-1) / math.log(2),
        "missing_minus": lambda p: torch.special.xlogy(p, p).sum(-1),
        "nan_at_zero": lambda p: -(p * p.log()).sum(-1),
    },
    hints={
        "log2_not_ln": {
            "en": "your result is in bits (log base 2). Losses in PyTorch are in nats: use the "
            "natural logarithm, torch.log.",
            "de": "Ihr Ergebnis ist in Bit (Logarithmus zur Basis 2). Verluste in PyTorch sind in "
            "Nats: Verwenden Sie den natürlichen Logarithmus, torch.log.",
        },
        "missing_minus": {
            "en": "the sign is missing: log p_v ≤ 0, so Σ p_v log p_v ≤ 0. The entropy is its "
            "negative, -Σ p_v log p_v ≥ 0.",
            "de": "Das Vorzeichen fehlt: log p_v ≤ 0, also Σ p_v log p_v ≤ 0. Die Entropie ist "
            "das Negative davon, -Σ p_v log p_v ≥ 0.",
        },
        "nan_at_zero": {
            "en": "right where every p_v > 0, but nan where some p_v = 0: 0 · log 0 is 0 · (-inf) "
            "in floating point. Use torch.special.xlogy(p, p), which defines 0 log 0 = 0.",
            "de": "richtig, wo alle p_v > 0 sind, aber nan, wo ein p_v = 0 ist: 0 · log 0 ist im "
            "Gleitkomma 0 · (-inf). Verwenden Sie torch.special.xlogy(p, p), das 0 log 0 = 0 "
            "setzt.",
        },
    },
)


def _kl_cases() -> list[Case]:
    return [
        Case(
            {"en": "3 pairs over V=5", "de": "3 Paare über V=5"}, (_dist(0, 3, 5), _dist(9, 3, 5))
        ),
        Case(
            {"en": "p with zero entries", "de": "p mit Einträgen 0"},
            (_dist(1, 2, 6, zeros=2), _dist(8, 2, 6)),
        ),
        Case({"en": "one pair, V=4", "de": "ein Paar, V=4"}, (_dist(2, 4), _dist(7, 4))),
    ]


KL_DIVERGENCE = FunctionExercise(
    name="kl_divergence",
    description="fn(p (..., V), q (..., V)) -> (...): KL(p || q) = sum_v p_v log(p_v / q_v) of "
    "each pair, in nats",
    cases=_kl_cases,
    reference=lambda p, q: kl_divergence(Categorical(probs=p), Categorical(probs=q)),
    mistakes={
        "reversed": lambda p, q: kl_divergence(Categorical(probs=q), Categorical(probs=p)),
        "cross_entropy_not_kl": lambda p, q: -(p * q.log()).sum(-1),
    },
    hints={
        "reversed": {
            "en": "you computed KL(q || p). The divergence is not symmetric: KL(p || q) weights "
            "log(p_v / q_v) with p, the distribution the data come from.",
            "de": "Sie haben KL(q || p) berechnet. Die Divergenz ist nicht symmetrisch: "
            "KL(p || q) gewichtet log(p_v / q_v) mit p, der Verteilung, aus der die Daten stammen.",
        },
        "cross_entropy_not_kl": {
            "en": "that is the cross-entropy H(p, q) = -Σ p_v log q_v. The KL divergence subtracts "
            "the entropy: KL(p || q) = H(p, q) - H(p).",
            "de": "Das ist die Kreuzentropie H(p, q) = -Σ p_v log q_v. Die KL-Divergenz zieht die "
            "Entropie ab: KL(p || q) = H(p, q) - H(p).",
        },
    },
)
