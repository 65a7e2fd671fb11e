"""Checks a training run makes before its first epoch, so that a mistake costs a second, not an hour.

Argument checks, then one batch of each loader through the model, the loss and the score
functions, with every error saying what to fix; nothing about the run changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..utils import move_to, rng_state, set_rng_state
from .checkpoint import loader_generators

__all__ = [
    "SCHEDULE_EVERY",
    "check_arguments",
    "check_epochs_loaders_scores",
    "check_optimizer",
    "check_schedule_every",
    "preflight",
    "predicted_labels",
    "score",
]

ScoreFunc = Callable[[np.ndarray, np.ndarray], float]
# losses that broadcast a shape mismatch with only a warning: (B, 1) against (B,) trains on nonsense
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def predicted_labels(y_hat: torch.Tensor) -> torch.Tensor:
    """Class scores -> predicted labels by argmax, on the device; anything else is left as is."""
    if y_hat.dim() == 2 and y_hat.shape[1] > 1:
        return y_hat.argmax(dim=1)  # (B, classes) -> (B,)
    return y_hat


def score(
    name: str, score_func: ScoreFunc, y_true: np.ndarray, y_pred: np.ndarray, where: str
) -> float:
    """``score_func(y_true, y_pred)`` as a float; an error names the function and the arrays."""
    try:
        return float(score_func(y_true, y_pred))
    except Exception as err:
        func = getattr(score_func, "__qualname__", type(score_func).__name__)
        raise ValueError(
            f"score function {name!r} ({func}) failed on {where}: "
            f"{type(err).__name__}: {err}. It is called as f(y_true, y_pred) with "
            f"NumPy arrays, here of shapes {y_true.shape} and {y_pred.shape} (class "
            "scores are turned into labels by argmax) and must return a number"
        ) from err


def check_epochs_loaders_scores(epochs, train_loader, val_loader, test_loader, score_funcs) -> None:
    """The checks every training loop shares: ``epochs``, empty loaders, the score functions."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int of at least 1, got {epochs!r}")
    for name, loader in (
        ("train_loader", train_loader),
        ("val_loader", val_loader),
        ("test_loader", test_loader),
    ):
        if loader is not None and hasattr(loader, "__len__") and len(loader) == 0:
            raise ValueError(f"{name} is empty (0 batches): give it at least one example")
    for name, func in (score_funcs or {}).items():
        if not isinstance(name, str):
            raise TypeError(
                f"score_funcs keys name result columns and must be strings, got "
                f"{name!r}: use e.g. score_funcs={{'Accuracy': accuracy_score}}"
            )
        if not callable(func):
            raise TypeError(f"score_funcs[{name!r}] must be a function (y_true, y_pred) -> float")


def check_arguments(
    train_loader, val_loader, test_loader, score_funcs, epochs, lr_schedule
) -> None:
    """The checks of :func:`check_epochs_loaders_scores`, and ``lr_schedule``: an object of
    ``torch.optim.lr_scheduler``, the string ``"ReduceLROnPlateau"`` (with a ``val_loader``,
    whose loss it steps on) or None.

    Example:
        >>> check_arguments([(torch.zeros(1, 2), torch.zeros(1))], None, None, None, 3, "cosine")
        Traceback (most recent call last):
        ...
        ValueError: lr_schedule='cosine' is not understood: ...
    """
    check_epochs_loaders_scores(epochs, train_loader, val_loader, test_loader, score_funcs)
    if isinstance(lr_schedule, str):
        if lr_schedule != "ReduceLROnPlateau":
            raise ValueError(
                f"lr_schedule={lr_schedule!r} is not understood: pass a "
                "torch.optim.lr_scheduler object or the string 'ReduceLROnPlateau'"
            )
    elif lr_schedule is not None and not (
        hasattr(lr_schedule, "step") and hasattr(lr_schedule, "optimizer")
    ):
        raise TypeError(
            f"lr_schedule must be a torch.optim.lr_scheduler object, got "
            f"{type(lr_schedule).__name__}"
        )
    plateau = lr_schedule == "ReduceLROnPlateau" or isinstance(lr_schedule, ReduceLROnPlateau)
    if plateau and val_loader is None:
        raise ValueError(
            "ReduceLROnPlateau steps on the validation loss, but val_loader is None: "
            "split a validation set off the training data (idlmam.data.split) and "
            "pass val_loader=..."
        )


SCHEDULE_EVERY = ("epoch", "batch")  # when a schedule steps: after each epoch, after each batch


def check_schedule_every(lr_schedule_every: object, lr_schedule: object = None) -> None:
    """Refuse a ``lr_schedule_every`` that is not in :data:`SCHEDULE_EVERY`, or ``"batch"`` with
    ``ReduceLROnPlateau`` (given as an object or by name), before any training.

    Example:
        >>> check_schedule_every("batch")
        >>> check_schedule_every("step")
        Traceback (most recent call last):
        ...
        ValueError: lr_schedule_every must be 'epoch' or 'batch', got 'step'
    """
    if not isinstance(lr_schedule_every, str) or lr_schedule_every not in SCHEDULE_EVERY:
        raise ValueError(f"lr_schedule_every must be 'epoch' or 'batch', got {lr_schedule_every!r}")
    plateau = lr_schedule == "ReduceLROnPlateau" or isinstance(lr_schedule, ReduceLROnPlateau)
    if plateau and lr_schedule_every == "batch":
        raise ValueError(
            "ReduceLROnPlateau steps on the validation loss, which exists once per epoch, so "
            "it cannot step every batch: use lr_schedule_every='epoch' with it, or a "
            "schedule of the step count (LambdaLR, LinearLR, OneCycleLR, ...) per batch"
        )


