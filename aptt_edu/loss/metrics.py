r"""Evaluation metrics for language models: perplexity and token accuracy.

Both follow the torchmetrics life cycle — ``metric(logits, labels)`` returns the value for one batch
*and* adds the batch to the running state, ``update`` only adds, ``compute`` gives the value over
everything added since the last ``reset`` — but are plain :class:`torch.nn.Module` s you can read top
to bottom. The state is kept as *sums* (of NLL, of hits, of tokens), never as per-batch averages:

.. math::
    \mathrm{PPL} = \exp\Big(\frac{\sum_\text{batches} \sum_i \mathrm{NLL}_i}{\sum_\text{batches} N}\Big)
    \;\neq\; \frac{1}{\#\text{batches}} \sum_\text{batches} \mathrm{PPL}_\text{batch}.

The mean of per-batch perplexities weights a short batch as much as a long one. With equal token
counts it is biased upwards (exp is convex, Jensen's inequality); with unequal counts it can be off
either way (256 tokens at NLL 5 and 3 tokens at NLL 0: 74.7 against the data set's 140.1). Notebook
01 shows both numbers.

**Label convention:** ``labels[b, t]`` is the id of the token that must follow position ``t``
(already shifted); ``ignore_index`` marks positions without a target.

When a ``torch.distributed`` process group is initialised, :meth:`compute` all-reduces the sums, so
every rank returns the global value.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from aptt_edu._checks import check_labels, check_logits, check_positive_int

__all__ = ["PerplexityMetric", "TokenAccuracyMetric"]


def _synced(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over all processes (``t`` itself when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class _FixedPrecisionStates(nn.Module):
    """A module whose state buffers keep their dtype through ``.half()``, ``.to(dtype)``, ….

    The sums must stay fp64/int64 whatever the model around the metric is cast to: an fp16 sum of
    NLLs overflows to ``inf`` after a few thousand tokens, a bf16 one loses every digit past the
    third. Module casts go through :meth:`nn.Module._apply`; this override lets them move the
    states to another *device* but restores the original tensor's dtype and values (torchmetrics
    keeps its states out of the casts in the same spirit).
    """

    _fixed_states: tuple[str, ...] = ()

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        before = {name: self._buffers[name] for name in self._fixed_states}
        out = super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        for name, old in before.items():
            new = self._buffers[name]
            if old is not None and new is not None and new.dtype != old.dtype:
                # keep the device the cast chose, but the old dtype and the old (exact) values
                self._buffers[name] = old.to(device=new.device)
        return out


def _check_pair(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> None:
    """Validates ``(B, T, V)`` logits and matching ``(B, T)`` labels for a metric."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(
            f"logits must have shape (B, T, V), got {tuple(getattr(logits, 'shape', ()))}"
        )
    V = logits.shape[-1]
    check_logits("logits", logits, V)
    check_labels("labels", labels, tuple(logits.shape[:2]), V, ignore_index)


