r"""DeepSeek-V3's multi-token prediction (MTP) modules, laid out as the released model has them.

DeepSeek-V3 Technical Report (arXiv:2412.19437), §2.2 "Multi-Token Prediction". For depth
:math:`k = 1..D`, position :math:`i`, main-model hidden state :math:`h^0_i` and input tokens :math:`t`:

.. math::
    h'^{k}_i = M_k\,[\mathrm{RMSNorm}(h^{k-1}_i);\ \mathrm{RMSNorm}(\mathrm{Emb}(t_{i+k}))]  \qquad (21)

    h^{k}_{1:T-k} = \mathrm{TRM}_k(h'^{k}_{1:T-k})                                            \qquad (22)

    P^{k}_{i+k+1} = \mathrm{OutHead}(h^{k}_i)                                                  \qquad (23)

:math:`M_k \in \mathbb{R}^{d \times 2d}` is a projection, :math:`\mathrm{TRM}_k` one Transformer block,
:math:`[\cdot;\cdot]` concatenation. ``Emb`` and ``OutHead`` are **shared** with the main model: the
modules add no vocabulary-sized weights. The depths form a *causal chain*: depth :math:`k` starts
from depth :math:`k-1`'s output and sees the true token :math:`t_{i+k}` (teacher forcing), so the
prediction of :math:`t_{i+k+1}` is conditioned on everything before it. Each depth's loss (Eq. 24)
and their weighted mean :math:`\mathcal{L}_\text{MTP} = \frac{\lambda}{D}\sum_k \mathcal{L}^k_\text{MTP}`
(Eq. 25) are computed by :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss` with
``average_over_depth=True``.

**What the report leaves open, taken from the released model.** DeepSeek published weights, not MTP
code; its ``README_WEIGHTS.md`` (deepseek-ai/DeepSeek-V3) names each MTP module's parts ``enorm``,
``hnorm``, ``eh_proj``, one decoder layer and ``shared_head`` (its ``norm``; the head itself is the
main model's). The attribute names here are those names, so a state-dict key like
``model.layers.61.eh_proj.weight`` maps to ``depths.0.eh_proj.weight``. Three choices follow the code
that trains or serves these weights (NVIDIA Megatron-LM ``multi_token_prediction.py``, vLLM
``deepseek_mtp.py``, SGLang ``deepseek_nextn.py``):

* **Concatenation order** ``[enorm(Emb(t_{i+k})); hnorm(h^{k-1}_i)]``, embedding first. Eq. 21 writes
  the hidden state first; every implementation (also torchtitan and PaddleNLP) and the released
  ``eh_proj`` put the embedding first. For training from scratch the two are the same model, as they
  differ by a permutation of :math:`M_k`'s input columns: ``W_paper = cat([W[:, d:], W[:, :d]], 1)``.
* **Depth 1 reads the main model's hidden state after its final RMSNorm**, the tensor the main head
  reads (Megatron, vLLM, SGLang). torchtitan and PaddleNLP feed the state before that norm; the
  report does not say.
* **Depth** :math:`k \ge 2` **reads depth** :math:`k-1` **'s output after its** ``shared_head.norm``,
  the tensor its logits come from (Megatron, torchtitan).

Each depth has its own RMSNorm before the shared head (``shared_head.norm``), as the main model
has one before its head. What this module simplifies: :math:`\mathrm{TRM}_k` is this package's
:class:`~aptt_edu.layers.Block` (multi-head attention and an MLP, no positional encoding), where
DeepSeek's is a full decoder layer with MLA, MoE and RoPE at the original positions.

**How this differs from the simple head** (:class:`~aptt_edu.heads.language_modeling.MultiTokenPredictionHead`):
the simple head projects the *same* final hidden state :math:`h_i` with a separate ``(V, d)`` matrix
per depth, so it must guess :math:`t_{i+k+1}` without knowing :math:`t_{i+1..i+k}` and costs
:math:`D \cdot V \cdot d` parameters. DeepSeek's module feeds in the next true token and runs one
extra Transformer block per depth, sharing the head: :math:`D \cdot (2d^2 + \text{block})` parameters
and a per-depth block of compute instead.

Index convention here (0-based, shifted labels): position ``i`` of depth ``k`` reads ``input_ids[:, i+k]``
and is scored against ``labels[:, i+k]``, so its logits have ``T-k`` positions and align with
``labels[:, k:]`` exactly as the simple head's do.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from aptt_edu._checks import check_hidden, check_positive_int
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.layers import Block, RMSNorm

__all__ = ["DeepSeekMTP", "MTPModule", "SharedHead"]


class SharedHead(nn.Module):
    """The per-depth part of the released ``shared_head``: the RMSNorm in front of the output head.

    Only a container, so the state-dict key reads ``shared_head.norm.weight`` as in the checkpoint.
    The output projection itself is the main model's head, passed in at call time; DeepSeek's
    checkpoint stores a copy of it as ``shared_head.head``, which a loader skips.

    Args:
        d_model: :math:`d`.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = RMSNorm(d_model)


