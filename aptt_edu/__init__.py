"""aptt-edu: the output heads and losses of the DeepSeek-V3 recipe, one small module per idea.

Start with :mod:`aptt_edu.loss.language_modeling` (cross-entropy, label smoothing, multi-token
prediction) and :mod:`aptt_edu.heads.language_modeling` (output heads, weight tying).
"""

from aptt_edu.labels import shift_labels

__all__ = ["__version__", "shift_labels"]
__version__ = "0.1.0"
