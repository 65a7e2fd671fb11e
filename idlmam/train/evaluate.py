"""Scoring a trained model: predicted labels over a loader, and the one accuracy of the book."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from ..utils import move_to
from .checks import predicted_labels

__all__ = ["accuracy", "predict"]


def accuracy(y_true, y_pred) -> float:
    """The fraction of labels predicted right: a score function ``f(y_true, y_pred)``.

    It is what ``sklearn.metrics.accuracy_score`` computes for labels, without importing
    scikit-learn; pass it as ``score_funcs={"Accuracy": accuracy}``, or score a model with
    ``accuracy(*predict(model, loader))``.

    Raises:
        ValueError: the two arrays differ in length, or are empty.

    Example:
        >>> accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]))
        0.75
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"accuracy needs two label arrays of the same, non-empty shape, got "
            f"{y_true.shape} and {y_pred.shape}"
        )
    return float((y_true == y_pred).mean())


@torch.inference_mode()
def predict(
    model: nn.Module, loader: Iterable, *, device: torch.device | str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """The labels of ``loader`` and the model's predicted labels (argmax), in eval mode.

    Uses the loader's ``eval_batches()`` when it has one.

    Returns:
        ``(y_true, y_pred)`` as NumPy arrays, ready for any score function.

    Example:
        >>> accuracy(*predict(model, loaders["test"]))  # doctest: +SKIP
        0.8712
    """
    model.to(device).eval()
    batches = loader.eval_batches() if hasattr(loader, "eval_batches") else loader
    y_true, y_pred = [], []
    for inputs, labels in batches:
        y_hat = model(move_to(inputs, device))  # (B, ...) -> (B, classes)
        y_true.append(labels.cpu())
        y_pred.append(predicted_labels(y_hat).cpu())
    return torch.cat(y_true).numpy(), torch.cat(y_pred).numpy()
