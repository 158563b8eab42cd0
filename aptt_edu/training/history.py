"""What a training run measured: :class:`History`, saved as ``history.json``."""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aptt_edu.data import LMData
from aptt_edu.model import GPT

__all__ = ["History"]


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
