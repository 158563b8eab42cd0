"""Speculative greedy decoding equals plain greedy decoding, and its counters add up."""

import pytest
import torch

from aptt_edu.model import GPT, GPTConfig
from aptt_edu.speculative import draft_agreement, generate_speculative


@pytest.mark.parametrize("mtp", ["simple", "deepseek"])
@pytest.mark.parametrize("depth", [1, 2])
def test_lossless_random_prompts(mtp: str, depth: int) -> None:
    torch.manual_seed(depth)
    model = GPT(GPTConfig(vocab_size=5, block_size=12, d_model=16, mtp=mtp, mtp_depth=depth))  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    for T0, n in [(1, 5), (3, 12), (8, 10), (12, 3), (15, 4), (2, 20)]:
        idx = torch.randint(0, 5, (2, T0), generator=g)
        plain = model.generate(idx, n, temperature=0)
        spec, st = generate_speculative(model, idx, n)
        assert torch.equal(plain, spec)
        assert st.accepted <= st.drafted and st.new_tokens == 2 * n
        assert st.forward_passes == st.new_tokens - st.accepted
        assert torch.equal(model.generate(idx, n, temperature=0, speculative=True), plain)


def test_repetitive_model_accepts_drafts() -> None:
    # a model that repeats its input token: train heads to copy -> zero weights give constant argmax 0
    model = GPT(GPTConfig(vocab_size=5, block_size=16, mtp="deepseek"))
    for p in model.parameters():
        torch.nn.init.zeros_(p) if p.dim() == 2 else None
    idx = torch.zeros(1, 2, dtype=torch.int64)
    spec, st = generate_speculative(model, idx, 10)
    assert torch.equal(spec, model.generate(idx, 10, temperature=0))
    assert st.acceptance_rate == 1.0 and st.forward_passes < 10


def test_errors() -> None:
    with pytest.raises(ValueError, match="mtp"):
        GPT(GPTConfig()).generate(
            torch.zeros(1, 1, dtype=torch.int64), 2, temperature=0, speculative=True
        )
    with pytest.raises(ValueError, match="temperature"):
        GPT(GPTConfig(mtp="simple")).generate(
            torch.zeros(1, 1, dtype=torch.int64), 2, speculative=True
        )


@pytest.mark.parametrize("mtp", ["simple", "deepseek"])
def test_trained_model_lossless_and_accepts(mtp: str) -> None:
    from aptt_edu.training import TrainConfig, train

    model = train(TrainConfig(steps=60, mtp=mtp, progress=False, eval_every=60)).model  # type: ignore[arg-type]
    assert model is not None
    idx = torch.randint(0, 16, (4, 3), generator=torch.Generator().manual_seed(1))
    spec, st = generate_speculative(model, idx, 40)
    assert torch.equal(spec, model.generate(idx, 40, temperature=0))
    assert 0 < st.acceptance_rate <= 1 and st.forward_passes < st.new_tokens


def _agreement_by_hand(draft, main, labels):  # type: ignore[no-untyped-def]
    hits = total = 0
    for b in range(labels.shape[0]):
        for i in range(labels.shape[1] - 1):
            if labels[b, i + 1] == -100:
                continue  # no token t_(i+2)
            total += 1
            hits += int(draft[b, i].argmax() == main[b, i + 1].argmax())
    return hits / max(total, 1)


@pytest.mark.parametrize("seed", range(5))
def test_draft_agreement_equals_a_loop_over_positions(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    B, T, V = (int(x) for x in torch.randint(2, 9, (3,), generator=g))
    main = torch.randn(B, T, V, generator=g)
    draft = main[:, 1:] + torch.randn(B, T - 1, V, generator=g)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[torch.rand(B, T, generator=g) < 0.3] = -100
    got = draft_agreement(draft, main, labels)
    assert got.dim() == 0 and got.is_floating_point()
    assert got.item() == pytest.approx(_agreement_by_hand(draft, main, labels), abs=1e-7)


def test_draft_agreement_edge_cases_and_errors() -> None:
    main = torch.randn(2, 5, 4)
    labels = torch.full((2, 5), -100)
    assert draft_agreement(main[:, 1:].clone(), main, labels).item() == 0.0  # nothing counted
    labels[:, 1:] = 0
    assert draft_agreement(main[:, 1:].clone(), main, labels).item() == 1.0  # perfect drafts
    with pytest.raises(
        ValueError, match=r"draft_logits must have shape \(B, T-1, V\) = \(2, 4, 4\)"
    ):
        draft_agreement(main, main, labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        draft_agreement(main[:, 1:], main, labels[:, 1:])
