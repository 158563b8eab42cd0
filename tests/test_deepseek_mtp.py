r"""`DeepSeekMTP` (DeepSeek-V3 §2.2, Eq. 21–23): shapes, sharing, the causal chain, causality.

Index convention (0-based, shifted labels): depth ``k`` at position ``i`` embeds ``input_ids[:, i+k]``
and predicts ``labels[:, i+k] = input_ids[:, i+k+1]``. Built on a causal trunk, its logits at
position ``i`` may therefore depend on ``input_ids[:, :i+k+1]`` and on nothing later — the causality
test checks both halves of that sentence, position by position.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from aptt_edu.heads.deepseek_mtp import DeepSeekMTP
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.layers import Block
from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss

# V = 37 is chosen to differ from every other size in the module (d, 2d, 3d, 4d, 14d...), so that
# "no parameter has V in its shape" can only hold if there really is no vocabulary-sized matrix.
B, T, D_MODEL, N_HEADS, V = 2, 7, 16, 2, 37


class Trunk(nn.Module):
    """The main model: embedding -> one causal block -> head. Owns the shared modules."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(V, D_MODEL)
        self.block = Block(D_MODEL, N_HEADS)
        self.head = LanguageModelingHead(D_MODEL, V)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.block(self.embedding(ids))  # (B, T, d), position i sees ids[:, :i+1]


def run(trunk: Trunk, mtp: DeepSeekMTP, ids: torch.Tensor) -> list[torch.Tensor]:
    return mtp(trunk(ids), ids, trunk.embedding, trunk.head)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_shapes(depth: int) -> None:
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=depth)
    out = run(trunk, mtp, torch.randint(0, V, (B, T)))
    assert [tuple(z.shape) for z in out] == [(B, T - k, V) for k in range(1, depth + 1)]


@pytest.mark.parametrize("depth", [1, 2])
def test_no_vocabulary_sized_parameters(depth: int) -> None:
    mtp = DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=depth)
    for name, p in mtp.named_parameters():
        assert V not in p.shape, (name, tuple(p.shape))
    # per depth: M_k (d x 2d) + three RMSNorm gains + one block (qkv 3d², out d², MLP 8d², 2 norms)
    d = D_MODEL
    assert sum(p.numel() for p in mtp.parameters()) == depth * (
        2 * d * d + 3 * d + 12 * d * d + 2 * d
    )
    assert not any(isinstance(m, (nn.Embedding, LanguageModelingHead)) for m in mtp.modules())


def test_gradients_reach_the_shared_embedding_and_head() -> None:
    """With the trunk's output held fixed, the MTP losses alone must still train the shared
    embedding — exactly at the rows of the tokens it embeds, ``input_ids[:, 1:]`` — and the head."""
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=2)
    ids = torch.randint(1, V, (B, T))
    ids[:, 0] = 0  # token 0 occurs only at position 0, which no depth embeds
    main_hidden = trunk(ids).detach()  # (B, T, d): no gradient path through the trunk
    out = mtp(main_hidden, ids, trunk.embedding, trunk.head)
    labels = torch.randint(0, V, (B, T))
    loss = sum(LanguageModelingLoss(V)(z, labels[:, k:]) for k, z in enumerate(out, start=1))
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    emb_grad, head_grad = trunk.embedding.weight.grad, trunk.head.weight.grad
    assert emb_grad is not None and head_grad is not None
    rows_with_grad = set(torch.nonzero(emb_grad.abs().sum(dim=1)).flatten().tolist())
    assert rows_with_grad == set(ids[:, 1:].unique().tolist())
    assert head_grad.any()
    assert all(p.grad is not None and p.grad.any() for p in mtp.parameters())


def test_state_dict_holds_only_the_mtp_weights() -> None:
    mtp = DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=1)
    keys = set(mtp.state_dict())
    assert keys == {name for name, _ in mtp.named_parameters()}
    assert all(V not in t.shape for t in mtp.state_dict().values())


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_causality_position_by_position(depth: int) -> None:
    """Changing ``input_ids[:, j]`` may change depth-k logits at positions ``i >= j - k`` (position
    ``i`` reads ids up to ``i + k``) and must leave every position ``i < j - k`` bit-for-bit alone.
    Both halves are checked: a module that peeks one token too far fails the first, a module that
    reads one token too few (e.g. embeds ``input_ids[:, k-1:]``) fails the second."""
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=depth)
    ids = torch.randint(0, V, (B, T))
    with torch.no_grad():
        base = run(trunk, mtp, ids)
        for j in range(T):
            changed_ids = ids.clone()
            changed_ids[:, j] = (ids[:, j] + 1) % V
            new = run(trunk, mtp, changed_ids)
            for k in range(1, depth + 1):
                diff = (new[k - 1] - base[k - 1]).abs().amax(dim=(0, 2))  # (T-k,) per position
                first = max(j - k, 0)  # first position allowed to change
                assert (diff[:first] <= 1e-6).all(), (j, k, diff)
                assert (diff[first:] > 1e-4).all(), (j, k, diff)


