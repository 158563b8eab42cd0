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


def _train_with_trainer(tmp_path, compute_loss_func, accum: int) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    """Three steps of HF's Trainer on a tiny GPT-2 and rows of 3..10 targets; the final weights."""
    V = 61
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    model = transformers.GPT2LMHeadModel(cfg)
    g = torch.Generator().manual_seed(1)
    rows = []
    for i in range(12):
        ids = torch.randint(0, V, (12,), generator=g)
        labels = ids.clone()
        labels[3 + i % 8 :] = -100  # right padding: 2..9 targets after HF's shift
        rows.append({"input_ids": ids, "labels": labels})
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=2,
        gradient_accumulation_steps=accum, learning_rate=1e-2, use_cpu=True, report_to=[],
        save_strategy="no", logging_strategy="no", seed=0, disable_tqdm=True,
    )  # fmt: skip
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=rows, compute_loss_func=compute_loss_func
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer.train()
    after = [p.detach().clone() for p in model.parameters()]
    assert max(float((a - b).abs().max()) for a, b in zip(before, after, strict=True)) > 1e-3
    return after


@pytest.mark.parametrize("accum", [1, 2])
def test_trainer_end_to_end_trains_the_same_weights_as_hf_own_loss(tmp_path, accum: int) -> None:  # type: ignore[no-untyped-def]
    """A real ``Trainer.train()`` with ``compute_loss_func=causal_lm_loss_func(V)`` ends with the
    weights HF's own loss gives, with gradient accumulation over rows of unequal length; a loss
    that ignores ``num_items_in_batch`` (the accumulation bug) does not."""
    hf_own = _train_with_trainer(tmp_path / "hf", None, accum)
    ours = _train_with_trainer(tmp_path / "ours", causal_lm_loss_func(61), accum)
    for a, b in zip(hf_own, ours, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if accum > 1:
        plain = causal_lm_loss_func(61)

        def mean_of_means(outputs, labels, num_items_in_batch=None):  # type: ignore[no-untyped-def]
            return plain(outputs, labels)  # each micro-batch's own mean: the 2024 bug

        buggy = _train_with_trainer(tmp_path / "buggy", mean_of_means, accum)
        assert max(float((a - b).abs().max()) for a, b in zip(hf_own, buggy, strict=True)) > 1e-4
