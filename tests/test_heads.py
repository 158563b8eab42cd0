r"""Output heads: the unembedding, weight tying, the simple MTP head and the combined head.

Weight tying (Press & Wolf, 2017) is checked by its consequences, not by a flag: the head's weight
*is* the embedding's Parameter; the tie survives a ``state_dict`` round trip; both uses add their
gradients into one tensor; and the model's parameter count drops by exactly :math:`V \cdot d`.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.func import functional_call

from aptt_edu.heads.language_modeling import (
    CombinedLMHead,
    LanguageModelingHead,
    MultiTokenPredictionHead,
)
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss

B, T, D_MODEL, V = 2, 6, 8, 23


class TinyLM(nn.Module):
    """Embedding -> one linear "trunk" -> head: the smallest model that uses a tie."""

    def __init__(self, tie: bool) -> None:
        super().__init__()
        self.embedding = nn.Embedding(V, D_MODEL)  # weight (V, d)
        self.trunk = nn.Linear(D_MODEL, D_MODEL)
        self.head = LanguageModelingHead(D_MODEL, V, tie_weights=tie)
        if tie:
            self.head.tie_embedding_weights(self.embedding)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.trunk(self.embedding(ids))))  # (B, T, V)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# LanguageModelingHead
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [False, True])
def test_head_is_h_times_w_transposed(bias: bool) -> None:
    head = LanguageModelingHead(D_MODEL, V, bias=bias)
    assert head.weight.shape == (V, D_MODEL)  # the shape of nn.Embedding(V, d).weight
    if bias:
        assert head.bias is not None
        with torch.no_grad():
            head.bias.normal_()
    hidden = torch.randn(B, T, D_MODEL)  # (B, T, d)
    expected = hidden @ head.weight.T  # (B, T, V)
    if head.bias is not None:
        expected = expected + head.bias
    out = head(hidden)
    assert out.shape == (B, T, V)
    torch.testing.assert_close(out, expected)


def test_tie_makes_one_parameter_object() -> None:
    emb = nn.Embedding(V, D_MODEL)
    head = LanguageModelingHead(D_MODEL, V, tie_weights=True)
    assert head.weight is not emb.weight and not head.is_tied
    head.tie_embedding_weights(emb)
    assert head.weight is emb.weight and head.is_tied
    with torch.no_grad():
        emb.weight[3, 0] = 123.0  # a change through one name is seen through the other
    assert head.weight[3, 0].item() == 123.0
    assert "tied=True" in repr(head)


def test_tie_survives_a_state_dict_round_trip() -> None:
    torch.manual_seed(1)
    trained = TinyLM(tie=True)
    state = trained.state_dict()
    assert "embedding.weight" in state and "head.weight" in state  # saved under both names
    torch.manual_seed(2)
    fresh = TinyLM(tie=True)
    assert not torch.equal(fresh.embedding.weight, trained.embedding.weight)
    fresh.load_state_dict(state)
    assert fresh.head.weight is fresh.embedding.weight  # still one object
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=0, atol=0)
    ids = torch.randint(0, V, (B, T))
    torch.testing.assert_close(fresh(ids), trained(ids), rtol=0, atol=0)


def test_tied_gradient_is_the_sum_of_both_uses() -> None:
    """One backward through a tied model gives the shared weight the embedding's gradient *plus*
    the head's gradient, as two separate copies of the same values would receive them."""
    tied = TinyLM(tie=True)
    untied = TinyLM(tie=False)
    untied.load_state_dict(
        tied.state_dict()  # same values, copied into two separate tensors
    )
    assert untied.head.weight is not untied.embedding.weight
    ids = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))

    def loss(model: TinyLM) -> torch.Tensor:
        return nn.functional.cross_entropy(model(ids).reshape(-1, V), targets.reshape(-1))

    torch.testing.assert_close(loss(tied), loss(untied))
    loss(tied).backward()
    loss(untied).backward()
    g_emb, g_head = untied.embedding.weight.grad, untied.head.weight.grad
    assert g_emb is not None and g_head is not None and tied.embedding.weight.grad is not None
    assert g_emb.any() and g_head.any()  # both uses contribute something
    torch.testing.assert_close(tied.embedding.weight.grad, g_emb + g_head)


