"""The figures of aptt_edu.plotting draw what they claim (Agg backend, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from aptt_edu.plotting import draw_deepseek_mtp, moving_average


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_mtp_diagram_has_one_column_per_depth(depth: int) -> None:
    ax = draw_deepseek_mtp(depth=depth)
    texts = [t.get_text() for t in ax.texts]
    modules = sorted(t for t in texts if t.startswith("MTP module k = "))
    assert modules == [f"MTP module k = {k}" for k in range(1, depth + 1)]
    # each module reads the true token t_{i+k} and predicts t_{i+k+1} (Eq. 21-23)
    for k in range(1, depth + 1):
        assert any(f"t_{{i+{k}}}" in t and "true token" in t for t in texts), k
        assert any(f"predicts $t_{{i+{k + 1}}}$" in t for t in texts), k
    # every embedding and output-head box is marked shared: 1 + depth of each
    assert texts.count("Emb (shared)") == texts.count("OutHead (shared)") == depth + 1
    assert f"D = {depth}" in ax.get_title()
    plt.close("all")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_mtp_diagram_rejects_a_bad_depth(bad: object) -> None:
    with pytest.raises(ValueError, match="depth must be an int >= 1"):
        draw_deepseek_mtp(depth=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("length", "n"), [(1, 1), (7, 1), (10, 10), (37, 10), (200, 7)])
def test_moving_average_is_the_mean_of_each_window(length: int, n: int) -> None:
    values = torch.randn(
        length, generator=torch.Generator().manual_seed(length + n), dtype=torch.float64
    )
    expected = values.unfold(0, n, 1).mean(dim=1)  # (length - n + 1,) windows, an independent route
    got = torch.tensor(moving_average(values.tolist(), n), dtype=torch.float64)
    assert got.shape == expected.shape == (length - n + 1,)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("length", "n"), [(5, 0), (5, -1), (5, 6), (0, 1)])
def test_moving_average_rejects_a_window_that_does_not_fit(length: int, n: int) -> None:
    with pytest.raises(ValueError, match=rf"n={n} must be between 1 and len\(values\)={length}"):
        moving_average([0.0] * length, n)
