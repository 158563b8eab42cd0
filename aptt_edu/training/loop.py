r"""The training loop: :func:`train` runs it, :func:`train_step` is one step, :func:`evaluate` validates.

The loop is the plain one: draw a batch, :func:`train_step` (forward and backward per micro-batch,
clip the gradient norm, AdamW step), and every ``eval_every`` steps :func:`evaluate` the validation
set.

**Gradient accumulation and several processes** (notebook 06). ``batch_size`` is always the
*global* batch. Every process draws the same global batch from the same seeded generator, counts
its valid targets per loss term (:meth:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss.count_items`),
takes its slice of the rows (rank ``r`` of ``W``) and splits it into ``grad_accum`` micro-batches.
Each micro-batch's loss is its *sum* divided by the *global* counts, so the parts add up to the
full-batch mean and their gradients to the full-batch gradient, however unevenly the valid tokens
are spread. Under ``torchrun`` the model runs inside
:class:`~torch.nn.parallel.DistributedDataParallel` (``gloo`` on CPU), which *averages* the gradients
over the ``W`` ranks; each rank therefore back-propagates ``W`` times its share (see
:func:`train_step`). The logged losses are the global-batch means, the same numbers a single
process computes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from aptt_edu.data import LMData, get_batch, make_inputs_and_labels
from aptt_edu.distributed import all_reduce_sum, rank_and_world_size, shard
from aptt_edu.labels import valid_mask
from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.metrics import PerplexityMetric, TokenAccuracyMetric
from aptt_edu.model import GPT
from aptt_edu.training.config import (
    TrainConfig,
    build_loss,
    build_model,
    build_optimizer,
    check_batch_split,
    check_config,
    load_data,
    lr_at,
)
from aptt_edu.training.history import History
from aptt_edu.training.objective import TrainingObjective

__all__ = ["evaluate", "torch_threads", "train", "train_step"]


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

    .. math:: \mathcal{L}_j = \frac{1}{N_j} \sum_{r, m} S_{j,r,m} = \sum_{r, m} \frac{S_{j,r,m}}{N_j},

    so each micro-batch contributes its sum over the *global* count — not its own mean, whose
    average over micro-batches weights the tokens of short micro-batches more (the gradient
    accumulation bug of 2024, notebook 06). :math:`N_j` needs no communication: every rank has the
    same global batch and counts it before taking its slice.

    **Several processes.** DDP's all-reduce *averages* the gradients over the :math:`W` ranks:
    every rank ends with :math:`\frac{1}{W}\sum_r g_r`. To get :math:`\sum_r \nabla S_r / N`, each
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
        chunked_loss: Use the chunked loss (see :func:`~aptt_edu.training.objective.compute_loss`).
        ddp: The :class:`~aptt_edu.training.objective.TrainingObjective` of ``model`` wrapped in
            ``DistributedDataParallel``; required when a process group with more than one rank is
            initialised.

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
    check_batch_split(len(inputs), grad_accum, world)
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
        n_tokens += int(valid_mask(labels).sum())
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
    check_batch_split(cfg.batch_size, cfg.grad_accum, rank_and_world_size()[1])
    if data is None:
        data = load_data(cfg)
    if data.train.shape[1] > cfg.seq_len:
        raise ValueError(
            f"data rows have {data.train.shape[1]} tokens but seq_len={cfg.seq_len}; "
            "build the data with the config's seq_len"
        )
    with torch_threads(cfg.threads):
        return _train(cfg, data)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
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
    loss_fn = build_loss(cfg, data.vocab_size)  # main + λ/D · Σ_k L^k (DeepSeek-V3 Eq. 25)
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
