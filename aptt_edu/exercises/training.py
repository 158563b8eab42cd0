"""Exercises on the training step: sampling and clipping (04), chunked loss (05), accumulation (06).

Graded against PyTorch (``torch.softmax``, ``torch.nn.utils.clip_grad_norm_``) and the library
(:func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy`,
:class:`~aptt_edu.loss.language_modeling.LanguageModelingLoss` with ``num_items_in_batch``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from aptt_edu.exercises._grader import (
    Case,
    CheckResult,
    FunctionExercise,
    call,
    describe,
    error_result,
    fail,
    passed,
    show,
)
from aptt_edu.exercises.losses import _logits_and_labels
from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.linear_cross_entropy import linear_cross_entropy

__all__ = [
    "ACCUMULATED_LOSS",
    "CHUNKED_CROSS_ENTROPY",
    "GRAD_NORM",
    "NUM_ITEMS_IN_BATCH",
    "SOFTMAX_GRADIENT",
    "TEMPERATURE_SOFTMAX",
]


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

# --- chunked cross-entropy (05) -------------------------------------------------------------------


def _chunk_case(seed: int, N: int, V: int, chunk: int, pad: int) -> tuple[Any, ...]:
    g = _gen(seed)
    hidden, weight = torch.randn(N, 4, generator=g), torch.randn(V, 4, generator=g)
    labels = torch.randint(0, V, (N,), generator=g)
    labels[torch.randperm(N, generator=g)[:pad]] = -100
    return hidden, weight, labels, chunk


def _chunk_reference(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    return linear_cross_entropy(hidden[None], weight, labels[None], chunk_size=chunk_size)


def _mean_of_chunk_means(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    ce = LanguageModelingLoss(weight.shape[0])
    means = [
        ce((hidden[i : i + chunk_size] @ weight.T)[None], labels[None, i : i + chunk_size])
        for i in range(0, hidden.shape[0], chunk_size)
    ]
    return torch.stack(means).mean()


class _LogitWatch(TorchDispatchMode):  # type: ignore[no-untyped-call]  # untyped in torch
    """Records the most rows of a ``(rows, V)``-sized result any operation produced."""

    def __init__(self, V: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.V, self.rows = V, 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and self.V in t.shape and t.is_floating_point():
                self.rows = max(self.rows, t.numel() // self.V)
        return out


class ChunkedCrossEntropy(FunctionExercise):
    """Values and gradients as a function exercise, plus a watch on the logits' size."""

    def grade(self, fn: Callable[..., Any], lang: str) -> CheckResult:
        result = super().grade(fn, lang)
        if not result.passed:
            return result
        for case in self.cases():
            args, kwargs = case.fresh()
            watch = _LogitWatch(V=args[1].shape[0])
            with watch:
                call(fn, args, kwargs)
            if watch.rows > args[3]:
                hint = CHUNK_HINTS["materialises_logits"][lang].format(
                    rows=watch.rows, chunk=args[3], N=args[0].shape[0], V=args[1].shape[0]
                )
                return fail(self.name, lang, "mistake", "materialises_logits", hint=hint)
        return result


CHUNK_HINTS = {
    "mean_of_chunk_means": {
        "en": "you average the chunks' means. Chunks hold different numbers of valid targets (the "
        "last chunk is shorter, padding is uneven): add up the chunks' NLL *sums* and divide "
        "once by the total number of valid targets.",
        "de": "Sie mitteln die Mittelwerte der Chunks. Chunks enthalten unterschiedlich viele "
        "gültige Ziele (der letzte ist kürzer, Padding ist ungleich verteilt): Addieren Sie die "
        "NLL-*Summen* der Chunks und teilen Sie einmal durch die Gesamtzahl gültiger Ziele.",
    },
    "materialises_logits": {
        "en": "the value is right, but an operation produced {rows} rows of V={V} logits at once "
        "(chunk_size={chunk}, N={N}). Compute hidden[i:i+chunk_size] @ weight.T inside the loop, "
        "never hidden @ weight.T.",
        "de": "Der Wert stimmt, aber eine Operation hat {rows} Zeilen mit V={V} Logits auf einmal "
        "erzeugt (chunk_size={chunk}, N={N}). Berechnen Sie hidden[i:i+chunk_size] @ weight.T in "
        "der Schleife, nie hidden @ weight.T.",
    },
}

