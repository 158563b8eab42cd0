"""Train the tiny GPT and compare the recipe's output-side choices against the entropy floor.

Everything the library teaches meets here: the model's output side is
:class:`~aptt_edu.heads.language_modeling.CombinedLMHead` (optionally tied, optionally with MTP), the
objective is :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss` (label smoothing is a
*loss* option), validation uses :class:`~aptt_edu.loss.metrics.PerplexityMetric` and
:class:`~aptt_edu.loss.metrics.TokenAccuracyMetric`. One module per job:

* :mod:`~aptt_edu.training.config`: :class:`TrainConfig`, its checks, and the model, loss, optimizer
  and learning-rate schedule it describes;
* :mod:`~aptt_edu.training.objective`: the loss of one micro-batch, on the logits or chunked;
* :mod:`~aptt_edu.training.loop`: :func:`train`, :func:`train_step` (gradient accumulation, DDP),
  :func:`evaluate`;
* :mod:`~aptt_edu.training.history`: :class:`History`, what a run measured;
* :mod:`~aptt_edu.training.compare`: the five variants side by side.

Python API (used by the notebooks)::

    from aptt_edu.training import TrainConfig, train, compare
    h = train(TrainConfig(steps=200, mtp="deepseek"))   # -> History
    h.val_loss[-1], h.entropy_rate                       # how close to the floor?
    h.model.generate(...)                                # the trained model; h.dataset.decode(ids)
    compare("runs/compare")                              # five variants, plot and table

The command line is ``aptt-edu`` (:mod:`aptt_edu.cli`).
"""

from aptt_edu.training.compare import VARIANTS, compare, summary_markdown, time_forward_backward
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
from aptt_edu.training.loop import evaluate, train, train_step
from aptt_edu.training.objective import TrainingObjective, compute_loss

__all__ = [
    "VARIANTS",
    "History",
    "TrainConfig",
    "TrainingObjective",
    "build_loss",
    "build_model",
    "build_optimizer",
    "check_batch_split",
    "check_config",
    "compare",
    "compute_loss",
    "evaluate",
    "load_data",
    "lr_at",
    "summary_markdown",
    "time_forward_backward",
    "train",
    "train_step",
]
