r"""Training data: rows of token ids from the toy language or from real text, and batches of them.

:class:`LMData` holds the train and validation rows and what is known about their source: for the
toy language (:mod:`aptt_edu.toy_language`, built by :func:`toy_data`) the exact entropy rate
:math:`H`, the lowest expected cross-entropy any model can reach, which the loss curves of
:mod:`aptt_edu.training` draw as a line. :func:`get_batch` draws random rows and turns them into
``(inputs, labels)`` with the package's label convention (:mod:`aptt_edu.labels`).

**Real text.** :class:`CharTokenizer` maps each character of a UTF-8 text to an id (ä, ö, ü and ß are
single characters, so German round-trips), and :func:`text_data` cuts a file into training windows;
for real text no floor is known (``entropy_rate is None``).

Nothing here is downloaded: the toy data is generated from a seed, the text is the user's file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from aptt_edu.labels import IGNORE_INDEX, shift_labels
from aptt_edu.toy_language import ToyLanguage

__all__ = [
    "CharTokenizer",
    "LMData",
    "ToyLanguage",
    "get_batch",
    "make_inputs_and_labels",
    "read_text_file",
    "text_data",
    "toy_data",
]


class CharTokenizer:
    """Character-level tokenizer: one id per distinct character of a text.

    Python strings are sequences of Unicode code points, so ``ä``, ``ö``, ``ü``, ``ß`` are single
    tokens and ``decode(encode(s)) == s`` for every text made of known characters. (A text in
    decomposed Unicode, ``a`` + combining diaeresis, round-trips too — as two tokens.)

    Args:
        chars: The vocabulary; the id of a character is its position in this string.

    Example:
        >>> tok = CharTokenizer.from_text("Grüße")
        >>> tok.decode(tok.encode("Grüße"))
        'Grüße'
    """

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars):
            raise ValueError("chars must not repeat a character")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Builds the vocabulary from the sorted set of characters in ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters :math:`V`."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Maps each character to its id.

        Raises:
            ValueError: ``text`` contains a character outside the vocabulary.
        """
        unknown = sorted(set(text) - self.index.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown[:10]!r}")
        return [self.index[c] for c in text]

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Maps ids back to characters."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return "".join(self.chars[i] for i in values)


@dataclass
class LMData:
    """Train and validation token rows, plus what is known about their source.

    Both splits are ``(N, T)`` tensors of token ids, one training window per row; a batch is a few
    random rows (:func:`get_batch`).
    """

    train: torch.Tensor  # (N_train, T) int64 token ids
    val: torch.Tensor  # (N_val, T) int64 token ids, evaluated in full
    vocab_size: int  # V
    context_warmup: int  # leading targets of each row to ignore: they lack a full context
    decode: Callable[[Iterable[int] | torch.Tensor], str]  # ids -> readable text
    entropy_rate: float | None = None  # H, the loss floor, nats/token (None: unknown, real text)
    mtp_entropy: float | None = None  # H_2, floor of a depth-1 MTP head that does not see t_{i+1}
    val_floor: float | None = None  # the true source's mean loss on exactly this validation set
    description: str = ""  # one line for logs and summaries


def toy_data(
    seq_len: int = 32,
    n_train: int = 4096,
    n_val: int = 256,
    vocab_size: int = 16,
    support: int = 3,
    epsilon: float = 0.02,
    seed: int = 0,
) -> LMData:
    """Samples train and validation rows from one :class:`ToyLanguage`.

    The language is drawn with ``seed``; the training rows with seed ``seed + 1`` and the validation
    rows with seed ``seed + 2``: the same source, different samples.

    Args:
        seq_len: ``T``, tokens per row.
        n_train: Training rows.
        n_val: Validation rows.
        vocab_size: ``V`` of the toy language.
        support: Likely successors per context.
        epsilon: Uniform mass per context.
        seed: Seed of the language and the samples.

    Returns:
        An :class:`LMData` with ``entropy_rate``, ``mtp_entropy`` and ``val_floor`` set.
    """
    lang = ToyLanguage(vocab_size, support, epsilon, seed)
    train = lang.sample(n_train, seq_len, torch.Generator().manual_seed(seed + 1))
    val = lang.sample(n_val, seq_len, torch.Generator().manual_seed(seed + 2))
    return LMData(
        train=train,
        val=val,
        vocab_size=vocab_size,
        context_warmup=1,
        decode=lang.decode,
        entropy_rate=lang.entropy_rate,
        mtp_entropy=lang.mtp_entropy,
        val_floor=float(lang.nll(val).mean()),
        description=repr(lang),
    )


