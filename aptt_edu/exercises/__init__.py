"""Exercises with automatic feedback: the learner writes the by-hand half, the library grades it.

Each exercise is a function the learner writes; :func:`check` runs it on several seeded inputs
(padding and edge cases included), compares the results with the library, and — when they differ —
recognises the classic mistakes by comparing with deliberately wrong variants, so the message can
say *which* mistake it is::

    >>> from aptt_edu.exercises import check
    >>> def my_cross_entropy(logits, labels, ignore_index=-100):
    ...     raise NotImplementedError
    >>> result = check("cross_entropy", my_cross_entropy, verbose=False)
    >>> result.passed, result.mistake
    (False, 'not_implemented')

``check`` never raises because of the learner's code: an exception, a wrong type or shape, NaN or
inf where a number is defined, a loss detached from the autograd graph — each becomes a failed
:class:`CheckResult` with a hint, in English (``lang="en"``) or German (``lang="de"``).

Generic mistake ids: ``not_implemented``, ``exception``, ``wrong_shape`` (wrong type or shape),
``not_finite``, ``no_gradient``, ``wrong_gradient``. Each exercise adds its own (see
:data:`MISTAKES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aptt_edu.exercises._grader import LANGS, CheckResult
from aptt_edu.exercises.accumulation import (
    ACCUMULATED_LOSS,
    CHUNKED_CROSS_ENTROPY,
    NUM_ITEMS_IN_BATCH,
)
from aptt_edu.exercises.decoding import DRAFT_AGREEMENT
from aptt_edu.exercises.gradients import GRAD_NORM, SOFTMAX_GRADIENT, TEMPERATURE_SOFTMAX
from aptt_edu.exercises.information import ENTROPY, KL_DIVERGENCE
from aptt_edu.exercises.losses import CROSS_ENTROPY, LABEL_SMOOTHING, PERPLEXITY
from aptt_edu.exercises.targets import (
    MTP_LOSS,
    MTP_TARGETS,
    PARAMETER_COUNT,
    SHIFT_LABELS,
    TIE_WEIGHTS,
)

__all__ = ["EXERCISES", "MISTAKES", "CheckResult", "check"]


class _Exercise(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def mistake_ids(self) -> tuple[str, ...]: ...

    def grade(self, fn: Callable[..., Any], lang: str) -> CheckResult: ...


_ALL: dict[str, _Exercise] = {
    e.name: e
    for e in (
        ENTROPY,  # notebook 00
        KL_DIVERGENCE,
        CROSS_ENTROPY,  # notebook 01
        LABEL_SMOOTHING,
        SHIFT_LABELS,
        PERPLEXITY,
        TIE_WEIGHTS,  # notebook 02
        PARAMETER_COUNT,
        MTP_TARGETS,  # notebook 03
        MTP_LOSS,
        DRAFT_AGREEMENT,  # notebook 03b
        TEMPERATURE_SOFTMAX,  # notebook 04
        GRAD_NORM,
        SOFTMAX_GRADIENT,  # notebook 05
        CHUNKED_CROSS_ENTROPY,
        NUM_ITEMS_IN_BATCH,  # notebook 06
        ACCUMULATED_LOSS,
    )
}

EXERCISES: dict[str, str] = {name: e.description for name, e in _ALL.items()}
"""Exercise name -> a one-line description of the function the learner writes."""

MISTAKES: dict[str, tuple[str, ...]] = {name: e.mistake_ids for name, e in _ALL.items()}
"""Exercise name -> the ids of the known mistakes it diagnoses."""


def check(
    name: str, fn: Callable[..., Any], lang: str = "en", *, verbose: bool = True
) -> CheckResult:
    """Grades the learner's ``fn`` for exercise ``name`` and prints the message.

    Args:
        name: A key of :data:`EXERCISES`.
        fn: The learner's function, with the signature ``EXERCISES[name]`` describes.
        lang: ``"en"`` or ``"de"``, the language of the message.
        verbose: Print ``result.message`` (default), as a notebook cell should.

    Returns:
        ``CheckResult(passed, message, mistake)``.

    Raises:
        ValueError: An unknown exercise ``name`` or ``lang`` (a mistake of the caller, not of
            ``fn``; ``fn`` itself never makes ``check`` raise).
    """
    if name not in _ALL:
        raise ValueError(f"unknown exercise {name!r}; the exercises are {sorted(_ALL)}")
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    result = _ALL[name].grade(fn, lang)
    if verbose:
        print(result.message)
    return result
