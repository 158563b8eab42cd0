"""Exercises on losses over parts of a batch: the chunked loss (05), gradient accumulation and
its normaliser (06).

Graded against the library (:func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy`,
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

__all__ = ["ACCUMULATED_LOSS", "CHUNKED_CROSS_ENTROPY", "NUM_ITEMS_IN_BATCH"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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

    @property
    def mistake_ids(self) -> tuple[str, ...]:
        """The variant's mistake and the one the watch finds (``materialises_logits``)."""
        return tuple(CHUNK_HINTS)

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
    mistake_ids = tuple(ACC_HINTS)
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