CHUNKED_CROSS_ENTROPY = ChunkedCrossEntropy(
    name="chunked_cross_entropy",
    description="fn(hidden (N,d), weight (V,d), labels (N,), chunk_size) -> 0-dim: mean CE of "
    "hidden @ weight.T over labels != -100, never holding more than chunk_size rows of logits",
    cases=lambda: [
        Case(
            {"en": "N=37, V=29, chunk 8", "de": "N=37, V=29, Chunk 8"}, _chunk_case(0, 37, 29, 8, 9)
        ),
        Case(
            {"en": "N=20, V=13, chunk 6", "de": "N=20, V=13, Chunk 6"}, _chunk_case(1, 20, 13, 6, 7)
        ),
        Case(
            {"en": "N=9, V=31, chunk 16", "de": "N=9, V=31, Chunk 16"}, _chunk_case(2, 9, 31, 16, 2)
        ),
    ],
    reference=_chunk_reference,
    mistakes={"mean_of_chunk_means": _mean_of_chunk_means},
    hints={"mean_of_chunk_means": CHUNK_HINTS["mean_of_chunk_means"]},
    grad_inputs=(0, 1),
)

# --- gradient accumulation (06) -------------------------------------------------------------------

ACC_HINTS = {
    "mean_of_means": {
        "en": "each micro-batch's loss is its own mean (divided by M or not). With uneven padding "
        "the micro-batches have different target counts, so their means do not average to the "
        "full batch's mean. Divide each micro-batch's NLL sum by the *whole* batch's count of "
        "valid targets (num_items_in_batch).",
        "de": "Der Verlust jedes Micro-Batches ist sein eigener Mittelwert (durch M geteilt oder "
        "nicht). Bei ungleichem Padding haben die Micro-Batches unterschiedlich viele Ziele, ihre "
        "Mittelwerte mitteln sich also nicht zum Mittelwert des ganzen Batches. Teilen Sie die "
        "NLL-Summe jedes Micro-Batches durch die Zahl gültiger Ziele des *ganzen* Batches "
        "(num_items_in_batch).",
    },
}


def _acc_case(seed: int, sizes: list[tuple[int, int]], T: int, V: int) -> tuple[Any, ...]:
    parts = [_logits_and_labels(seed + i, b, T, V, pad=pad) for i, (b, pad) in enumerate(sizes)]
    return [z for z, _ in parts], [y for _, y in parts]


