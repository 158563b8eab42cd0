"""``causal_lm_loss_func`` equals the HF model's own loss (tiny random models, no download)."""

from __future__ import annotations

import pytest
import torch

from aptt_edu.integrations.hf import causal_lm_loss_func

transformers = pytest.importorskip("transformers")


def _batch(V: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (3, 12), generator=g)
    labels = ids.clone()
    labels[1, 7:] = -100  # right padding
    labels[2, 3:] = -100
    return ids, labels


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_equals_the_models_own_loss_with_padding(arch: str) -> None:
    V = 97
    torch.manual_seed(0)
    if arch == "llama":
        cfg = transformers.LlamaConfig(
            vocab_size=V,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
        model = transformers.LlamaForCausalLM(cfg)
    else:
        cfg = transformers.GPT2Config(vocab_size=V, n_embd=16, n_layer=1, n_head=2, n_positions=32)
        model = transformers.GPT2LMHeadModel(cfg)
    ids, labels = _batch(V)
    out = model(input_ids=ids, labels=labels)
    loss_func = causal_lm_loss_func(V)
    ours = loss_func(out, labels)
    torch.testing.assert_close(ours, out.loss, rtol=1e-6, atol=2e-6)
    n = int((labels[:, 1:] != -100).sum())
    out_n = model(input_ids=ids, labels=labels, num_items_in_batch=torch.tensor(n))
    torch.testing.assert_close(
        loss_func(out_n, labels, torch.tensor(n)), out_n.loss, rtol=1e-6, atol=2e-6
    )
    torch.testing.assert_close(
        loss_func({"logits": out.logits}, labels), out.loss, rtol=1e-6, atol=2e-6
    )