class PerplexityMetric(_FixedPrecisionStates):
    r"""Perplexity :math:`\exp\big(\frac{1}{N}\sum_i -\log p_{i,y_i}\big)` over the valid tokens.

    Equals ``torchmetrics.text.Perplexity(ignore_index=...)`` on the same inputs (tested). The NLL
    is computed in fp32 and summed in fp64, so long evaluations do not lose digits; the sum stays
    fp64 when the metric (or a model holding it) is cast with ``.half()`` or ``.to(dtype)``. With no
    valid token the value is undefined and ``nan`` is returned, as torchmetrics does.

    Args:
        ignore_index: Label value that marks positions to skip.

    Example:
        >>> ppl = PerplexityMetric()
        >>> ppl(torch.zeros(2, 3, 10), torch.ones(2, 3, dtype=torch.long))  # uniform over 10
        tensor(10.0000, dtype=torch.float64)
    """

    nll_sum: torch.Tensor
    token_count: torch.Tensor
    _fixed_states = ("nll_sum", "token_count")  # fp64 / int64 through .half(), .to(dtype)

    def __init__(self, ignore_index: int = -100) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("nll_sum", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("token_count", torch.zeros((), dtype=torch.int64), persistent=False)

    def _batch_sums(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_pair(logits, labels, self.ignore_index)
        labels = labels.long()  # once, here: in uint8 the ignore_index -100 would wrap to 156
        V = logits.shape[-1]
        with torch.no_grad():
            # $\mathrm{NLL}_i = -\log p_{i, y_i}$, 0 at ignored positions
            nll = F.cross_entropy(
                logits.reshape(-1, V).float(),
                labels.reshape(-1),
                ignore_index=self.ignore_index,
                reduction="none",
            )
        return nll.double().sum(), (labels != self.ignore_index).sum()

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Adds one batch.

        Args:
            logits: ``(B, T, V)`` scores.
            labels: ``(B, T)`` shifted ids (``labels[b, t]`` follows position ``t``);
                ``ignore_index`` marks positions without a target.
        """
        self._accumulate(*self._batch_sums(logits, labels))

    def _accumulate(self, nll: torch.Tensor, n: torch.Tensor) -> None:
        self.nll_sum += nll.to(self.nll_sum.device)
        self.token_count += n.to(self.token_count.device)

    def compute(self) -> torch.Tensor:
        """``exp(Σ NLL / Σ tokens)`` over everything added since the last reset (all ranks)."""
        nll, n = _synced(self.nll_sum), _synced(self.token_count)
        return torch.exp(nll / n)

    def reset(self) -> None:
        """Forgets all batches."""
        self.nll_sum.zero_()
        self.token_count.zero_()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Returns this batch's perplexity and adds the batch to the running state."""
        nll, n = self._batch_sums(logits, labels)
        self._accumulate(nll, n)
        return torch.exp(nll / n)


class TokenAccuracyMetric(_FixedPrecisionStates):
    """Fraction of valid positions whose label is among the ``top_k`` highest logits.

    Equals torchmetrics' ``MulticlassAccuracy(num_classes=V, top_k=k, average='micro')`` on the
    flattened valid positions (tested). Ties between equal logits are broken by
    :func:`torch.topk`. With no valid token the value is undefined and ``nan`` is returned.

    Args:
        ignore_index: Label value that marks positions to skip.
        top_k: A prediction counts as correct when the label is among the ``top_k`` logits.
    """

    correct: torch.Tensor
    token_count: torch.Tensor
    _fixed_states = ("correct", "token_count")  # int64 through any module cast

    def __init__(self, ignore_index: int = -100, top_k: int = 1) -> None:
        super().__init__()
        check_positive_int("top_k", top_k)
        self.ignore_index = ignore_index
        self.top_k = top_k
        self.register_buffer("correct", torch.zeros((), dtype=torch.int64), persistent=False)
        self.register_buffer("token_count", torch.zeros((), dtype=torch.int64), persistent=False)

    def _batch_sums(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_pair(logits, labels, self.ignore_index)
        if self.top_k > logits.shape[-1]:
            raise ValueError(
                f"top_k={self.top_k} exceeds the vocabulary size V={logits.shape[-1]} of logits "
                f"with shape {tuple(logits.shape)}"
            )
        labels = labels.long()  # once, here: in uint8 the ignore_index -100 would wrap to 156
        with torch.no_grad():
            top = logits.topk(self.top_k, dim=-1).indices  # (B, T, k)
            hit = (top == labels.unsqueeze(-1)).any(dim=-1)  # (B, T)
            valid = labels != self.ignore_index  # (B, T)
        return (hit & valid).sum(), valid.sum()

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Adds one batch.

        Args:
            logits: ``(B, T, V)`` scores.
            labels: ``(B, T)`` shifted ids (``labels[b, t]`` follows position ``t``);
                ``ignore_index`` marks positions without a target.
        """
        self._accumulate(*self._batch_sums(logits, labels))

    def _accumulate(self, hits: torch.Tensor, n: torch.Tensor) -> None:
        self.correct += hits.to(self.correct.device)
        self.token_count += n.to(self.token_count.device)

    def compute(self) -> torch.Tensor:
        """Σ hits / Σ tokens over everything added since the last reset (all ranks), fp64."""
        hits, n = _synced(self.correct), _synced(self.token_count)
        return hits.double() / n

    def reset(self) -> None:
        """Forgets all batches."""
        self.correct.zero_()
        self.token_count.zero_()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Returns this batch's accuracy and adds the batch to the running state."""
        hits, n = self._batch_sums(logits, labels)
        self._accumulate(hits, n)
        return hits.double() / n
