"""`aptt_edu.exercises`: correct solutions pass, every known mistake is named, nothing raises.

For each exercise: two independently written correct solutions (written here, not taken from the
library), one implementation of each listed mistake, and the generic failures (not implemented, an
exception, a wrong shape, a detached loss). Every message exists in English and German.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aptt_edu.exercises import EXERCISES, MISTAKES, CheckResult, check

# --------------------------------------------------------------------------------------------------
# correct solutions, two per exercise, written independently of the library
# --------------------------------------------------------------------------------------------------


def ce_gather(logits, labels, ignore_index=-100):  # type: ignore[no-untyped-def]
    valid = labels != ignore_index
    log_p = logits[valid].log_softmax(-1)
    return -log_p.gather(1, labels[valid][:, None]).mean()


def ce_onehot(logits, labels, ignore_index=-100):  # type: ignore[no-untyped-def]
    V = logits.shape[-1]
    mask = (labels != ignore_index).float()
    safe = labels.clamp(min=0) * (labels != ignore_index)
    m = logits.max(-1, keepdim=True).values.detach()
    lse = m.squeeze(-1) + torch.log(torch.exp(logits - m).sum(-1))
    z_y = (logits * F.one_hot(safe, V)).sum(-1)
    return ((lse - z_y) * mask).sum() / mask.sum()


def ls_torch(logits, labels, epsilon, ignore_index=-100):  # type: ignore[no-untyped-def]
    V = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, V),
        labels.reshape(-1),
        ignore_index=ignore_index,
        label_smoothing=epsilon,
    )


def ls_by_hand(logits, labels, epsilon, ignore_index=-100):  # type: ignore[no-untyped-def]
    valid = labels != ignore_index
    log_p = logits[valid].log_softmax(-1)
    nll = -log_p.gather(1, labels[valid][:, None]).squeeze(1)
    uniform = -log_p.mean(-1)
    return ((1 - epsilon) * nll + epsilon * uniform).mean()


def shift_full(input_ids, ignore_index=-100):  # type: ignore[no-untyped-def]
    labels = torch.full_like(input_ids, ignore_index)
    labels[:, :-1] = input_ids[:, 1:]
    return labels


def shift_cat(input_ids, ignore_index=-100):  # type: ignore[no-untyped-def]
    pad = torch.full_like(input_ids[:, :1], ignore_index)
    return torch.cat([input_ids[:, 1:], pad], dim=1)


def ppl_sums(nll_sums, token_counts):  # type: ignore[no-untyped-def]
    import math

    return math.exp(sum(nll_sums) / sum(token_counts))


def ppl_tensor(nll_sums, token_counts):  # type: ignore[no-untyped-def]
    return torch.tensor(nll_sums).sum().div(torch.tensor(token_counts).sum()).exp()


def tie_assign(embedding, head):  # type: ignore[no-untyped-def]
    head.weight = embedding.weight


def tie_reverse(embedding, head):  # type: ignore[no-untyped-def]
    embedding.weight = head.weight


def targets_slice(labels, k):  # type: ignore[no-untyped-def]
    return labels[:, k:]


def targets_narrow(labels, k):  # type: ignore[no-untyped-def]
    return labels.narrow(1, k, labels.shape[1] - k).clone()


def mtp_loss_a(main_logits, mtp_logits, labels, mtp_lambda):  # type: ignore[no-untyped-def]
    total = ce_gather(main_logits, labels)
    for k, z in enumerate(mtp_logits, start=1):
        total = total + mtp_lambda * ce_gather(z, labels[:, k:])
    return total


def mtp_loss_b(main_logits, mtp_logits, labels, mtp_lambda):  # type: ignore[no-untyped-def]
    terms = [ls_torch(z, labels[:, k:], 0.0) for k, z in enumerate(mtp_logits, start=1)]
    return ls_torch(main_logits, labels, 0.0) + mtp_lambda * torch.stack(terms).sum()


def temp_a(logits, temperature):  # type: ignore[no-untyped-def]
    return F.softmax(logits / temperature, dim=1)


def temp_b(logits, temperature):  # type: ignore[no-untyped-def]
    e = torch.exp((logits - logits.max(-1, keepdim=True).values) / temperature)
    return e / e.sum(-1, keepdim=True)


def norm_a(grads):  # type: ignore[no-untyped-def]
    return torch.sqrt(sum((g**2).sum() for g in grads))


def norm_b(grads):  # type: ignore[no-untyped-def]
    return torch.cat([g.flatten() for g in grads]).norm()


def chunked_a(hidden, weight, labels, chunk_size):  # type: ignore[no-untyped-def]
    total, n = hidden.new_zeros(()), (labels != -100).sum()
    for i in range(0, hidden.shape[0], chunk_size):
        z = hidden[i : i + chunk_size] @ weight.T
        total = total + F.cross_entropy(z, labels[i : i + chunk_size], reduction="sum")
    return total / n


def chunked_b(hidden, weight, labels, chunk_size):  # type: ignore[no-untyped-def]
    parts = []
    for h, y in zip(hidden.split(chunk_size), labels.split(chunk_size), strict=True):
        valid = y != -100
        log_p = (h[valid] @ weight.T).log_softmax(-1)
        parts.append(-log_p.gather(1, y[valid][:, None]).sum())
    return torch.stack(parts).sum() / (labels != -100).sum()


def acc_a(micro_logits, micro_labels):  # type: ignore[no-untyped-def]
    n = sum((y != -100).sum() for y in micro_labels)
    return [
        ls_torch(z, y, 0.0) * (y != -100).sum() / n
        for z, y in zip(micro_logits, micro_labels, strict=True)
    ]


def acc_b(micro_logits, micro_labels):  # type: ignore[no-untyped-def]
    n = sum(int((y != -100).sum()) for y in micro_labels)
    V = micro_logits[0].shape[-1]
    return [
        F.cross_entropy(z.reshape(-1, V), y.reshape(-1), reduction="sum") / n
        for z, y in zip(micro_logits, micro_labels, strict=True)
    ]


def count_params(model):  # type: ignore[no-untyped-def]
    return sum(p.numel() for p in model.parameters())


def count_unique_storage(model):  # type: ignore[no-untyped-def]
    seen = {p.data_ptr(): p.numel() for p in model.state_dict().values()}
    return sum(seen.values())


def grad_softmax(logits, labels):  # type: ignore[no-untyped-def]
    return logits.softmax(-1) - F.one_hot(labels, logits.shape[-1]).float()


def grad_by_hand(logits, labels):  # type: ignore[no-untyped-def]
    e = torch.exp(logits - logits.max(-1, keepdim=True).values)
    p = e / e.sum(-1, keepdim=True)
    p[torch.arange(len(labels)), labels] -= 1
    return p


def items_sum(micro_labels):  # type: ignore[no-untyped-def]
    return int(sum((y != -100).sum() for y in micro_labels))


def items_cat(micro_labels):  # type: ignore[no-untyped-def]
    return torch.cat([y.flatten() for y in micro_labels]).ne(-100).sum().item()


def entropy_xlogy(p):  # type: ignore[no-untyped-def]
    return -torch.special.xlogy(p, p).sum(-1)


def entropy_masked(p):  # type: ignore[no-untyped-def]
    logp = torch.where(p > 0, p.log(), torch.zeros_like(p))
    return -(p * logp).sum(-1)


def kl_xlogy(p, q):  # type: ignore[no-untyped-def]
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def kl_via_cross_entropy(p, q):  # type: ignore[no-untyped-def]
    return -(p * q.log()).sum(-1) - entropy_masked(p)


def agreement_mask(d, m, y):  # type: ignore[no-untyped-def]
    counted = y[:, 1:] != -100
    return (d.argmax(-1) == m[:, 1:].argmax(-1))[counted].float().mean()


def agreement_count(d, m, y):  # type: ignore[no-untyped-def]
    counted = (y[:, 1:] != -100).sum().item()
    return ((d.argmax(-1) == m.argmax(-1)[:, 1:]) & (y[:, 1:] != -100)).sum().item() / counted


CORRECT: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "entropy": (entropy_xlogy, entropy_masked),
    "kl_divergence": (kl_xlogy, kl_via_cross_entropy),
    "cross_entropy": (ce_gather, ce_onehot),
    "label_smoothing": (ls_torch, ls_by_hand),
    "shift_labels": (shift_full, shift_cat),
    "perplexity": (ppl_sums, ppl_tensor),
    "tie_weights": (tie_assign, tie_reverse),
    "mtp_targets": (targets_slice, targets_narrow),
    "mtp_loss": (mtp_loss_a, mtp_loss_b),
    "temperature_softmax": (temp_a, temp_b),
    "grad_norm": (norm_a, norm_b),
    "chunked_cross_entropy": (chunked_a, chunked_b),
    "accumulated_loss": (acc_a, acc_b),
    "parameter_count": (count_params, count_unique_storage),
    "softmax_gradient": (grad_softmax, grad_by_hand),
    "num_items_in_batch": (items_sum, items_cat),
    "draft_agreement": (agreement_mask, agreement_count),
}

# --------------------------------------------------------------------------------------------------
# one implementation of each known mistake
# --------------------------------------------------------------------------------------------------


def _nll_all(logits, labels, ignore_index):  # type: ignore[no-untyped-def]
    V = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, V), labels.reshape(-1), ignore_index=ignore_index, reduction="none"
    )


def _chunked_naive(hidden, weight, labels, chunk_size):  # type: ignore[no-untyped-def]
    return F.cross_entropy(hidden @ weight.T, labels)


def _tie_copy(embedding, head):  # type: ignore[no-untyped-def]
    head.weight = nn.Parameter(embedding.weight.detach().clone())


def _tie_data(embedding, head):  # type: ignore[no-untyped-def]
    head.weight.data = embedding.weight.data


def _tie_nothing(embedding, head):  # type: ignore[no-untyped-def]
    return None


WRONG: dict[tuple[str, str], Callable[..., Any]] = {
    ("entropy", "log2_not_ln"): lambda p: -(torch.special.xlogy(p, p) / math.log(2)).sum(-1),
    ("entropy", "missing_minus"): lambda p: torch.special.xlogy(p, p).sum(-1),
    ("entropy", "nan_at_zero"): lambda p: -(p * torch.log(p)).sum(-1),
    ("kl_divergence", "reversed"): lambda p, q: kl_xlogy(q, p),
    ("kl_divergence", "cross_entropy_not_kl"): lambda p, q: -(p * q.log()).sum(-1),
    ("cross_entropy", "mean_includes_ignored"): lambda z, y, ignore_index=-100: _nll_all(
        z, y, ignore_index
    ).mean(),
    ("cross_entropy", "sum_not_mean"): lambda z, y, ignore_index=-100: _nll_all(
        z, y, ignore_index
    ).sum(),
    ("cross_entropy", "no_max_shift"): lambda z, y, ignore_index=-100: (
        torch.log(torch.exp(z).sum(-1)) - z.gather(-1, y.clamp(min=0)[..., None]).squeeze(-1)
    )[y != ignore_index].mean(),
    ("label_smoothing", "smoothing_excludes_target"): lambda z, y, eps, ignore_index=-100: (
        -(
            (
                F.one_hot(y[y != ignore_index], z.shape[-1]) * (1 - eps - eps / (z.shape[-1] - 1))
                + eps / (z.shape[-1] - 1)
            )
            * z[y != ignore_index].log_softmax(-1)
        )
        .sum(-1)
        .mean()
    ),
    ("label_smoothing", "missing_uniform_term"): lambda z, y, eps, ignore_index=-100: (
        (1 - eps) * ce_gather(z, y, ignore_index)
    ),
    ("shift_labels", "shifted_wrong_way"): lambda ids, ignore_index=-100: torch.cat(
        [torch.full_like(ids[:, :1], ignore_index), ids[:, :-1]], dim=1
    ),
    ("shift_labels", "last_not_ignored"): lambda ids, ignore_index=-100: ids.roll(-1, 1),
    ("perplexity", "mean_of_perplexities"): lambda s, n: (
        sum(torch.tensor(a / b).exp().item() for a, b in zip(s, n, strict=True)) / len(s)
    ),
    ("tie_weights", "copied_not_shared"): _tie_copy,
    ("tie_weights", "shared_data_not_parameter"): _tie_data,
    ("tie_weights", "not_tied"): _tie_nothing,
    ("mtp_targets", "wrong_end"): lambda labels, k: labels[:, :-k],
    ("mtp_loss", "misaligned_targets"): lambda main, mtp, y, lam: (
        ce_gather(main, y) + lam * sum(ce_gather(z, y[:, :-k]) for k, z in enumerate(mtp, start=1))
    ),
    ("mtp_loss", "lambda_over_depth"): lambda main, mtp, y, lam: (
        ce_gather(main, y)
        + lam / len(mtp) * sum(ce_gather(z, y[:, k:]) for k, z in enumerate(mtp, start=1))
    ),
    ("temperature_softmax", "multiplied_by_temperature"): lambda z, t: (z * t).softmax(-1),
    ("temperature_softmax", "wrong_axis"): lambda z, t: (z / t).softmax(0),
    ("grad_norm", "sum_of_norms"): lambda grads: sum(g.norm() for g in grads),
    ("grad_norm", "mean_of_norms"): lambda grads: sum(g.norm() for g in grads) / len(grads),
    ("chunked_cross_entropy", "mean_of_chunk_means"): lambda h, w, y, c: torch.stack(
        [F.cross_entropy(h[i : i + c] @ w.T, y[i : i + c]) for i in range(0, len(y), c)]
    ).mean(),
    ("chunked_cross_entropy", "materialises_logits"): _chunked_naive,
    ("parameter_count", "state_dict_counts_twice"): lambda m: sum(
        t.numel() for t in m.state_dict().values()
    ),
    ("softmax_gradient", "sign_flipped"): lambda z, y: F.one_hot(y, z.shape[-1]) - z.softmax(-1),
    ("softmax_gradient", "missing_onehot"): lambda z, y: z.softmax(-1),
    ("num_items_in_batch", "counts_ignored"): lambda ys: sum(y.numel() for y in ys),
    ("num_items_in_batch", "one_micro_batch"): lambda ys: int((ys[-1] != -100).sum()),
    ("draft_agreement", "same_position"): lambda d, m, y: (
        (d.argmax(-1) == m[:, :-1].argmax(-1))[y[:, 1:] != -100].float().mean()
    ),
    ("draft_agreement", "against_target"): lambda d, m, y: (
        (d.argmax(-1) == y[:, 1:])[y[:, 1:] != -100].float().mean()
    ),
    ("draft_agreement", "counts_ignored"): lambda d, m, y: (
        (d.argmax(-1) == m[:, 1:].argmax(-1)).float().mean()
    ),
    ("accumulated_loss", "mean_of_means"): lambda zs, ys: [
        ce_gather(z, y) for z, y in zip(zs, ys, strict=True)
    ],
}


def test_every_exercise_has_solutions_and_every_mistake_an_implementation() -> None:
    required = {
        "cross_entropy", "label_smoothing", "shift_labels", "mtp_targets", "mtp_loss",
        "tie_weights", "perplexity", "accumulated_loss", "chunked_cross_entropy",
    }  # fmt: skip
    assert required <= set(EXERCISES)
    assert set(CORRECT) == set(EXERCISES) == set(MISTAKES)
    assert {(n, m) for n, ms in MISTAKES.items() for m in ms} == set(WRONG)
    assert all(isinstance(d, str) and d for d in EXERCISES.values())


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_solutions_pass(name: str, lang: str) -> None:
    for fn in CORRECT[name]:
        result = check(name, fn, lang=lang, verbose=False)
        assert isinstance(result, CheckResult)
        assert result.passed, (fn.__name__, result.message)
        assert result.mistake is None and result.message.startswith("✓")


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize(("name", "mistake"), sorted(WRONG))
def test_known_mistakes_are_named(name: str, mistake: str, lang: str) -> None:
    result = check(name, WRONG[(name, mistake)], lang=lang, verbose=False)
    assert not result.passed
    assert result.mistake == mistake, result.message
    assert len(result.message) > 40


def test_hints_differ_between_languages() -> None:
    for (name, mistake), fn in WRONG.items():
        en = check(name, fn, lang="en", verbose=False).message
        de = check(name, fn, lang="de", verbose=False).message
        assert en != de, (name, mistake)


def _raise_not_implemented(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def _raise_error(*args: Any, **kwargs: Any) -> Any:
    return [1, 2][5]  # IndexError inside the learner's code


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_generic_failures_never_raise(name: str, lang: str) -> None:
    r = check(name, _raise_not_implemented, lang=lang, verbose=False)
    assert (r.passed, r.mistake) == (False, "not_implemented")
    r = check(name, _raise_error, lang=lang, verbose=False)
    assert (r.passed, r.mistake) == (False, "exception")
    assert "IndexError" in r.message


@pytest.mark.parametrize(
    ("name", "fn", "needle"),
    [
        (
            "cross_entropy",
            lambda z, y, ignore_index=-100: ce_gather(z, y, ignore_index)[None],
            "()",
        ),
        (
            "shift_labels",
            lambda ids, ignore_index=-100: (ids, shift_full(ids, ignore_index)),
            "tuple",
        ),
        ("mtp_targets", lambda labels, k: labels[:, k + 1 :], "(2, 5)"),
        ("perplexity", lambda s, n: "140", "float"),
        ("accumulated_loss", lambda zs, ys: acc_a(zs, ys)[:1], "list of 2"),
        ("temperature_softmax", lambda z, t: z.softmax(-1).T, "(3, 7)"),
    ],
)
def test_wrong_shape_names_expected_and_received(name: str, fn: Any, needle: str) -> None:
    r = check(name, fn, verbose=False)
    assert (r.passed, r.mistake) == (False, "wrong_shape"), r.message
    assert needle in r.message


def test_detached_loss_is_reported() -> None:
    r = check("cross_entropy", lambda z, y, ignore_index=-100: ce_gather(z, y, ignore_index).detach(),
              verbose=False)  # fmt: skip
    assert r.mistake == "no_gradient"
    r = check("accumulated_loss", lambda zs, ys: [x.detach() for x in acc_a(zs, ys)], verbose=False)
    assert r.mistake == "no_gradient"


def test_nan_where_a_number_is_defined_is_reported() -> None:
    r = check(
        "cross_entropy", lambda z, y, ignore_index=-100: z.sum() * float("nan"), verbose=False
    )
    assert not r.passed and r.mistake == "not_finite"


def test_unknown_wrong_answer_names_the_input_and_numbers() -> None:
    r = check("cross_entropy", lambda z, y, ignore_index=-100: 1.01 * ce_gather(z, y, ignore_index),
              verbose=False)  # fmt: skip
    assert not r.passed and r.mistake is None
    assert "expected" in r.message and "got" in r.message


def test_check_prints_and_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    check("perplexity", ppl_sums)
    assert capsys.readouterr().out.startswith("✓ perplexity")
    with pytest.raises(ValueError, match="unknown exercise"):
        check("no_such_exercise", ppl_sums)
    with pytest.raises(ValueError, match="lang"):
        check("perplexity", ppl_sums, lang="fr")


def test_learner_writing_into_inputs_does_not_spoil_later_cases() -> None:
    def in_place(logits, labels, ignore_index=-100):  # type: ignore[no-untyped-def]
        out = ce_gather(logits, labels, ignore_index)
        labels.fill_(0)  # vandalises its input after computing the right answer
        return out

    assert check("cross_entropy", in_place, verbose=False).passed
