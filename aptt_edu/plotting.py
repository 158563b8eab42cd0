"""The figures the notebooks and ``compare`` draw, kept out of the lessons' code cells.

* :func:`plot_loss_curves`: loss curves of training runs with the entropy-rate floor as a line
  (``aptt-edu compare`` writes it as ``loss_curves.png``, via :func:`save_loss_curves`)::

      from aptt_edu.plotting import plot_loss_curves
      ax = plot_loss_curves({"baseline": h1, "MTP": h2}, floor=h1.entropy_rate)

* :func:`draw_deepseek_mtp`: the diagram of DeepSeek-V3's multi-token-prediction chain
  (DeepSeek-AI 2024, arXiv:2412.19437, §2.2, Fig. 3 and Eq. 21–23), used in notebook 03.
* :func:`moving_average`: the n-step mean that makes a training curve's trend visible under its
  batch-to-batch noise (notebooks 03b and 06).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: plotting imports nothing of the package at run time
    from pathlib import Path

    from aptt_edu.training.history import History

__all__ = ["draw_deepseek_mtp", "moving_average", "plot_loss_curves", "save_loss_curves"]


def moving_average(values: Sequence[float], n: int = 10) -> list[float]:
    r"""The mean of every window of ``n`` consecutive values.

    .. math:: \bar x_j = \frac{1}{n} \sum_{i=j-n+1}^{j} x_i, \qquad j = n-1, \dots, \text{len}-1

    A training loss jumps from batch to batch by more than the few hundredths of a nat that tell two
    runs apart; the mean over 10 steps shows the trend. Entry ``k`` of the result belongs to step
    ``k + n - 1`` of ``values`` (the last step of its window), so there are ``len(values) - n + 1``.

    Raises:
        ValueError: ``n`` is not between 1 and ``len(values)``.
    """
    if not 1 <= n <= len(values):
        raise ValueError(f"moving_average: n={n} must be between 1 and len(values)={len(values)}")
    return [sum(values[j - n + 1 : j + 1]) / n for j in range(n - 1, len(values))]


def plot_loss_curves(
    histories: Mapping[str, History] | Sequence[History],
    floor: float | None = None,
    ax: Any = None,
    ylim: tuple[float, float] | None = None,
    show_train: bool = True,
) -> Any:
    """Plots training and validation loss against the optimisation step.

    Per run, one colour: the training loss of the **main head** per step as a thin, faint line (for
    the label-smoothing run it includes the smoothing term, so it sits higher), the validation loss
    (plain main-head cross-entropy, comparable across runs) as a thick line with markers.

    Args:
        histories: Runs by name (``{"baseline": h, ...}``), or a list (named ``run 0``, ``run 1``…).
        floor: The entropy rate :math:`H`, drawn as a dashed horizontal line (``None``: no line).
        ax: A matplotlib ``Axes`` to draw into; a new figure is made if ``None``.
        ylim: y-axis range, e.g. ``(floor - 0.05, floor + 0.5)`` to zoom onto the floor.
        show_train: Also draw the training curves.

    Returns:
        The matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt  # imported here: training must not need a display backend

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    named = (
        dict(histories)
        if isinstance(histories, Mapping)
        else {f"run {i}": h for i, h in enumerate(histories)}
    )
    for i, (name, h) in enumerate(named.items()):
        color = f"C{i}"
        if show_train:
            ax.plot(h.step, h.main_loss, color=color, alpha=0.3, linewidth=0.8)
        ax.plot(
            h.val_step, h.val_loss, color=color, marker="o", markersize=3, label=f"{name} (val)"
        )
    if floor is not None:
        ax.axhline(floor, color="black", linestyle="--", linewidth=1.2)
        ax.annotate(
            f"entropy rate H = {floor:.3f}",
            xy=(0.0, floor),  # left end, under the line: the curves are high there
            xycoords=("axes fraction", "data"),
            xytext=(6, -4),
            textcoords="offset points",
            ha="left",
            va="top",
        )
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("thin: train loss (main head) · thick: validation loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def save_loss_curves(histories: dict[str, History], path: str | Path) -> None:
    """Two panels — the whole run, and a zoom onto the floor — saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display needed
    import matplotlib.pyplot as plt

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


_SHARED = "#f8d7a8"  # fill of the boxes that hold the main model's embedding and output head


def draw_deepseek_mtp(depth: int = 2, ax: Any = None) -> Any:
    r"""Draws the main model and ``depth`` chained MTP modules of DeepSeek-V3 (§2.2).

    Module :math:`k` reads the previous depth's hidden state :math:`h^{k-1}_i` and the embedding of
    the true token :math:`t_{i+k}`, normalises both, concatenates them, projects with :math:`M_k`,
    runs one block :math:`\mathrm{TRM}_k` and predicts :math:`t_{i+k+1}` through the shared output
    head (Eq. 21–23). Dashed orange lines join the boxes that are one weight matrix.

    Args:
        depth: Number of MTP modules :math:`D \geq 1` to draw.
        ax: A matplotlib ``Axes`` to draw into; a new figure is made if ``None``.

    Returns:
        The matplotlib ``Axes``.

    Raises:
        ValueError: ``depth`` is not a positive int.
    """
    import matplotlib.pyplot as plt  # imported here, as above
    from matplotlib.patches import FancyBboxPatch

    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an int >= 1, got {depth!r}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.8 * depth + 3.4, 6.6))

    def box(
        xy: tuple[float, float], text: str, color: str = "#dbe9f6", w: float = 1.9, h: float = 0.55
    ) -> tuple[float, float]:
        x, y = xy
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3", lw=1
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=9)
        return xy

    def arrow(a: tuple[float, float], b: tuple[float, float], shrink: float = 16) -> None:
        ax.annotate(
            "",
            xy=b,
            xytext=a,
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.2",
                "lw": 1.2,
                "shrinkA": shrink,
                "shrinkB": shrink,
            },
        )

    def shared_link(x0: float, x1: float, y: float) -> None:
        ax.plot([x0, x1], [y, y], ls="--", color="#d08a2e", lw=1.2)

    # the main model, in column x = 0
    tok0 = box((0, 0), r"tokens $t_1 \dots t_T$", "white")
    emb0 = box((0, 1), "Emb (shared)", _SHARED)
    trm0 = box((0, 2.9), "main model:\n$L$ Transformer blocks", "#c9e4c5", h=0.9)
    h_prev = box((0, 4.8), r"$h^0_i$", "white", w=0.8)
    out0 = box((0, 5.7), "OutHead (shared)", _SHARED)
    p0 = box((0, 6.6), r"$P^0_{i+1}$: predicts $t_{i+1}$", "white", w=2.2)
    for a, b in [(tok0, emb0), (emb0, trm0), (trm0, h_prev), (h_prev, out0), (out0, p0)]:
        arrow(a, b)
    ax.text(0, 7.25, "main model", ha="center", fontsize=11, weight="bold")
    x_emb, x_out = 0.0, 0.0  # centres of the previous Emb / OutHead, for the shared links
    for k in range(1, depth + 1):
        x = 3.8 * k  # module centre; hidden path on the left (xl), token path on the right (xr)
        xl, xr = x - 1.0, x + 1.0
        tok = box((xr, 0), rf"true token $t_{{i+{k}}}$", "white", w=1.5)
        emb = box((xr, 1), "Emb (shared)", _SHARED, w=1.5)
        n_e = box((xr, 2), "RMSNorm", w=1.3)
        n_h = box((xl, 2), "RMSNorm", w=1.3)
        cat = box((x, 3), rf"$[\,\cdot\,;\,\cdot\,]$ $\to$ $M_{k}$", w=1.6)
        trm = box((x, 3.9), rf"$\mathrm{{TRM}}_{k}$ (1 block)", "#c9e4c5", w=1.6)
        hk = box((x, 4.8), rf"$h^{k}_i$", "white", w=0.8)
        out = box((x, 5.7), "OutHead (shared)", _SHARED)
        pk = box((x, 6.6), rf"$P^{k}_{{i+{k + 1}}}$: predicts $t_{{i+{k + 1}}}$", "white", w=2.2)
        for a, b in [
            (tok, emb),
            (emb, n_e),
            (n_e, cat),
            (n_h, cat),
            (cat, trm),
            (trm, hk),
            (hk, out),
            (out, pk),
        ]:
            arrow(a, b)
        # the causal chain: h^{k-1} goes right, then down into depth k's RMSNorm
        ax.plot([h_prev[0] + 0.45, xl], [4.8, 4.8], color="0.2", lw=1.2)
        arrow((xl, 4.8), (xl, 2.35), shrink=0)  # ends on the top edge of the RMSNorm box
        ax.text((h_prev[0] + xl) / 2, 4.9, rf"$h^{k - 1}_i$", ha="center", va="bottom", fontsize=9)
        shared_link(x_out + 1.0, x - 1.0, 5.7)
        shared_link(x_emb + (1.0 if k == 1 else 0.8), xr - 0.8, 1.0)
        h_prev, x_emb, x_out = hk, xr, x
        ax.text(x, 7.25, f"MTP module k = {k}", ha="center", fontsize=11, weight="bold")
    ax.text(
        1.9 * depth,
        -0.75,
        "dashed orange: the same weight matrix, shared with the main model",
        ha="center",
        color="#b06a10",
        fontsize=9,
    )
    ax.set_xlim(-1.2, 3.8 * depth + 2.0)
    ax.set_ylim(-1.0, 7.5)
    ax.axis("off")
    ax.set_title(
        f"DeepSeek-V3 multi-token prediction (§2.2, Eq. 21–23), drawn for D = {depth}", pad=12
    )
    return ax
