"""aptt_edu.widgets: one static figure under APTT_STATIC, sliders in a live session."""

from __future__ import annotations

import pytest

from aptt_edu import widgets


def test_static_draws_once_with_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APTT_STATIC", "1")
    calls: list[dict[str, float]] = []
    widgets.explore(lambda **kw: calls.append(kw), eps=(0.0, 0.5, 0.05, 0.1), V=(2, 64, 1, 8))
    assert calls == [{"eps": 0.1, "V": 8}]


def test_live_builds_one_slider_per_keyword(monkeypatch: pytest.MonkeyPatch) -> None:
    ipywidgets = pytest.importorskip("ipywidgets")
    monkeypatch.setenv("APTT_STATIC", "0")
    seen: dict[str, object] = {}

    def fake_interact(draw: object, **controls: object) -> None:
        seen.update(controls)

    monkeypatch.setattr(ipywidgets, "interact", fake_interact)
    widgets.explore(lambda **kw: None, eps=(0.0, 0.5, 0.05, 0.1), V=(2, 64, 1, 8))
    assert isinstance(seen["eps"], ipywidgets.FloatSlider)
    assert isinstance(seen["V"], ipywidgets.IntSlider)
    assert seen["V"].value == 8 and seen["eps"].value == pytest.approx(0.1)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "spec, match",
    [
        ((0.0, 1.0, 0.1), "minimum, maximum, step, default"),
        ((0.0, 1.0, 0.1, 2.0), "default"),
        ((0.0, 1.0, 0.0, 0.5), "step > 0"),
        ((0, 1, "a", 0), "four numbers"),
    ],
)
def test_bad_spec_names_the_slider(spec: object, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        widgets.explore(lambda **kw: None, eps=spec)  # type: ignore[arg-type]
    assert "'eps'" in str(info.value)


def test_no_slider_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one slider"):
        widgets.explore(lambda **kw: None)
