r"""The few ``torch.distributed`` calls data-parallel training needs, each with its reason.

Data parallelism runs one copy of the model per process ("rank"); every rank computes the gradient
on its own slice of the global batch, and the slices' gradients are combined before the optimizer
step, so all copies take the same step. Launch with ``torchrun``, which starts the processes and
sets the environment variables ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``::

    torchrun --nproc_per_node 2 -m aptt_edu --grad-accum 2 --out runs/ddp

Everything here also works without a process group (one plain process): then the rank is 0, the
world size 1, and a "sum over all ranks" is the value itself. So the training loop needs no
``if distributed`` branches around its arithmetic.

**Where the normaliser comes from.** The loss of a slice is its *sum* divided by the valid-target
count :math:`N` of the **global** batch (notebook 06). :func:`aptt_edu.training.train` knows
:math:`N` locally, because every rank draws the same global batch from the same seeded generator and
only then takes its slice. A data loader that gives each rank different rows would instead add the
local counts up with :func:`all_reduce_sum` — counts add up over rows.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["all_reduce_sum", "init_from_env", "is_distributed", "rank_and_world_size", "shard"]


def is_distributed() -> bool:
    """Whether a default process group is initialised (this process is one of several ranks)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` without a process group."""
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(backend: str = "gloo") -> bool:
    """Joins the process group that ``torchrun`` describes in the environment, if any.

    Does nothing (and returns ``False``) when ``WORLD_SIZE`` is unset or 1, so the same entry point
    runs as one plain process too. ``gloo`` works on CPU; on GPUs ``nccl`` is the usual choice.

    Args:
        backend: The ``torch.distributed`` backend.

    Returns:
        Whether a process group was initialised by this call.

    Raises:
        RuntimeError: ``torch.distributed`` is not available in this build of PyTorch.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    # env:// reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, which torchrun sets
    dist.init_process_group(backend=backend)
    return True


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_\text{ranks} t`, returned on every rank (``t`` itself without a process group).

    Works on a copy, so the caller's tensor keeps its local value. Every rank must call it, in the
    same order as all other collectives, or the processes wait for each other forever.
    """
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def shard(x: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s share of the rows of ``x``: ``x.tensor_split(world_size)[rank]``.

    The first ``len(x) % world_size`` ranks get one row more; uneven shares are fine because the
    loss is normalised by the global count, not by the rank's own.
    """
    return x.tensor_split(world_size)[rank]