def read_text_file(path: str | Path, min_chars: int = 2) -> str:
    """Reads a UTF-8 text file, with a clear message for every way that can go wrong.

    Args:
        path: The file.
        min_chars: Fewest characters accepted.

    Raises:
        ValueError: The file is missing, not a file, not UTF-8, or shorter than ``min_chars``.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"text file {str(p)!r} does not exist or is not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text file {str(p)!r} is not valid UTF-8: {e}") from None
    if len(text) < min_chars:
        what = "is empty" if not text else f"has only {len(text)} characters"
        raise ValueError(f"text file {str(p)!r} {what}; need at least {min_chars}")
    return text


def text_data(path: str | Path, seq_len: int = 32, val_fraction: float = 0.1) -> LMData:
    """Builds character-level train/validation windows from a UTF-8 text file.

    The first ``1 - val_fraction`` of the characters are for training (every window of length
    ``T``, one per start position), the rest for validation (non-overlapping windows).

    Args:
        path: A UTF-8 text file.
        seq_len: ``T``, characters per window.
        val_fraction: Share of the text held out for validation.

    Raises:
        ValueError: The file is unusable (see :func:`read_text_file`) or too short for one training
            and one validation window.
    """
    if not 0.0 < val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5], got {val_fraction}")
    # enough characters for one validation window (and so for one training window)
    text = read_text_file(path, min_chars=max(2, math.ceil(seq_len / val_fraction)))
    tok = CharTokenizer.from_text(text)
    ids = torch.tensor(tok.encode(text), dtype=torch.int64)  # (N,)
    n_train = int(len(ids) * (1.0 - val_fraction))
    return LMData(
        train=ids[:n_train].unfold(0, seq_len, 1),  # (n_train - T + 1, T), a view
        val=ids[n_train:].unfold(0, seq_len, seq_len),  # (N_val // T, T)
        vocab_size=tok.vocab_size,
        context_warmup=0,
        decode=tok.decode,
        description=f"{Path(path).name}: {len(ids)} characters, V={tok.vocab_size}",
    )


def make_inputs_and_labels(
    rows: torch.Tensor, context_warmup: int = 0, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turns token rows into model inputs and shifted labels.

    Uses :func:`aptt_edu.labels.shift_labels` (``labels[b, t] = rows[b, t + 1]``, last = ignore) and also
    ignores the first ``context_warmup`` targets, whose context is shorter than the source's order.

    Args:
        rows: ``(B, T)`` token ids.
        context_warmup: Leading targets to ignore (1 for the order-2 toy language).
        ignore_index: Marker of "no target".

    Returns:
        ``(inputs, labels)``, both ``(B, T)``.
    """
    inputs, labels = shift_labels(rows, ignore_index=ignore_index)  # (B, T), (B, T)
    labels[:, :context_warmup] = ignore_index
    return inputs, labels


def get_batch(
    data: LMData, batch_size: int, generator: torch.Generator, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draws ``batch_size`` random rows of a split (with replacement) as ``(inputs, labels)``.

    Args:
        data: The data set.
        batch_size: ``B``.
        generator: Seeded source of the row indices.
        split: ``"train"`` or ``"val"``.

    Returns:
        ``(inputs, labels)``, both ``(B, T)``.
    """
    rows = data.train if split == "train" else data.val
    idx = torch.randint(len(rows), (batch_size,), generator=generator)  # (B,)
    return make_inputs_and_labels(rows[idx], data.context_warmup)
