"""Exercises on alignment and sharing: shifting labels, MTP targets and loss (01, 03), tying (02).

Graded against :func:`~aptt_edu.loss.language_modeling.shift_labels`,
:func:`~aptt_edu.loss.language_modeling.mtp_targets`,
:class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss` and
:meth:`~aptt_edu.heads.language_modeling.LanguageModelingHead.tie_embedding_weights`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from aptt_edu.exercises._grader import (
    Case,
    CheckResult,
    FunctionExercise,
    call,
    error_result,
    fail,
    passed,
)
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    MultiTokenPredictionLoss,
    mtp_targets,
    shift_labels,
)

__all__ = ["MTP_LOSS", "MTP_TARGETS", "PARAMETER_COUNT", "SHIFT_LABELS", "TIE_WEIGHTS"]


def _ids(seed: int, B: int, T: int, V: int = 50) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


# --- shift_labels ---------------------------------------------------------------------------------


def _shifted_wrong_way(input_ids: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    labels = torch.full_like(input_ids, ignore_index)
    labels[:, 1:] = input_ids[:, :-1]  # labels[t] = ids[t-1]: the past, not the future
    return labels


def _last_not_ignored(input_ids: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    return torch.roll(input_ids, -1, dims=1)  # wraps the first token round to the end


SHIFT_LABELS = FunctionExercise(
    name="shift_labels",
    description="fn(input_ids (B,T), ignore_index=-100) -> labels (B,T): labels[:, t] = "
    "input_ids[:, t+1], the last position ignore_index",
    cases=lambda: [
        Case({"en": "B=2, T=6", "de": "B=2, T=6"}, (_ids(0, 2, 6),)),
        Case(
            {"en": "ignore_index=-1", "de": "ignore_index=-1"},
            (_ids(1, 3, 4),),
            {"ignore_index": -1},
        ),
        Case({"en": "T=2", "de": "T=2"}, (_ids(2, 1, 2),)),
    ],
    reference=lambda input_ids, ignore_index=-100: shift_labels(input_ids, ignore_index)[1],
    mistakes={"shifted_wrong_way": _shifted_wrong_way, "last_not_ignored": _last_not_ignored},
    hints={
        "shifted_wrong_way": {
            "en": "your labels point backwards (labels[:, t] = input_ids[:, t-1]). Position t "
            "must predict the *next* token: labels[:, t] = input_ids[:, t+1].",
            "de": "Ihre Labels zeigen rückwärts (labels[:, t] = input_ids[:, t-1]). Position t "
            "soll das *nächste* Token vorhersagen: labels[:, t] = input_ids[:, t+1].",
        },
        "last_not_ignored": {
            "en": "the last position gets a label (torch.roll wraps the first token round to the "
            "end). It has no next token: set it to ignore_index.",
            "de": "Die letzte Position bekommt ein Label (torch.roll schiebt das erste Token ans "
            "Ende). Sie hat kein nächstes Token: Setzen Sie sie auf ignore_index.",
        },
    },
)

# --- MTP targets and loss -------------------------------------------------------------------------


def _labels(seed: int, B: int, T: int, V: int, pad: int = 0) -> torch.Tensor:
    labels = _ids(seed, B, T, V)
    labels[:, T - 1 - pad :] = -100  # the last position, plus padding
    return labels


MTP_TARGETS = FunctionExercise(
    name="mtp_targets",
    description="fn(labels (B,T), k) -> (B,T-k): the targets of MTP depth k",
    cases=lambda: [
        Case({"en": "k=1", "de": "k=1"}, (_labels(0, 2, 6, 9), 1)),
        Case({"en": "k=2", "de": "k=2"}, (_labels(1, 3, 7, 9, pad=1), 2)),
        Case({"en": "k=3", "de": "k=3"}, (_labels(2, 1, 5, 9), 3)),
    ],
    reference=mtp_targets,
    mistakes={"wrong_end": lambda labels, k: labels[:, :-k]},
    hints={
        "wrong_end": {
            "en": "you cut the wrong end (labels[:, :-k]). Depth k at position i predicts "
            "labels[:, i+k], so its targets start k positions in: labels[:, k:].",
            "de": "Sie schneiden am falschen Ende ab (labels[:, :-k]). Tiefe k sagt an Position i "
            "labels[:, i+k] vorher, ihre Ziele beginnen also k Positionen weiter: labels[:, k:].",
        },
    },
)


def _mtp_case(seed: int, B: int, T: int, V: int, D: int, pad: int = 0) -> tuple[Any, ...]:
    g = torch.Generator().manual_seed(seed)
    main = 2 * torch.randn(B, T, V, generator=g)
    mtp = [2 * torch.randn(B, T - k, V, generator=g) for k in range(1, D + 1)]
    return main, mtp, _labels(seed, B, T, V, pad), 0.3


def _mtp_reference(
    main_logits: torch.Tensor, mtp_logits: list[torch.Tensor], labels: torch.Tensor, lam: float
) -> torch.Tensor:
    V, D = main_logits.shape[-1], len(mtp_logits)
    loss = MultiTokenPredictionLoss(V, mtp_depth=D, mtp_lambda=lam)
    total: torch.Tensor = loss(main_logits, mtp_logits, labels)[0]
    return total


def _mtp_variant(misaligned: bool, over_depth: bool) -> Callable[..., torch.Tensor]:
    def variant(
        main_logits: torch.Tensor, mtp_logits: list[torch.Tensor], labels: torch.Tensor, lam: float
    ) -> torch.Tensor:
        ce = LanguageModelingLoss(main_logits.shape[-1])
        depths = [
            ce(z, labels[:, :-k] if misaligned else labels[:, k:])
            for k, z in enumerate(mtp_logits, start=1)
        ]
        w = lam / len(mtp_logits) if over_depth else lam
        total: torch.Tensor = ce(main_logits, labels) + w * torch.stack(depths).sum()
        return total

    return variant


MTP_LOSS = FunctionExercise(
    name="mtp_loss",
    description="fn(main_logits (B,T,V), mtp_logits: list of (B,T-k,V), labels (B,T), mtp_lambda) "
    "-> 0-dim: main CE + λ · Σ_k CE(depth k)",
    cases=lambda: [
        Case({"en": "D=1", "de": "D=1"}, _mtp_case(0, 2, 6, 7, 1)),
        Case({"en": "D=2, with padding", "de": "D=2, mit Padding"}, _mtp_case(1, 3, 7, 5, 2, 1)),
        Case({"en": "D=3", "de": "D=3"}, _mtp_case(2, 2, 8, 6, 3)),
    ],
    reference=_mtp_reference,
    mistakes={
        "misaligned_targets": _mtp_variant(misaligned=True, over_depth=False),
        "lambda_over_depth": _mtp_variant(misaligned=False, over_depth=True),
    },
    hints={
        "misaligned_targets": {
            "en": "depth k is scored on labels[:, :-k]: the main model's targets, not the tokens "
            "k steps further on. Its targets are labels[:, k:].",
            "de": "Tiefe k wird an labels[:, :-k] gemessen: den Zielen des Hauptmodells, nicht den "
            "Tokens k Schritte weiter. Ihre Ziele sind labels[:, k:].",
        },
        "lambda_over_depth": {
            "en": "you weight the depths with λ/D (DeepSeek-V3's Eq. 25). This exercise asks for "
            "λ per depth: main + λ · Σ_k L_k. (The two agree only for D = 1.)",
            "de": "Sie gewichten die Tiefen mit λ/D (Gl. 25 von DeepSeek-V3). Diese Aufgabe "
            "verlangt λ pro Tiefe: main + λ · Σ_k L_k. (Beide stimmen nur für D = 1 überein.)",
        },
    },
    grad_inputs=(0,),
)

# --- weight tying ---------------------------------------------------------------------------------

TIE_HINTS = {
    "copied_not_shared": {
        "en": "the head holds a *copy* of the embedding's values: two tensors that drift apart at "
        "the first optimizer step. Make the head's weight the very same Parameter: "
        "head.weight = embedding.weight.",
        "de": "Der Head hält eine *Kopie* der Werte des Embeddings: zwei Tensoren, die sich beim "
        "ersten Optimiererschritt auseinanderentwickeln. Machen Sie das Gewicht des Heads zu "
        "demselben Parameter: head.weight = embedding.weight.",
    },
    "shared_data_not_parameter": {
        "en": "head and embedding share storage but are two Parameter objects, so each gets its own "
        ".grad and the model counts the matrix twice. Assign the Parameter itself: "
        "head.weight = embedding.weight.",
        "de": "Head und Embedding teilen den Speicher, sind aber zwei Parameter-Objekte: Jedes "
        "bekommt sein eigenes .grad, und das Modell zählt die Matrix doppelt. Weisen Sie den "
        "Parameter selbst zu: head.weight = embedding.weight.",
    },
    "not_tied": {
        "en": "after your function the head's weight is unchanged. Tying means the head uses the "
        "embedding's (V, d) matrix: head.weight = embedding.weight.",
        "de": "Nach Ihrer Funktion ist das Gewicht des Heads unverändert. Binden heißt, dass der "
        "Head die (V, d)-Matrix des Embeddings benutzt: head.weight = embedding.weight.",
    },
}


class TieWeights:
    """``tie_weights``: the learner ties a head to an embedding in place; graded by identity and
    by the gradient, against the library's ``tie_embedding_weights``."""

    name = "tie_weights"
    mistake_ids = tuple(TIE_HINTS)
    description = (
        "fn(embedding: nn.Embedding, head: LanguageModelingHead) -> None: tie the head's weight "
        "to the embedding in place (one shared Parameter)"
    )

    @staticmethod
    def _pair(seed: int) -> tuple[nn.Embedding, LanguageModelingHead]:
        torch.manual_seed(seed)
        return nn.Embedding(11, 5), LanguageModelingHead(5, 11)

    def grade(self, fn: Callable[..., Any], lang: str) -> CheckResult:
        case = {"en": "V=11, d=5", "de": "V=11, d=5"}[lang]
        emb, head = self._pair(0)
        outcome = call(fn, (emb, head), {})
        if isinstance(outcome, BaseException):
            return error_result(self.name, lang, outcome, case)
        w = head.weight
        if w is not emb.weight:
            if isinstance(w, torch.Tensor) and w.shape == emb.weight.shape:
                if w.data_ptr() == emb.weight.data_ptr():
                    mistake = "shared_data_not_parameter"
                elif torch.equal(w.detach(), emb.weight.detach()):
                    mistake = "copied_not_shared"
                else:
                    mistake = "not_tied"
            else:
                mistake = "not_tied"
            return fail(self.name, lang, "mistake", mistake, hint=TIE_HINTS[mistake][lang])
        # the same Parameter (in either direction): its one gradient must be the sum of both
        # uses, as with the library's tie
        ref_emb, ref_head = self._pair(0)
        with torch.no_grad():
            ref_emb.weight.copy_(w)
        ref_head.tie_embedding_weights(ref_emb)
        ids = torch.tensor([[1, 4, 4, 9]])
        grads: list[torch.Tensor | None] = []
        for e, h in ((emb, head), (ref_emb, ref_head)):
            e.weight.grad = None
            h(e(ids)).logsumexp(-1).sum().backward()
            grads.append(e.weight.grad)
        if grads[0] is None or grads[1] is None or not torch.allclose(grads[0], grads[1]):
            return fail(self.name, lang, "mistake", "not_tied", hint=TIE_HINTS["not_tied"][lang])
        return passed(self.name, lang, [case])


