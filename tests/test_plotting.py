"""The figures of aptt_edu.plotting draw what they claim (Agg backend, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from aptt_edu.plotting import draw_deepseek_mtp


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
