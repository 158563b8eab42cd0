"""Tests of aptt_edu.data: the exact entropy floors against brute force, sampling, tokenizer, files."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from aptt_edu.data import (
    CharTokenizer,
    ToyLanguage,
    get_batch,
    make_inputs_and_labels,
    read_text_file,
    text_data,
    toy_data,
)

GERMAN = "Größe, Übermaß und Äpfel: süße Öle für ÄÖÜäöüß — ẞ.\nZwölf Boxkämpfer jagen Viktor quer über den Sylter Deich.\n"


def _joint(lang: ToyLanguage, n: int) -> dict[tuple[int, ...], float]:
    """Exact probability of every length-``n`` sequence: pi(x0, x1) * prod_t P(x_t | x_{t-2}, x_{t-1})."""
    pi, P = lang.stationary_dist.tolist(), lang.transition.tolist()
    probs = {}
    for seq in itertools.product(range(lang.vocab_size), repeat=n):
        p = pi[seq[0]][seq[1]]
        for t in range(2, n):
            p *= P[seq[t - 2]][seq[t - 1]][seq[t]]
        probs[seq] = p
    return probs


def _entropy(dist: dict[tuple[int, ...], float]) -> float:
    return -sum(p * math.log(p) for p in dist.values() if p > 0)


def _marginal(joint: dict[tuple[int, ...], float], keep: list[int]) -> dict[tuple[int, ...], float]:
    out: dict[tuple[int, ...], float] = {}
    for seq, p in joint.items():
        key = tuple(seq[i] for i in keep)
        out[key] = out.get(key, 0.0) + p
    return out


def test_floors_match_brute_force_enumeration() -> None:
    # Independent route: block entropies of exactly enumerated sequences (3^6 of them).
    # H = H(X_5 | X_0..X_4) = H(X_0..X_5) - H(X_0..X_4)
    # H2 = H(X_5 | X_0..X_3) = H(X_0..X_3, X_5) - H(X_0..X_3)
    lang = ToyLanguage(vocab_size=3, support=2, epsilon=0.1, seed=3)
    joint = _joint(lang, 6)
    assert sum(joint.values()) == pytest.approx(1.0, abs=1e-12)
    h_rate = _entropy(joint) - _entropy(_marginal(joint, [0, 1, 2, 3, 4]))
    h_two = _entropy(_marginal(joint, [0, 1, 2, 3, 5])) - _entropy(_marginal(joint, [0, 1, 2, 3]))
    assert lang.entropy_rate == pytest.approx(h_rate, abs=1e-10)
    assert lang.mtp_entropy == pytest.approx(h_two, abs=1e-10)
    assert lang.entropy_rate < lang.mtp_entropy
    # stationarity: the pair (X_3, X_4) has the same distribution as (X_0, X_1)
    later = _marginal(joint, [3, 4])
    for (a, b), p in later.items():
        assert p == pytest.approx(float(lang.stationary_dist[a, b]), abs=1e-12)


def test_stationary_distribution_is_a_fixed_point() -> None:
    lang = ToyLanguage(vocab_size=12, seed=1)
    pi = lang.stationary_dist
    assert pi.shape == (12, 12)
    assert float(pi.sum()) == pytest.approx(1.0, abs=1e-12)
    assert bool((pi > 0).all())  # epsilon > 0: every context is recurrent
    step = torch.einsum("ab,abx->bx", pi, lang.transition)
    assert torch.allclose(step, pi, atol=1e-15, rtol=0)
    assert torch.allclose(lang.transition.sum(-1), torch.ones(12, 12, dtype=torch.float64))


def test_monte_carlo_loss_of_true_chain_matches_entropy_rate() -> None:
    # The sampler starts from pi, so the true chain's mean loss on samples estimates H unbiasedly.
    lang = ToyLanguage(vocab_size=12, seed=0)
    ids = lang.sample(2000, 40, torch.Generator().manual_seed(0))
    nll = lang.nll(ids)  # (2000, 38)
    stderr = float(nll.mean(dim=1).std()) / math.sqrt(len(ids))  # rows are independent
    assert abs(float(nll.mean()) - lang.entropy_rate) < 5 * stderr
    # the first context of each row is drawn from pi
    first = torch.bincount(ids[:, 0] * 12 + ids[:, 1], minlength=144).double() / len(ids)
    assert float((first - lang.stationary_dist.reshape(-1)).abs().sum()) < 0.25


def test_language_and_splits_are_seeded() -> None:
    a, b = toy_data(seq_len=16, n_train=64, n_val=32, seed=5), toy_data(16, 64, 32, seed=5)
    assert torch.equal(a.train, b.train) and torch.equal(a.val, b.val)
    assert a.entropy_rate == b.entropy_rate
    assert not torch.equal(a.train[:32], a.val)  # the splits use different seeds
    c = toy_data(seq_len=16, n_train=64, n_val=32, seed=6)
    assert c.entropy_rate != a.entropy_rate
    assert a.train.shape == (64, 16) and a.train.dtype == torch.int64
    assert a.val_floor is not None and abs(a.val_floor - a.entropy_rate) < 0.2  # type: ignore[operator]


def test_toy_language_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        ToyLanguage(vocab_size=1)
    with pytest.raises(ValueError, match="support"):
        ToyLanguage(vocab_size=4, support=5)
    with pytest.raises(ValueError, match="epsilon"):
        ToyLanguage(epsilon=0.0)


def test_inputs_and_labels_follow_the_label_convention() -> None:
    rows = torch.tensor([[3, 1, 4, 1, 5]])
    inputs, labels = make_inputs_and_labels(rows, context_warmup=1)
    assert inputs.tolist() == [[3, 1, 4, 1, 5]]
    assert labels.tolist() == [[-100, 4, 1, 5, -100]]  # first: context too short; last: no target
    data = toy_data(seq_len=8, n_train=16, n_val=4, vocab_size=6)
    x, y = get_batch(data, 5, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(y[:, 1:-1], x[:, 2:])


def test_char_tokenizer_round_trips_german() -> None:
    tok = CharTokenizer.from_text(GERMAN)
    ids = tok.encode(GERMAN)
    assert len(ids) == len(GERMAN)  # one id per character: ä, ß, ẞ are single tokens
    assert tok.decode(ids) == GERMAN
    assert tok.decode(torch.tensor(ids)) == GERMAN
    assert all(c in tok.chars for c in "äöüÄÖÜßẞ")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("€")


def test_text_data_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "de.txt"
    path.write_text(GERMAN * 20, encoding="utf-8")
    data = text_data(path, seq_len=16)
    assert data.entropy_rate is None and data.context_warmup == 0
    assert data.train.shape[1] == data.val.shape[1] == 16
    text = GERMAN * 20
    assert data.decode(data.train[0]) == text[:16]
    assert data.decode(data.val.reshape(-1)) in text


def test_unusable_text_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_text_file(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        text_data(empty)
    short = tmp_path / "short.txt"
    short.write_text("Moin", encoding="utf-8")
    with pytest.raises(ValueError, match="only 4 characters"):
        text_data(short, seq_len=16)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Größe".encode("latin-1"))
    with pytest.raises(ValueError, match="UTF-8"):
        read_text_file(latin1)
