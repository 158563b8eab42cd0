r"""Train the tiny GPT and compare the recipe's output-side choices against the entropy floor.

Everything the library teaches meets here: the model's output side is
:class:`~aptt_edu.heads.language_modeling.CombinedLMHead` (optionally tied, optionally with MTP), the
objective is :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss` (with label
smoothing as a *loss* option), validation uses
:class:`~aptt_edu.loss.metrics.PerplexityMetric` and :class:`~aptt_edu.loss.metrics.TokenAccuracyMetric`.

Python API (used by the notebooks)::

    from aptt_edu.train import TrainConfig, train, compare
    h = train(TrainConfig(steps=200, mtp="deepseek"))   # -> History
    h.val_loss[-1], h.entropy_rate                       # how close to the floor?
    h.model.generate(...)                                # the trained model; h.dataset.decode(ids)
    compare("runs/compare")                              # five variants, plot and table

Command line (also installed as ``aptt-edu``)::

    python -m aptt_edu.train --steps 300 --mtp deepseek --out runs/deepseek
    python -m aptt_edu.train compare --out runs/compare
    python -m aptt_edu.train --text-file my_text.txt --out runs/text
    python -m aptt_edu.train --grad-accum 4 --chunked-loss --out runs/accum
    torchrun --nproc_per_node 2 -m aptt_edu.train --grad-accum 2 --out runs/ddp   # 2 processes

The loop is the plain one: draw a batch, :func:`train_step` (:func:`compute_loss` and backward per
micro-batch, clip the gradient norm, AdamW step), and every ``eval_every`` steps :func:`evaluate`
the validation set.

**Gradient accumulation and several processes** (notebook 06). ``batch_size`` is always the
*global* batch. Every process draws the same global batch from the same seeded generator, counts
its valid targets per loss term (:meth:`MultiTokenPredictionLoss.count_items`), takes its slice of
the rows (rank ``r`` of ``W``) and splits it into ``grad_accum`` micro-batches. Each micro-batch's
loss is its *sum* divided by the *global* counts, so the parts add up to the full-batch mean and
their gradients to the full-batch gradient, however unevenly the valid tokens are spread. Under
``torchrun`` the model runs inside :class:`~torch.nn.parallel.DistributedDataParallel` (``gloo`` on
CPU), which *averages* the gradients over the ``W`` ranks; each rank therefore back-propagates
``W`` times its share (see :func:`train_step`). The logged losses are the global-batch means, the
same numbers a single process computes; only rank 0 writes the output folder.

**Chunked loss** (``chunked_loss=True``, ``--chunked-loss``): the training loss of the main head
and of the simple MTP head is computed with
:func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy` from the final hidden states,
without materialising the ``(B, T, V)`` logits (notebook 05). The DeepSeek MTP module applies the
shared head inside the model, so ``mtp="deepseek"`` is refused with this option. Validation always
uses the logits.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aptt_edu.data import LMData, get_batch, make_inputs_and_labels, text_data, toy_data
from aptt_edu.distributed import all_reduce_sum, init_from_env, rank_and_world_size, shard
from aptt_edu.heads.language_modeling import LanguageModelingHead
from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.linear_cross_entropy import linear_cross_entropy
from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric
from aptt_edu.model import GPT, MTP_VARIANTS, GPTConfig, MTPVariant

__all__ = [
    "VARIANTS",
    "History",
    "TrainConfig",
    "TrainingObjective",
    "build_model",
    "build_optimizer",
    "check_config",
    "compare",
    "compute_loss",
    "evaluate",
    "load_data",
    "lr_at",
    "main",
    "save_loss_curves",
    "summary_markdown",
    "time_forward_backward",
    "train",
    "train_step",
]


@dataclass
class TrainConfig:
    """Everything one training run depends on. Defaults: the toy language, ~10 s on 2 CPU cores.

    ``threads=1`` is deliberate: the matrices of this model are so small that a second thread gains
    little on an idle machine, and when other programs share the cores, two threads that wait for
    each other made a step 5–8 times slower in our measurements. A fixed thread count also fixes
    the order of floating-point sums, so a seed reproduces the run exactly.
    """

    # --- data ---
    text_file: str | None = None  # UTF-8 file for character-level training; None: toy language
    seq_len: int = 32  # T, tokens per training row (and the model's block_size)
    toy_vocab_size: int = 16  # V of the toy language (letters a, b, ..., p)
    n_train_rows: int = 4096  # toy training rows (different seed than the validation rows)
    n_val_rows: int = 256  # toy validation rows, evaluated in full every eval_every steps
    # --- model ---
    n_layer: int = 1  # Transformer blocks (one suffices: attend to t_{i-1}, MLP looks up P)
    n_head: int = 2  # attention heads per block
    d_model: int = 64  # width d of the residual stream
    tie_weights: bool = False  # share the input embedding with the main output head
    mtp: MTPVariant = "none"  # multi-token prediction: "none", "simple" head or "deepseek" module
    mtp_depth: int = 1  # D, future tokens beyond the next predicted in training
    mtp_lambda: float = 0.3  # λ, weight of the MTP loss (DeepSeek-V3 Eq. 25: λ/D · Σ_k L^k)
    # --- loss ---
    label_smoothing: float = 0.0  # ε of the training loss; validation is always plain CE
    chunked_loss: bool = False  # training loss without (B, T, V) logits (not with mtp="deepseek")
    # --- optimisation ---
    steps: int = 300  # optimisation steps
    batch_size: int = 48  # rows per step: the global batch, over all processes and micro-batches
    grad_accum: int = 1  # micro-batches per step and process; the gradient stays the full batch's
    lr: float = 2e-2  # peak AdamW learning rate, reached after warmup, cosine-decayed to lr/10
    warmup_steps: int = 20  # linear learning-rate warmup
    weight_decay: float = 0.1  # AdamW decay on matrices (not on norm gains)
    grad_clip: float = 1.0  # clip the global gradient norm to this (0: no clipping)
    eval_every: int = 25  # validate every this many steps (and after the last)
    seed: int = 0  # seeds the toy language, the data order and the model initialisation
    threads: int = 1  # CPU threads torch uses in the run (0: leave torch's setting), see below
    progress: bool = True  # show a progress line on stderr
    name: str = "train"  # label of the run in the progress line


@dataclass
class History:
    """What a run measured. ``to_dict()`` is what ``history.json`` holds.

    Lists indexed by step have one entry per optimisation step (``step`` = 1, 2, ...); the ``val_*``
    lists one entry per validation (at ``val_step``).
    """

    config: dict[str, Any]  # the TrainConfig as a dict
    data: str = ""  # description of the data source
    entropy_rate: float | None = None  # H, the loss floor (None for real text)
    mtp_entropy: float | None = None  # H_2, the floor of a simple depth-1 MTP head
    val_floor: float | None = None  # the true source's loss on this validation set
    n_params: int = 0  # trainable parameters, MTP included, a tied matrix counted once
    n_params_inference: int = 0  # without the MTP head/module (dropped at inference)
    world_size: int = 1  # processes that trained together (torchrun); the numbers are global
    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # the training objective (total)
    main_loss: list[float] = field(default_factory=list)  # its main-head part (with smoothing)
    mtp_loss: list[list[float]] = field(default_factory=list)  # mtp_loss[k-1][i]: depth k
    grad_norm: list[float] = field(default_factory=list)  # before clipping
    lr: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)  # input tokens / step_s
    step_s: list[float] = field(default_factory=list)  # wall seconds of the optimisation step
    wall_time: list[float] = field(default_factory=list)  # seconds since start, incl. validation
    val_step: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)  # plain main-head CE, no smoothing
    val_perplexity: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)  # top-1 token accuracy
    fwd_bwd_s: float | None = None  # forward+backward seconds in compare()'s timing benchmark
    # Not saved: the trained model and the data, for generation in notebooks.
    model: GPT | None = field(default=None, repr=False, compare=False)
    dataset: LMData | None = field(default=None, repr=False, compare=False)

    @property
    def step_time(self) -> float:
        """Median seconds per optimisation step (validation excluded; robust to load spikes)."""
        return statistics.median(self.step_s)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable part (everything but ``model`` and ``dataset``)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del d["model"], d["dataset"]
        d["step_time"] = self.step_time if self.step_s else None
        return d

    def save(self, path: str | Path) -> None:
        """Writes :meth:`to_dict` as JSON (creating parent folders)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Reads a ``history.json`` written by :meth:`save`."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        d.pop("step_time", None)
        return cls(**d)


