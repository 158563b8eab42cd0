"""Tests of aptt_edu.training: the loop, its history, the CLI end to end and its error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from aptt_edu.cli import main
from aptt_edu.data import make_inputs_and_labels
from aptt_edu.training import (
    VARIANTS,
    History,
    TrainConfig,
    check_config,
    compare,
    evaluate,
    load_data,
    lr_at,
    summary_markdown,
    train,
)

# Small enough for a few steps in well under a second.
TINY = dict(
    seq_len=16, toy_vocab_size=6, n_train_rows=64, n_val_rows=16, n_layer=1, n_head=2,
    d_model=16, batch_size=4, eval_every=3, progress=False,
)  # fmt: skip
TINY_FLAGS = [
    "--seq-len",
    "16",
    "--d-model",
    "16",
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--batch-size",
    "4",
    "--eval-every",
    "5",
]
GERMAN = "Über Größe und Maß: süße Äpfel, Öl, Übelkeit — ß. " * 8


def _tiny(**kw: object) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})  # type: ignore[arg-type]


def test_history_records_every_step_and_validation() -> None:
    h = train(_tiny(steps=7, mtp="simple", mtp_depth=2))
    assert h.step == list(range(1, 8))
    for series in (h.train_loss, h.main_loss, h.grad_norm, h.lr, h.tokens_per_s, h.wall_time):
        assert len(series) == 7 and all(isinstance(x, float) for x in series)
    assert len(h.mtp_loss) == 2 and all(len(ls) == 7 for ls in h.mtp_loss)
    assert h.val_step == [3, 6, 7]  # every eval_every steps and after the last
    assert len(h.val_loss) == len(h.val_perplexity) == len(h.val_accuracy) == 3
    # perplexity is exp(plain validation cross-entropy)
    assert h.val_perplexity[-1] == pytest.approx(
        torch.tensor(h.val_loss[-1]).exp().item(), rel=1e-5
    )
    # total = main + λ/D Σ_k mtp_k
    expected = h.main_loss[0] + 0.3 / 2 * (h.mtp_loss[0][0] + h.mtp_loss[1][0])
    assert h.train_loss[0] == pytest.approx(expected, rel=1e-5)
    assert h.n_params > h.n_params_inference
    assert h.entropy_rate is not None and h.mtp_entropy is not None
    assert h.model is not None and not h.model.training


def test_training_is_deterministic_for_a_seed() -> None:
    a, b = train(_tiny(steps=4)), train(_tiny(steps=4))
    assert a.train_loss == b.train_loss and a.val_loss == b.val_loss
    c = train(_tiny(steps=4, seed=1))
    assert c.train_loss != a.train_loss
    before = torch.get_num_threads()
    train(_tiny(steps=1, threads=before + 1))
    assert torch.get_num_threads() == before  # the run's thread count is restored


def test_validation_loss_is_plain_cross_entropy_under_label_smoothing() -> None:
    h = train(_tiny(steps=2, label_smoothing=0.1))
    assert h.model is not None and h.dataset is not None
    inputs, labels = make_inputs_and_labels(h.dataset.val, h.dataset.context_warmup)
    with torch.no_grad():
        logits, _ = h.model(inputs)  # (N, T, V)
    V = logits.shape[-1]
    plain = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    smoothed = F.cross_entropy(
        logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100, label_smoothing=0.1
    )
    assert h.val_loss[-1] == pytest.approx(plain.item(), abs=1e-5)
    assert evaluate(h.model, h.dataset)["val_loss"] == pytest.approx(plain.item(), abs=1e-5)
    assert smoothed.item() != pytest.approx(plain.item(), abs=1e-5)  # training loss differs


def test_history_json_round_trip(tmp_path: Path) -> None:
    h = train(_tiny(steps=3))
    h.save(tmp_path / "h" / "history.json")
    raw = json.loads((tmp_path / "h" / "history.json").read_text(encoding="utf-8"))
    assert raw["config"]["steps"] == 3 and "model" not in raw
    back = History.load(tmp_path / "h" / "history.json")
    assert back.train_loss == h.train_loss and back.val_loss == h.val_loss
    assert back.step_time == pytest.approx(h.step_time)


def test_learning_rate_schedule() -> None:
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1e-2)
    assert lr_at(1, cfg) == pytest.approx(1e-3)
    assert lr_at(10, cfg) == pytest.approx(1e-2)
    assert lr_at(100, cfg) == pytest.approx(1e-3)  # cosine down to lr / 10
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 100))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": -1}, "steps must be a positive integer"),
        ({"mtp_lambda": -0.1}, "mtp_lambda must be >= 0"),
        ({"label_smoothing": 1.5}, "label_smoothing"),  # the loss's rule: [0, 1]
        ({"mtp": "triple"}, "mtp must be one of"),
        ({"n_head": 3}, "must divide"),
    ],
)
def test_check_config_rejects(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_config(_tiny(**change))


def test_data_longer_than_the_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="seq_len"):
        train(_tiny(seq_len=8), data=load_data(_tiny(seq_len=16)))


def test_compare_writes_histories_plot_and_summary(tmp_path: Path) -> None:
    hists = compare(tmp_path, steps=2, config=_tiny(), variants=("baseline", "deepseek_mtp"))
    assert list(hists) == ["baseline", "deepseek_mtp"]
    assert (tmp_path / "baseline" / "history.json").is_file()
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "| baseline |" in summary and "| deepseek_mtp |" in summary
    assert "without* label smoothing" in summary
    assert summary.startswith("# ")  # summary.md is a page of its own
    inline = summary_markdown(hists, heading=False)  # inside a notebook with its own title
    assert not any(line.startswith("# ") for line in inline.splitlines())
    assert "| baseline |" in inline
    with pytest.raises(ValueError, match="variants"):
        compare(tmp_path, steps=2, config=_tiny(), variants=("nonsense",))


def test_cli_compare_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "aptt_edu", "compare", "--steps", "5", *TINY_FLAGS]
    result = subprocess.run(
        [*cmd, "--out", str(out)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for name in VARIANTS:
        hist = json.loads((out / name / "history.json").read_text(encoding="utf-8"))
        assert {"config", "train_loss", "val_loss"} <= set(hist)
        assert len(hist["train_loss"]) == 5 and all(isinstance(x, float) for x in hist["val_loss"])
    assert (out / "loss_curves.png").is_file()
    assert "| weight_tying |" in (out / "summary.md").read_text(encoding="utf-8")
    assert "| weight_tying |" in result.stdout


def test_cli_single_run_on_a_german_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "de.txt"
    text.write_text(GERMAN, encoding="utf-8")
    args = ["--text-file", str(text), "--steps", "3", "--no-progress", "--out", str(tmp_path / "r")]
    assert main([*args, *TINY_FLAGS]) == 0
    hist = History.load(tmp_path / "r" / "history.json")
    assert hist.entropy_rate is None and len(hist.train_loss) == 3
    assert hist.config["text_file"] == str(text)
    assert "final val loss" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "-3"], "steps must be a positive integer"),
        (["--mtp-lambda", "-0.5"], "mtp_lambda must be >= 0"),
        (["--text-file", "/no/such/file.txt"], "does not exist"),
        (["--text-file", "EMPTY"], "is empty"),
        (["--mtp", "sideways"], "invalid choice"),
        (["compare", "--tie-weights"], "compare sets these per variant"),
    ],
)
def test_bad_arguments_exit_with_a_message(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bad_argument_in_a_subprocess_gives_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aptt_edu", "--steps", "-1", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "steps must be a positive integer" in result.stderr
    assert "Traceback" not in result.stderr