TIE_WEIGHTS = TieWeights()

# --- counting a tied model's parameters (02) ------------------------------------------------------


class _Tiny(nn.Module):
    """Embedding -> head, tied or not: the smallest model where counting can go wrong."""

    def __init__(self, tied: bool, V: int = 13, d: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embedding = nn.Embedding(V, d)
        self.norm = nn.LayerNorm(d)
        self.head = LanguageModelingHead(d, V, bias=True)
        if tied:
            self.head.tie_embedding_weights(self.embedding)


def _count_state_dict(model: nn.Module) -> int:
    return sum(t.numel() for t in model.state_dict().values())


PARAMETER_COUNT = FunctionExercise(
    name="parameter_count",
    description="fn(model: nn.Module) -> int: the number of trainable numbers, a tied matrix "
    "counted once",
    cases=lambda: [
        Case({"en": "tied model", "de": "gebundenes Modell"}, (_Tiny(tied=True),)),
        Case({"en": "untied model", "de": "ungebundenes Modell"}, (_Tiny(tied=False),)),
    ],
    reference=lambda model: float(sum(p.numel() for p in model.parameters())),
    mistakes={"state_dict_counts_twice": lambda model: float(_count_state_dict(model))},
    hints={
        "state_dict_counts_twice": {
            "en": "you count the state_dict, which lists a tied matrix under both names "
            "(embedding.weight and head.weight). model.parameters() yields each Parameter once.",
            "de": "Sie zählen das state_dict, das eine gebundene Matrix unter beiden Namen führt "
            "(embedding.weight und head.weight). model.parameters() liefert jeden Parameter "
            "einmal.",
        },
    },
)