def test_mtp_itself_never_reads_the_first_token() -> None:
    """With ``main_hidden`` fixed, the MTP modules embed only ``input_ids[:, k:]`` (k >= 1)."""
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=2)
    ids = torch.randint(0, V, (B, T))
    hidden = trunk(ids)
    with torch.no_grad():
        a = mtp(hidden, ids, trunk.embedding, trunk.head)
        ids[:, 0] = (ids[:, 0] + 1) % V
        b = mtp(hidden, ids, trunk.embedding, trunk.head)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_depths_form_a_causal_chain() -> None:
    """Depth 2 starts from depth 1's output (Eq. 21 uses h^{k-1}), and depth 1 ignores depth 2."""
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=2)
    ids = torch.randint(0, V, (B, T))
    with torch.no_grad():
        base = run(trunk, mtp, ids)
        for k_perturbed, k_affected, k_unaffected in [(1, 2, None), (2, None, 1)]:
            other = copy.deepcopy(mtp)
            other.depths[k_perturbed - 1].eh_proj.weight.add_(0.5)
            new = run(trunk, other, ids)
            if k_affected is not None:
                assert (new[k_affected - 1] - base[k_affected - 1]).abs().max() > 1e-3
            if k_unaffected is not None:
                torch.testing.assert_close(new[k_unaffected - 1], base[k_unaffected - 1])


