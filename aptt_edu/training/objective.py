r"""The training objective of one (micro-)batch: forward pass and loss, on the logits or chunked.

:func:`compute_loss` is the forward half of a training step. With ``chunked=True`` the main (and
simple-MTP) loss comes from :func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy` on the
final hidden states, without materialising the ``(B, T, V)`` logits (notebook 05); the terms are
combined by the same :meth:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss.combine` as
on the logits path. :class:`TrainingObjective` wraps both as one module for
:class:`~torch.nn.parallel.DistributedDataParallel`.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from aptt_edu._checks import check_room_for_depth
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.labels import mtp_targets
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
from aptt_edu.loss.linear_cross_entropy import linear_cross_entropy
from aptt_edu.model import GPT

__all__ = ["TrainingObjective", "compute_loss"]


def compute_loss(
    model: GPT,
    loss_fn: MultiTokenPredictionLoss,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | None = None,
    *,
    chunked: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward pass and training objective of one (micro-)batch.

    Args:
        model: The model, in training mode (so it returns MTP logits).
        loss_fn: Main loss plus :math:`\\lambda`-weighted MTP losses.
        inputs: ``(B, T)`` token ids.
        labels: ``(B, T)`` shifted targets (:mod:`aptt_edu.labels`).
        num_items_in_batch: ``None``: every term is the mean over this batch's own targets. Or the
            ``(D+1,)`` valid-target counts of the *whole* batch this one is part of
            (``loss_fn.count_items(global_labels)``): every term is then ``sum / N_j``, and the
            parts of a split batch add up to the whole batch's loss.
        chunked: Compute the main (and simple-MTP) loss with
            :func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy` from the hidden
            states, without the ``(B, T, V)`` logits. Same values and gradients (to float
            rounding); not available for the DeepSeek MTP module.

    Returns:
        ``(total, parts)`` as returned by :class:`MultiTokenPredictionLoss`: ``parts`` holds
        ``main_loss``, ``mtp_loss_1`` … and ``total_loss``.

    Raises:
        ValueError: ``chunked=True`` with a model that has the DeepSeek MTP module.
    """
    if chunked:
        return _chunked_loss(model, loss_fn, inputs, labels, num_items_in_batch)
    main_logits, mtp_logits = model(inputs)  # (B, T, V), [(B, T-k, V)] or None
    total, parts = loss_fn(
        main_logits, mtp_logits, labels, num_items_in_batch
    )  # scalar, {name: scalar}
    return total, parts


def _chunked_loss(
    model: GPT,
    loss_fn: MultiTokenPredictionLoss,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`compute_loss` with ``chunked=True``: the same terms, from hidden states and weights."""
    if model.mtp is not None:
        raise ValueError(
            "chunked loss works with mtp 'none' or 'simple': the DeepSeek MTP module applies the "
            "shared head inside the model, so its loss needs the logits"
        )
    mtp_head = model.head.mtp_head if model.training else None  # MTP is a training signal
    # one normaliser per term, read exactly as MultiTokenPredictionLoss reads them
    norms = loss_fn.normalisers(num_items_in_batch, with_mtp=mtp_head is not None)
    ignore, eps = loss_fn.ce.ignore_index, loss_fn.ce.label_smoothing
    h = model.norm(model.trunk(inputs))  # (B, T, d): what the head would multiply with W^T
    if mtp_head is not None:  # the logits path's rule, checked before any loss is computed
        check_room_for_depth("main_hidden", h, mtp_head.mtp_depth)
    lm_head = model.head.lm_head  # its weight may be the embedding's (tied): grads add up
    # $\mathcal{L}_\text{main}$ without the (B, T, V) logits
    main = linear_cross_entropy(
        h, lm_head.weight, labels, lm_head.bias,
        ignore_index=ignore, label_smoothing=eps, num_items_in_batch=norms[0],
    )  # fmt: skip
    heads = cast(list[LanguageModelingHead], list(mtp_head.heads) if mtp_head is not None else [])
    mtp_losses = []
    for k, head_k in enumerate(heads, start=1):
        # simple MTP: h_i (i < T-k) through depth k's own matrix, scored on labels[:, k:]
        mtp_losses.append(linear_cross_entropy(
            h[:, :-k], head_k.weight, mtp_targets(labels, k), head_k.bias,  # (B, T-k, d), (B, T-k)
            ignore_index=ignore, label_smoothing=eps, num_items_in_batch=norms[k],
        ))  # fmt: skip
    return loss_fn.combine(main, mtp_losses)  # main + w · Σ_k L^k, as on the logits path


class TrainingObjective(nn.Module):
    """The model and its loss as one module: ``objective(inputs, labels, counts) -> (total, parts)``.

    :class:`~torch.nn.parallel.DistributedDataParallel` all-reduces the gradients of a backward
    pass only when the forward pass went through the DDP wrapper's own ``forward``. The chunked
    loss never calls ``model.forward`` (it needs the hidden states, not the logits), so DDP wraps
    this module instead, whose forward is all of :func:`compute_loss` — model *and* loss, on either
    path. It holds no parameters of its own.

    Args:
        model: The model being trained.
        loss_fn: The training objective.
        chunked: Use the chunked loss (see :func:`compute_loss`).
    """

    def __init__(self, model: GPT, loss_fn: MultiTokenPredictionLoss, chunked: bool = False):
        super().__init__()
        self.model, self.loss_fn, self.chunked = model, loss_fn, chunked

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor, num_items_in_batch: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`compute_loss` of one micro-batch."""
        return compute_loss(
            self.model, self.loss_fn, inputs, labels, num_items_in_batch, chunked=self.chunked
        )
