"""The losses in compiled graphs and without host synchronisation.

* ``torch.compile(fullgraph=True)`` of every loss equals eager (values and gradients). The backend
  is ``aot_eager``: it runs Dynamo's full-graph capture (where a host read such as ``.item()``
  fails) and AOT autograd's joint forward/backward trace, without inductor's C++ code generation,
  which would add tens of seconds per graph on CPU and tests nothing about the losses.
* A ``TorchDispatchMode`` counts ``aten._local_scalar_dense`` (what every ``.item()``,
  ``bool(tensor)`` or ``if tensor:`` dispatches to) on the path a GPU or a compiled graph takes,
  where the value check of the labels is skipped (``check_values_here`` is False).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import aptt_edu._checks as checks
from aptt_edu.heads.language_modeling import CombinedLMHead
from aptt_edu.loss.language_modeling import LanguageModelingLoss, MultiTokenPredictionLoss
from aptt_edu.loss.linear_cross_entropy import linear_cross_entropy

B, T, D, V = 2, 5, 4, 7


class CountScalarReads(TorchDispatchMode):
    """Counts ``aten._local_scalar_dense`` calls: each one is a device -> host copy on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _labels(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, V, (B, T), generator=g)
    y[0, -2:] = -100  # some padding
    return y


def _lm(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return LanguageModelingLoss(V, label_smoothing=0.1)(logits, y)


def _lm_count(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return LanguageModelingLoss(V)(logits, y, num_items_in_batch=torch.tensor(11))


def _mtp(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    fn = MultiTokenPredictionLoss(V, mtp_depth=2, label_smoothing=0.1)
    mtp = [logits[:, :-1] * 0.5, logits[:, :-2] * 2.0]  # stand-ins for two depths' logits
    total, _ = fn(logits, mtp, y, num_items_in_batch=fn.count_items(y))
    return total


def _lce(hidden: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return linear_cross_entropy(hidden, weight, y, label_smoothing=0.1, chunk_size=3)


def _lce_none(hidden: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    per_token = linear_cross_entropy(hidden, weight, y, reduction="none", chunk_size=4)
    return (per_token * torch.arange(T, dtype=per_token.dtype)).sum()


def _head_and_loss(hidden: torch.Tensor, y: torch.Tensor, head: CombinedLMHead) -> torch.Tensor:
    main, mtp = head(hidden)
    total, _ = MultiTokenPredictionLoss(V, mtp_depth=1)(main, mtp, y)
    return total


def _cases() -> list[tuple[str, Callable[..., torch.Tensor], list[torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, T, V, generator=g)
    hidden = torch.randn(B, T, D, generator=g)
    weight = torch.randn(V, D, generator=g)
    torch.manual_seed(0)
    head = CombinedLMHead(D, V, use_mtp=True, mtp_depth=1, tie_weights=False)
    return [
        ("LanguageModelingLoss", _lm, [logits]),
        ("LanguageModelingLoss+count", _lm_count, [logits]),
        ("MultiTokenPredictionLoss", _mtp, [logits]),
        ("linear_cross_entropy", lambda h, y: _lce(h, y, weight), [hidden, weight]),
        ("linear_cross_entropy none", lambda h, y: _lce_none(h, y, weight), [hidden, weight]),
        ("CombinedLMHead+MTP loss", lambda h, y: _head_and_loss(h, y, head), [hidden]),
    ]


def _leaves(case_inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.requires_grad_() for t in case_inputs]


@pytest.mark.parametrize("idx", range(6), ids=[c[0] for c in _cases()])
def test_fullgraph_compile_equals_eager(idx: int) -> None:
    torch._dynamo.reset()
    name, fn, inputs = _cases()[idx]
    y = _labels(idx)
    leaves = _leaves(inputs)
    eager = fn(leaves[0], y)
    grads_eager = torch.autograd.grad(eager, leaves, allow_unused=True)
    compiled_fn = torch.compile(fn, fullgraph=True, backend="aot_eager")
    compiled = compiled_fn(leaves[0], y)
    grads_compiled = torch.autograd.grad(compiled, leaves, allow_unused=True)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6, msg=name)
    for ge, gc in zip(grads_eager, grads_compiled, strict=True):
        if ge is None:
            assert gc is None
        else:
            torch.testing.assert_close(gc, ge, rtol=1e-6, atol=1e-6, msg=name)


@pytest.mark.parametrize("idx", range(6), ids=[c[0] for c in _cases()])
def test_no_host_sync_off_the_cpu_eager_path(idx: int, monkeypatch: pytest.MonkeyPatch) -> None:
    name, fn, inputs = _cases()[idx]
    y = _labels(idx)
    leaves = _leaves(inputs)
    # On CPU in eager mode the label-range check reads values, and the counter sees it:
    with CountScalarReads() as on_cpu:
        fn(leaves[0], y)
    assert on_cpu.count >= 1, "the counter must see the CPU-only label check"
    # What a GPU or a compiled graph runs: the check that reads values is skipped.
    monkeypatch.setattr(checks, "check_values_here", lambda t: False)
    with CountScalarReads() as elsewhere:
        loss = fn(leaves[0], y)
        loss.backward()
    assert elsewhere.count == 0, f"{name}: {elsewhere.count} host read(s) on the hot path"


def test_the_counter_catches_an_item_call() -> None:
    """The dispatch test above would fail if a loss called ``.item()``: the counter sees it."""
    with CountScalarReads() as mode:
        x = torch.ones(3).sum()
        _ = x.item()
        _ = bool(x > 0)
    assert mode.count == 2


def test_out_of_range_labels_still_raise_in_eager_on_cpu() -> None:
    y = _labels(0)
    y[1, 1] = V
    with pytest.raises(ValueError, match="labels must lie in"):
        LanguageModelingLoss(V)(torch.zeros(B, T, V), y)
    with pytest.raises(ValueError, match="labels must lie in"):
        linear_cross_entropy(torch.zeros(B, T, D), torch.zeros(V, D), y)
