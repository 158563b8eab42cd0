"""Exercise on MTP as a draft model (03b): the teacher-forced agreement of depth 1 with the main head.

Graded against :func:`aptt_edu.speculative.draft_agreement`.
"""

from __future__ import annotations

import torch

from aptt_edu.exercises._grader import Case, FunctionExercise
from aptt_edu.speculative import draft_agreement

__all__ = ["DRAFT_AGREEMENT"]


def _case(seed: int, B: int, T: int, V: int, lengths: list[int]) -> tuple[torch.Tensor, ...]:
    """Main logits, drafts that mostly agree with the main head one step later, padded labels.

    Where there is no t_(i+2) the drafts are random, so counting those positions changes the rate.
    """
    g = torch.Generator().manual_seed(seed)
    main = torch.randn(B, T, V, generator=g)  # (B, T, V)
    draft = main[:, 1:] + 0.8 * torch.randn(B, T - 1, V, generator=g)  # (B, T-1, V)
    labels = torch.randint(0, V, (B, T), generator=g)  # (B, T)
    for b, n in enumerate(lengths):
        labels[b, n:] = -100  # n targets in row b
    padded = labels[:, 1:] == -100  # (B, T-1)
    draft[padded] = torch.randn(int(padded.sum()), V, generator=g)
    return draft, main, labels


def _reference(
    draft_logits: torch.Tensor, main_logits: torch.Tensor, labels: torch.Tensor
) -> float:
    return float(draft_agreement(draft_logits, main_logits, labels))


def _same_position(draft: torch.Tensor, main: torch.Tensor, labels: torch.Tensor) -> float:
    counted = labels[:, 1:] != -100
    return float((draft.argmax(-1) == main[:, :-1].argmax(-1))[counted].float().mean())


def _against_target(draft: torch.Tensor, main: torch.Tensor, labels: torch.Tensor) -> float:
    counted = labels[:, 1:] != -100
    return float((draft.argmax(-1) == labels[:, 1:])[counted].float().mean())


def _counts_ignored(draft: torch.Tensor, main: torch.Tensor, labels: torch.Tensor) -> float:
    return float((draft.argmax(-1) == main[:, 1:].argmax(-1)).float().mean())


DRAFT_AGREEMENT = FunctionExercise(
    name="draft_agreement",
    description="fn(draft_logits (B,T-1,V), main_logits (B,T,V), labels (B,T)) -> float: the "
    "fraction of positions i with a token t(i+2) where depth 1's argmax at i equals the main "
    "head's argmax at i+1",
    cases=lambda: [
        Case({"en": "full rows", "de": "volle Zeilen"}, _case(0, 3, 9, 7, [9, 9, 9])),
        Case({"en": "with padding", "de": "mit Padding"}, _case(1, 4, 10, 5, [10, 6, 3, 8])),
        Case(
            {"en": "a row without any t(i+2)", "de": "eine Zeile ganz ohne t(i+2)"},
            _case(2, 3, 8, 11, [8, 1, 5]),
        ),
    ],
    reference=_reference,
    mistakes={
        "same_position": _same_position,
        "against_target": _against_target,
        "counts_ignored": _counts_ignored,
    },
    hints={
        "same_position": {
            "en": "you compare the draft at position i with the main head at the same position i. "
            "The main head predicts t(i+2) one step later, at position i+1: compare "
            "draft_logits[:, i] with main_logits[:, i + 1], i.e. main_logits[:, 1:].",
            "de": "Sie vergleichen das Draft-Token an Position i mit dem Haupt-Head an derselben "
            "Position i. Der Haupt-Head sagt t(i+2) erst einen Schritt später voraus, an Position "
            "i+1: Vergleichen Sie draft_logits[:, i] mit main_logits[:, i + 1], also "
            "main_logits[:, 1:].",
        },
        "against_target": {
            "en": "you compare the draft with the true token t(i+2). That is the draft's accuracy. "
            "A greedy verifier keeps a draft when it equals the *main model's* prediction, "
            "right or wrong: compare with main_logits[:, 1:].argmax(-1).",
            "de": "Sie vergleichen das Draft-Token mit dem wahren Token t(i+2). Das ist die "
            "Genauigkeit des Draft-Tokens. Eine Greedy-Prüfung behält ein Draft-Token, wenn es der "
            "Vorhersage des *Hauptmodells* entspricht, ob diese richtig ist oder nicht: "
            "Vergleichen Sie mit main_logits[:, 1:].argmax(-1).",
        },
        "counts_ignored": {
            "en": "you count every position, also those without a token t(i+2) "
            "(labels[:, i+1] == -100: padding, the row's end). Count only where "
            "labels[:, 1:] != -100.",
            "de": "Sie zählen jede Position, auch die ohne Token t(i+2) (labels[:, i+1] == -100: "
            "Padding, das Zeilenende). Zählen Sie nur dort, wo labels[:, 1:] != -100.",
        },
    },
)
