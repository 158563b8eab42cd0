"""The training command line is generated from TrainConfig: every field is a flag, nothing else."""

from __future__ import annotations

import dataclasses

import pytest

from aptt_edu.cli import main, train_parser
from aptt_edu.training import TrainConfig

# A value per field that differs from its default, as typed on a command line.
NON_DEFAULT = {
    "text_file": ("corpus.txt", "corpus.txt"),
    "seq_len": ("17", 17),
    "toy_vocab_size": ("7", 7),
    "n_train_rows": ("65", 65),
    "n_val_rows": ("17", 17),
    "n_layer": ("2", 2),
    "n_head": ("4", 4),
    "d_model": ("32", 32),
    "mtp": ("deepseek", "deepseek"),
    "mtp_depth": ("2", 2),
    "mtp_lambda": ("0.1", 0.1),
    "label_smoothing": ("0.2", 0.2),
    "steps": ("7", 7),
    "batch_size": ("6", 6),
    "grad_accum": ("3", 3),
    "lr": ("0.001", 0.001),
    "warmup_steps": ("3", 3),
    "weight_decay": ("0.0", 0.0),
    "grad_clip": ("0.5", 0.5),
    "eval_every": ("2", 2),
    "seed": ("5", 5),
    "threads": ("2", 2),
    "name": ("mine", "mine"),
}
BOOLEANS = ("tie_weights", "chunked_loss", "progress")


def _parse(argv: list[str]) -> TrainConfig:
    args = vars(train_parser().parse_args(argv))
    args.pop("mode"), args.pop("out")
    return TrainConfig(**args)


def test_every_config_field_is_a_flag_and_reaches_the_config() -> None:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert names == set(NON_DEFAULT) | set(BOOLEANS), "a new TrainConfig field needs a case here"
    argv = [
        x for name, (text, _) in NON_DEFAULT.items() for x in (f"--{name.replace('_', '-')}", text)
    ]
    cfg = _parse(argv)
    for name, (_, value) in NON_DEFAULT.items():
        assert getattr(cfg, name) == value, name
        assert getattr(TrainConfig(), name) != value, (
            f"{name}: the case must differ from the default"
        )


@pytest.mark.parametrize("name", BOOLEANS)
def test_boolean_fields_have_both_spellings(name: str) -> None:
    flag = name.replace("_", "-")
    assert getattr(_parse([f"--{flag}"]), name) is True
    assert getattr(_parse([f"--no-{flag}"]), name) is False


def test_flags_not_given_keep_the_defaults_and_help_names_them() -> None:
    assert _parse([]) == TrainConfig()
    text = train_parser().format_help()
    for f in dataclasses.fields(TrainConfig):
        assert f"--{f.name.replace('_', '-')}" in text
        assert f.metadata["help"].split()[0] in text


def test_compare_refuses_the_settings_it_sets_per_variant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["compare", "--mtp", "simple", "--tie-weights"])
    assert e.value.code == 2
    assert "--tie-weights, --mtp: compare sets these per variant" in capsys.readouterr().err


def test_a_bad_value_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--steps", "three"])
    assert "--steps: invalid int value: 'three'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--label-smoothing", "1.5"])
    assert "label_smoothing must lie in [0, 1], got 1.5" in capsys.readouterr().err
