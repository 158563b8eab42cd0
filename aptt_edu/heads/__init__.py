"""Output heads. The import paths of record are :mod:`aptt_edu.heads.language_modeling` and
:mod:`aptt_edu.heads.deepseek_mtp`."""

from aptt_edu.heads.deepseek_mtp import DeepSeekMTP
from aptt_edu.heads.language_modeling import (
    CombinedLMHead,
    LanguageModelingHead,
    MultiTokenPredictionHead,
)

__all__ = ["CombinedLMHead", "DeepSeekMTP", "LanguageModelingHead", "MultiTokenPredictionHead"]
