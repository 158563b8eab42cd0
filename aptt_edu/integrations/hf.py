r"""The package's losses inside Hugging Face's ``Trainer``.

Importing this module does not import ``transformers``.

Recipe::

    from aptt_edu.integrations.hf import causal_lm_loss_func
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      compute_loss_func=causal_lm_loss_func(model.config.vocab_size))

* **Labels.** The Trainer passes HF's *unshifted* labels (``labels[b, t]`` is token ``t`` itself, with
  -100 on padding); the adapter shifts them with :func:`aptt_edu.loss.language_modeling.shift_labels`
  (our function, which returns ``(inputs, targets)``). Do not confuse it with HF's keyword argument
  ``shift_labels=`` of ``ForCausalLMLoss``, which *takes* already-shifted labels.
* **Normaliser.** With gradient accumulation the Trainer counts the valid targets of all
  micro-batches of a step (``labels[..., 1:] != -100``) and passes that as ``num_items_in_batch``;
  the adapter divides the summed loss by it, so the accumulated gradient equals the full batch's.
  A count of 0 gives 0.0 (HF's own loss gives NaN there).
* **Multi-token prediction.** :class:`~aptt_edu.loss.language_modeling.MultiTokenPredictionLoss`
  needs one count per depth (``count_items``: depth ``k`` is scored on ``labels[:, k:]``), but the
  Trainer hands over a single ``num_items_in_batch``, the main term's. Training MTP under the
  Trainer therefore needs an overridden ``Trainer.get_batch_samples`` (or ``compute_loss``) that
  computes ``loss_fn.count_items`` over the micro-batches of the step and passes the ``(D+1,)``
  counts on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from aptt_edu.loss.language_modeling import LanguageModelingLoss, shift_labels

__all__ = ["causal_lm_loss_func"]


def _logits_of(outputs: Any) -> torch.Tensor:
    """``outputs.logits``, ``outputs["logits"]`` or ``outputs[0]``."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if hasattr(outputs, "logits"):
        return outputs.logits  # type: ignore[no-any-return]
    if isinstance(outputs, dict):
        return outputs["logits"]  # type: ignore[no-any-return]
    if isinstance(outputs, (tuple, list)):
        return outputs[0]  # type: ignore[no-any-return]
    raise TypeError(f"outputs must have .logits, a 'logits' key or be a tuple, got {type(outputs)}")


def causal_lm_loss_func(
    vocab_size: int, ignore_index: int = -100, label_smoothing: float = 0.0
) -> Callable[..., torch.Tensor]:
    """The ``compute_loss_func`` for ``transformers.Trainer``: next-token cross-entropy.

    Args:
        vocab_size: :math:`V`, the last dimension of the model's logits.
        ignore_index: Label value that marks positions to skip (HF: -100).
        label_smoothing: :math:`\\varepsilon \\in [0, 1]`.

    Returns:
        ``loss(outputs, labels, num_items_in_batch=None)`` with HF's unshifted ``(B, T)`` labels.
    """
    loss_fn = LanguageModelingLoss(vocab_size, ignore_index, label_smoothing)

    def compute_loss(
        outputs: Any, labels: torch.Tensor, num_items_in_batch: int | torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = _logits_of(outputs)  # (B, T, V)
        # targets[b, t] = labels[b, t + 1]; the last position gets ignore_index
        _, targets = shift_labels(labels, ignore_index=ignore_index)  # (B, T)
        return loss_fn(  # type: ignore[no-any-return]
            logits, targets, num_items_in_batch=num_items_in_batch
        )

    return compute_loss
