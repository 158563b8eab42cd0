r"""The Transformer pieces the tiny model and the DeepSeek-V3 MTP module are built from.

Pre-norm decoder block as in GPT-2/Llama: :math:`x \leftarrow x + \mathrm{Attn}(\mathrm{Norm}(x))`,
:math:`x \leftarrow x + \mathrm{MLP}(\mathrm{Norm}(x))`, with causal
:func:`torch.nn.functional.scaled_dot_product_attention`. Deliberately small and plain: these are
not the subject of the package, the heads and losses are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "Block", "CausalSelfAttention", "RMSNorm"]


class RMSNorm(nn.Module):
    r"""Root-mean-square norm (Zhang & Sennrich, 2019): :math:`x / \sqrt{\mathrm{mean}(x^2) + \epsilon}\cdot g`.

    DeepSeek-V3 uses RMSNorm throughout, including on both inputs of each MTP module (Eq. 21).
    Written out instead of ``nn.RMSNorm`` so that it works on torch 2.3 and can be read.

    Args:
        dim: Size of the last dimension.
        eps: Added under the square root for stability.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalises ``x`` (…, dim) over its last dimension, computing in fp32."""
        x32 = x.float()
        rms_inv = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x32 * rms_inv).type_as(x) * self.weight


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position ``t`` sees only positions ``<= t``.

    Args:
        d_model: Width ``d``.
        n_heads: Number of heads; must divide ``d_model``.
        dropout: Attention dropout probability (training only).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} must divide d_model={d_model}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` → ``(B, T, d)``."""
        B, T, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)  # 3 × (B, T, d)
        # (B, T, d) -> (B, n_heads, T, d / n_heads)
        q, k, v = (z.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )  # (B, n_heads, T, d / n_heads)
        out: torch.Tensor = self.proj(y.transpose(1, 2).reshape(B, T, d))  # (B, T, d)
        return out


class MLP(nn.Module):
    """Position-wise feed-forward network ``d → 4d → d`` with GELU."""

    def __init__(self, d_model: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model, bias=False)
        self.proj = nn.Linear(4 * d_model, d_model, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` → ``(B, T, d)``."""
        out: torch.Tensor = self.drop(self.proj(F.gelu(self.fc(x))))
        return out


class Block(nn.Module):
    """One pre-norm decoder block: attention and MLP, each inside a residual connection.

    Args:
        d_model: Width ``d``.
        n_heads: Attention heads.
        dropout: Dropout probability.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_attn = RMSNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout)
        self.norm_mlp = RMSNorm(d_model)
        self.mlp = MLP(d_model, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` → ``(B, T, d)``."""
        x = x + self.attn(self.norm_attn(x))
        out: torch.Tensor = x + self.mlp(self.norm_mlp(x))
        return out