def test_equations_21_to_23_by_hand() -> None:
    """Eq. 21–23 written out with explicit tensor operations (RMSNorm by its formula, the
    projection as a matmul), using only the module's weights."""
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=2)
    with torch.no_grad():
        for p in mtp.parameters():  # RMSNorm gains start at 1; make them matter
            p.add_(0.1 * torch.randn_like(p))
    ids = torch.randint(0, V, (B, T))
    h0 = trunk(ids)  # (B, T, d)

    def rms(x: torch.Tensor, g: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        # $\mathrm{RMSNorm}(x) = x / \sqrt{\mathrm{mean}(x^2) + \epsilon} \cdot g$
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g

    expected, h = [], h0
    for k, m in enumerate(mtp.depths, start=1):
        e = trunk.embedding.weight[ids[:, k:]]  # (B, T-k, d): Emb(t_{i+k})
        # Eq. 21 in the released order, embedding first:
        # $h'^k_i = M_k [\mathrm{RMSNorm}(\mathrm{Emb}(t_{i+k})); \mathrm{RMSNorm}(h^{k-1}_i)]$
        cat = torch.cat([rms(e, m.enorm.weight), rms(h[:, : T - k], m.hnorm.weight)], dim=-1)
        h_prime = cat @ m.eh_proj.weight.T  # (B, T-k, d)
        # Eq. 22, then the depth's own final norm; the normed state feeds depth k+1 and the head
        h = rms(m.block(h_prime), m.shared_head.norm.weight)  # (B, T-k, d)
        # Eq. 23: $P^k = \mathrm{OutHead}(h^k)$
        expected.append(h @ trunk.head.weight.T)  # (B, T-k, V)

    for got, want in zip(run(trunk, mtp, ids), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_plugs_into_the_mtp_loss_and_learns() -> None:
    """End to end with DeepSeek-V3's loss form (λ/D): a few Adam steps on one batch lower every
    term — the MTP gradients flow through the shared head and embedding into the trunk."""
    depth = 2
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=depth)
    loss_fn = MultiTokenPredictionLoss(V, mtp_depth=depth, mtp_lambda=0.3, average_over_depth=True)
    ids = torch.randint(0, V, (4, T + 1))
    inputs, labels = ids[:, :-1], ids[:, 1:]  # (4, T) each
    params = list(trunk.parameters()) + list(mtp.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    history = []
    for _ in range(25):
        hidden = trunk(inputs)  # (4, T, d)
        main_logits = trunk.head(hidden)  # (4, T, V)
        mtp_logits = mtp(hidden, inputs, trunk.embedding, trunk.head)  # [(4, T-k, V)]
        total, parts = loss_fn(main_logits, mtp_logits, labels)
        history.append({name: v.item() for name, v in parts.items()})
        opt.zero_grad()
        total.backward()
        opt.step()
    first, last = history[0], history[-1]
    assert set(first) == {"main_loss", "mtp_loss_1", "mtp_loss_2", "total_loss"}
    expected_total = first["main_loss"] + 0.3 / depth * (first["mtp_loss_1"] + first["mtp_loss_2"])
    assert first["total_loss"] == pytest.approx(expected_total, rel=1e-6)
    for name in first:
        assert last[name] < 0.7 * first[name], (name, first[name], last[name])


def _rms(x: torch.Tensor, g: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g


def test_equals_the_serving_engines_glue() -> None:
    """The glue as Megatron-LM and vLLM write it around DeepSeek's MTP layer, re-implemented from
    their code: ids rolled left with 0-fill over all T positions (Megatron's ``roll_tensor``),
    ``eh_proj(cat([enorm(emb), hnorm(prev)]))``, the block, ``shared_head.norm``, the shared head,
    the normed output carried to the next depth. The valid ``T-k`` positions must agree."""
    trunk, mtp = Trunk(), DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=3)
    with torch.no_grad():
        for p in mtp.parameters():
            p.add_(0.1 * torch.randn_like(p))
        ids = torch.randint(0, V, (B, T))
        h0 = trunk(ids)
        got = mtp(h0, ids, trunk.embedding, trunk.head)
        rolled, prev = ids.clone(), h0
        for k, m in enumerate(mtp.depths, start=1):
            rolled = torch.roll(rolled, -1, dims=1)
            rolled[:, -1] = 0  # roll_tensor's fill
            emb = trunk.embedding(rolled)  # (B, T, d): slot i holds Emb(t_{i+k})
            x = torch.cat([_rms(emb, m.enorm.weight), _rms(prev, m.hnorm.weight)], dim=-1)
            prev = _rms(m.block(x @ m.eh_proj.weight.T), m.shared_head.norm.weight)  # (B, T, d)
            want = prev @ trunk.head.weight.T  # (B, T, V)
            torch.testing.assert_close(got[k - 1], want[:, : T - k], rtol=1e-5, atol=1e-5)


def test_paper_order_is_the_released_order_with_swapped_halves() -> None:
    """Eq. 21 as printed puts h first; the released ``eh_proj`` takes the embedding first. The two
    are one model: ``W_paper = cat([W[:, d:], W[:, :d]], 1)``. Without the swap the results differ,
    so this test also fails if the module's order changes."""
    m = DeepSeekMTP(D_MODEL, N_HEADS, mtp_depth=1).depths[0]
    h, e = torch.randn(B, T, D_MODEL), torch.randn(B, T, D_MODEL)
    d = D_MODEL
    w = m.eh_proj.weight
    w_paper = torch.cat([w[:, d:], w[:, :d]], dim=1)
    with torch.no_grad():
        released = m.eh_proj(torch.cat([m.enorm(e), m.hnorm(h)], dim=-1))
        paper = torch.cat([m.hnorm(h), m.enorm(e)], dim=-1) @ w_paper.T
        torch.testing.assert_close(m(h, e), m.block(released))
        torch.testing.assert_close(paper, released)
        unswapped = torch.cat([m.hnorm(h), m.enorm(e)], dim=-1) @ w.T
        assert (unswapped - released).abs().max() > 1e-2


def test_parameter_names_and_shapes_match_deepseek_v3s_checkpoint() -> None:
    """At DeepSeek-V3's size (``hidden_size`` 7168, config.json), built on the meta device (no
    memory), the norms and the projection carry the names and shapes of ``model.layers.61.*`` in
    the released checkpoint (README_WEIGHTS.md; vLLM's and SGLang's loaders use the same names)."""
    d = 7168
    with torch.device("meta"):
        mtp = DeepSeekMTP(d, n_heads=56, mtp_depth=1)
    shapes = {k: tuple(v.shape) for k, v in mtp.state_dict().items()}
    released = {  # model.layers.61.<name>: shape
        "enorm.weight": (d,),
        "hnorm.weight": (d,),
        "eh_proj.weight": (d, 2 * d),
        "shared_head.norm.weight": (d,),
    }
    for name, shape in released.items():
        assert shapes[f"depths.0.{name}"] == shape, name
    # the rest is TRM_k (DeepSeek's decoder layer has other parts: MLA and MoE)
    parts = {k.split(".")[2] for k in shapes}
    assert parts == {"enorm", "hnorm", "eh_proj", "shared_head", "block"}


def test_gpt_feeds_depth_one_the_normed_hidden_state() -> None:
    """``GPT(mtp="deepseek")`` hands its MTP chain the hidden state after the final RMSNorm, the
    tensor its own head reads (as Megatron-LM and vLLM do): with the final norm's gain changed,
    the pre-norm feed gives other logits."""
    from aptt_edu.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, d_model=D_MODEL, mtp="deepseek", mtp_depth=2))
    assert model.mtp is not None
    with torch.no_grad():
        model.norm.weight.add_(0.5 * torch.randn_like(model.norm.weight))
    idx = torch.randint(0, V, (B, T))
    model.train()
    _, got = model(idx)
    assert got is not None
    with torch.no_grad():
        h = model.trunk(idx)
        post = model.mtp(model.norm(h), idx, model.tok_emb, model.head.lm_head)
        pre = model.mtp(h, idx, model.tok_emb, model.head.lm_head)
    for g, p, q in zip(got, post, pre, strict=True):
        torch.testing.assert_close(g, p, rtol=0, atol=0)
        assert (g - q).abs().max() > 1e-3
