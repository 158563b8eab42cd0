r"""The label convention of the whole package, in one place.

Every loss, metric and head that takes ``labels`` reads them the same way:

* labels are **already shifted**: ``labels[b, t]`` is the id of the token that must *follow*
  position ``t`` of sequence ``b`` (so ``logits[b, t]`` is scored against ``labels[b, t]``);
* :data:`IGNORE_INDEX` (``-100``, as in PyTorch and Hugging Face) marks a position without a target:
  the last position of a row, padding, a prompt the model should not be trained on;
* logits are ``(B, T, V)``, labels ``(B, T)`` integer ids in ``[0, V)`` or the ignore index;
* multi-token-prediction depth ``k`` (DeepSeek-V3, arXiv:2412.19437, §2.2) is scored on
  ``labels[:, k:]`` (:func:`mtp_targets`).

::

    input_ids  = [[ 5,  7,  2,  9]]
    labels     = [[ 7,  2,  9, -100]]      labels[b, t] = input_ids[b, t + 1]   (shift_labels)
    depth 1    =     [[ 2,  9, -100]]      labels[:, 1:]                         (mtp_targets)

Labels may arrive in any integer dtype. Before comparing them with the ignore index they are read
as int64 (:func:`as_ids`): in ``uint8`` the value ``-100`` wraps to 156 and in ``int16`` a large
vocabulary size wraps negative, so an ignored position would count as a target, or the reverse.
"""

from __future__ import annotations

import torch

__all__ = ["IGNORE_INDEX", "as_ids", "mtp_targets", "shift_labels", "valid_mask"]

IGNORE_INDEX = -100
"""The label value that marks "no target here" (PyTorch's and Hugging Face's default)."""


def as_ids(labels: torch.Tensor) -> torch.Tensor:
    """``labels`` as int64, so that comparing with a negative ignore index cannot wrap around."""
    return labels.long()


def valid_mask(labels: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """``True`` where a position has a target (its label is not ``ignore_index``); same shape."""
    return as_ids(labels) != ignore_index


def shift_labels(
    input_ids: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    pad_token_id: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turns a batch of token ids into ``(inputs, labels)`` for next-token prediction.

    Position ``t`` must predict token ``t + 1``, so the labels are the ids shifted one step to the
    left; the last position has no successor and gets ``ignore_index``::

        input_ids  = [[ 5,  7,  2,  9]]
        inputs     = [[ 5,  7,  2,  9]]        (unchanged, a new tensor)
        labels     = [[ 7,  2,  9, -100]]      labels[b, t] = input_ids[b, t + 1]

    Args:
        input_ids: Integer token ids, shape ``(B, T)``.
        ignore_index: The id that marks "no target here" for the losses and metrics.
        pad_token_id: If given, positions whose *target* is this padding id are ignored too, so the
            model is never trained to predict padding.

    Returns:
        ``(inputs, labels)``, both ``(B, T)`` integer tensors.

    Raises:
        TypeError: ``input_ids`` is not an integer tensor.
        ValueError: ``input_ids`` is not two-dimensional.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.is_floating_point():
        raise TypeError(
            f"input_ids must be an integer torch.Tensor, got "
            f"{getattr(input_ids, 'dtype', type(input_ids).__name__)}"
        )
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
    labels = torch.full_like(input_ids, ignore_index)
    labels[:, :-1] = input_ids[:, 1:]  # (B, T): labels[b, t] = input_ids[b, t + 1]
    if pad_token_id is not None:
        labels[labels == pad_token_id] = ignore_index
    return input_ids.clone(), labels


def mtp_targets(labels: torch.Tensor, k: int) -> torch.Tensor:
    """The targets of multi-token-prediction depth ``k``: ``labels[:, k:]``, shape ``(B, T-k)``.

    With shifted labels (``labels[:, i]`` is :math:`t_{i+1}`), depth ``k`` at position ``i``
    predicts :math:`t_{i+k+1}` = ``labels[:, i+k]``; the last ``k`` positions have no such token,
    so depth ``k``'s logits have ``T-k`` positions and align with ``labels[:, k:]``::

        labels        = [[t1, t2, t3, t4]]
        mtp_targets(labels, 1) = [[t2, t3, t4]]    (position 0 predicts t2)

    Args:
        labels: ``(B, T)`` shifted ids.
        k: The depth, ``1 <= k < T``.

    Raises:
        ValueError: ``labels`` is not ``(B, T)`` or ``k`` is outside ``[1, T)``.
    """
    if labels.dim() != 2:
        raise ValueError(f"labels must have shape (B, T), got {tuple(labels.shape)}")
    if not 1 <= k < labels.shape[1]:
        raise ValueError(f"k must be in [1, T) = [1, {labels.shape[1]}), got {k}")
    return labels[:, k:]  # (B, T-k)
