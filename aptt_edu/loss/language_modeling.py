r"""Language-modelling losses: next-token cross-entropy and multi-token prediction (MTP).

Labels follow the package's label convention (:mod:`aptt_edu.labels`): *already shifted*,
``labels[b, t]`` is the token that must follow position ``t``, ``-100`` marks positions without a
target. :func:`shift_labels` and :func:`mtp_targets` live there and are re-exported here.

Symbols follow the DeepSeek-V3 technical report (arXiv:2412.19437, §2.2): ``D`` is the MTP depth,
``λ`` (``mtp_lambda``) the MTP loss weight, ``k`` the depth index, ``t_i`` the i-th token.
The metrics (:class:`PerplexityMetric`, :class:`TokenAccuracyMetric`) live in
:mod:`aptt_edu.loss.metrics` and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu._checks import (
    check_labels,
    check_logits,
    check_loss_options,
    check_positive_int,
    zero_count_as_one,
)
from aptt_edu.labels import IGNORE_INDEX, as_ids, mtp_targets, shift_labels, valid_mask
from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric

__all__ = [
    "LanguageModelingLoss",
    "MultiTokenPredictionLoss",
    "PerplexityMetric",
    "Reduction",
    "TokenAccuracyMetric",
    "label_smoothed_cross_entropy_textbook",
    "mtp_targets",
    "shift_labels",
]

Reduction = Literal["mean", "sum", "none"]


def label_smoothed_cross_entropy_textbook(
    logits: torch.Tensor,
    labels: torch.Tensor,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    r"""Label-smoothed cross-entropy written exactly as the textbook defines it (slow, for teaching).

    Label smoothing (Szegedy et al., 2016, §7) replaces the one-hot target :math:`y` by a mixture
    with the uniform distribution over the :math:`V` classes,

    .. math::  q_v = (1 - \varepsilon)\,[v = y] + \frac{\varepsilon}{V},

    and the loss is the cross-entropy :math:`H(q, p) = -\sum_v q_v \log p_v`. Expanding the sum gives
    the form :class:`LanguageModelingLoss` computes,

    .. math::  H(q, p) = (1 - \varepsilon)\,(-\log p_y) + \varepsilon \cdot \frac{1}{V}\sum_v (-\log p_v),

    i.e. :math:`(1-\varepsilon)\cdot\mathrm{CE} + \varepsilon\cdot\mathrm{CE}(\text{uniform}, p)`.
    This function builds the full ``(N, V)`` target matrix ``q`` to make the definition visible; the
    tests check that it equals the fast path.

    Args:
        logits: ``(B, T, V)`` scores.
        labels: ``(B, T)`` shifted target ids (see the module's label convention).
        label_smoothing: :math:`\varepsilon \in [0, 1]`.
        ignore_index: Positions with this label are left out of the mean.

    Returns:
        The mean over valid positions, a scalar fp32 tensor (0.0 if there is none).
    """
    V = logits.shape[-1]
    log_p = F.log_softmax(logits.float().reshape(-1, V), dim=-1)  # (N, V)
    y = as_ids(labels).reshape(-1)  # (N,)
    valid = y != ignore_index  # (N,)
    one_hot = F.one_hot(y.clamp(min=0) * valid, V).float()  # (N, V); row of ignored = e_0, masked
    # $q = (1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon / V$
    q = (1.0 - label_smoothing) * one_hot + label_smoothing / V  # (N, V)
    # $H(q, p) = -\sum_v q_v \log p_v$ per position
    per_token = -(q * log_p).sum(dim=-1)  # (N,)
    return (per_token * valid).sum() / valid.sum().clamp(min=1)


class LanguageModelingLoss(nn.Module):
    r"""Next-token cross-entropy with label smoothing and ``ignore_index``.

    For valid positions :math:`i` (label :math:`y_i \neq` ``ignore_index``) with predicted
    distribution :math:`p_i = \mathrm{softmax}(z_i)` over the vocabulary of size :math:`V`:

    .. math::
        \ell_i = (1-\varepsilon)\,(-\log p_{i, y_i}) + \varepsilon\,\frac{1}{V}\sum_{v=1}^{V}(-\log p_{i,v}),
        \qquad \mathcal{L} = \frac{1}{N_\text{valid}} \sum_{i\ \text{valid}} \ell_i .

    The result equals ``F.cross_entropy(logits.reshape(-1, V).float(), labels.reshape(-1),
    ignore_index=..., label_smoothing=..., reduction=...)`` (tested to 1e-6, values and gradients),
    with one deliberate difference: with ``reduction='mean'`` and *no* valid target at all (a batch
    of padding), the loss is ``0.0`` and backpropagates zero gradients instead of PyTorch's ``NaN``
    (0/0). PyTorch's gradient is zero as well, so no weight turns NaN; what the ``0.0`` protects is
    everything computed from the *value*: logged losses and their running means, loss-watching
    schedulers and early stopping, ``isfinite`` guards. (An optimizer step on zero gradients is not
    a no-op either: AdamW still moves weights through momentum and weight decay.)

    Logits may be fp32, fp16 or bf16; the loss is always computed, and returned, in fp32: the
    log-sum-exp over 50k–130k classes loses too much precision in 16-bit formats.

    Args:
        vocab_size: :math:`V`, the size of the last logits dimension.
        ignore_index: Label value that marks positions to skip.
        label_smoothing: :math:`\varepsilon \in [0, 1]`; 0 is plain cross-entropy.
        reduction: ``'mean'`` over valid positions, ``'sum'``, or ``'none'`` for a ``(B, T)``
            tensor that is 0 at ignored positions.

    Example:
        >>> loss_fn = LanguageModelingLoss(vocab_size=5)
        >>> logits = torch.zeros(1, 3, 5)            # uniform prediction
        >>> labels = torch.tensor([[1, 4, -100]])    # last position has no target
        >>> round(loss_fn(logits, labels).item(), 4)  # log(5)
        1.6094
    """

    def __init__(
        self,
        vocab_size: int,
        ignore_index: int = IGNORE_INDEX,
        label_smoothing: float = 0.0,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        check_positive_int("vocab_size", vocab_size)
        check_loss_options(label_smoothing, reduction)
        self.vocab_size = vocab_size
        self.ignore_index = ignore_index
        self.label_smoothing = float(label_smoothing)
        self.reduction: Reduction = reduction

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Computes the loss.

        Args:
            logits: ``(B, T, V)`` unnormalised scores, any floating dtype.
            labels: ``(B, T)`` integer ids, already shifted: ``labels[b, t]`` is the token that must
                follow position ``t``; ``ignore_index`` marks positions without a target.
            num_items_in_batch: Optional normaliser for ``reduction='mean'``: the number of valid
                targets in the *whole* batch this part belongs to (gradient accumulation, several
                processes). The loss is then ``sum / num_items_in_batch``, so the parts add up to
                the full-batch mean. A count of 0 (no target anywhere in the batch) is read as 1,
                so the loss is 0.0 with zero gradients, like an all-padding batch; see
                :func:`aptt_edu._checks.zero_count_as_one`. ``None`` divides by this call's own
                valid count.

        Returns:
            A scalar fp32 tensor (``'mean'``, ``'sum'``) or an fp32 ``(B, T)`` tensor (``'none'``).

        Raises:
            TypeError: Non-floating logits or non-integer labels.
            ValueError: Wrong shapes, ``V != vocab_size``, or labels outside ``[0, V)``.
        """
        check_logits("logits", logits, self.vocab_size)
        check_labels("labels", labels, tuple(logits.shape[:2]), self.vocab_size, self.ignore_index)
        labels = as_ids(labels)  # once, here (see aptt_edu.labels)
        B, T, V = logits.shape
        # Per-position loss $\ell_i$ in fp32. PyTorch's fused kernel computes exactly the formula in
        # the class docstring (see `label_smoothed_cross_entropy_textbook` for the long form); it
        # already returns 0 at ignored positions.
        per_token = F.cross_entropy(
            logits.reshape(B * T, V).float(),  # (B*T, V)
            labels.reshape(B * T),  # (B*T,)
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction="none",
        )  # (B*T,)
        if self.reduction == "none":
            return per_token.view(B, T)  # (B, T)
        total = per_token.sum()
        if self.reduction == "sum":
            return total
        if num_items_in_batch is not None:
            # $\mathcal{L} = \sum_i \ell_i / N$ with the whole batch's $N$ (0 read as 1, see
            # `zero_count_as_one`)
            return total / zero_count_as_one("num_items_in_batch", num_items_in_batch)
        # $\mathcal{L} = \sum_i \ell_i / \max(N_\text{valid}, 1)$: 0/1 = 0 for an all-padding batch,
        # and the gradient of a sum of nothing is 0 — never 0/0 = NaN.
        n_valid = (labels != self.ignore_index).sum()
        return total / n_valid.clamp(min=1)

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
        )


