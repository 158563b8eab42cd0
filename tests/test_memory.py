"""aptt_edu.memory measures what notebook 05 claims: the plain step holds ~3 N x V fp32 buffers,
the chunked one a small fraction of that (each measured in a fresh process)."""

from __future__ import annotations

import sys

import pytest
import torch

from aptt_edu.memory import make_inputs, make_step, measure_peak

V, D, N = 8000, 32, 1024  # N·V·4 bytes = 31.25 MiB per (N, V) fp32 buffer


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM peak counter is Linux-only")
def test_plain_step_holds_vocabulary_sized_buffers_and_chunked_does_not() -> None:
    nv = N * V * 4
    plain = measure_peak("naive", N, vocab=V, d_model=D)
    chunked = measure_peak("chunked", N, vocab=V, d_model=D, chunk_size=128)
    # logits, log-probabilities and their gradient: between 2 and 4 (N, V) buffers at the peak
    assert 2 * nv < plain < 4.5 * nv, plain / nv
    # the chunked step holds (chunk_size, V) blocks, the weight gradient and hidden.grad only
    assert chunked < plain / 4, (chunked, plain)


def test_both_steps_compute_the_same_loss_gradient() -> None:
    grads = []
    for variant in ("naive", "chunked"):
        hidden, weight, labels = make_inputs(256, 100, 16, dtype=torch.float32, device="cpu")
        make_step(variant, hidden, weight, labels, chunk_size=64)()
        assert hidden.grad is not None and weight.grad is not None
        grads.append((hidden.grad, weight.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"variant": "liger"}, "variant must be one of"),
        ({"dtype": "float16"}, "dtype must be"),
        ({"n_tokens": 0}, "n_tokens must be a positive int"),
        ({"chunk_size": 2.5}, "chunk_size must be a positive int"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"variant": "naive", "n_tokens": 64, "vocab": 10, "d_model": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        measure_peak(**args)  # type: ignore[arg-type]
