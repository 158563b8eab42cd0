"""Shared test set-up: every test starts from the same random state, on one CPU thread.

The tensors in this suite are tiny (at most a few thousand logits), so one thread is as fast as
many and leaves the other cores to whoever else is running on the machine. Hypothesis settings are
*not* changed globally here; each property test states its own small ``max_examples``, with
``derandomize=True`` so that CI sees the same examples on every run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_single_thread() -> Iterator[None]:
    """Seeds torch before every test and runs it on one intra-op thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