def check_config(cfg: TrainConfig) -> None:
    """Rejects impossible settings with one clear sentence each.

    Raises:
        ValueError: A setting is out of range.
    """
    positive = ("seq_len", "n_layer", "n_head", "d_model", "steps", "batch_size", "eval_every")
    for name in (
        *positive,
        "toy_vocab_size",
        "n_train_rows",
        "n_val_rows",
        "mtp_depth",
        "grad_accum",
    ):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name in ("mtp_lambda", "lr", "weight_decay", "grad_clip", "warmup_steps", "threads"):
        value = getattr(cfg, name)
        if not value >= 0:  # also rejects NaN
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing!r}")
    if cfg.mtp not in MTP_VARIANTS:
        raise ValueError(f"mtp must be one of {MTP_VARIANTS}, got {cfg.mtp!r}")
    if cfg.mtp != "none" and cfg.mtp_depth >= cfg.seq_len - 1:
        raise ValueError(f"mtp_depth={cfg.mtp_depth} leaves no target in seq_len={cfg.seq_len}")
    if cfg.d_model % cfg.n_head:
        raise ValueError(f"n_head={cfg.n_head} must divide d_model={cfg.d_model}")
    if cfg.seq_len < 3:
        raise ValueError(f"seq_len must be >= 3, got {cfg.seq_len}")
    if cfg.chunked_loss and cfg.mtp == "deepseek":
        raise ValueError(
            "chunked_loss works with mtp 'none' or 'simple': the DeepSeek MTP module applies the "
            "shared head inside the model, so its loss needs the logits (leave chunked_loss off)"
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


def compute_loss(
    model: GPT,
    loss_fn: MultiTokenPredictionLoss,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | None = None,
    *,
    chunked: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward pass and training objective of one (micro-)batch.

    Args:
        model: The model, in training mode (so it returns MTP logits).
        loss_fn: Main loss plus :math:`\\lambda`-weighted MTP losses.
        inputs: ``(B, T)`` token ids.
        labels: ``(B, T)`` shifted targets, ``-100`` where there is none.
        num_items_in_batch: ``None``: every term is the mean over this batch's own targets. Or the
            ``(D+1,)`` valid-target counts of the *whole* batch this one is part of
            (``loss_fn.count_items(global_labels)``): every term is then ``sum / N_j``, and the
            parts of a split batch add up to the whole batch's loss.
        chunked: Compute the main (and simple-MTP) loss with
            :func:`~aptt_edu.loss.linear_cross_entropy.linear_cross_entropy` from the hidden
            states, without the ``(B, T, V)`` logits. Same values and gradients (to float
            rounding); not available for the DeepSeek MTP module.

    Returns:
        ``(total, parts)`` as returned by :class:`MultiTokenPredictionLoss`: ``parts`` holds
        ``main_loss``, ``mtp_loss_1`` … and ``total_loss``.

    Raises:
        ValueError: ``chunked=True`` with a model that has the DeepSeek MTP module.
    """
    if chunked:
        return _chunked_loss(model, loss_fn, inputs, labels, num_items_in_batch)
    main_logits, mtp_logits = model(inputs)  # (B, T, V), [(B, T-k, V)] or None
    # scalar, {name: scalar}
    total, parts = loss_fn(main_logits, mtp_logits, labels, num_items_in_batch)
    return total, parts


def _chunked_loss(
    model: GPT,
    loss_fn: MultiTokenPredictionLoss,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`compute_loss` with ``chunked=True``: the same terms, from hidden states and weights."""
    if model.mtp is not None:
        raise ValueError(
            "chunked loss works with mtp 'none' or 'simple': the DeepSeek MTP module applies the "
            "shared head inside the model, so its loss needs the logits"
        )
    mtp_head = model.head.mtp_head if model.training else None  # MTP is a training signal
    # one normaliser per term, read exactly as MultiTokenPredictionLoss reads them
    norms = loss_fn.normalisers(num_items_in_batch, with_mtp=mtp_head is not None)
    ignore, eps = loss_fn.ce.ignore_index, loss_fn.ce.label_smoothing
    h = model.norm(model.trunk(inputs))  # (B, T, d): what the head would multiply with W^T
    lm_head = model.head.lm_head  # its weight may be the embedding's (tied): grads add up
    # $\mathcal{L}_\text{main}$ without the (B, T, V) logits
    main = linear_cross_entropy(
        h, lm_head.weight, labels, lm_head.bias,
        ignore_index=ignore, label_smoothing=eps, num_items_in_batch=norms[0],
    )  # fmt: skip
    parts = {"main_loss": main}
    total = main
    if mtp_head is not None:
        mtp_sum = main.new_zeros(())
        for k, head_k in enumerate(cast(list[LanguageModelingHead], mtp_head.heads), start=1):
            # simple MTP: h_i (i < T-k) through depth k's own matrix, targets labels[:, k:]
            loss_k = linear_cross_entropy(
                h[:, :-k], head_k.weight, labels[:, k:], head_k.bias,  # (B, T-k, d), (B, T-k)
                ignore_index=ignore, label_smoothing=eps, num_items_in_batch=norms[k],
            )  # fmt: skip
            parts[f"mtp_loss_{k}"] = loss_k
            mtp_sum = mtp_sum + loss_k
        # as in MultiTokenPredictionLoss: $\mathcal{L}_\text{main} + w \sum_k \mathcal{L}^k$, w = depth_weight
        total = main + loss_fn.depth_weight * mtp_sum
    parts["total_loss"] = total
    return total, parts


class TrainingObjective(nn.Module):
    """The model and its loss as one module: ``objective(inputs, labels, counts) -> (total, parts)``.

    :class:`~torch.nn.parallel.DistributedDataParallel` all-reduces the gradients of a backward
    pass only when the forward pass went through the DDP wrapper's own ``forward``. The chunked
    loss never calls ``model.forward`` (it needs the hidden states, not the logits), so DDP wraps
    this module instead, whose forward is all of :func:`compute_loss` — model *and* loss, on either
    path. It holds no parameters of its own.

    Args:
        model: The model being trained.
        loss_fn: The training objective.
        chunked: Use the chunked loss (see :func:`compute_loss`).
    """

    def __init__(self, model: GPT, loss_fn: MultiTokenPredictionLoss, chunked: bool = False):
        super().__init__()
        self.model, self.loss_fn, self.chunked = model, loss_fn, chunked

    def forward(
        self, inputs: torch.Tensor, labels: torch.Tensor, num_items_in_batch: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:func:`compute_loss` of one micro-batch."""
        return compute_loss(
            self.model, self.loss_fn, inputs, labels, num_items_in_batch, chunked=self.chunked
        )


def train_step(
    model: GPT,
    loss_fn: MultiTokenPredictionLoss,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    grad_clip: float,
    grad_accum: int = 1,
    chunked_loss: bool = False,
    ddp: DistributedDataParallel | None = None,
) -> dict[str, float]:
    r"""One optimisation step on one global batch: micro-batches forward and backward, clip, AdamW.

        **The normaliser.** Write :math:`S_{j,r,m}` for the summed loss of term :math:`j` (main, MTP
        depth 1..D) in micro-batch :math:`m` of rank :math:`r`, and :math:`N_j` for the term's number
        of valid targets in the whole global batch. The full-batch term is

        .. math:: \mathcal{L}_j = rac{1}{N_j} \sum_{r, m} S_{j,r,m} = \sum_{r, m} rac{S_{j,r,m}}{N_j},

        so each micro-batch contributes its sum over the *global* count — not its own mean, whose
        average over micro-batches weights the tokens of short micro-batches more (the gradient
        accumulation bug of 2024, notebook 06). :math:`N_j` needs no communication: every rank has the
        same global batch and counts it before taking its slice.

        **Several processes.** DDP's all-reduce *averages* the gradients over the :math:`W` ranks:
        every rank ends with :math:`rac{1}{W}\sum_r g_r`. To get :math:`\sum_r
    abla S_r / N`, each
        rank back-propagates :math:`W \cdot S_{r,m} / N`. ``ddp.no_sync()`` skips the all-reduce for
        all but the last micro-batch: the local gradients accumulate, and one all-reduce per step
        averages their sums.

        Args:
            model: The model, in training mode (the module inside ``ddp``, if given).
            loss_fn: The training objective.
            optimizer: Updates the parameters.
            inputs: ``(B, T)`` token ids of the **global** batch (the same on every rank).
            labels: ``(B, T)`` shifted targets of the global batch.
            grad_clip: Largest allowed global gradient norm (0: no clipping).
            grad_accum: Micro-batches per rank; each rank's rows are split with ``tensor_split``, so
                the micro-batches may differ by one row.
            chunked_loss: Use the chunked loss (see :func:`compute_loss`).
            ddp: The :class:`TrainingObjective` of ``model`` wrapped in ``DistributedDataParallel``;
                required when a process group with more than one rank is initialised.

        Returns:
            The loss parts of the global batch as floats (``total_loss``, ``main_loss``,
            ``mtp_loss_k``) — the same on every rank — and the gradient norm before clipping
            (``grad_norm``).

        Raises:
            ValueError: Several ranks but no ``ddp``, or fewer rows than micro-batches.
    """
    rank, world = rank_and_world_size()
    if world > 1 and ddp is None:
        raise ValueError(f"{world} processes: pass the DDP-wrapped TrainingObjective as ddp")
    if len(inputs) < world * grad_accum:
        raise ValueError(
            f"a batch of {len(inputs)} rows cannot be split into grad_accum={grad_accum} "
            f"micro-batches on each of {world} processes"
        )
    objective: nn.Module = (
        ddp if ddp is not None else TrainingObjective(model, loss_fn, chunked_loss)
    )
    counts = loss_fn.count_items(labels)  # (D+1,) valid targets per term in the GLOBAL batch
    micro_batches = list(
        zip(
            shard(inputs, rank, world).tensor_split(grad_accum),  # this rank's rows, in parts
            shard(labels, rank, world).tensor_split(grad_accum),
            strict=True,
        )
    )
    optimizer.zero_grad(set_to_none=True)
    names: list[str] = []
    logged = torch.zeros(0)
    for m, (x, y) in enumerate(micro_batches):
        last = m == len(micro_batches) - 1
        # no all-reduce until the last micro-batch: its backward averages the summed gradients
        sync = ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext()
        with sync:
            # S_m / N per term (num_items_in_batch = the global counts), shapes (b, T)
            total, parts = objective(x, y, counts)
            # DDP divides the gradient sum by W, so scale by W: (1/W) Σ_r W ∇S_r/N = ∇S/N.
            # Without DDP, world = 1. Spelled autograd.backward so that mypy --strict accepts it.
            torch.autograd.backward(total * world)
        if not names:
            names, logged = list(parts), torch.zeros(len(parts), dtype=torch.float64)
        # the unscaled shares S_m / N: summed over micro-batches and ranks they are the global means
        logged += torch.stack([parts[name].detach().double() for name in names])
    logged = all_reduce_sum(logged)  # Σ over ranks (one small all-reduce per step)
    max_norm = grad_clip if grad_clip > 0 else math.inf
    # the gradients are already the full batch's on every rank, so the norm is the same everywhere
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    stats = {name: float(value) for name, value in zip(names, logged, strict=True)}
    stats["grad_norm"] = float(grad_norm)
    return stats


@torch.no_grad()
def evaluate(model: GPT, data: LMData, batch_size: int = 256) -> dict[str, float]:
    """Validation loss, perplexity and accuracy of the **main head**, over the whole split.

    The loss is plain cross-entropy (no label smoothing) for every variant, so runs are comparable
    with each other and with the entropy rate :math:`H`. Sums over all tokens, divided once.

    With several processes each rank evaluates its share of the rows; the sums are all-reduced
    (the metrics do it in ``compute()``), so every rank returns the value of the whole split. Every
    rank must call this function.

    Returns:
        ``{"val_loss", "val_perplexity", "val_accuracy"}``.
    """
    was_training = model.training
    model.eval()  # eval mode: no MTP logits, no dropout
    ce_sum = LanguageModelingLoss(data.vocab_size, reduction="sum")
    ppl, acc = PerplexityMetric(), TokenAccuracyMetric()
    nll, n_tokens = 0.0, 0
    rank, world = rank_and_world_size()
    for rows in torch.split(shard(data.val, rank, world), batch_size):
        inputs, labels = make_inputs_and_labels(rows, data.context_warmup)  # (b, T), (b, T)
        logits, _ = model(inputs)  # (b, T, V)
        nll += float(ce_sum(logits, labels))
        n_tokens += int((labels != -100).sum())
        ppl.update(logits, labels)
        acc.update(logits, labels)
    model.train(was_training)
    # Σ over ranks of the NLL sums and token counts (unchanged in a single process)
    nll_sum, count = all_reduce_sum(torch.tensor([nll, n_tokens], dtype=torch.float64)).tolist()
    return {
        "val_loss": nll_sum / count,
        "val_perplexity": float(ppl.compute()),
        "val_accuracy": float(acc.compute()),
    }


class _Progress:
    """A one-line progress display on stderr.

    On a terminal the line is redrawn in place (``\\r``); when stderr is a file or a pipe (CI, a
    notebook's captured output) it prints a plain line about every 10 % instead.
    """

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.start = time.perf_counter()
        self.every = max(1, total // 10)

    def update(self, step: int, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / step * (self.total - step)
        width = 20
        bar = "#" * (width * step // self.total)
        line = (
            f"{self.label} [{bar:<{width}}] {step}/{self.total} {elapsed:4.0f}s<{eta:3.0f}s {text}"
        )
        if self.tty:
            sys.stderr.write("\r" + line + "\033[K")
            if step == self.total:
                sys.stderr.write("\n")
        elif step % self.every == 0 or step == self.total:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def train(config: TrainConfig | None = None, data: LMData | None = None) -> History:
    """Trains one model and returns what was measured.

    Deterministic for a given ``config.seed`` on one machine: initialisation, data and batch order
    are seeded, and the run uses ``config.threads`` CPU threads (restored afterwards).

    Args:
        config: The run's settings (defaults: :class:`TrainConfig`).
        data: Data to train on; loaded from ``config`` if ``None``. Pass it to reuse one data set
            across runs (``compare`` does).

    Returns:
        A :class:`History`; ``history.model`` is the trained model (in eval mode) and
        ``history.dataset`` the data (``history.dataset.decode(ids)`` shows tokens as text).

    Under ``torchrun`` (a process group is initialised) every process calls this function with the
    same config; they train one model together with DDP, and every rank returns the same
    global-batch history.

    Raises:
        ValueError: An invalid setting (see :func:`check_config`), an unusable text file, or a
            batch too small for ``grad_accum`` micro-batches on every process.
    """
    cfg = config if config is not None else TrainConfig()
    check_config(cfg)
    world = rank_and_world_size()[1]
    if cfg.batch_size < world * cfg.grad_accum:
        raise ValueError(
            f"batch_size={cfg.batch_size} rows cannot be split into grad_accum={cfg.grad_accum} "
            f"micro-batches on each of {world} processes; use batch_size >= "
            f"{world * cfg.grad_accum}"
        )
    if data is None:
        data = load_data(cfg)
    if data.train.shape[1] > cfg.seq_len:
        raise ValueError(
            f"data rows have {data.train.shape[1]} tokens but seq_len={cfg.seq_len}; "
            "build the data with the config's seq_len"
        )
    with _torch_threads(cfg.threads):
        return _train(cfg, data)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Runs the block with ``n`` intra-op CPU threads (0: unchanged), then restores the number."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(cfg: TrainConfig, data: LMData) -> History:
    """The training loop of :func:`train`, on checked settings."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.vocab_size)
    loss_fn = MultiTokenPredictionLoss(
        data.vocab_size,
        mtp_depth=cfg.mtp_depth,
        mtp_lambda=cfg.mtp_lambda,
        label_smoothing=cfg.label_smoothing,
        average_over_depth=True,  # DeepSeek-V3 Eq. 25: λ/D · Σ_k L^k
    )
    optimizer = build_optimizer(model, cfg)
    # the batch order: the same generator on every rank, so every rank draws the same global batch
    batches = torch.Generator().manual_seed(cfg.seed + 100)
    rank, world = rank_and_world_size()
    # DDP wraps model + loss (TrainingObjective); same seed -> same initial weights on every rank,
    # and DDP also broadcasts rank 0's weights when it is built
    ddp = (
        DistributedDataParallel(TrainingObjective(model, loss_fn, cfg.chunked_loss))
        if world > 1
        else None
    )
    hist = History(
        config=dataclasses.asdict(cfg),
        data=data.description,
        entropy_rate=data.entropy_rate,
        mtp_entropy=data.mtp_entropy,
        val_floor=data.val_floor,
        n_params=model.num_parameters(),
        n_params_inference=model.num_parameters(include_mtp=False),
        world_size=world,
        mtp_loss=[[] for _ in range(cfg.mtp_depth if cfg.mtp != "none" else 0)],
    )
    progress = _Progress(cfg.steps, cfg.name, cfg.progress and rank == 0)
    start = time.perf_counter()
    model.train()
    for step in range(1, cfg.steps + 1):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, labels = get_batch(data, cfg.batch_size, batches)  # (B, T), (B, T): global
        t0 = time.perf_counter()
        stats = train_step(
            model, loss_fn, optimizer, inputs, labels, cfg.grad_clip,
            cfg.grad_accum, cfg.chunked_loss, ddp,
        )  # fmt: skip
        step_seconds = time.perf_counter() - t0

        hist.step.append(step)
        hist.train_loss.append(stats["total_loss"])
        hist.main_loss.append(stats["main_loss"])
        for k, losses_k in enumerate(hist.mtp_loss, start=1):
            losses_k.append(stats[f"mtp_loss_{k}"])
        hist.grad_norm.append(stats["grad_norm"])
        hist.lr.append(lr)
        hist.tokens_per_s.append(inputs.numel() / step_seconds)
        hist.step_s.append(step_seconds)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            metrics = evaluate(model, data)  # on every rank: the metrics all-reduce
            hist.val_step.append(step)
            hist.val_loss.append(metrics["val_loss"])
            hist.val_perplexity.append(metrics["val_perplexity"])
            hist.val_accuracy.append(metrics["val_accuracy"])
        hist.wall_time.append(time.perf_counter() - start)
        val = f" val {hist.val_loss[-1]:.3f}" if hist.val_loss else ""
        mtp = "".join(f" mtp{k} {ls[-1]:.3f}" for k, ls in enumerate(hist.mtp_loss, start=1))
        progress.update(step, f"loss {hist.main_loss[-1]:.3f}{mtp}{val}")
    model.eval()
    hist.model, hist.dataset = model, data
    return hist


# The variants of `compare`: settings that differ from the baseline.
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "label_smoothing": {"label_smoothing": 0.1},
    "weight_tying": {"tie_weights": True},
    "mtp": {"mtp": "simple"},
    "deepseek_mtp": {"mtp": "deepseek"},
}


def compare(
    out_dir: str | Path = "runs/compare",
    steps: int | None = None,
    seed: int | None = None,
    config: TrainConfig | None = None,
    variants: Sequence[str] = tuple(VARIANTS),
    data: LMData | None = None,
) -> dict[str, History]:
    """Trains the :data:`VARIANTS` with the same seed and data and writes plot and table.

    Each variant starts from ``config`` with label smoothing, tying and MTP switched off, then sets
    its own (``mtp_depth`` and ``mtp_lambda`` come from ``config``: D = 1, λ = 0.3 by default).

    Writes ``out_dir/<variant>/history.json``, ``out_dir/loss_curves.png`` and
    ``out_dir/summary.md``.

    Args:
        out_dir: Output folder (created).
        steps: Overrides ``config.steps`` if given.
        seed: Overrides ``config.seed`` if given.
        config: Base settings (defaults: :class:`TrainConfig`).
        variants: Which of :data:`VARIANTS` to run; the first is the reference for the timing.
        data: The data all variants train on; loaded from ``config`` if ``None``.

    Returns:
        The histories by variant name.
    """
    base = config if config is not None else TrainConfig()
    if steps is not None:
        base = dataclasses.replace(base, steps=steps)
    if seed is not None:
        base = dataclasses.replace(base, seed=seed)
    base = dataclasses.replace(base, label_smoothing=0.0, tie_weights=False, mtp="none")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"variants must be a non-empty subset of {list(VARIANTS)}, got {unknown}")
    check_config(base)
    start = time.perf_counter()
    if data is None:
        data = load_data(base)
    out = Path(out_dir)
    configs = {name: dataclasses.replace(base, name=name, **VARIANTS[name]) for name in variants}
    histories = {name: train(cfg, data) for name, cfg in configs.items()}
    with _torch_threads(base.threads):
        timings = time_forward_backward(configs, data)
    for name, seconds in timings.items():
        histories[name].fwd_bwd_s = seconds
        histories[name].save(out / name / "history.json")
    save_loss_curves(histories, out / "loss_curves.png")
    summary = summary_markdown(histories, time.perf_counter() - start)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    return histories


def time_forward_backward(
    configs: dict[str, TrainConfig], data: LMData, rounds: int = 30
) -> dict[str, float]:
    """Seconds of one forward + backward pass per config: the fastest of ``rounds``, interleaved.

    Each round times one pass of every model on the same batch, one after the other, so a burst of
    load from other programs hits all variants alike. Other programs can only ever *add* time, so
    the fastest round is the best estimate of a pass's own cost (as :mod:`timeit` advises); the
    ratios stay meaningful on a busy machine, unlike the per-step times recorded during training.

    Args:
        configs: Model/loss settings by name (fresh models are built; weights do not matter).
        data: Source of the one batch.
        rounds: Timed rounds (after one warm-up round).

    Returns:
        Fastest seconds by name.
    """
    ref = next(iter(configs.values()))
    inputs, labels = get_batch(data, ref.batch_size, torch.Generator().manual_seed(0))
    setups = {}
    for name, cfg in configs.items():
        torch.manual_seed(cfg.seed)
        loss_fn = MultiTokenPredictionLoss(
            data.vocab_size, cfg.mtp_depth, cfg.mtp_lambda, cfg.label_smoothing
        )
        setups[name] = (build_model(cfg, data.vocab_size), loss_fn)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for r in range(rounds + 1):
        for name, (model, loss_fn) in setups.items():
            t0 = time.perf_counter()
            total, _ = compute_loss(
                model, loss_fn, inputs, labels, chunked=configs[name].chunked_loss
            )
            torch.autograd.backward(total)
            model.zero_grad(set_to_none=True)
            if r > 0:  # round 0 warms up
                times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def save_loss_curves(histories: dict[str, History], path: str | Path) -> None:
    """Two panels — the whole run, and a zoom onto the floor — saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display needed
    import matplotlib.pyplot as plt

    from aptt_edu.plotting import plot_loss_curves

    floor = next(iter(histories.values())).entropy_rate
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(13, 4.8))
    plot_loss_curves(histories, floor=floor, ax=ax_all)
    if floor is not None:
        plot_loss_curves(histories, floor=floor, ax=ax_zoom, ylim=(floor - 0.05, floor + 0.45))
        ax_zoom.set_title("zoom onto the floor")
    else:
        ax_zoom.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_markdown(
    histories: dict[str, History], wall_s: float | None = None, heading: bool = True
) -> str:
    """The comparison table of :func:`compare` as Markdown, with how to read it.

    Args:
        histories: Runs by variant name; the first is the reference for the timing columns.
        wall_s: Total wall time of the comparison, reported if given.
        heading: Start with a level-1 title (for ``summary.md``); ``False`` inside a page that has
            its own title, such as a notebook.
    """
    ref = next(iter(histories.values()))
    floor, cfg = ref.entropy_rate, ref.config
    layers = f"{cfg['n_layer']} layer{'s' if cfg['n_layer'] != 1 else ''}"
    lines = ["# Output-side variants on the same data", ""] if heading else []
    lines += [
        f"Data: {ref.data}. {cfg['steps']} steps, batch {cfg['batch_size']} × {cfg['seq_len']} "
        f"tokens, seed {cfg['seed']}; {layers}, d = {cfg['d_model']}, {cfg['n_head']} heads.",
        "",
        "**Validation loss** is the plain cross-entropy of the main head, *without* label smoothing, "
        "for every variant, so the rows are comparable with each other and with the floor.",
        "",
        "| variant | val loss | gap to floor | perplexity | accuracy | MTP-1 loss (train) "
        "| params (train / infer) | fwd+bwd time vs first | ms/step in training |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, h in histories.items():
        gap = f"{h.val_loss[-1] - floor:+.3f}" if floor is not None else "–"
        tail = max(1, len(h.step) // 10)
        mtp = f"{statistics.fmean(h.mtp_loss[0][-tail:]):.3f}" if h.mtp_loss else "–"
        lines.append(
            f"| {name} | {h.val_loss[-1]:.3f} | {gap} | {h.val_perplexity[-1]:.3f} "
            f"| {h.val_accuracy[-1]:.3f} | {mtp} | {h.n_params:,} / {h.n_params_inference:,} "
            f"| {_ratio(h.fwd_bwd_s, ref.fwd_bwd_s)} | {1000 * h.step_time:.0f} |"
        )
    lines.append("")
    if floor is not None:
        lines += [
            f"**Floor:** entropy rate H = {floor:.4f} nats/token, computed exactly from the toy "
            f"language (`aptt_edu.data`); the true source itself scores {ref.val_floor:.4f} on this "
            f"finite validation set. The first variant ends {ref.val_loss[-1] - floor:+.3f} nats "
            "from H.",
            "",
            "**MTP-1 loss** (training batches, mean over the last 10 % of steps): the simple head "
            f"must guess t(i+2) without seeing t(i+1), so its floor is H2 = {ref.mtp_entropy:.4f}; "
            f"the DeepSeek module is given t(i+1), so its floor is H = {floor:.4f}.",
            "",
        ]
    lines += [
        "**Time:** *fwd+bwd time vs first* is the wall time of one forward + backward pass on the "
        "same batch, divided by the first variant's: the fastest of 30 rounds in which the "
        "variants are timed in turn, so that load from other programs hits them alike. This is "
        "what the common claim of ~33 % more compute for MTP with D = 1 costs on this tiny model, "
        "measured, not derived; differences of about 10 % are within its noise on a shared machine. "
        "*ms/step in training* is the median wall time of one full "
        "optimisation step during the run (validation excluded); it also shows whatever else ran "
        "on the machine at that moment.",
        "",
        f"Why: the DeepSeek module runs one more Transformer block (plus a 2d → d projection and "
        f"a second pass through the shared head) on top of a trunk of {layers}, so on this model "
        "it adds about as much compute as the trunk itself; in DeepSeek-V3's 61-layer model one "
        "extra block is 1/61 of the layers. The simple head adds one d × V projection per depth.",
        "",
        "**Params:** training count (MTP head/module included) / what remains at inference; a "
        "tied embedding/head matrix is counted once.",
        "",
    ]
    if wall_s is not None:
        lines += [f"The whole comparison took {wall_s:.1f} s (wall).", ""]
    return "\n".join(lines)


def _ratio(x: float | None, ref: float | None) -> str:
    """``x / ref`` as ``1.23×``, or ``–`` if a number is missing."""
    return f"{x / ref:.2f}×" if x is not None and ref else "–"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m aptt_edu.train",
        description="Train the tiny GPT on the toy language (or a text file), or compare the "
        "output-side variants (baseline, label smoothing, weight tying, MTP, DeepSeek MTP).",
    )
    d = TrainConfig()
    p.add_argument(
        "mode",
        nargs="?",
        choices=("run", "compare"),
        default="run",
        help="'run' (default): one training run; 'compare': all variants, plot, table",
    )
    p.add_argument("--out", default=None, help="output folder (default runs/train or runs/compare)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"optimisation steps ({d.steps})")
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"rows per step, the global batch ({d.batch_size})",
    )
    p.add_argument("--seq-len", type=int, default=d.seq_len, help=f"tokens per row ({d.seq_len})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed ({d.seed})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate ({d.lr})")
    p.add_argument("--d-model", type=int, default=d.d_model, help=f"model width ({d.d_model})")
    p.add_argument("--n-layer", type=int, default=d.n_layer, help=f"blocks ({d.n_layer})")
    p.add_argument("--n-head", type=int, default=d.n_head, help=f"attention heads ({d.n_head})")
    p.add_argument(
        "--eval-every",
        type=int,
        default=d.eval_every,
        help=f"validate every N steps ({d.eval_every})",
    )
    p.add_argument(
        "--text-file",
        default=None,
        help="train on this UTF-8 text file (characters) instead of the toy language",
    )
    p.add_argument("--label-smoothing", type=float, default=None, help="ε of the training loss (0)")
    p.add_argument(
        "--tie-weights",
        action="store_true",
        default=None,
        help="tie the output head to the input embedding",
    )
    p.add_argument(
        "--mtp",
        choices=MTP_VARIANTS,
        default=None,
        help="multi-token prediction: none (default), simple head, deepseek module",
    )
    p.add_argument(
        "--mtp-depth", type=int, default=d.mtp_depth, help=f"MTP depth D ({d.mtp_depth})"
    )
    p.add_argument(
        "--mtp-lambda", type=float, default=d.mtp_lambda, help=f"MTP loss weight λ ({d.mtp_lambda})"
    )
    p.add_argument(
        "--grad-accum",
        type=int,
        default=d.grad_accum,
        help=f"micro-batches per step and process; same gradient as the full batch ({d.grad_accum})",
    )
    p.add_argument(
        "--chunked-loss",
        action="store_true",
        help="training loss via linear_cross_entropy, without (B, T, V) logits (not with "
        "--mtp deepseek)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    p.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help=f"CPU threads for torch ({d.threads}; 0: torch's default); results reproduce exactly "
        "for a fixed thread count",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m aptt_edu.train``, ``aptt-edu``).

    Bad arguments end with a one-line message on stderr and exit status 2, not a traceback.
    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process joins a ``gloo`` process group, trains
    its share, and prints one ``rank r/W: {...}`` line with the final global metrics; only rank 0
    writes the output folder.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    variant_flags = {
        "--label-smoothing": args.label_smoothing,
        "--tie-weights": args.tie_weights,
        "--mtp": args.mtp,
    }
    if args.mode == "compare":
        given = [flag for flag, value in variant_flags.items() if value is not None]
        if given:
            parser.error(f"{', '.join(given)}: compare sets these per variant; leave them out")
    cfg = TrainConfig(
        text_file=args.text_file,
        seq_len=args.seq_len,
        n_layer=args.n_layer,
        n_head=args.n_head,
        d_model=args.d_model,
        tie_weights=bool(args.tie_weights),
        mtp=cast(MTPVariant, args.mtp or "none"),
        mtp_depth=args.mtp_depth,
        mtp_lambda=args.mtp_lambda,
        label_smoothing=args.label_smoothing or 0.0,
        steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        chunked_loss=args.chunked_loss,
        lr=args.lr,
        eval_every=args.eval_every,
        seed=args.seed,
        threads=args.threads,
        progress=not args.no_progress,
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun
    if world > 1 and args.mode == "compare":
        parser.error("compare runs in one process; start it without torchrun")
    if args.chunked_loss and args.mode == "compare":
        parser.error("--chunked-loss: compare includes the DeepSeek variant, which needs logits")
    try:
        check_config(cfg)
        if cfg.batch_size < world * cfg.grad_accum:
            raise ValueError(
                f"batch_size={cfg.batch_size} is smaller than {world} processes x "
                f"grad_accum={cfg.grad_accum} micro-batches"
            )
        data = load_data(cfg)  # reads and checks the text file, if any
    except ValueError as e:
        parser.error(str(e))
    start = time.perf_counter()
    if args.mode == "compare":
        out = Path(args.out or "runs/compare")
        histories = compare(out, config=cfg, data=data)
        print((out / "summary.md").read_text(encoding="utf-8"))
        print(f"{len(histories)} runs in {time.perf_counter() - start:.1f} s; wrote {out}/")
        return 0
    out = Path(args.out or "runs/train")
    joined = init_from_env("gloo")  # under torchrun: join the process group (CPU: gloo)
    try:
        hist = train(cfg, data)
        rank, world = rank_and_world_size()
        if world > 1:  # every rank's view of the final global numbers (they must agree)
            final = {
                "train_loss": hist.train_loss[-1],
                "val_loss": hist.val_loss[-1],
                "val_perplexity": hist.val_perplexity[-1],
                "val_accuracy": hist.val_accuracy[-1],
            }
            # one file per rank: lines printed by several processes to one pipe can interleave
            out.mkdir(parents=True, exist_ok=True)
            (out / f"final_rank{rank}.json").write_text(json.dumps(final), encoding="utf-8")
        if rank != 0:
            return 0  # rank 0 alone writes the output folder
    finally:
        if joined:
            torch.distributed.destroy_process_group()
    hist.save(out / "history.json")
    save_loss_curves({"run": hist}, out / "loss_curves.png")
    floor = f" (floor H = {hist.entropy_rate:.4f})" if hist.entropy_rate is not None else ""
    procs = f" ({hist.world_size} processes)" if hist.world_size > 1 else ""
    print(
        f"final val loss {hist.val_loss[-1]:.4f}{floor}, perplexity "
        f"{hist.val_perplexity[-1]:.3f}, accuracy {hist.val_accuracy[-1]:.3f}; "
        f"{time.perf_counter() - start:.1f} s{procs}; wrote {out}/history.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
