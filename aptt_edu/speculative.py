r"""Greedy self-speculative decoding with the model's own MTP head/module as the draft model.

DeepSeek-V3 (arXiv:2412.19437, §5.4.3) keeps its MTP module at inference as a draft model: the
second token it predicts is accepted 85–90 % of the time, and decoding reaches 1.8x the tokens per
second. The scheme is blockwise parallel decoding (Stern et al. 2018) / speculative decoding
(Leviathan et al. 2023) with greedy verification:

1. one main-model forward pass over ``prompt + drafts`` gives the main model's greedy token at
   every position at once;
2. the drafts are kept while they equal the main model's greedy token at their position; the main
   model's own token after the last accepted draft is appended (so each pass yields >= 1 token);
3. from the same pass, the MTP depths draft the next ``D`` tokens (depth ``k`` guesses the token
   ``k`` steps beyond the main model's new token).

The output is exactly plain greedy ``generate(temperature=0)``: every kept token is the main model's
argmax given the true prefix. Plain ``generate`` crops the context to the last ``block_size``
tokens; a verification pass over a longer sequence would see other positions, so once the sequence
exceeds ``block_size`` this function takes plain steps (no drafts) and stays lossless.

No KV cache: each pass recomputes the whole sequence. With a cache, a pass would process only the
newly appended tokens (the accepted drafts and the drafts to verify) and rejected drafts' cache
entries would be discarded. Rows of a batch are decoded one after another (their accepted lengths
differ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import torch

from aptt_edu._checks import check_labels, check_logits
from aptt_edu.labels import IGNORE_INDEX, valid_mask

if TYPE_CHECKING:
    from aptt_edu.model import GPT

__all__ = ["SpeculativeStats", "draft_agreement", "generate_speculative"]


@dataclass
class SpeculativeStats:
    """Counters of one :func:`generate_speculative` call (summed over the batch rows)."""

    drafted: int = 0  # drafts that were verified
    accepted: int = 0  # drafts the main model agreed with
    forward_passes: int = 0  # main-model forward passes
    new_tokens: int = 0  # tokens appended

    @property
    def acceptance_rate(self) -> float:
        """accepted / drafted (0 when nothing was drafted)."""
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def tokens_per_forward(self) -> float:
        """new_tokens / forward_passes (plain greedy decoding: 1)."""
        return self.new_tokens / self.forward_passes if self.forward_passes else 0.0


@torch.no_grad()
def _decode_row(
    model: GPT, ids: list[int], max_new_tokens: int, stats: SpeculativeStats
) -> list[int]:
    bs = model.config.block_size
    target = len(ids) + max_new_tokens
    drafts: list[int] = []
    while len(ids) < target:
        n = len(ids)
        stats.forward_passes += 1
        if n > bs:  # cropped context: plain step, as generate does
            h = model.trunk(torch.tensor([ids[-bs:]]))  # (1, bs, d)
            ids.append(int(model.head.lm_head(model.norm(h[:, -1:])).argmax()))
            stats.new_tokens += 1
            drafts = []
            continue
        drafts = drafts[: max(0, min(target - n - 1, bs - n))]
        h = model.trunk(torch.tensor([ids + drafts]))  # (1, n + len(drafts), d)
        logits = model.head.lm_head(model.norm(h[:, n - 1 :]))[0]  # (len(drafts) + 1, V)
        greedy = logits.argmax(dim=-1).tolist()
        a = 0
        while a < len(drafts) and drafts[a] == greedy[a]:
            a += 1
        stats.drafted += len(drafts)
        stats.accepted += a
        ids.extend([*drafts[:a], greedy[a]])
        stats.new_tokens += a + 1
        p = n - 1 + a  # position whose main output gave the new token
        drafts = model.draft_tokens(h[:, : p + 1], torch.tensor([ids])) if len(ids) < target else []
    return ids


def generate_speculative(
    model: GPT, idx: torch.Tensor, max_new_tokens: int
) -> tuple[torch.Tensor, SpeculativeStats]:
    """Greedy decoding with MTP drafts; returns the same ids as ``generate(temperature=0)``.

    Args:
        model: A :class:`~aptt_edu.model.GPT` with ``mtp`` ``"simple"`` or ``"deepseek"``.
        idx: ``(B, T0)`` prompt ids, ``T0 >= 1``.
        max_new_tokens: Tokens to append.

    Returns:
        ``(ids (B, T0 + max_new_tokens), stats)``.

    Raises:
        ValueError: The model has no MTP, or ``idx`` is not a non-empty ``(B, T0)`` tensor.
    """
    if model.config.mtp == "none":
        raise ValueError(
            "speculative decoding needs a model with mtp='simple' or 'deepseek', got mtp='none'"
        )
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be (B, T0) with T0 >= 1, got shape {tuple(idx.shape)}")
    was_training = model.training
    model.eval()
    stats = SpeculativeStats()
    rows = [_decode_row(model, cast(list[int], r.tolist()), max_new_tokens, stats) for r in idx]
    model.train(was_training)
    return torch.tensor(rows, dtype=idx.dtype, device=idx.device), stats


def draft_agreement(
    draft_logits: torch.Tensor,
    main_logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    r"""How often depth 1's draft equals the main head's own prediction one step later.

    At position :math:`i`, depth 1 guesses :math:`t_{i+2}` (``draft_logits[:, i]``). One step later,
    having read the true :math:`t_{i+1}`, the main head predicts :math:`t_{i+2}` itself
    (``main_logits[:, i+1]``). Greedy verification keeps a draft exactly when the two argmaxes agree,
    so with the true tokens fed in (teacher forcing) this is the acceptance rate of the second token
    that DeepSeek-V3 reports as 85–90 % (arXiv:2412.19437, §5.4.3). Positions without a token
    :math:`t_{i+2}` (``labels[:, i+1] == ignore_index``) are left out.

    Args:
        draft_logits: ``(B, T-1, V)`` depth-1 logits (``mtp_logits[0]`` of a model in training
            mode).
        main_logits: ``(B, T, V)`` main-head logits of the same inputs.
        labels: ``(B, T)`` shifted labels of the inputs (:mod:`aptt_edu.labels`).
        ignore_index: The label of positions without a target.

    Returns:
        A 0-dim float tensor in ``[0, 1]``; 0.0 when no position has a :math:`t_{i+2}`.

    Raises:
        TypeError, ValueError: Tensors of the wrong kind or shapes that do not line up.
    """
    V = main_logits.shape[-1] if isinstance(main_logits, torch.Tensor) and main_logits.dim() else 0
    check_logits("main_logits", main_logits, V)
    check_logits("draft_logits", draft_logits, V)
    B, T, _ = main_logits.shape
    if tuple(draft_logits.shape) != (B, T - 1, V):
        raise ValueError(
            f"draft_logits must have shape (B, T-1, V) = {(B, T - 1, V)} for main_logits of shape "
            f"{tuple(main_logits.shape)}, got {tuple(draft_logits.shape)}"
        )
    check_labels("labels", labels, (B, T), V, ignore_index)
    counted = valid_mask(labels[:, 1:], ignore_index)  # (B, T-1): t_(i+2) exists
    draft = draft_logits.argmax(dim=-1)  # (B, T-1): depth 1 at i guesses t_(i+2)
    verify = main_logits[:, 1:].argmax(dim=-1)  # (B, T-1): the main head at i+1, after t_(i+1)
    return ((draft == verify) & counted).sum() / counted.sum().clamp(min=1)