def test_tied_parameters_are_counted_once() -> None:
    tied, untied = TinyLM(tie=True), TinyLM(tie=False)
    assert n_params(untied) - n_params(tied) == V * D_MODEL
    assert len(list(untied.parameters())) - len(list(tied.parameters())) == 1
    # an optimiser built from parameters() therefore updates the shared tensor once per step
    assert sum(p is tied.embedding.weight for p in tied.parameters()) == 1


def test_untied_use_with_tie_intent_warns_once() -> None:
    head = LanguageModelingHead(D_MODEL, V, tie_weights=True)
    hidden = torch.randn(B, T, D_MODEL)
    with pytest.warns(UserWarning, match="tie_embedding_weights"):
        head(hidden)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        head(hidden)  # a second call stays silent
        LanguageModelingHead(D_MODEL, V, tie_weights=False)(hidden)  # no intent, no warning


def test_gradcheck_head_float64() -> None:
    """The head is plain linear algebra, so float64 gradcheck runs at full precision."""
    head = LanguageModelingHead(4, 5, bias=True).double()
    hidden = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    weight = head.weight.detach().clone().requires_grad_()
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def f(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = functional_call(head, {"weight": w, "bias": b}, (h,))
        return out

    assert torch.autograd.gradcheck(f, (hidden, weight, bias))


# --------------------------------------------------------------------------------------------
# MultiTokenPredictionHead
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 3])
def test_mtp_head_projects_each_depth_with_its_own_matrix(depth: int) -> None:
    mtp = MultiTokenPredictionHead(D_MODEL, V, mtp_depth=depth)
    hidden = [torch.randn(B, T - k, D_MODEL) for k in range(1, depth + 1)]  # (B, T-k, d)
    out = mtp(hidden)
    assert [tuple(z.shape) for z in out] == [(B, T - k, V) for k in range(1, depth + 1)]
    for k in range(1, depth + 1):
        w = mtp.heads[k - 1].weight  # (V, d)
        torch.testing.assert_close(out[k - 1], hidden[k - 1] @ w.T)
    assert n_params(mtp) == depth * V * D_MODEL
    if depth > 1:
        assert not torch.equal(mtp.heads[0].weight, mtp.heads[1].weight)


# --------------------------------------------------------------------------------------------
# CombinedLMHead
# --------------------------------------------------------------------------------------------


def count_calls(module: nn.Module) -> list[int]:
    """Registers a forward hook; the returned one-element list counts the calls."""
    calls = [0]

    def hook(*_: object) -> None:
        calls[0] += 1

    module.register_forward_hook(hook)
    return calls


@pytest.mark.parametrize("depth", [1, 2])
def test_combined_train_mode_returns_main_and_derived_mtp(depth: int) -> None:
    head = CombinedLMHead(D_MODEL, V, mtp_depth=depth, tie_weights=False).train()
    calls = count_calls(head.mtp_head)  # type: ignore[arg-type]
    hidden = torch.randn(B, T, D_MODEL)  # (B, T, d)
    main, mtp = head(hidden)
    assert calls == [1]
    torch.testing.assert_close(main, head.lm_head(hidden))  # (B, T, V)
    assert mtp is not None and len(mtp) == depth
    for k in range(1, depth + 1):
        # mtp_hidden=None -> depth k reads main_hidden[:, :-k], i.e. positions 0 .. T-k-1
        projection = head.mtp_head.heads[k - 1]  # type: ignore[union-attr]
        assert mtp[k - 1].shape == (B, T - k, V)
        torch.testing.assert_close(mtp[k - 1], projection(hidden[:, :-k]))


def test_combined_uses_given_mtp_hidden() -> None:
    head = CombinedLMHead(D_MODEL, V, mtp_depth=2, tie_weights=False).train()
    hidden = torch.randn(B, T, D_MODEL)
    own = [torch.randn(B, T - k, D_MODEL) for k in (1, 2)]  # (B, T-k, d), not from `hidden`
    _, mtp = head(hidden, own)
    assert mtp is not None
    for k in (1, 2):
        torch.testing.assert_close(mtp[k - 1], own[k - 1] @ head.mtp_head.heads[k - 1].weight.T)  # type: ignore[union-attr]


