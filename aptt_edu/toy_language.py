r"""The toy language: a random order-2 Markov chain whose best possible loss is known exactly.

**Why a toy language?** On real text nobody knows how low the cross-entropy *could* go, so a loss
curve cannot say whether a model is nearly perfect or far from it. :class:`ToyLanguage` is a random
order-2 Markov chain over a handful of "letters" (16 by default, shown as a–p): the next token
depends on the previous two only, through a table :math:`P(x \mid a, b)` the package itself drew.
For such a source we can compute the **entropy rate** :math:`H` (nats/token) exactly — the lowest
expected cross-entropy *any* model can reach, since the true :math:`P` is the best possible
predictor — and draw it as a line under the loss curves (:mod:`aptt_edu.training`).

**The chain.** A *context* is the pair :math:`c = (a, b)` of the last two tokens. Each context lets
:math:`k` (``support``) random tokens follow with random weights, plus a little probability
:math:`\varepsilon` spread over the whole vocabulary:

.. math::
    P(x \mid a, b) = (1 - \varepsilon)\, w_{ab}(x) + \frac{\varepsilon}{V},
    \qquad w_{ab} \sim \mathrm{Dirichlet}(1, \dots, 1) \text{ on } k \text{ random tokens.}

The :math:`\varepsilon` term makes every transition possible, so from any context :math:`(a, b)` any
other context :math:`(c, d)` is reached in exactly two steps with positive probability. The chain
over contexts is therefore *irreducible* and *aperiodic*, and has one stationary distribution
:math:`\pi` over contexts, the solution of

.. math::  \pi(b, x) = \sum_a \pi(a, b)\, P(x \mid a, b),

found by power iteration (:meth:`ToyLanguage.stationary`). Then

.. math::
    H = H(t_{i+1} \mid t_{\le i}) = \sum_{a, b} \pi(a, b)\, H\big(P(\cdot \mid a, b)\big),
    \qquad H(p) = -\sum_x p(x) \log p(x),

because the past beyond the last two tokens adds no information (Cover & Thomas, *Elements of
Information Theory*, 2nd ed. 2006, §4.2, the entropy rate of a stationary Markov chain). Predicting
**two** tokens ahead from the same past — the depth-1 target of the simple MTP head — must average
over the unseen token :math:`x` in between:

.. math::
    H_2 = H(t_{i+2} \mid t_{\le i}) = \sum_{a, b} \pi(a, b)\,
          H\Big(\sum_x P(x \mid a, b)\, P(\cdot \mid b, x)\Big) \;\ge\; H .

(DeepSeek-V3's MTP module is *given* :math:`t_{i+1}` as input, so its depth-1 floor is :math:`H`
again, not :math:`H_2`.)

**Stationary start, so the floor is exact.** Every sequence starts with its first context drawn from
:math:`\pi` (no burn-in needed): every later context is then distributed as :math:`\pi` as well, and
each prediction from a full two-token context has expected loss exactly :math:`H` for the true
:math:`P`. The very first prediction (token 1 from token 0 alone) has only one token of context, so
:class:`~aptt_edu.data.LMData` marks its label ``ignore_index`` (``context_warmup = 1``). One caveat: the simple
MTP head predicts token 2 at position 0 from token 0 alone, so its *mean* depth-1 loss over a row's
``T - 2`` depth-1 targets can sit slightly above :math:`H_2` (by :math:`1/(T-2)` of the gap between
:math:`H(t_2 \mid t_0)` and :math:`H_2`). The DeepSeek module sees :math:`t_0` and :math:`t_1` there.

The generated rows become training data in :func:`aptt_edu.data.toy_data`.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

import torch

__all__ = ["ALPHABET", "ToyLanguage"]

# The toy language's tokens are shown as these letters (so V <= 52).
ALPHABET = string.ascii_lowercase + string.ascii_uppercase


def _entropy(p: torch.Tensor) -> torch.Tensor:
    r"""$H(p) = -\sum_x p(x) \log p(x)$ over the last dimension, with $0 \log 0 = 0$."""
    plogp: torch.Tensor = torch.special.xlogy(p, p)  # (..., V)
    return -plogp.sum(dim=-1)


class ToyLanguage:
    r"""A seeded random order-2 Markov chain with an exactly known entropy rate.

    Args:
        vocab_size: :math:`V`, the number of tokens (2 to 52; shown as the letters a–z, A–Z).
        support: :math:`k`, how many tokens carry the bulk of each context's next-token mass.
        epsilon: :math:`\varepsilon`, mass spread uniformly over all tokens (> 0 keeps the chain
            irreducible and aperiodic, see the module docstring).
        seed: Seed of the transition table; the same seed gives the same language.

    Attributes:
        transition: ``(V, V, V)`` float64 tensor, ``transition[a, b, x]`` = :math:`P(x \mid a, b)`.
        stationary_dist: ``(V, V)`` :math:`\pi(a, b)`, the stationary distribution over contexts.
        entropy_rate: :math:`H` in nats/token, the best achievable next-token loss.
        mtp_entropy: :math:`H_2 = H(t_{i+2} \mid t_{\le i})`, the floor of a depth-1 MTP head that
            does not see :math:`t_{i+1}`.

    Example:
        >>> lang = ToyLanguage(vocab_size=8, support=2, seed=0)
        >>> lang.entropy_rate < lang.mtp_entropy < math.log(8)
        True
    """

    def __init__(
        self, vocab_size: int = 16, support: int = 3, epsilon: float = 0.02, seed: int = 0
    ) -> None:
        if not 2 <= vocab_size <= len(ALPHABET):
            raise ValueError(f"vocab_size must be in [2, {len(ALPHABET)}], got {vocab_size}")
        if not 1 <= support <= vocab_size:
            raise ValueError(f"support must be in [1, vocab_size={vocab_size}], got {support}")
        if not 0.0 < epsilon <= 1.0:
            raise ValueError(f"epsilon must be in (0, 1] to keep the chain ergodic, got {epsilon}")
        self.vocab_size = vocab_size
        self.support = support
        self.epsilon = epsilon
        self.seed = seed
        self.transition = self._draw_transition()  # (V, V, V)
        self.stationary_dist = self.stationary()  # (V, V)
        self.entropy_rate = float((self.stationary_dist * _entropy(self.transition)).sum())
        self.mtp_entropy = float((self.stationary_dist * _entropy(self.two_step())).sum())

    def _draw_transition(self) -> torch.Tensor:
        """Draws :math:`P(x \\mid a, b)` as described in the module docstring."""
        V, k = self.vocab_size, self.support
        g = torch.Generator().manual_seed(self.seed)
        # k distinct random successors per context: the first k of a random permutation
        succ = torch.rand(V, V, V, generator=g, dtype=torch.float64).argsort(dim=-1)[..., :k]
        # Dirichlet(1, ..., 1) weights = normalised Exp(1) draws, Exp(1) = -log U
        w = -torch.log1p(-torch.rand(V, V, k, generator=g, dtype=torch.float64))  # (V, V, k)
        sparse = torch.zeros(V, V, V, dtype=torch.float64).scatter_(-1, succ, w / w.sum(-1, True))
        # $P(x \mid a, b) = (1-\varepsilon)\, w_{ab}(x) + \varepsilon / V$
        return (1.0 - self.epsilon) * sparse + self.epsilon / V  # (V, V, V)

    def stationary(self, tol: float = 1e-15, max_iter: int = 100_000) -> torch.Tensor:
        r"""Solves :math:`\pi(b, x) = \sum_a \pi(a, b) P(x \mid a, b)` by power iteration.

        Starts from the uniform distribution over the :math:`V^2` contexts and applies the chain
        until no entry moves by more than ``tol``. Converges because the chain is irreducible and
        aperiodic (Perron–Frobenius).

        Returns:
            ``(V, V)`` float64 tensor :math:`\pi(a, b)` summing to 1.
        """
        V = self.vocab_size
        pi = torch.full((V, V), 1.0 / V**2, dtype=torch.float64)  # (V, V)
        for _ in range(max_iter):
            # $\pi'(b, x) = \sum_a \pi(a, b)\, P(x \mid a, b)$
            new = torch.einsum("ab,abx->bx", pi, self.transition)  # (V, V)
            if float((new - pi).abs().max()) < tol:
                return new / new.sum()
            pi = new
        raise RuntimeError(f"power iteration did not converge in {max_iter} steps")

    def two_step(self) -> torch.Tensor:
        r"""``(V, V, V)`` table :math:`P(t_{i+2} = y \mid a, b) = \sum_x P(x \mid a, b)\,P(y \mid b, x)`."""
        return torch.einsum("abx,bxy->aby", self.transition, self.transition)

    def sample(self, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """Draws ``n`` independent sequences, each starting from the stationary distribution.

        The first two tokens are one context drawn from :math:`\\pi`; each further token is drawn
        from :math:`P(\\cdot \\mid \\text{last two})`. All ``n`` sequences advance together, so the
        Python loop runs ``length`` times, not ``n * length``.

        Args:
            n: Number of sequences.
            length: Tokens per sequence (>= 2).
            generator: Source of randomness (different seeds give the train/validation splits).

        Returns:
            ``(n, length)`` int64 token ids.
        """
        if length < 2:
            raise ValueError(f"length must be >= 2 (one context), got {length}")
        V = self.vocab_size
        out = torch.empty(n, length, dtype=torch.int64)
        ctx = torch.multinomial(self.stationary_dist.reshape(-1), n, True, generator=generator)
        out[:, 0], out[:, 1] = ctx // V, ctx % V  # context (a, b) ~ pi
        for t in range(2, length):
            probs = self.transition[out[:, t - 2], out[:, t - 1]]  # (n, V)
            out[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return out

    def nll(self, ids: torch.Tensor) -> torch.Tensor:
        r"""The true chain's loss :math:`-\log P(t_i \mid t_{i-2}, t_{i-1})` for ``i >= 2``.

        Its mean over a data set is what a perfect model would score there (close to, but because
        the set is finite not exactly, :math:`H`).

        Args:
            ids: ``(B, T)`` token ids, ``T >= 3``.

        Returns:
            ``(B, T-2)`` float64 negative log-likelihoods.
        """
        p = self.transition[ids[:, :-2], ids[:, 1:-1], ids[:, 2:]]  # (B, T-2)
        return -torch.log(p)

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Shows token ids as letters (``0 → 'a'``)."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return "".join(ALPHABET[i] for i in values)

    def __repr__(self) -> str:
        return (
            f"ToyLanguage(vocab_size={self.vocab_size}, support={self.support}, "
            f"epsilon={self.epsilon}, seed={self.seed}; H={self.entropy_rate:.4f}, "
            f"H2={self.mtp_entropy:.4f} nats)"
        )