class MultiTokenPredictionLoss(nn.Module):
    r"""Main next-token loss plus the weighted losses of ``D`` multi-token-prediction depths.

    The MTP depth ``k`` (1-based) predicts, at position ``i``, the token ``k`` steps *after* the main
    target — DeepSeek-V3 §2.2: the k-th MTP module at position i predicts :math:`t_{i+k+1}`. With
    shifted labels (``labels[:, i]`` is :math:`t_{i+1}`) its targets are therefore ``labels[:, k:]``
    and its logits ``mtp_logits[k-1]`` have shape ``(B, T-k, V)``::

        position i          0    1    2    3
        labels[:, i]        t1   t2   t3   t4     main head
        labels[:, i+1]      t2   t3   t4   --     depth k=1, scored on labels[:, 1:]
        labels[:, i+2]      t3   t4   --   --     depth k=2, scored on labels[:, 2:]

    The total is

    .. math::
        \mathcal{L} = \mathcal{L}_\text{main} + \lambda \sum_{k=1}^{D} \mathcal{L}^k_\text{MTP}
        \quad\text{or, with ``average_over_depth=True``,}\quad
        \mathcal{L}_\text{main} + \frac{\lambda}{D} \sum_{k=1}^{D} \mathcal{L}^k_\text{MTP},

    the second being DeepSeek-V3's :math:`\mathcal{L}_\text{MTP}` (its Eq. 25). Each
    :math:`\mathcal{L}^k` is a :class:`LanguageModelingLoss` mean over that depth's valid targets.
    (The report's Eq. 24 writes the normaliser as :math:`1/T`; the mean over valid positions used
    here differs only by the factor :math:`N_k/T` for :math:`N_k` valid depth-:math:`k` targets —
    :math:`(T-k)/T` in the report's convention, whose window includes :math:`t_{T+1}`;
    :math:`(T-k-1)/T` for :func:`shift_labels` windows of :math:`T` input tokens — and ignores
    padding correctly.)

    **Normalisers for split batches** (gradient accumulation, several processes). Each term is a
    mean over *its own* valid targets, and the depths have different ones: depth :math:`k` is scored
    on ``labels[:, k:]``, which has :math:`k` fewer positions per row and different padding. When
    one batch is split into parts, every term :math:`j = 0, 1, \dots, D` (``0`` = main) of every part
    must be divided by the count :math:`N_j` of that term in the *whole* batch,

    .. math::
        \mathcal{L}_j = \sum_\text{parts} \frac{S_{j,\text{part}}}{N_j}, \qquad
        S_{j,\text{part}} = \sum_{i\ \text{valid in the part}} \ell_i ,

    so that the parts add up to the full-batch loss (and gradient) term by term. Pass
    ``num_items_in_batch=loss_fn.count_items(full_labels)``, a ``(D+1,)`` tensor
    :math:`(N_0, N_1, \dots, N_D)`; counts add up over rows, so the count of a global batch spread
    over processes is the ``all_reduce`` sum of the local counts. A single number (int or 0-dim
    tensor) is accepted only for the main term, i.e. when ``mtp_logits`` is ``None``: it cannot
    know the depths' counts, and a wrong normaliser would be a silent error. Notebook 06 derives
    why a mean of per-part means is wrong.

    Args:
        vocab_size: :math:`V`.
        mtp_depth: :math:`D`, the number of extra future tokens predicted.
        mtp_lambda: :math:`\lambda \geq 0`, the weight of the MTP terms (DeepSeek-V3: 0.3, later 0.1).
        label_smoothing: :math:`\varepsilon`, applied to the main and every MTP term.
        ignore_index: Label value that marks positions to skip.
        average_over_depth: Divide :math:`\lambda` by :math:`D` (DeepSeek-V3's form).
    """

    def __init__(
        self,
        vocab_size: int,
        mtp_depth: int = 1,
        mtp_lambda: float = 0.3,
        label_smoothing: float = 0.0,
        ignore_index: int = IGNORE_INDEX,
        average_over_depth: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int("mtp_depth", mtp_depth)
        if not float(mtp_lambda) >= 0.0:  # also rejects NaN
            raise ValueError(f"mtp_lambda must be >= 0, got {mtp_lambda}")
        self.ce = LanguageModelingLoss(vocab_size, ignore_index, label_smoothing, "mean")
        self.vocab_size = vocab_size
        self.mtp_depth = mtp_depth
        self.mtp_lambda = float(mtp_lambda)
        self.average_over_depth = average_over_depth

    @property
    def depth_weight(self) -> float:
        """The factor in front of each :math:`\\mathcal{L}^k`: λ, or λ/D when averaging."""
        return self.mtp_lambda / self.mtp_depth if self.average_over_depth else self.mtp_lambda

    def forward(
        self,
        main_logits: torch.Tensor,
        mtp_logits: Sequence[torch.Tensor] | None,
        labels: torch.Tensor,
        num_items_in_batch: int | torch.Tensor | Sequence[int | torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Computes ``total = main + weight · Σ_k mtp_k``.

        Args:
            main_logits: ``(B, T, V)`` logits of the main head.
            mtp_logits: ``D`` tensors, ``mtp_logits[k-1]`` of shape ``(B, T-k, V)``; ``None`` at
                evaluation time, when only the main loss is computed.
            labels: ``(B, T)`` shifted ids: ``labels[b, t]`` is the token that must follow
                position ``t``; ``ignore_index`` marks positions without a target.
            num_items_in_batch: Optional normalisers when this batch is one part of a larger one
                (see the class docstring): ``D + 1`` counts ``(N_main, N_1, …, N_D)`` of the
                *whole* batch, as a sequence or a ``(D+1,)`` tensor — what :meth:`count_items`
                returns for the whole batch's labels. Each term is then ``sum / N_j`` and the parts
                add up to the full-batch loss. A single int or 0-dim tensor is the main term's
                count and is allowed only without ``mtp_logits``. A count of 0 (no target of that
                term anywhere in the batch) is read as 1, so the term is 0.0 rather than 0/0.
                ``None`` (default): every term is the mean over this call's own valid targets.

        Returns:
            ``(total, loss_dict)``: ``loss_dict`` has the fp32 scalar tensors ``main_loss``,
            ``mtp_loss_1`` … ``mtp_loss_D`` (only when ``mtp_logits`` is given) and ``total_loss``
            (the same tensor as ``total``).

        Raises:
            TypeError: ``mtp_logits`` is not a sequence of tensors, bad dtypes, or a
                ``num_items_in_batch`` that is neither a count nor a sequence of counts.
            ValueError: A wrong number of MTP tensors, a shape that breaks the alignment, a
                negative count, a single count together with ``mtp_logits``, or not ``D + 1``
                counts.
        """
        # N_j per term j = 0 (main), 1..D (depths); None: this call's own count
        norms = self.normalisers(num_items_in_batch, with_mtp=mtp_logits is not None)
        main_loss = self.ce(main_logits, labels, norms[0])  # validates main_logits and labels
        if mtp_logits is None:
            return self.combine(main_loss, [])
        if isinstance(mtp_logits, torch.Tensor) or not isinstance(mtp_logits, Sequence):
            raise TypeError(
                "mtp_logits must be a list/tuple of D tensors (one per depth) or None, got "
                f"{type(mtp_logits).__name__}"
            )
        if len(mtp_logits) != self.mtp_depth:
            raise ValueError(
                f"mtp_logits must hold mtp_depth={self.mtp_depth} tensors, got {len(mtp_logits)} "
                f"with shapes {[tuple(x.shape) for x in mtp_logits]}"
            )
        B, T, V = main_logits.shape
        mtp_losses = []
        for k, logits_k in enumerate(mtp_logits, start=1):
            check_logits(f"mtp_logits[{k - 1}]", logits_k, self.vocab_size)
            if tuple(logits_k.shape) != (B, T - k, V):
                raise ValueError(
                    f"mtp_logits[{k - 1}] (depth k={k}) must have shape (B, T-k, V) = "
                    f"{(B, T - k, V)}, got {tuple(logits_k.shape)}"
                )
            # Depth k at position i predicts t_{i+k+1} = labels[:, i+k]  -> targets labels[:, k:]
            # $\mathcal{L}^k = S_k / N_k$: N_k counts labels[:, k:] (own count, or the whole batch's)
            # logits (B, T-k, V), labels (B, T-k)
            mtp_losses.append(self.ce(logits_k, mtp_targets(labels, k), norms[k]))
        return self.combine(main_loss, mtp_losses)

    def combine(
        self, main_loss: torch.Tensor, mtp_losses: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""The total of terms already computed, and the dict of parts :meth:`forward` returns.

        :meth:`forward` ends here, and so does the chunked loss
        (:func:`aptt_edu.training.objective.compute_loss`), which computes the same terms from
        hidden states: the weighting is written once.

        Args:
            main_loss: :math:`\mathcal{L}_\text{main}`, a scalar.
            mtp_losses: :math:`\mathcal{L}^1, \dots, \mathcal{L}^D` (empty: no MTP terms).

        Returns:
            ``(total, parts)`` with ``parts`` = ``main_loss``, ``mtp_loss_1`` … and ``total_loss``.

        Raises:
            ValueError: Neither 0 nor ``mtp_depth`` MTP terms.
        """
        if len(mtp_losses) not in (0, self.mtp_depth):
            raise ValueError(
                f"mtp_losses must hold 0 or mtp_depth={self.mtp_depth} terms, got {len(mtp_losses)}"
            )
        parts = {"main_loss": main_loss}
        if not mtp_losses:
            parts["total_loss"] = main_loss
            return main_loss, parts
        mtp_sum = main_loss.new_zeros(())
        for k, loss_k in enumerate(mtp_losses, start=1):
            parts[f"mtp_loss_{k}"] = loss_k
            mtp_sum = mtp_sum + loss_k
        # $\mathcal{L} = \mathcal{L}_\text{main} + \lambda \sum_k \mathcal{L}^k$   (or $\lambda / D$)
        total = main_loss + self.depth_weight * mtp_sum
        parts["total_loss"] = total
        return total, parts

    def count_items(self, labels: torch.Tensor) -> torch.Tensor:
        r"""The valid-target count of every term: :math:`(N_\text{main}, N_1, \dots, N_D)`.

        :math:`N_0` counts ``labels``, :math:`N_k` counts ``labels[:, k:]`` (depth ``k``'s
        targets). Call it on the labels of the *whole* batch and pass the result to every part as
        ``num_items_in_batch``. Counts add up over rows: for a batch split across processes, the
        ``all_reduce`` sum of each rank's ``count_items(local_labels)`` is the global count.

        Args:
            labels: ``(B, T)`` shifted ids; ``ignore_index`` marks positions without a target.

        Returns:
            An int64 tensor of shape ``(D + 1,)`` on the labels' device.

        Example:
            >>> fn = MultiTokenPredictionLoss(vocab_size=5, mtp_depth=2)
            >>> fn.count_items(torch.tensor([[1, 2, 3, -100], [4, -100, -100, -100]]))
            tensor([4, 2, 1])
        """
        if not isinstance(labels, torch.Tensor) or labels.dim() != 2:
            raise ValueError(
                f"labels must have shape (B, T), got {tuple(getattr(labels, 'shape', ()))}"
            )
        valid = valid_mask(labels, self.ce.ignore_index)  # (B, T)
        # $N_k = |\{(b, i) : \text{labels}[b, i + k] \neq \text{ignore}\}|$, k = 0 is the main term
        return torch.stack([valid[:, k:].sum() for k in range(self.mtp_depth + 1)])  # (D+1,)

    def normalisers(
        self,
        num_items_in_batch: int | torch.Tensor | Sequence[int | torch.Tensor] | None,
        with_mtp: bool,
    ) -> list[int | torch.Tensor | None]:
        """One normaliser per term, ``[main, depth 1, …, depth D]``, from ``num_items_in_batch``.

        :meth:`forward` calls this; code that computes the terms itself (the chunked loss in
        :func:`aptt_edu.training.objective.compute_loss`) uses it to read the argument the same way.

        Args:
            num_items_in_batch: As in :meth:`forward`.
            with_mtp: Whether MTP terms will be computed (a single count is then refused).

        Returns:
            ``D + 1`` entries: ``None`` (use the call's own count) or a count ``>= 1`` (a count of
            0 is read as 1).

        Raises:
            TypeError, ValueError: As described in :meth:`forward`.
        """
        n_terms = self.mtp_depth + 1
        if num_items_in_batch is None:
            return [None] * n_terms
        single = not (
            isinstance(num_items_in_batch, (list, tuple))
            or (isinstance(num_items_in_batch, torch.Tensor) and num_items_in_batch.dim() == 1)
        )
        counts = (
            [num_items_in_batch] if single else list(cast(Sequence[object], num_items_in_batch))
        )
        checked = [_as_count(n) for n in counts]  # types first, then the structure, then the values
        if single and with_mtp:  # one count, but D + 1 terms
            raise ValueError(
                "num_items_in_batch: one count fits only the main term, but each MTP depth k has "
                "its own count (labels[:, k:]); pass D+1 counts, e.g. "
                "loss_fn.count_items(labels_of_the_whole_batch)"
            )
        if not single and len(checked) != n_terms:
            raise ValueError(
                f"num_items_in_batch must hold D+1 = {n_terms} counts (main, depth 1.."
                f"{n_terms - 1}), got {len(checked)}"
            )
        # A count of 0: no part has a target of this term, every part's sum is 0 -> 0/1 = 0.
        # One rule for every loss of the package: `zero_count_as_one` (also the sign check).
        out: list[int | torch.Tensor | None] = [
            cast(int | torch.Tensor, zero_count_as_one("counts in num_items_in_batch", n))
            for n in checked
        ]
        return out + [None] * (n_terms - len(out))  # one count: the unused depths get None

    def extra_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, mtp_depth={self.mtp_depth}, "
            f"mtp_lambda={self.mtp_lambda}, average_over_depth={self.average_over_depth}"
        )


def _as_count(n: object) -> int | torch.Tensor:
    """One entry of ``num_items_in_batch``, checked to be an int or a 0-dim tensor."""
    if (
        isinstance(n, bool)
        or not isinstance(n, (int, torch.Tensor))
        or (isinstance(n, torch.Tensor) and n.dim() != 0)
    ):
        shown = tuple(n.shape) if isinstance(n, torch.Tensor) else repr(n)
        raise TypeError(
            "num_items_in_batch must be a count (int or 0-dim tensor), a list/tuple of "
            f"D+1 counts or a (D+1,) tensor; got {type(n).__name__} {shown}"
        )
    return n