def test_combined_eval_mode_skips_mtp() -> None:
    head = CombinedLMHead(D_MODEL, V, mtp_depth=2, tie_weights=False).eval()
    calls = count_calls(head.mtp_head)  # type: ignore[arg-type]
    inner = [count_calls(h) for h in head.mtp_head.heads]  # type: ignore[union-attr]
    hidden = torch.randn(B, T, D_MODEL)
    main, mtp = head(hidden)
    assert mtp is None and main.shape == (B, T, V)
    assert calls == [0] and inner == [[0], [0]]  # MTP was not even computed
    head.train()
    head(hidden)
    assert calls == [1] and inner == [[1], [1]]  # the hooks do fire when MTP runs


def test_combined_without_mtp() -> None:
    head = CombinedLMHead(D_MODEL, V, use_mtp=False, tie_weights=False).train()
    assert head.mtp_head is None
    main, mtp = head(torch.randn(B, T, D_MODEL))
    assert mtp is None and main.shape == (B, T, V)
    assert n_params(head) == V * D_MODEL


def test_combined_tie_ties_only_the_main_head() -> None:
    emb = nn.Embedding(V, D_MODEL)
    head = CombinedLMHead(D_MODEL, V, mtp_depth=1, tie_weights=True)
    head.lm_head.tie_embedding_weights(emb)
    assert head.lm_head.weight is emb.weight
    assert head.mtp_head is not None and head.mtp_head.heads[0].weight is not emb.weight


def test_combined_plugs_into_the_mtp_loss() -> None:
    """The head's outputs have exactly the shapes the loss expects; gradients reach every head."""
    depth = 2
    emb = nn.Embedding(V, D_MODEL)
    head = CombinedLMHead(D_MODEL, V, mtp_depth=depth).train()
    head.lm_head.tie_embedding_weights(emb)
    ids = torch.randint(0, V, (B, T + 1))
    inputs, labels = ids[:, :-1], ids[:, 1:]  # (B, T), (B, T)
    main, mtp = head(emb(inputs))
    total, parts = MultiTokenPredictionLoss(V, mtp_depth=depth)(main, mtp, labels)
    assert set(parts) == {"main_loss", "mtp_loss_1", "mtp_loss_2", "total_loss"}
    total.backward()
    for p in head.parameters():
        assert p.grad is not None and p.grad.any()


def test_combined_needs_more_positions_than_depth() -> None:
    head = CombinedLMHead(D_MODEL, V, mtp_depth=3, tie_weights=False).train()
    with pytest.raises(ValueError, match=r"T=3 .*MTP depth 3.*\(2, 3, 8\)"):
        head(torch.randn(2, 3, D_MODEL))
    head.eval()
    main, _ = head(torch.randn(2, 3, D_MODEL))  # in eval mode MTP is not needed, so T=3 is fine
    assert main.shape == (2, 3, V)


def test_tie_after_meta_device_init_and_retie() -> None:
    """``to_empty()`` breaks the tie; ``is_tied`` says so, and ``retie``/``tie_weights`` restore it."""
    import copy

    from aptt_edu.model import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=11, block_size=8, d_model=8, n_layer=1, n_head=2, tie_weights=True)
    with torch.device("meta"):
        model = GPT(cfg)
    assert model.head.lm_head.is_tied
    model = model.to_empty(device="cpu")
    assert model.head.lm_head.weight is not model.tok_emb.weight
    assert not model.head.lm_head.is_tied  # tells the truth
    model.tie_weights()
    assert model.head.lm_head.weight is model.tok_emb.weight and model.head.lm_head.is_tied
    # the head-level re-tie, and a deepcopy stays tied to its own embedding
    model = model.to_empty(device="cpu")
    model.head.lm_head.retie()
    assert model.head.lm_head.weight is model.tok_emb.weight
    twin = copy.deepcopy(model)
    assert twin.head.lm_head.is_tied and twin.head.lm_head.weight is twin.tok_emb.weight
    assert twin.head.lm_head.weight is not model.tok_emb.weight
    with pytest.raises(RuntimeError, match="tie_embedding_weights"):
        LanguageModelingHead(8, 11).retie()
