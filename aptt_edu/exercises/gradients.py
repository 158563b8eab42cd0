"""Exercises on the training step: sampling with a temperature and gradient clipping (04), the
gradient of the cross-entropy (05).

Graded against PyTorch (``torch.softmax``, ``torch.nn.utils.clip_grad_norm_``, autograd).
"""

from __future__ import annotations

import torch

from aptt_edu.exercises._grader import (
    Case,
    FunctionExercise,
)

__all__ = ["GRAD_NORM", "SOFTMAX_GRADIENT", "TEMPERATURE_SOFTMAX"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- sampling with a temperature (04) -------------------------------------------------------------

TEMPERATURE_SOFTMAX = FunctionExercise(
    name="temperature_softmax",
    description="fn(logits (B,V), temperature > 0) -> probs (B,V): softmax(logits / temperature) "
    "over the vocabulary",
    cases=lambda: [
        Case({"en": "τ=1", "de": "τ=1"}, (torch.randn(3, 7, generator=_gen(0)), 1.0)),
        Case({"en": "τ=0.5", "de": "τ=0,5"}, (3 * torch.randn(2, 5, generator=_gen(1)), 0.5)),
        Case({"en": "τ=2, B=V=4", "de": "τ=2, B=V=4"}, (torch.randn(4, 4, generator=_gen(2)), 2.0)),
    ],
    reference=lambda logits, temperature: torch.softmax(logits / temperature, dim=-1),
    mistakes={
        "multiplied_by_temperature": lambda z, t: torch.softmax(z * t, dim=-1),
        "wrong_axis": lambda z, t: torch.softmax(z / t, dim=0),
    },
    hints={
        "multiplied_by_temperature": {
            "en": "you multiply by τ. The logits are *divided* by the temperature: τ < 1 sharpens "
            "the distribution, τ > 1 flattens it.",
            "de": "Sie multiplizieren mit τ. Die Logits werden durch die Temperatur *geteilt*: "
            "τ < 1 schärft die Verteilung, τ > 1 glättet sie.",
        },
        "wrong_axis": {
            "en": "your softmax runs over the batch (dim=0). Each row is one distribution over "
            "the vocabulary: dim=-1.",
            "de": "Ihr Softmax läuft über den Batch (dim=0). Jede Zeile ist eine Verteilung über "
            "das Vokabular: dim=-1.",
        },
    },
)

# --- global gradient norm, as clipping uses it (04) -----------------------------------------------


def _grad_norm_reference(grads: list[torch.Tensor]) -> torch.Tensor:
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    return torch.nn.utils.clip_grad_norm_(params, max_norm=float("inf"))


def _grads(seed: int, *shapes: tuple[int, ...]) -> tuple[list[torch.Tensor]]:
    g = _gen(seed)
    return ([torch.randn(*s, generator=g) for s in shapes],)


GRAD_NORM = FunctionExercise(
    name="grad_norm",
    description="fn(grads: list of tensors) -> 0-dim: the global L2 norm that "
    "clip_grad_norm_ compares with max_norm",
    cases=lambda: [
        Case({"en": "three tensors", "de": "drei Tensoren"}, _grads(0, (4, 3), (3,), (2, 2, 2))),
        Case({"en": "one tensor", "de": "ein Tensor"}, _grads(1, (5,))),
        Case({"en": "two matrices", "de": "zwei Matrizen"}, _grads(2, (6, 2), (2, 6))),
    ],
    reference=_grad_norm_reference,
    mistakes={
        "sum_of_norms": lambda grads: sum(g.norm() for g in grads),
        "mean_of_norms": lambda grads: torch.stack([g.norm() for g in grads]).mean(),
    },
    hints={
        "sum_of_norms": {
            "en": "you add the tensors' norms. The global norm treats all gradients as one long "
            "vector: sqrt(Σ over tensors of ‖g‖²).",
            "de": "Sie addieren die Normen der Tensoren. Die globale Norm behandelt alle "
            "Gradienten als einen langen Vektor: sqrt(Σ über die Tensoren von ‖g‖²).",
        },
        "mean_of_norms": {
            "en": "you average the tensors' norms. The global norm is sqrt(Σ ‖g‖²) over all "
            "tensors, one long vector.",
            "de": "Sie mitteln die Normen der Tensoren. Die globale Norm ist sqrt(Σ ‖g‖²) über "
            "alle Tensoren, ein langer Vektor.",
        },
    },
)

# --- the gradient of the cross-entropy with respect to the logits (05) ----------------------------


def _softmax_grad_reference(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z = logits.detach().requires_grad_()
    loss = torch.nn.functional.cross_entropy(z, labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, z)
    return grad


def _softmax_grad_case(seed: int, N: int, V: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    return 2 * torch.randn(N, V, generator=g), torch.randint(0, V, (N,), generator=g)


SOFTMAX_GRADIENT = FunctionExercise(
    name="softmax_gradient",
    description="fn(logits (N,V), labels (N,)) -> (N,V): the gradient of the summed "
    "cross-entropy with respect to the logits, without autograd",
    cases=lambda: [
        Case({"en": "N=4, V=6", "de": "N=4, V=6"}, _softmax_grad_case(0, 4, 6)),
        Case({"en": "N=7, V=3", "de": "N=7, V=3"}, _softmax_grad_case(1, 7, 3)),
    ],
    reference=_softmax_grad_reference,
    mistakes={
        "sign_flipped": lambda z, y: torch.nn.functional.one_hot(y, z.shape[-1]) - z.softmax(-1),
        "missing_onehot": lambda z, y: z.softmax(-1),
    },
    hints={
        "sign_flipped": {
            "en": "the sign is flipped: you return onehot(y) − p. The loss −log p_y *falls* when "
            "z_y rises, so its gradient is p − onehot(y).",
            "de": "Das Vorzeichen ist vertauscht: Sie geben onehot(y) − p zurück. Der Verlust "
            "−log p_y *sinkt*, wenn z_y steigt; sein Gradient ist also p − onehot(y).",
        },
        "missing_onehot": {
            "en": "you return p alone. Differentiating −z_y gives −1 at the target class: the "
            "gradient is p − onehot(y).",
            "de": "Sie geben nur p zurück. Die Ableitung von −z_y liefert −1 an der Zielklasse: "
            "Der Gradient ist p − onehot(y).",
        },
    },
)