def check_optimizer(optimizer: torch.optim.Optimizer, params: Iterable[nn.Parameter]) -> None:
    """Refuse an optimizer that holds none of ``params``, the parameters it is to train.

    Example:
        >>> model, other = nn.Linear(2, 1), nn.Linear(2, 1)
        >>> check_optimizer(torch.optim.SGD(other.parameters(), lr=0.1), model.parameters())
        Traceback (most recent call last):
        ...
        ValueError: the optimizer holds none of the parameters it is to train ...
    """
    ours = {id(p) for p in params}
    if not any(id(p) in ours for group in optimizer.param_groups for p in group["params"]):
        raise ValueError(
            "the optimizer holds none of the parameters it is to train (was it built for "
            "another model?): build it on them, optimizer=SGD(model.parameters(), ...) or "
            "make_optimizer=lambda params: SGD(params, ...)"
        )


def _shape(x) -> str:
    return str(tuple(x.shape)) if hasattr(x, "shape") else type(x).__name__


def _describe(batch) -> str:
    if isinstance(batch, dict):
        return f"a dict with keys {list(batch)}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} items"
    if isinstance(batch, torch.Tensor):
        return f"a single tensor of shape {tuple(batch.shape)}"
    return f"a {type(batch).__name__}"


def _check_first_batch(
    name: str,
    loader: Iterable,
    model: nn.Module,
    loss_func: Callable,
    score_funcs: Mapping[str, ScoreFunc] | None,
    device: torch.device,
) -> None:
    """One batch of ``loader`` through the model, the loss and the scores; clear errors if not."""
    batches = iter(loader)
    if batches is loader:  # a one-shot iterator: peeking would eat a batch of the run
        return
    batch = next(batches, None)
    del batches  # a DataLoader's workers stop here
    if batch is None:
        raise ValueError(f"{name} yielded no batches: give it at least one example")
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError(
            f"{name} must yield (inputs, labels) pairs, but its first batch is "
            f"{_describe(batch)}: make the dataset's items (x, y) pairs (a "
            "TensorDataset(X, y) is) or use idlmam.data.ResidentLoader(X, y)"
        )
    inputs, labels = move_to(batch[0], device), move_to(batch[1], device)
    try:
        y_hat = model(inputs)  # (B, ...) -> (B, classes)
    except torch.OutOfMemoryError:
        raise
    except Exception as err:
        raise ValueError(
            f"the model cannot take the first batch of {name}: inputs of shape "
            f"{_shape(inputs)} gave {type(err).__name__}: {err}. Make the model's "
            "first layer fit the inputs (e.g. its in_features)"
        ) from err
    fix = (
        "make the model's last layer output what loss_func expects (nn.CrossEntropyLoss: "
        "(B, classes) scores and (B,) integer labels; nn.MSELoss: the labels' shape)"
    )
    mismatch = isinstance(loss_func, _ELEMENTWISE_LOSSES) and _shape(y_hat) != _shape(labels)
    if mismatch:
        raise ValueError(
            f"the model's output {_shape(y_hat)} and the labels {_shape(labels)} of "
            f"{name} differ in shape, and {type(loss_func).__name__} would broadcast "
            f"them into a wrong loss: {fix}"
        )
    try:
        loss = loss_func(y_hat, labels)
    except torch.OutOfMemoryError:
        raise
    except Exception as err:
        raise ValueError(
            f"loss_func cannot compare the model's output of shape {_shape(y_hat)} "
            f"with the labels of {name}, of shape {_shape(labels)} and dtype "
            f"{getattr(labels, 'dtype', '?')}: {type(err).__name__}: {err}. "
            f"Fix: {fix}"
        ) from err
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            f"loss_func must return one number (a scalar tensor) but returned "
            f"{_shape(loss)} on {name}: use a loss with reduction='mean'"
        )
    if score_funcs and bool(torch.isfinite(loss)):  # a NaN batch: the run will say it diverged
        y_true = labels.detach().cpu().numpy()
        y_pred = predicted_labels(y_hat.detach()).cpu().numpy()
        for score_name, score_func in score_funcs.items():
            score(score_name, score_func, y_true, y_pred, f"the first batch of {name}")


def preflight(
    model: nn.Module,
    loss_func: Callable,
    loaders: Mapping[str, Iterable],
    score_funcs: Mapping[str, ScoreFunc] | None,
    device: torch.device,
) -> None:
    """Check the first batch of every loader before any training, without changing the run.

    The model runs in eval mode without gradients (no dropout drawn, no batch-norm statistics
    moved), and every random state, the loaders' generators included, is put back afterwards:
    the run that follows is bitwise the one that would have run without the check.
    """
    generators = loader_generators(loaders.values())
    saved = rng_state(generators, cuda=device.type == "cuda")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            for name, loader in loaders.items():
                _check_first_batch(name, loader, model, loss_func, score_funcs, device)
    finally:
        for module, mode in modes:
            module.training = mode
        set_rng_state(saved, generators)
