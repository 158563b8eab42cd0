r"""Output heads: hidden states ``(B, T, d)`` → logits ``(B, T, V)``.

* :class:`LanguageModelingHead` — the unembedding :math:`z = h W^\top (+ b)`, optionally *tied* to
  the input embedding (Press & Wolf, 2017): both are ``(V, d)`` matrices, one maps token ids to
  vectors, the other scores vectors against every token, so one matrix can serve both.
* :class:`MultiTokenPredictionHead` — the simple MTP head: one extra projection per depth ``k``.
* :class:`CombinedLMHead` — main head plus (in training) the MTP head, the shape a trainer calls.

The faithful DeepSeek-V3 MTP module, which shares the main head instead of adding projections,
is :class:`aptt_edu.heads.deepseek_mtp.DeepSeekMTP`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu._checks import check_hidden, check_positive_int, check_room_for_depth

__all__ = ["CombinedLMHead", "LanguageModelingHead", "MultiTokenPredictionHead"]


class LanguageModelingHead(nn.Module):
    r"""Linear unembedding :math:`z_t = W h_t + b` with optional weight tying.

    ``weight`` has the shape of ``nn.Embedding(V, d).weight``, ``(V, d)``, so
    :meth:`tie_embedding_weights` can make it *the same* :class:`~torch.nn.Parameter` as the input
    embedding's. After tying, both uses add their gradients into one tensor, the model's
    ``parameters()`` yields it once (so parameter counts count it once), and ``state_dict()`` holds
    it under both names; loading that state dict into a freshly built, tied model restores the tie's
    single tensor. A tie saves :math:`V \cdot d` parameters — e.g. 38.6 M of GPT-2 small's 124 M.

    Args:
        d_model: :math:`d`, the width of the hidden states.
        vocab_size: :math:`V`.
        bias: Add a learned per-token bias :math:`b` (most LLMs have none).
        tie_weights: Records the intent to tie. The owner (the model, which owns the embedding) must
            call :meth:`tie_embedding_weights`; a forward pass before that warns once.
    """

    def __init__(
        self, d_model: int, vocab_size: int, bias: bool = False, tie_weights: bool = False
    ) -> None:
        super().__init__()
        check_positive_int("d_model", d_model)
        check_positive_int("vocab_size", vocab_size)
        self.d_model = d_model
        self.vocab_size = vocab_size
        self.tie_weights = tie_weights
        # (V, d), initialised like nn.Linear(d, V): U(-1/sqrt(d), 1/sqrt(d))
        bound = 1.0 / math.sqrt(d_model)
        self.weight = nn.Parameter(torch.empty(vocab_size, d_model).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(vocab_size)) if bias else None
        self._warned_untied = False

    @property
    def is_tied(self) -> bool:
        """Whether the weight *is* (right now) the weight of the embedding it was tied to.

        A check of identity, not a flag: re-materialising parameters (``to_empty()`` after building
        on the ``meta`` device, or a cast with
        ``torch.__future__.set_overwrite_module_params_on_conversion(True)``) gives the head and the
        embedding two separate new Parameters; ``is_tied`` is then False and :meth:`retie` ties
        them again.
        """
        embedding = self.__dict__.get("_tied_embedding")
        return embedding is not None and self.weight is embedding.weight

    def retie(self) -> None:
        """Ties the weight again to the embedding of the last :meth:`tie_embedding_weights`.

        Call it after ``model.to_empty(device=...)`` (meta-device init) and before initialising or
        loading weights — like Hugging Face's ``model.tie_weights()``.

        Raises:
            RuntimeError: :meth:`tie_embedding_weights` was never called.
        """
        embedding = self.__dict__.get("_tied_embedding")
        if embedding is None:
            raise RuntimeError("retie(): call tie_embedding_weights(embedding) first")
        self.tie_embedding_weights(embedding)

    def tie_embedding_weights(self, embedding: nn.Embedding) -> None:
        """Makes ``self.weight`` the very same ``nn.Parameter`` as ``embedding.weight``.

        Args:
            embedding: The model's input embedding, ``nn.Embedding(vocab_size, d_model)``.

        Raises:
            TypeError: ``embedding`` is not an ``nn.Embedding``.
            ValueError: Its weight is not ``(vocab_size, d_model)``.
        """
        if not isinstance(embedding, nn.Embedding):
            raise TypeError(f"embedding must be an nn.Embedding, got {type(embedding).__name__}")
        expected = (self.vocab_size, self.d_model)
        if tuple(embedding.weight.shape) != expected:
            raise ValueError(
                f"cannot tie: embedding.weight has shape {tuple(embedding.weight.shape)}, the head "
                f"needs (vocab_size, d_model) = {expected}"
            )
        # Not a copy: one Parameter object, registered under two names.
        self.weight = cast(nn.Parameter, embedding.weight)
        # Remembered outside nn.Module's registries (not a submodule, not in state_dict); a plain
        # reference, so deepcopy/pickle carry it over to the copy's own embedding.
        self.__dict__["_tied_embedding"] = embedding

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores every vocabulary entry at every position.

        Args:
            hidden: ``(B, T, d_model)`` final hidden states.

        Returns:
            ``(B, T, V)`` logits :math:`h W^\\top + b`.
        """
        check_hidden("hidden", hidden, self.d_model)
        if self.tie_weights and not self.is_tied and not self._warned_untied:
            self._warned_untied = True
            warnings.warn(
                "LanguageModelingHead(tie_weights=True) is used before tie_embedding_weights() was "
                "called; its weight is still its own.",
                stacklevel=2,
            )
        return F.linear(hidden, self.weight, self.bias)  # (B, T, V)

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, vocab_size={self.vocab_size}, "
            f"bias={self.bias is not None}, tied={self.is_tied}"
        )


