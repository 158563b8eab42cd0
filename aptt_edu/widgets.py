"""Sliders in a live notebook, one static figure everywhere else.

A notebook cell calls ``explore(draw, eps=(0.0, 0.5, 0.05, 0.1))``. What a reader gets depends on
where the notebook runs:

* in a live Jupyter or Colab session with ``ipywidgets`` installed, one slider per keyword, and
  ``draw`` is called again whenever a slider moves;
* everywhere else (``ipywidgets`` missing, or the environment variable ``APTT_STATIC=1``, which the
  notebook tests and the docs build set), ``draw`` is called once with the default values. That single
  figure is what the rendered site shows and what the regression tests see, so a slider can never
  make a test output depend on widget state.

Only the standard library and, lazily, ``ipywidgets`` are imported here: the package does not depend
on Jupyter.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

#: One slider: ``(minimum, maximum, step, default)``. All ints give an integer slider.
SliderSpec = tuple[float, float, float, float]


def is_static() -> bool:
    """Whether ``explore`` draws one static figure instead of showing sliders.

    Returns:
        ``True`` when ``APTT_STATIC`` is set to a non-empty value other than ``"0"``, or when
        ``ipywidgets`` cannot be imported.
    """
    flag = os.environ.get("APTT_STATIC", "")
    if flag not in ("", "0"):
        return True
    return importlib.util.find_spec("ipywidgets") is None


def _check_spec(name: str, spec: object) -> SliderSpec:
    """Validate one slider specification and return it typed."""
    if not (isinstance(spec, tuple) and len(spec) == 4):
        raise ValueError(f"slider {name!r} must be (minimum, maximum, step, default), got {spec!r}")
    lo, hi, step, default = spec
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec):
        raise ValueError(f"slider {name!r} must hold four numbers, got {spec!r}")
    if not (lo <= default <= hi) or step <= 0:
        raise ValueError(
            f"slider {name!r} needs minimum <= default <= maximum and step > 0, got "
            f"minimum={lo}, maximum={hi}, step={step}, default={default}"
        )
    return (lo, hi, step, default)


def explore(draw: Callable[..., Any], **sliders: SliderSpec) -> None:
    """Draw ``draw(**defaults)``; in a live notebook, add one slider per keyword that redraws.

    Args:
        draw: Function that draws one figure (e.g. with matplotlib, ending in ``plt.show()``) from
            keyword arguments named like the sliders.
        **sliders: ``name=(minimum, maximum, step, default)``. If all four numbers are ``int``
            the slider moves in integers, otherwise in floats.

    Raises:
        ValueError: If no slider is given or a specification is malformed (names the slider and
            the values seen).
    """
    if not sliders:
        raise ValueError("explore needs at least one slider, e.g. eps=(0.0, 0.5, 0.05, 0.1)")
    specs = {name: _check_spec(name, spec) for name, spec in sliders.items()}
    if is_static():
        draw(**{name: spec[3] for name, spec in specs.items()})
        return

    import ipywidgets  # imported here: only a live notebook needs it

    controls: dict[str, Any] = {}
    for name, (lo, hi, step, default) in specs.items():
        integer = all(isinstance(v, int) for v in (lo, hi, step, default))
        slider = ipywidgets.IntSlider if integer else ipywidgets.FloatSlider
        controls[name] = slider(
            min=lo, max=hi, step=step, value=default, description=name, continuous_update=False
        )
    ipywidgets.interact(draw, **controls)
