r"""End to end in one file: the training step of the recipe, then greedy inference.

Run it with ``python examples/llm_loss_head_example.py``; it takes a few seconds on a CPU.

What happens, in order:

1. **Data.** Random token ids ``(B, T)`` become inputs and *shifted* labels with
   :func:`aptt_edu.shift_labels`: ``labels[b, t] = ids[b, t + 1]``, the last position gets ``-100``
   (no target).
2. **Model.** A tiny decoder-only Transformer: ``nn.Embedding`` → ``n_layer`` ×
   :class:`aptt_edu.layers.Block` → RMSNorm → :class:`~aptt_edu.heads.language_modeling.CombinedLMHead`,
   whose main head is *tied* to the input embedding (one ``(V, d)`` matrix for both).
3. **Training step.** In training mode the head returns the main logits ``(B, T, V)`` and the MTP
   logits ``[(B, T-k, V) for k = 1..D]``;
   :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss` scores depth ``k`` against
   ``labels[:, k:]`` and returns :math:`\mathcal{L} = \mathcal{L}_\text{main} + \lambda \sum_k
   \mathcal{L}^k_\text{MTP}` plus a dict of the parts. A few AdamW steps on one fixed batch print
   that dict: the model memorises the batch, so every term falls.
4. **Inference.** In eval mode the head returns ``(main_logits, None)`` — MTP is a training signal
   and is not even computed — and the next token is the argmax of the last position's logits.

The library's packaged version of this model is :class:`aptt_edu.model.GPT`; here it is spelled out
so that every tensor on the way from ids to loss is visible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from aptt_edu import shift_labels
from aptt_edu.heads.language_modeling import CombinedLMHead
from aptt_edu.layers import Block, RMSNorm
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss


@dataclass
class Config:
    """Sizes of the toy run. Small enough for a laptop CPU, large enough to show every shape."""

    vocab_size: int = 64  # V, number of token ids
    block_size: int = 32  # T, tokens per training sequence
    batch_size: int = 4  # B, sequences per batch
    d_model: int = 32  # d, width of the residual stream and of the embedding
    n_head: int = 4  # attention heads per block (must divide d_model)
    n_layer: int = 2  # Transformer blocks in the trunk
    mtp_depth: int = 2  # D, extra future tokens predicted in training
    mtp_lambda: float = 0.3  # λ, weight of the MTP terms (DeepSeek-V3: 0.3, later 0.1)
    label_smoothing: float = 0.0  # ε; 0 so that the printed losses are plain cross-entropies
    steps: int = 40  # AdamW steps on the one fixed batch
    lr: float = 1e-2  # AdamW learning rate (high: we *want* to memorise the batch)
    seed: int = 0  # every random number below comes from this


class TinyTransformer(nn.Module):
    """Token + position embedding → ``n_layer`` pre-norm blocks → RMSNorm → ``CombinedLMHead``."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)  # weight (V, d)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.d_model)  # weight (T_max, d)
        # GPT-2's init, N(0, 0.02²). nn.Embedding's default N(0, 1) would, once tied, make the
        # first logits ~ sqrt(d) large and the first loss far above the uniform guess log V.
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.n_head) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model)  # final norm before the head, as in GPT-2/Llama
        self.head = CombinedLMHead(
            cfg.d_model, cfg.vocab_size, use_mtp=True, mtp_depth=cfg.mtp_depth, tie_weights=True
        )
        # Weight tying: the main head's (V, d) weight becomes the *same* Parameter as the token
        # embedding's. The MTP projections keep their own weights.
        self.head.lm_head.tie_embedding_weights(self.tok_emb)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """``ids (B, T)`` → ``(main_logits (B, T, V), [(B, T-k, V)] in training, else None)``."""
        T = ids.shape[1]
        pos = torch.arange(T, device=ids.device)  # (T,) positions 0 .. T-1
        x = self.tok_emb(ids) + self.pos_emb(pos)  # (B, T, d)
        for block in self.blocks:
            x = block(x)  # (B, T, d), causal: position t sees ids[:, :t+1]
        h = self.norm(x)  # (B, T, d)
        # training: depth k reads h[:, :-k] (B, T-k, d); eval: the MTP head is skipped
        main_logits, mtp_logits = self.head(h)  # (B, T, V), [(B, T-k, V)] or None
        return main_logits, mtp_logits


