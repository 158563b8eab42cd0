"""Loss curves of one or more training runs, with the entropy-rate floor drawn as a line.

Used by ``python -m aptt_edu.train compare`` (``loss_curves.png``) and by the notebooks::

    from aptt_edu.plotting import plot_loss_curves
    ax = plot_loss_curves({"baseline": h1, "MTP": h2}, floor=h1.entropy_rate)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aptt_edu.train import History

__all__ = ["plot_loss_curves"]


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
