"""Tests of aptt_edu.model: shapes per MTP variant, tying, causality, generation, learning."""

from __future__ import annotations

import pytest
import torch

from aptt_edu.data import LMData
from aptt_edu.heads.deepseek_mtp import DeepSeekMTP
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
from aptt_edu.model import GPT, MTP_VARIANTS, GPTConfig
from aptt_edu.training import TrainConfig, train

V, T = 11, 12


def _model(**kw: object) -> GPT:
    cfg = GPTConfig(vocab_size=V, block_size=T, n_layer=1, n_head=2, d_model=16)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return GPT(cfg)


@pytest.mark.parametrize("mtp", MTP_VARIANTS)
@pytest.mark.parametrize("depth", [1, 2])
def test_output_shapes_per_variant(mtp: str, depth: int) -> None:
    model = _model(mtp=mtp, mtp_depth=depth)
    idx = torch.randint(0, V, (3, T))
    main, extra = model(idx)
    assert main.shape == (3, T, V)
    if mtp == "none":
        assert extra is None
    else:
        assert extra is not None
        assert [tuple(z.shape) for z in extra] == [(3, T - k, V) for k in range(1, depth + 1)]
        # plugs straight into the loss
        labels = torch.randint(0, V, (3, T))
        total, parts = MultiTokenPredictionLoss(V, mtp_depth=depth)(main, extra, labels)
        assert set(parts) == {
            "main_loss",
            "total_loss",
            *(f"mtp_loss_{k}" for k in range(1, depth + 1)),
        }
        total.backward()
    model.eval()
    assert model(idx)[1] is None  # MTP is a training signal only


def test_deepseek_variant_uses_the_library_module_with_shared_parts() -> None:
    model = _model(mtp="deepseek")
    assert isinstance(model.mtp, DeepSeekMTP)
    assert model.head.mtp_head is None
    # the shared embedding and head are not stored a second time
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("mtp.") and ("tok_emb" in n or "lm_head" in n) for n in names)


def test_weight_tying_shares_one_parameter() -> None:
    untied, tied = _model(), _model(tie_weights=True)
    assert tied.head.lm_head.weight is tied.tok_emb.weight
    assert tied.head.lm_head.is_tied
    assert untied.num_parameters() - tied.num_parameters() == V * 16
    main, _ = tied(torch.randint(0, V, (2, T)))
    main.sum().backward()
    assert tied.tok_emb.weight.grad is not None
    # MTP parameters are counted in training, not at inference
    simple = _model(mtp="simple")
    assert simple.num_parameters() - simple.num_parameters(include_mtp=False) == V * 16


@pytest.mark.parametrize("mtp", MTP_VARIANTS)
def test_causality(mtp: str) -> None:
    """Changing token j changes no logit that may not see it."""
    model = _model(mtp=mtp)
    idx = torch.randint(0, V, (1, T))
    j = 7
    changed = idx.clone()
    changed[0, j] = (idx[0, j] + 1) % V
    main_a, mtp_a = model(idx)
    main_b, mtp_b = model(changed)
    assert torch.equal(main_a[:, :j], main_b[:, :j])
    assert not torch.allclose(main_a[:, j:], main_b[:, j:])
    if mtp == "simple":  # depth 1 at position i sees t_{<=i}
        assert mtp_a is not None and mtp_b is not None
        assert torch.equal(mtp_a[0][:, :j], mtp_b[0][:, :j])
    if mtp == "deepseek":  # depth 1 at position i also sees t_{i+1}: j-1 is the first affected
        assert mtp_a is not None and mtp_b is not None
        assert torch.equal(mtp_a[0][:, : j - 1], mtp_b[0][:, : j - 1])
        assert not torch.allclose(mtp_a[0][:, j - 1], mtp_b[0][:, j - 1])


def test_generate_greedy_and_seeded_sampling() -> None:
    model = _model()
    prompt = torch.randint(0, V, (2, 3))
    greedy = model.generate(prompt, 20, temperature=0)
    assert greedy.shape == (2, 23) and torch.equal(greedy[:, :3], prompt)
    assert torch.equal(greedy, model.generate(prompt, 20, temperature=0))
    # greedy = argmax of the model's own next-token logits
    assert torch.equal(greedy[:, 3], model.eval()(prompt)[0][:, -1].argmax(-1))
    model.train()
    s1 = model.generate(prompt, 20, 1.0, torch.Generator().manual_seed(1))
    s2 = model.generate(prompt, 20, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(s1, s2)
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="temperature"):
        model.generate(prompt, 1, temperature=-1.0)


def test_too_long_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="block_size"):
        _model()(torch.zeros(1, T + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="mtp"):
        _model(mtp="both")


def test_learns_a_trivially_predictable_source_to_its_floor() -> None:
    # Rows count up modulo V from a random start ("cdefabcd..."): after the first token every token
    # is certain, so the entropy floor is 0 and a working model/loss/optimiser must get close to it.
    gen = torch.Generator().manual_seed(0)
    rows = (torch.randint(0, 6, (256, 1), generator=gen) + torch.arange(16)) % 6  # (256, 16)
    data = LMData(
        rows[:192], rows[192:], vocab_size=6, context_warmup=0, decode=str, entropy_rate=0.0
    )
    cfg = TrainConfig(
        seq_len=16, n_layer=1, n_head=2, d_model=32, steps=30, batch_size=16, lr=1e-2,
        warmup_steps=5, eval_every=30, progress=False,
    )  # fmt: skip
    hist = train(cfg, data)
    assert hist.val_loss[-1] < 0.05
    assert hist.val_accuracy[-1] == 1.0