class AccumulatedLoss:
    """``accumulated_loss``: graded by the summed gradient, against the full batch's mean loss."""

    name = "accumulated_loss"
    description = (
        "fn(micro_logits: list of (b,T,V), micro_labels: list of (b,T)) -> list of 0-dim: the "
        "loss of each micro-batch, so that the summed gradients equal the full batch's"
    )

    def cases(self) -> list[Case]:
        return [
            Case(
                {
                    "en": "2 micro-batches, uneven padding",
                    "de": "2 Micro-Batches, ungleiches Padding",
                },
                _acc_case(0, [(2, 0), (2, 4)], T=6, V=7),
            ),
            Case(
                {
                    "en": "3 micro-batches of different size",
                    "de": "3 Micro-Batches verschiedener Größe",
                },
                _acc_case(5, [(1, 1), (3, 0), (2, 3)], T=5, V=4),
            ),
        ]

    @staticmethod
    def _grads(
        fn: Callable[..., Any], logits: list[torch.Tensor], labels: list[torch.Tensor]
    ) -> Any:
        """The learner's (or a variant's) losses and the summed gradient per micro-batch."""
        leaves = [z.detach().clone().requires_grad_() for z in logits]
        losses = call(fn, (leaves, [y.clone() for y in labels]), {})
        if isinstance(losses, BaseException):
            return losses
        if (
            not isinstance(losses, (list, tuple))
            or len(losses) != len(leaves)
            or not all(isinstance(x, torch.Tensor) and x.dim() == 0 for x in losses)
        ):
            return ("shape", losses)
        if not all(x.requires_grad for x in losses):
            return ("no_grad", losses)
        grads = torch.autograd.grad(torch.stack(list(losses)).sum(), leaves, allow_unused=True)
        return [torch.zeros_like(z) if g is None else g for g, z in zip(grads, leaves, strict=True)]

    @staticmethod
    def _full(logits: list[torch.Tensor], labels: list[torch.Tensor]) -> list[torch.Tensor]:
        """The library's answer: every micro-batch's sum over the whole batch's target count."""
        ce = LanguageModelingLoss(logits[0].shape[-1])
        n = sum(int((y != -100).sum()) for y in labels)
        return [ce(z, y, num_items_in_batch=n) for z, y in zip(logits, labels, strict=True)]

    @staticmethod
    def _mean_of_means(over_m: bool) -> Callable[..., list[torch.Tensor]]:
        def variant(logits: list[torch.Tensor], labels: list[torch.Tensor]) -> list[torch.Tensor]:
            ce = LanguageModelingLoss(logits[0].shape[-1])
            m = len(logits) if over_m else 1
            return [ce(z, y) / m for z, y in zip(logits, labels, strict=True)]

        return variant

    def grade(self, fn: Callable[..., Any], lang: str) -> CheckResult:
        cases = self.cases()
        labels = [c.label[lang] for c in cases]
        for case, label in zip(cases, labels, strict=True):
            logits, ys = case.args
            got = self._grads(fn, logits, ys)
            if isinstance(got, BaseException):
                return error_result(self.name, lang, got, label)
            if isinstance(got, tuple) and got[0] == "shape":
                want = f"a list of {len(logits)} 0-dim tensors (one loss per micro-batch)"
                return fail(self.name, lang, "wrong_shape", "wrong_shape", case=label,
                            expected=want, got=describe(got[1]))  # fmt: skip
            if isinstance(got, tuple):
                return fail(self.name, lang, "no_gradient", "no_gradient")
            want = self._grads(self._full, logits, ys)
            if all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, want, strict=True)):
                continue
            for over_m in (True, False):
                guess = self._grads(self._mean_of_means(over_m), logits, ys)
                if all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, guess, strict=True)):
                    hint = ACC_HINTS["mean_of_means"][lang]
                    return fail(self.name, lang, "mistake", "mean_of_means", hint=hint)
            total = sum(self._full(logits, ys))
            got_total = sum(fn([z.clone() for z in logits], [y.clone() for y in ys]))
            return fail(self.name, lang, "wrong_value", None, case=label,
                        expected=show(total), got=show(got_total))  # fmt: skip
        return passed(self.name, lang, labels)


ACCUMULATED_LOSS = AccumulatedLoss()

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

# --- the count that the whole accumulated batch is divided by (06) -------------------------------


def _count_reference(micro_labels: list[torch.Tensor]) -> float:
    counts = MultiTokenPredictionLoss(2).count_items(torch.cat(micro_labels))
    return float(counts[0])


NUM_ITEMS_IN_BATCH = FunctionExercise(
    name="num_items_in_batch",
    description="fn(micro_labels: list of (b,T)) -> int: the number of valid targets (label != "
    "-100) in all micro-batches of one optimizer step together",
    cases=lambda: [
        Case(
            {"en": "2 micro-batches, uneven padding", "de": "2 Micro-Batches, ungleiches Padding"},
            _acc_case(0, [(2, 0), (2, 4)], T=6, V=7)[1:],
        ),
        Case(
            {"en": "3 micro-batches", "de": "3 Micro-Batches"},
            _acc_case(5, [(1, 1), (3, 0), (2, 3)], T=5, V=4)[1:],
        ),
    ],
    reference=_count_reference,
    mistakes={
        "counts_ignored": lambda ys: float(sum(y.numel() for y in ys)),
        "one_micro_batch": (
            lambda ys: float((ys[0] != -100).sum()),
            lambda ys: float((ys[-1] != -100).sum()),
        ),
    },
    hints={
        "counts_ignored": {
            "en": "you count every position, padding included. Count only the targets: "
            "(labels != -100).sum() over all micro-batches.",
            "de": "Sie zählen jede Position, Padding eingeschlossen. Zählen Sie nur die Ziele: "
            "(labels != -100).sum() über alle Micro-Batches.",
        },
        "one_micro_batch": {
            "en": "you count one micro-batch. The normaliser is the count of the *whole* step: "
            "add up the counts of all micro-batches before any backward pass.",
            "de": "Sie zählen einen Micro-Batch. Der Normierer ist die Zahl des *ganzen* Schritts: "
            "Addieren Sie die Zahlen aller Micro-Batches vor dem ersten Rückwärtsdurchlauf.",
        },
    },
)
