"""The grading engine behind :func:`aptt_edu.exercises.check`: run, compare, diagnose, explain.

A *function exercise* is graded in three passes over a handful of seeded cases:

1. **run** the learner's function on fresh copies of each case's inputs; ``NotImplementedError``,
   any other exception, and a result of the wrong type or shape end the grading with a message;
2. **compare** every result with the library's (the reference) — all equal: passed, after one
   gradient check where the result is a loss;
3. **diagnose** a wrong result by comparing it with deliberately wrong variants of the solution
   (the classic mistakes): the mistake whose variant the learner's results match on *every* case is
   named, with a hint. The cases are chosen so that the correct solution and each mistake differ on
   at least one of them.

Messages come in English and German (``MESSAGES`` here, the hints next to each exercise).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "Case",
    "CheckResult",
    "FunctionExercise",
    "Hints",
    "close",
    "error_result",
    "fail",
    "passed",
]

Hints = dict[str, dict[str, str]]  # mistake id -> {"en": ..., "de": ...}
LANGS = ("en", "de")

MESSAGES: Hints = {
    "passed": {
        "en": "✓ {name}: correct on all {n} test inputs ({cases}).",
        "de": "✓ {name}: richtig auf allen {n} Testeingaben ({cases}).",
    },
    "not_implemented": {
        "en": "✗ {name}: not solved yet — replace `raise NotImplementedError` with your code.",
        "de": "✗ {name}: noch nicht gelöst — ersetzen Sie `raise NotImplementedError` durch Ihren "
        "Code.",
    },
    "exception": {
        "en": "✗ {name}: your function raised {error} on the input {case}.",
        "de": "✗ {name}: Ihre Funktion hat bei der Eingabe {case} {error} ausgelöst.",
    },
    "wrong_shape": {
        "en": "✗ {name}: on the input {case} the result should be {expected}, got {got}.",
        "de": "✗ {name}: Bei der Eingabe {case} sollte das Ergebnis {expected} sein, erhalten: "
        "{got}.",
    },
    "not_finite": {
        "en": "✗ {name}: on the input {case} the result is {got}, where a finite number is "
        "defined. Look for a division by zero, a log of 0 or an exp that overflows.",
        "de": "✗ {name}: Bei der Eingabe {case} ist das Ergebnis {got}, obwohl dort eine endliche "
        "Zahl definiert ist. Suchen Sie nach einer Division durch null, einem log von 0 oder "
        "einem exp, das überläuft.",
    },
    "no_gradient": {
        "en": "✗ {name}: the values are right, but the result is not connected to the inputs' "
        "gradient. A loss must stay in the autograd graph: no `.item()`, `.detach()`, NumPy or "
        "`torch.no_grad()` on the way.",
        "de": "✗ {name}: Die Werte stimmen, aber das Ergebnis hängt nicht am Gradienten der "
        "Eingaben. Ein Verlust muss im Autograd-Graphen bleiben: kein `.item()`, `.detach()`, "
        "kein NumPy und kein `torch.no_grad()` auf dem Weg.",
    },
    "wrong_gradient": {
        "en": "✗ {name}: the values are right, but the gradient with respect to {what} differs "
        "from the library's by up to {diff:.3g}. Is part of the computation detached?",
        "de": "✗ {name}: Die Werte stimmen, aber der Gradient nach {what} weicht um bis zu "
        "{diff:.3g} von dem der Bibliothek ab. Ist ein Teil der Rechnung abgekoppelt?",
    },
    "wrong_value": {
        "en": "✗ {name}: wrong result on the input {case}: expected {expected}, got {got}. "
        "(No known mistake matches; compare your steps with the derivation above.)",
        "de": "✗ {name}: falsches Ergebnis bei der Eingabe {case}: erwartet {expected}, erhalten "
        "{got}. (Kein bekannter Fehler passt; vergleichen Sie Ihre Schritte mit der Herleitung "
        "oben.)",
    },
    "mistake": {
        "en": "✗ {name}: {hint}",
        "de": "✗ {name}: {hint}",
    },
}


@dataclass(frozen=True)
class CheckResult:
    """What :func:`~aptt_edu.exercises.check` found.

    Attributes:
        passed: The solution is correct on every test input.
        message: What was tested and, on failure, a concrete hint (in the requested language).
        mistake: The id of the diagnosed mistake (e.g. ``"sum_not_mean"``, ``"not_implemented"``,
            ``"wrong_shape"``); ``None`` if passed or if no known mistake matches.
    """

    passed: bool
    message: str
    mistake: str | None = None

    def __str__(self) -> str:
        return self.message


def passed(name: str, lang: str, cases: Sequence[str]) -> CheckResult:
    """A passed result naming the cases tested."""
    text = MESSAGES["passed"][lang].format(name=name, n=len(cases), cases="; ".join(cases))
    return CheckResult(True, text, None)


def fail(name: str, lang: str, key: str, mistake: str | None, **fields: Any) -> CheckResult:
    """A failed result with message ``MESSAGES[key]`` filled in."""
    return CheckResult(False, MESSAGES[key][lang].format(name=name, **fields), mistake)


def describe(x: Any) -> str:
    """A short description of a value for messages: its type and, for tensors, shape and dtype."""
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} ({str(x.dtype).removeprefix('torch.')})"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of {len(x)} items"
    return f"{type(x).__name__} {x!r}" if isinstance(x, (int, float)) else type(x).__name__


def is_finite(x: Any) -> bool:
    """Whether every number in ``x`` (tensor, number, or list of them) is finite."""
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x.detach()).all()) if x.is_floating_point() else True
    if isinstance(x, (list, tuple)):
        return all(is_finite(v) for v in x)
    return math.isfinite(float(x))


def close(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """``a`` equals ``b`` (tensors, numbers or lists of them); two non-finite results count as
    equal, so a variant that overflows matches a learner's result that overflows."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not isinstance(a, (list, tuple)) or not isinstance(b, (list, tuple)) or len(a) != len(b):
            return False
        return all(close(x, y, rtol, atol) for x, y in zip(a, b, strict=True))
    ta = torch.as_tensor(a.detach() if isinstance(a, torch.Tensor) else a, dtype=torch.float64)
    tb = torch.as_tensor(b.detach() if isinstance(b, torch.Tensor) else b, dtype=torch.float64)
    if ta.shape != tb.shape:
        return False
    if not (is_finite(ta) and is_finite(tb)):
        return not is_finite(ta) and not is_finite(tb)
    return bool(torch.allclose(ta, tb, rtol=rtol, atol=atol))