class MultiTokenPredictionHead(nn.Module):
    r"""The simple MTP head: for each depth ``k = 1..D`` its own ``(V, d)`` projection.

    ``mtp_head([h_1, …, h_D])`` returns ``[z_1, …, z_D]`` with ``z_k = h_k W_k^\top``; ``h_k`` has
    shape ``(B, T-k, d)``, one position shorter per depth because the last ``k`` positions have no
    token ``k`` steps ahead. Each depth costs :math:`V \cdot d` extra parameters — the cost the
    DeepSeek-V3 module avoids by *sharing* the main head (see :mod:`aptt_edu.heads.deepseek_mtp`).

    Args:
        d_model: :math:`d`.
        vocab_size: :math:`V`.
        mtp_depth: :math:`D`.
        bias: Give each projection a bias.
    """

    def __init__(self, d_model: int, vocab_size: int, mtp_depth: int = 1, bias: bool = False):
        super().__init__()
        check_positive_int("mtp_depth", mtp_depth)
        self.mtp_depth = mtp_depth
        self.heads = nn.ModuleList(
            LanguageModelingHead(d_model, vocab_size, bias=bias) for _ in range(mtp_depth)
        )

    def forward(self, mtp_hidden: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Projects each depth's hidden states to logits.

        Args:
            mtp_hidden: ``D`` tensors, ``mtp_hidden[k-1]`` of shape ``(B, T-k, d)``.

        Returns:
            ``D`` logits tensors, ``(B, T-k, V)`` each.

        Raises:
            TypeError: ``mtp_hidden`` is not a list/tuple of tensors.
            ValueError: Not ``D`` tensors, or lengths that are not ``T-1, T-2, …``.
        """
        if isinstance(mtp_hidden, torch.Tensor) or not isinstance(mtp_hidden, Sequence):
            raise TypeError(
                f"mtp_hidden must be a list/tuple of {self.mtp_depth} tensors, "
                f"got {type(mtp_hidden).__name__}"
            )
        if len(mtp_hidden) != self.mtp_depth:
            raise ValueError(
                f"mtp_hidden must hold mtp_depth={self.mtp_depth} tensors, got {len(mtp_hidden)} "
                f"with shapes {[tuple(h.shape) for h in mtp_hidden]}"
            )
        d_model = cast(LanguageModelingHead, self.heads[0]).d_model
        check_hidden("mtp_hidden[0]", mtp_hidden[0], d_model)  # before reading its shape below
        T = mtp_hidden[0].shape[1] + 1  # inferred from depth 1, which has T-1 positions
        logits = []
        for k, (head, h_k) in enumerate(zip(self.heads, mtp_hidden, strict=True), start=1):
            check_hidden(f"mtp_hidden[{k - 1}]", h_k, cast(LanguageModelingHead, head).d_model)
            if h_k.shape[1] != T - k:
                raise ValueError(
                    f"mtp_hidden[{k - 1}] (depth k={k}) must have length T-k = {T - k}, "
                    f"got shape {tuple(h_k.shape)}"
                )
            logits.append(head(h_k))  # (B, T-k, V)
        return logits


class CombinedLMHead(nn.Module):
    r"""Main head plus the simple MTP head, switched by training/eval mode.

    * training mode with ``use_mtp``: returns ``(main_logits, mtp_logits)``; ``mtp_logits[k-1]`` is
      ``(B, T-k, V)`` and plugs straight into
      :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss`.
    * eval mode, or ``use_mtp=False``: returns ``(main_logits, None)`` and does not compute MTP —
      MTP is a training signal; at inference it is dropped (or used for speculative decoding).

    When no ``mtp_hidden`` is given it uses ``[main_hidden[:, :-k] for k in 1..D]``: the same final
    hidden state feeds every depth, and each depth has only its own output matrix — the simplest
    form. (Gloeckle et al. 2024, arXiv:2404.19737, §2, give each head one Transformer layer on the
    shared trunk; DeepSeek-V3 computes a fresh hidden state per depth with its own block, see
    :class:`~aptt_edu.heads.deepseek_mtp.DeepSeekMTP`.)

    Args:
        d_model: :math:`d`.
        vocab_size: :math:`V`.
        use_mtp: Build the MTP head at all.
        mtp_depth: :math:`D`.
        tie_weights: Intent to tie the *main* head to the input embedding; the model calls
            ``head.lm_head.tie_embedding_weights(embedding)``. The MTP projections stay untied.
        bias: Biases on all projections.
    """

    def __init__(
        self,
        d_model: int,
        vocab_size: int,
        use_mtp: bool = True,
        mtp_depth: int = 1,
        tie_weights: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.lm_head = LanguageModelingHead(d_model, vocab_size, bias=bias, tie_weights=tie_weights)
        self.mtp_head = (
            MultiTokenPredictionHead(d_model, vocab_size, mtp_depth, bias=bias) if use_mtp else None
        )
        self.use_mtp = use_mtp
        self.mtp_depth = mtp_depth

    def forward(
        self,
        main_hidden: torch.Tensor,
        mtp_hidden: Sequence[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Computes main logits and, in training, the MTP logits.

        Args:
            main_hidden: ``(B, T, d)`` final hidden states of the trunk.
            mtp_hidden: Optional ``D`` tensors ``(B, T-k, d)``; derived from ``main_hidden`` if
                ``None``.

        Returns:
            ``(main_logits (B, T, V), mtp_logits)`` where ``mtp_logits`` is a list of ``(B, T-k, V)``
            tensors in training mode with MTP enabled, else ``None``.

        Raises:
            ValueError: ``T <= mtp_depth`` (no position has a target ``D`` steps ahead).
        """
        main_logits = self.lm_head(main_hidden)  # (B, T, V)
        if self.mtp_head is None or not self.training:
            return main_logits, None
        if mtp_hidden is None:
            check_room_for_depth("main_hidden", main_hidden, self.mtp_depth)
            mtp_hidden = [main_hidden[:, :-k] for k in range(1, self.mtp_depth + 1)]  # (B, T-k, d)
        return main_logits, self.mtp_head(mtp_hidden)