class MTPModule(nn.Module):
    """One MTP depth ``k``: Eq. 21 and 22 plus the norm in front of the shared head.

    Args:
        d_model: :math:`d`.
        n_heads: Attention heads of :math:`\\mathrm{TRM}_k`.
        dropout: Dropout inside :math:`\\mathrm{TRM}_k`.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.enorm = RMSNorm(d_model)  # RMSNorm(Emb(t_{i+k}))
        self.hnorm = RMSNorm(d_model)  # RMSNorm(h^{k-1}_i)
        self.eh_proj = nn.Linear(2 * d_model, d_model, bias=False)  # M_k, (d, 2d)
        self.block = Block(d_model, n_heads, dropout)  # TRM_k
        self.shared_head = SharedHead(d_model)  # final norm before the shared OutHead

    def forward(self, h_prev: torch.Tensor, emb_next: torch.Tensor) -> torch.Tensor:
        r"""Computes :math:`h^k` from :math:`h^{k-1}` and the embeddings of the tokens ``k`` ahead.

        Args:
            h_prev: :math:`h^{k-1}_{1:T-k}`, shape ``(B, T-k, d)``: the main model's normed hidden
                state for ``k = 1``, else depth ``k-1``'s output after its ``shared_head.norm``.
            emb_next: :math:`\mathrm{Emb}(t_{1+k:T})`, shape ``(B, T-k, d)``.

        Returns:
            :math:`h^k_{1:T-k}`, shape ``(B, T-k, d)`` (before ``shared_head.norm``).
        """
        # Eq. 21, embedding first as in the released eh_proj (the report writes h first):
        # $h'^k_i = M_k [\mathrm{RMSNorm}(\mathrm{Emb}(t_{i+k})); \mathrm{RMSNorm}(h^{k-1}_i)]$
        h_cat = torch.cat([self.enorm(emb_next), self.hnorm(h_prev)], dim=-1)  # (B, T-k, 2d)
        # Eq. 22: $h^k_{1:T-k} = \mathrm{TRM}_k(h'^k_{1:T-k})$ — causal over the T-k positions
        h_k: torch.Tensor = self.block(self.eh_proj(h_cat))  # (B, T-k, d)
        return h_k


class DeepSeekMTP(nn.Module):
    """``D`` sequential MTP modules that share the main model's embedding and output head.

    The shared modules are *passed in* at call time rather than stored, so they are visibly owned by
    the main model, are counted once, and appear once in ``state_dict()``.

    Args:
        d_model: :math:`d`.
        n_heads: Attention heads of each :math:`\\mathrm{TRM}_k`.
        mtp_depth: :math:`D` (DeepSeek-V3 trains with :math:`D = 1`).
        dropout: Dropout inside the blocks.

    Example:
        >>> emb, head = nn.Embedding(11, 8), LanguageModelingHead(8, 11)
        >>> mtp = DeepSeekMTP(d_model=8, n_heads=2, mtp_depth=2)
        >>> ids = torch.randint(0, 11, (3, 6))
        >>> [tuple(z.shape) for z in mtp(torch.randn(3, 6, 8), ids, emb, head)]
        [(3, 5, 11), (3, 4, 11)]
    """

    def __init__(self, d_model: int, n_heads: int, mtp_depth: int = 1, dropout: float = 0.0):
        super().__init__()
        check_positive_int("mtp_depth", mtp_depth)
        self.d_model = d_model
        self.mtp_depth = mtp_depth
        self.depths = nn.ModuleList(MTPModule(d_model, n_heads, dropout) for _ in range(mtp_depth))

    def forward(
        self,
        main_hidden: torch.Tensor,
        input_ids: torch.Tensor,
        embedding: nn.Embedding,
        head: LanguageModelingHead,
    ) -> list[torch.Tensor]:
        """Runs the causal chain of depths and returns each depth's logits.

        Args:
            main_hidden: :math:`h^0`, the main model's final hidden states ``(B, T, d)`` **after**
                its final norm: the tensor its own head reads.
            input_ids: The model's input ids ``(B, T)``; depth ``k`` embeds ``input_ids[:, k:]``.
            embedding: The main model's (shared) input embedding.
            head: The main model's (shared) output head.

        Returns:
            ``D`` logits tensors, ``mtp_logits[k-1]`` of shape ``(B, T-k, V)``, to be scored against
            ``labels[:, k:]`` (see :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss`).

        Raises:
            ValueError: Mismatched shapes, or ``T <= D``.
        """
        check_hidden("main_hidden", main_hidden, self.d_model)
        B, T, _ = main_hidden.shape
        if input_ids.shape != (B, T):
            raise ValueError(
                f"input_ids must have shape (B, T) = {(B, T)} to match main_hidden, "
                f"got {tuple(input_ids.shape)}"
            )
        if self.mtp_depth >= T:
            raise ValueError(f"T={T} positions leave no target for MTP depth D={self.mtp_depth}")
        logits: list[torch.Tensor] = []
        h = main_hidden  # h^0 after the main model's final norm, (B, T, d)
        for k, module in enumerate(cast(list[MTPModule], self.depths), start=1):
            emb_next = embedding(input_ids[:, k:])  # Emb(t_{i+k}), (B, T-k, d)
            # the chain carries the normed state, the one depth k's logits come from
            h = module.shared_head.norm(module(h[:, : T - k], emb_next))  # h^k normed, (B, T-k, d)
            # Eq. 23: $P^k_{i+k+1} = \mathrm{OutHead}(h^k_i)$ — the shared head, logits (B, T-k, V)
            logits.append(head(h))
        return logits
