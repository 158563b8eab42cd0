"""What one training run is made of: :class:`TrainConfig`, its checks, and the objects it builds.

Each field carries its help text as metadata, so the command line (:mod:`aptt_edu.cli`) is generated
from this class: every field is a flag, ``seq_len`` is ``--seq-len``, and there is no second list of
options to keep in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from aptt_edu._checks import check_loss_options
from aptt_edu.data import LMData, text_data, toy_data
from aptt_edu.loss.language_modeling import MultiTokenPredictionLoss
from aptt_edu.model import GPT, MTP_VARIANTS, GPTConfig, MTPVariant

__all__ = [
    "TrainConfig",
    "build_loss",
    "build_model",
    "build_optimizer",
    "check_batch_split",
    "check_config",
    "load_data",
    "lr_at",
]


def _opt(default: Any, help: str) -> Any:
    """A dataclass field with its command-line help."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Everything one training run depends on. Defaults: the toy language, ~10 s on 2 CPU cores.

    ``threads=1`` is deliberate: the matrices of this model are so small that a second thread gains
    little on an idle machine, and when other programs share the cores, two threads that wait for
    each other made a step 5–8 times slower in our measurements. A fixed thread count also fixes
    the order of floating-point sums, so a seed reproduces the run exactly.
    """

    # --- data ---
    text_file: str | None = _opt(
        None, "UTF-8 text file to train on (characters); none: toy language"
    )
    seq_len: int = _opt(32, "T, tokens per training row (and the model's block_size)")
    toy_vocab_size: int = _opt(16, "V of the toy language (letters a, b, ...)")
    n_train_rows: int = _opt(4096, "toy training rows (another seed than the validation rows)")
    n_val_rows: int = _opt(256, "toy validation rows, evaluated in full every eval_every steps")
    # --- model ---
    n_layer: int = _opt(1, "Transformer blocks (one suffices for the order-2 toy language)")
    n_head: int = _opt(2, "attention heads per block")
    d_model: int = _opt(64, "width d of the residual stream")
    tie_weights: bool = _opt(False, "share the input embedding with the main output head")
    mtp: MTPVariant = _opt("none", "multi-token prediction: none, simple head, deepseek module")
    mtp_depth: int = _opt(1, "D, future tokens beyond the next one predicted in training")
    mtp_lambda: float = _opt(0.3, "λ, weight of the MTP loss (DeepSeek-V3 Eq. 25: λ/D · Σ_k L^k)")
    # --- loss ---
    label_smoothing: float = _opt(0.0, "ε of the training loss; validation is always plain CE")
    chunked_loss: bool = _opt(
        False, "training loss without the (B, T, V) logits (not with mtp deepseek)"
    )
    # --- optimisation ---
    steps: int = _opt(300, "optimisation steps")
    batch_size: int = _opt(48, "rows per step: the global batch, over processes and micro-batches")
    grad_accum: int = _opt(1, "micro-batches per step and process; the gradient stays the batch's")
    lr: float = _opt(2e-2, "peak AdamW learning rate (warmup, then cosine decay to lr/10)")
    warmup_steps: int = _opt(20, "steps of linear learning-rate warmup")
    weight_decay: float = _opt(0.1, "AdamW weight decay on matrices (not on norm gains)")
    grad_clip: float = _opt(1.0, "clip the global gradient norm to this (0: no clipping)")
    eval_every: int = _opt(25, "validate every this many steps (and after the last)")
    seed: int = _opt(0, "seeds the toy language, the data order and the initialisation")
    threads: int = _opt(1, "CPU threads for torch (0: torch's default); a fixed count reproduces")
    progress: bool = _opt(True, "show a progress line on stderr")
    name: str = _opt("train", "label of the run in the progress line")


def check_config(cfg: TrainConfig) -> None:
    """Rejects impossible settings with one clear sentence each.

    Options that a component owns are checked by that component's own rule (label smoothing by
    the loss's), so a value is never allowed here and refused there.

    Raises:
        ValueError: A setting is out of range.
    """
    for name in (
        *("seq_len", "n_layer", "n_head", "d_model", "steps", "batch_size", "eval_every"),
        *("toy_vocab_size", "n_train_rows", "n_val_rows", "mtp_depth", "grad_accum"),
    ):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name in ("mtp_lambda", "lr", "weight_decay", "grad_clip", "warmup_steps", "threads"):
        value = getattr(cfg, name)
        if not value >= 0:  # also rejects NaN
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    check_loss_options(cfg.label_smoothing, "mean")
    if cfg.mtp not in MTP_VARIANTS:
        raise ValueError(f"mtp must be one of {MTP_VARIANTS}, got {cfg.mtp!r}")
    if cfg.seq_len < 3:
        raise ValueError(f"seq_len must be >= 3, got {cfg.seq_len}")
    if cfg.mtp != "none" and cfg.mtp_depth >= cfg.seq_len - 1:
        raise ValueError(f"mtp_depth={cfg.mtp_depth} leaves no target in seq_len={cfg.seq_len}")
    if cfg.d_model % cfg.n_head:
        raise ValueError(f"n_head={cfg.n_head} must divide d_model={cfg.d_model}")
    if cfg.chunked_loss and cfg.mtp == "deepseek":
        raise ValueError(
            "chunked_loss works with mtp 'none' or 'simple': the DeepSeek MTP module applies the "
            "shared head inside the model, so its loss needs the logits (leave chunked_loss off)"
        )


def check_batch_split(batch_size: int, grad_accum: int, world_size: int) -> None:
    """Every process needs at least one row in each of its ``grad_accum`` micro-batches.

    Raises:
        ValueError: ``batch_size < world_size * grad_accum``.
    """
    if batch_size < world_size * grad_accum:
        raise ValueError(
            f"batch_size={batch_size} rows cannot be split into grad_accum={grad_accum} "
            f"micro-batches on each of {world_size} processes; use batch_size >= "
            f"{world_size * grad_accum}"
        )


def load_data(cfg: TrainConfig) -> LMData:
    """The toy language, or ``cfg.text_file`` read as characters."""
    if cfg.text_file is not None:
        return text_data(cfg.text_file, cfg.seq_len)
    return toy_data(
        cfg.seq_len, cfg.n_train_rows, cfg.n_val_rows, cfg.toy_vocab_size, seed=cfg.seed
    )


def build_model(cfg: TrainConfig, vocab_size: int) -> GPT:
    """The :class:`~aptt_edu.model.GPT` a config describes."""
    return GPT(
        GPTConfig(
            vocab_size=vocab_size,
            block_size=cfg.seq_len,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            d_model=cfg.d_model,
            tie_weights=cfg.tie_weights,
            mtp=cfg.mtp,
            mtp_depth=cfg.mtp_depth,
        )
    )


def build_loss(cfg: TrainConfig, vocab_size: int) -> MultiTokenPredictionLoss:
    """The training objective: main loss plus λ/D · Σ_k MTP losses (DeepSeek-V3 Eq. 25)."""
    return MultiTokenPredictionLoss(
        vocab_size,
        mtp_depth=cfg.mtp_depth,
        mtp_lambda=cfg.mtp_lambda,
        label_smoothing=cfg.label_smoothing,
        average_over_depth=True,  # λ/D, as in DeepSeek-V3 Eq. 25
    )


def build_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (norm gains are not decayed), as in nanoGPT."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def lr_at(step: int, cfg: TrainConfig) -> float:
    r"""Linear warmup to ``lr``, then cosine decay to ``lr / 10`` at the last step.

    .. math::  \eta_s = \eta_\min + \tfrac12 (\eta - \eta_\min)(1 + \cos(\pi\, u)),
               \quad u = \frac{s - s_\text{warm}}{S - s_\text{warm}}
    """
    if step <= cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    u = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)  # 0 -> 1
    lr_min = cfg.lr / 10
    return lr_min + 0.5 * (cfg.lr - lr_min) * (1.0 + math.cos(math.pi * u))