def format_losses(parts: dict[str, torch.Tensor]) -> str:
    """``{'main_loss': tensor(4.1), ...}`` → ``'main_loss=4.1000  ...'``."""
    return "  ".join(f"{name}={value.item():.4f}" for name, value in parts.items())


def main() -> None:
    cfg = Config()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # the tensors are tiny: more threads only add synchronisation

    # ---- 1. data: random ids, shifted labels --------------------------------------------------
    ids = torch.randint(0, cfg.vocab_size, (cfg.batch_size, cfg.block_size))  # (B, T)
    inputs, labels = shift_labels(ids)  # (B, T), (B, T): labels[:, t] = ids[:, t+1], last = -100
    labels[0, cfg.block_size // 2 :] = -100  # pretend row 0 is padding after its first half

    # ---- 2. model, loss, optimiser ------------------------------------------------------------
    model = TinyTransformer(cfg)
    loss_fn = MultiTokenPredictionLoss(
        cfg.vocab_size,
        mtp_depth=cfg.mtp_depth,
        mtp_lambda=cfg.mtp_lambda,
        label_smoothing=cfg.label_smoothing,
    )
    # parameters() yields the tied matrix once, so AdamW keeps one set of moments for it
    n_params = sum(p.numel() for p in model.parameters())
    saved = cfg.vocab_size * cfg.d_model
    print(f"parameters: {n_params:,} (tying saves V·d = {saved:,}; untied: {n_params + saved:,})")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)

    # ---- 3. the training step, a few times ----------------------------------------------------
    # (the clock starts here: building the first torch optimiser imports torch._dynamo, seconds)
    start = time.perf_counter()
    model.train()  # training mode: the head computes the MTP logits
    for step in range(1, cfg.steps + 1):
        main_logits, mtp_logits = model(inputs)  # (B, T, V), [(B, T-1, V), (B, T-2, V)]
        assert mtp_logits is not None
        # $\mathcal{L} = \mathcal{L}_\text{main} + \lambda \sum_{k=1}^{D} \mathcal{L}^k_\text{MTP}$;
        # depth k is scored against labels[:, k:], shape (B, T-k)
        total, parts = loss_fn(main_logits, mtp_logits, labels)  # scalar, dict of scalars
        optimizer.zero_grad(set_to_none=True)
        total.backward()  # the tied matrix receives embedding + head gradients, summed
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        if step == 1 or step % 10 == 0:
            print(f"step {step:3d}  {format_losses(parts)}")

    # ---- 4. inference: eval mode, greedy next token ------------------------------------------
    model.eval()  # eval mode: CombinedLMHead returns (main_logits, None) and skips MTP
    prompt = inputs[1:2, :12]  # (1, 12), the start of a memorised training row
    with torch.no_grad():
        main_logits, mtp_logits = model(prompt)  # (1, 12, V), None
        assert mtp_logits is None
        next_token = main_logits[:, -1].argmax(dim=-1)  # (1,): greedy choice at the last position
        generated = prompt
        for _ in range(8):  # greedy decoding: append the argmax, run again
            logits, _ = model(generated)  # (1, t, V)
            generated = torch.cat([generated, logits[:, -1:].argmax(dim=-1)], dim=1)  # (1, t+1)
    print(f"prompt ids      : {prompt[0].tolist()}")
    print(
        f"greedy next id  : {next_token.item()} (the training row continues with {ids[1, 12].item()})"
    )
    print(f"greedy 8 more   : {generated[0, 12:].tolist()}")
    print(f"training row    : {ids[1, 12:20].tolist()}")
    print(f"training and decoding took {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
