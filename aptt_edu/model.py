r"""A tiny decoder-only Transformer whose output side is the library's heads.

The trunk is GPT-2/Llama-shaped and deliberately plain: token and position embeddings, ``n_layer``
pre-norm :class:`~aptt_edu.layers.Block` s (causal SDPA attention + MLP), a final RMSNorm. The
interesting part is the *output side*, which is exactly what the package teaches:

* the main head is :class:`~aptt_edu.heads.language_modeling.CombinedLMHead`, optionally **tied** to
  the input embedding (``head.lm_head.tie_embedding_weights(tok_emb)``, Press & Wolf 2017);
* multi-token prediction comes in two variants (``GPTConfig.mtp``):

  - ``"simple"`` — ``CombinedLMHead``'s own MTP head: depth :math:`k` projects the same final
    hidden state :math:`h_i` with its own ``(V, d)`` matrix to guess :math:`t_{i+k+1}`;
  - ``"deepseek"`` — :class:`~aptt_edu.heads.deepseek_mtp.DeepSeekMTP` (DeepSeek-V3 §2.2, Eq. 21–23):
    one extra Transformer block per depth that also sees the embedding of :math:`t_{i+k}`, sharing
    this model's embedding and output head, which are passed in at call time.

``forward`` returns ``(main_logits, mtp_logits)`` — ``mtp_logits`` a list of ``(B, T-k, V)`` tensors
in training mode, ``None`` in eval mode — which is what
:class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss` takes. Label smoothing is a
property of the *loss*, not of the model, so it is not configured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu.heads.deepseek_mtp import DeepSeekMTP, MTPModule
from aptt_edu.heads.language_modeling import CombinedLMHead
from aptt_edu.layers import Block, RMSNorm

__all__ = ["GPT", "MTP_VARIANTS", "GPTConfig", "MTPVariant"]

MTPVariant = Literal["none", "simple", "deepseek"]
MTP_VARIANTS: tuple[MTPVariant, ...] = ("none", "simple", "deepseek")


@dataclass
class GPTConfig:
    """Size and output side of :class:`GPT`."""

    vocab_size: int = 16  # V, number of token ids
    block_size: int = 32  # longest sequence T the position embedding covers
    n_layer: int = 1  # number of pre-norm Transformer blocks in the trunk
    n_head: int = 2  # attention heads per block; must divide d_model
    d_model: int = 64  # d, width of the residual stream
    dropout: float = 0.0  # dropout in attention and MLP (0: the toy data cannot be overfitted)
    tie_weights: bool = False  # share one (V, d) matrix between input embedding and main head
    mtp: MTPVariant = "none"  # multi-token prediction: "none", "simple" head or "deepseek" module
    mtp_depth: int = 1  # D, extra future tokens predicted in training (ignored when mtp="none")


class GPT(nn.Module):
    """Decoder-only Transformer with the library's output heads.

    Args:
        config: Sizes and output-side options, see :class:`GPTConfig`.

    Example:
        >>> model = GPT(GPTConfig(vocab_size=10, block_size=8, mtp="simple"))
        >>> main, mtp = model(torch.randint(0, 10, (2, 8)))
        >>> tuple(main.shape), [tuple(z.shape) for z in mtp]
        ((2, 8, 10), [(2, 7, 10)])
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.mtp not in MTP_VARIANTS:
            raise ValueError(f"mtp must be one of {MTP_VARIANTS}, got {config.mtp!r}")
        self.config = config
        d, V = config.d_model, config.vocab_size
        self.tok_emb = nn.Embedding(V, d)  # Emb, shared with the DeepSeek MTP module
        self.pos_emb = nn.Embedding(config.block_size, d)  # learned absolute positions
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(d, config.n_head, config.dropout) for _ in range(config.n_layer)
        )
        self.norm = RMSNorm(d)  # final norm before the main head
        self.head = CombinedLMHead(
            d,
            V,
            use_mtp=config.mtp == "simple",
            mtp_depth=config.mtp_depth,
            tie_weights=config.tie_weights,
        )
        self.mtp = (
            DeepSeekMTP(d, config.n_head, config.mtp_depth, config.dropout)
            if config.mtp == "deepseek"
            else None
        )
        self._init_weights()
        if config.tie_weights:
            # After init: the head's weight *becomes* the embedding's Parameter (one tensor).
            self.head.lm_head.tie_embedding_weights(self.tok_emb)

    def tie_weights(self) -> None:
        """Ties the main head to the input embedding again (no-op without ``tie_weights``).

        Needed after re-materialising parameters, e.g. a model built under
        ``torch.device("meta")`` and moved with ``to_empty(device=...)``: that gives the embedding
        and the head two separate new tensors (``model.head.lm_head.is_tied`` then says False).
        Call it before initialising or loading weights, like Hugging Face's ``tie_weights()``.
        """
        if self.config.tie_weights:
            self.head.lm_head.tie_embedding_weights(self.tok_emb)

    def _init_weights(self) -> None:
        r"""GPT-2-style init: every matrix ~ N(0, 0.02²), norm gains stay 1.

        GPT-2 additionally scales the residual projections by :math:`1/\sqrt{2L}` (Radford et al.
        2019, §2.3); not done here, where the trunk has one or two blocks.

        The same scale for embedding and head, so tying starts from a sensible point (PyTorch's
        default N(0, 1) embedding would give logits of size ~sqrt(d) when used as the head).
        """
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, mean=0.0, std=0.02)

    def num_parameters(self, include_mtp: bool = True) -> int:
        """Trainable parameters, a tied matrix counted once.

        Args:
            include_mtp: Count the MTP head/module, which is used only in training.
        """
        mtp_params: set[int] = set()
        if not include_mtp:
            for part in (self.head.mtp_head, self.mtp):
                if part is not None:
                    mtp_params |= {id(p) for p in part.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in mtp_params)

    def trunk(self, idx: torch.Tensor) -> torch.Tensor:
        """Embeddings and blocks: token ids ``(B, T)`` → hidden states ``(B, T, d)`` (not normed)."""
        if idx.shape[1] > self.config.block_size:
            raise ValueError(
                f"sequence length {idx.shape[1]} exceeds block_size={self.config.block_size}"
            )
        pos = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        x: torch.Tensor = self.drop(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, d)
        for block in self.blocks:
            x = block(x)  # (B, T, d)
        return x  # (B, T, d)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Computes the main logits and, in training mode with MTP, the MTP logits.

        Args:
            idx: ``(B, T)`` token ids, ``T <= block_size``.

        Returns:
            ``(main_logits, mtp_logits)``: ``(B, T, V)`` and, in training mode with ``mtp`` not
            ``"none"``, a list of ``D`` tensors ``(B, T-k, V)`` for depth ``k = 1..D``; else ``None``.
        """
        h = self.norm(self.trunk(idx))  # (B, T, d), the tensor every head reads
        # CombinedLMHead: main head, plus the simple MTP head when mtp == "simple" and training
        main_logits, mtp_logits = self.head(h)  # (B, T, V), [(B, T-k, V)] or None
        if self.mtp is not None and self.training:
            # DeepSeek-V3 §2.2: the chain of MTP modules starts from h^0 after the final norm (as
            # Megatron-LM and vLLM feed DeepSeek's MTP layer) and shares our embedding and output
            # head — passed in, not copied.
            mtp_logits = self.mtp(h, idx, self.tok_emb, self.head.lm_head)  # [(B, T-k, V)]
        return main_logits, mtp_logits

    @torch.no_grad()
    def draft_tokens(self, h: torch.Tensor, ids: torch.Tensor) -> list[int]:
        """Greedy MTP drafts after the last position, in any mode (speculative decoding).

        Args:
            h: ``(1, P, d)`` trunk hidden states of the first ``P`` positions.
            ids: ``(1, P + 1)`` ids: those positions and the main model's token after them.

        Returns:
            ``D`` draft ids: depth ``k``'s guess of the token ``k`` steps after ``ids[:, -1]``.
        """
        drafts: list[int] = []
        h = self.norm(h)  # (1, P, d), the tensor the heads read in forward
        if self.head.mtp_head is not None:  # simple head: depth k reads the same h_P
            for head in self.head.mtp_head.heads:
                drafts.append(int(head(h[:, -1:]).argmax()))
        elif self.mtp is not None:  # DeepSeek chain: depth k reads h^{k-1} and t_{i+k}
            P = h.shape[1]
            for k, module in enumerate(cast(list[MTPModule], self.mtp.depths), start=1):
                emb = self.tok_emb(ids[:, k : k + P])  # (1, P, d), last = newest token/draft
                h = module.shared_head.norm(module(h, emb))  # (1, P, d), normed as in forward
                tok = int(self.head.lm_head(h[:, -1:]).argmax())
                drafts.append(tok)
                ids = torch.cat([ids, ids.new_tensor([[tok]])], dim=1)
        return drafts

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        speculative: bool = False,
    ) -> torch.Tensor:
        r"""Extends each row of ``idx`` by ``max_new_tokens`` tokens, one at a time.

        Only the main head is used (MTP is a training signal). The model is put in eval mode for
        the call and restored afterwards.

        Args:
            idx: ``(B, T0)`` prompt token ids (``T0 >= 1``).
            max_new_tokens: Tokens to append.
            temperature: ``0`` picks the most likely token (greedy); otherwise samples from
                :math:`\mathrm{softmax}(z / \tau)`: below 1 sharper, above 1 flatter.
            generator: Seeded randomness for sampling, for reproducible output.
            speculative: Greedy self-speculative decoding with the MTP drafts
                (:func:`aptt_edu.speculative.generate_speculative`): the same ids as
                ``temperature=0``; its counters are stored in ``self.last_speculative_stats``.

        Returns:
            ``(B, T0 + max_new_tokens)`` token ids.
        """
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if speculative:
            if temperature != 0:
                raise ValueError(
                    f"speculative=True is greedy: temperature must be 0, got {temperature}"
                )
            from aptt_edu.speculative import generate_speculative

            out, self.last_speculative_stats = generate_speculative(self, idx, max_new_tokens)
            return out
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size :]  # (B, <= block_size)
            logits, _ = self(context)  # (B, T, V)
            last = logits[:, -1, :]  # (B, V)
            if temperature == 0:
                next_id = last.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                probs = F.softmax(last / temperature, dim=-1)  # (B, V)
                next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)  # (B, T + 1)
        self.train(was_training)
        return idx