def show(x: Any) -> str:
    """A value as a message shows it: a number with 6 significant digits, else a description."""
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        return f"{x.item():.6g}"
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:.6g}"
    if isinstance(x, torch.Tensor) and x.numel() <= 12:
        return str(x.detach().tolist())
    return describe(x)


@dataclass(frozen=True)
class Case:
    """One test input: its arguments and a short label in both languages ("with padding")."""

    label: dict[str, str]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def fresh(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Deep copies, so a function that writes into its inputs cannot spoil the next call."""
        return copy.deepcopy(self.args), copy.deepcopy(self.kwargs)

    def apply(self, fn: Callable[..., Any]) -> Any:
        """``fn`` on fresh copies of this case's arguments (for the reference and the variants)."""
        args, kwargs = self.fresh()
        return fn(*args, **kwargs)


Shape = Callable[[Any, Any], str | None]  # (result, reference result) -> problem or None


def same_kind(result: Any, expected: Any) -> str | None:
    """``None`` if ``result`` has the type and shape of ``expected``, else what was expected."""
    if isinstance(expected, torch.Tensor):
        want = f"a tensor of shape {tuple(expected.shape)}"
        if not isinstance(result, torch.Tensor) or result.shape != expected.shape:
            return want
        if expected.is_floating_point() != result.is_floating_point():
            return f"{want} with {'floating-point' if expected.is_floating_point() else 'integer'}"
        return None
    if isinstance(expected, float):
        ok = isinstance(result, (int, float)) or (
            isinstance(result, torch.Tensor) and result.numel() == 1
        )
        return None if ok and not isinstance(result, bool) else "a number (float)"
    if isinstance(expected, list):
        want = f"a list of {len(expected)} items"
        if not isinstance(result, (list, tuple)) or len(result) != len(expected):
            return want
        for r, e in zip(result, expected, strict=True):
            problem = same_kind(r, e)
            if problem is not None:
                return f"{want}, each {problem}"
        return None
    return None


@dataclass(frozen=True)
class FunctionExercise:
    """An exercise whose solution is a function of tensors; graded as the module docstring says.

    Attributes:
        name: The exercise's name in :data:`~aptt_edu.exercises.EXERCISES`.
        description: One line, English.
        cases: Builds the seeded test inputs.
        reference: The library's answer for a case's arguments.
        mistakes: Mistake id -> a deliberately wrong solution with the learner's signature (or a
            tuple of them, forms of the same mistake).
        hints: Mistake id -> the hint in each language.
        grad_inputs: Positions of the arguments whose gradient is checked (losses), or ().
    """

    name: str
    description: str
    cases: Callable[[], list[Case]]
    reference: Callable[..., Any]
    mistakes: dict[str, Callable[..., Any] | tuple[Callable[..., Any], ...]]
    hints: Hints
    grad_inputs: tuple[int, ...] = ()

    @property
    def mistake_ids(self) -> tuple[str, ...]:
        """The known mistakes this exercise diagnoses: each has a hint."""
        return tuple(self.hints)

    def grade(self, fn: Callable[..., Any], lang: str) -> CheckResult:
        cases = self.cases()
        labels = [c.label[lang] for c in cases]
        results, expected = [], []
        for case, label in zip(cases, labels, strict=True):
            args, kwargs = case.fresh()
            outcome = call(fn, args, kwargs)
            if isinstance(outcome, BaseException):
                return error_result(self.name, lang, outcome, label)
            want = case.apply(self.reference)
            problem = same_kind(outcome, want)
            if problem is not None:
                return fail(self.name, lang, "wrong_shape", "wrong_shape", case=label,
                            expected=problem, got=describe(outcome))  # fmt: skip
            results.append(outcome)
            expected.append(want)
        wrong = [
            i for i, (r, e) in enumerate(zip(results, expected, strict=True)) if not close(r, e)
        ]
        if not wrong:
            return self._gradient_check(fn, cases[0], lang) or passed(self.name, lang, labels)
        for mistake, variants in self.mistakes.items():
            for variant in variants if isinstance(variants, tuple) else (variants,):
                guesses = [c.apply(variant) for c in cases]
                if all(close(r, g) for r, g in zip(results, guesses, strict=True)):
                    hint = self.hints[mistake][lang]
                    return fail(self.name, lang, "mistake", mistake, hint=hint)
        i = wrong[0]
        if not is_finite(results[i]):
            return fail(self.name, lang, "not_finite", "not_finite", case=labels[i],
                        got=show(results[i]))  # fmt: skip
        return fail(self.name, lang, "wrong_value", None, case=labels[i],
                    expected=show(expected[i]), got=show(results[i]))  # fmt: skip

    def _gradient_check(self, fn: Callable[..., Any], case: Case, lang: str) -> CheckResult | None:
        """Compares the gradients of the learner's loss with the library's (losses only)."""
        if not self.grad_inputs:
            return None
        grads = []
        for f in (fn, self.reference):
            args, kwargs = case.fresh()
            leaves = [args[i].detach().requires_grad_() for i in self.grad_inputs]
            args = tuple(
                leaves[self.grad_inputs.index(i)] if i in self.grad_inputs else a
                for i, a in enumerate(args)
            )
            out = call(f, args, kwargs)
            if isinstance(out, BaseException) or not isinstance(out, torch.Tensor):
                return None  # already graded on values; nothing more to say
            if not out.requires_grad:
                return fail(self.name, lang, "no_gradient", "no_gradient")
            grads.append(torch.autograd.grad(out.sum(), leaves, allow_unused=True))
        for i, (g, r) in enumerate(zip(grads[0], grads[1], strict=True)):
            diff = math.inf if g is None else float((g.double() - r.double()).abs().max())
            if diff > 1e-4:
                what = f"argument {self.grad_inputs[i] + 1}"
                return fail(self.name, lang, "wrong_gradient", "wrong_gradient", what=what,
                            diff=diff)  # fmt: skip
        return None


def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)``, or the exception it raised (never re-raised)."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:  # the learner's code may fail in any way; we report it
        return error


def error_result(name: str, lang: str, error: BaseException, case: str) -> CheckResult:
    """The failed result for an exception raised by the learner's code on the input ``case``."""
    if isinstance(error, NotImplementedError):
        return fail(name, lang, "not_implemented", "not_implemented")
    text = f"{type(error).__name__}: {error}".strip().rstrip(":")
    return fail(name, lang, "exception", "exception", error=f"`{text[:300]}`", case=case)
