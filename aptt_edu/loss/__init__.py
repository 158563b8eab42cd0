"""Losses and metrics. The import path of record is :mod:`aptt_edu.loss.language_modeling`."""

from aptt_edu.loss.language_modeling import (
    LanguageModelingLoss,
    MultiTokenPredictionLoss,
    PerplexityMetric,
    TokenAccuracyMetric,
    label_smoothed_cross_entropy_textbook,
    shift_labels,
)

__all__ = [
    "LanguageModelingLoss",
    "MultiTokenPredictionLoss",
    "PerplexityMetric",
    "TokenAccuracyMetric",
    "label_smoothed_cross_entropy_textbook",
    "shift_labels",
]

from aptt_edu.loss.linear_cross_entropy import (
    LinearCrossEntropyLoss,
    linear_cross_entropy,
)

__all__ += ["LinearCrossEntropyLoss", "linear_cross_entropy"]
