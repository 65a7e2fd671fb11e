"""The training loop of the book: an optimizer G applied every batch, a schedule L every epoch.

.. math::
    \\Theta_{t+1} = \\Theta_t - L(\\eta_0, t) \\cdot G(g^t)

:func:`train_network` returns one row per epoch in a pandas DataFrame (the *results frame*):
``epoch``, ``total time``, ``lr``, ``train loss``, ``train <score>``, then the same for ``val``
and ``test`` where those loaders are given.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .utils import get_device, move_to, progress_enabled

__all__ = ["train_network", "run_epoch", "save_checkpoint"]

ScoreFunc = Callable[[np.ndarray, np.ndarray], float]
EpochHook = Callable[[int, dict], "bool | None"]


def run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer | None, data_loader: Iterable,
              loss_func: Callable, device: torch.device | str, results: dict,
              score_funcs: Mapping[str, ScoreFunc] | None, prefix: str = "") -> float:
    """Run one pass over ``data_loader``: train when ``optimizer`` is given, else evaluate.

    Appends ``"<prefix> loss"`` (the mean loss per example) and ``"<prefix> <name>"`` for each
    score function to ``results``. The loop never waits for the device inside the pass: losses
    are summed on the device and predictions kept there, then read back once at the end.

    Returns:
        Seconds spent in the pass.
    """
    training = optimizer is not None
    model.train(training)
    running_loss = torch.zeros((), device=device)
    n_seen = 0
    y_true, y_pred = [], []
    if not training and hasattr(data_loader, "eval_batches"):
        data_loader = data_loader.eval_batches()  # large batches: the order does not matter here
    start = time.perf_counter()
    with torch.enable_grad() if training else torch.inference_mode():
        for inputs, labels in data_loader:
            inputs, labels = move_to(inputs, device), move_to(labels, device)
            y_hat = model(inputs)  # (B, ...) -> (B, classes)
            loss = loss_func(y_hat, labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            batch = labels.shape[0]
            running_loss += loss.detach() * batch  # stays on the device: no sync per batch
            n_seen += batch
            if score_funcs:
                y_true.append(labels.detach())
                y_pred.append(y_hat.detach())
    if n_seen == 0:
        raise ValueError(f"the {prefix or 'data'} loader yielded no batches: give it at least one example")
    results[f"{prefix} loss"].append((running_loss / n_seen).item())  # one sync per epoch
    if score_funcs:
        y_true_np = torch.cat(y_true).cpu().numpy()
        scores = torch.cat(y_pred)
        if scores.dim() == 2 and scores.shape[1] > 1:
            scores = scores.argmax(dim=1)  # class scores -> predicted labels, on the device
        y_pred_np = scores.cpu().numpy()
        for name, score_func in score_funcs.items():
            results[f"{prefix} {name}"].append(float(score_func(y_true_np, y_pred_np)))
    return time.perf_counter() - start


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    A kill at any moment leaves either the previous checkpoint or the new one, never half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_arguments(model, train_loader, val_loader, test_loader, score_funcs, epochs,
                     optimizer, lr_schedule) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int of at least 1, got {epochs!r}")
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader),
                         ("test_loader", test_loader)):
        if loader is not None and hasattr(loader, "__len__") and len(loader) == 0:
            raise ValueError(f"{name} is empty (0 batches): give it at least one example")
    for name, func in (score_funcs or {}).items():
        if not isinstance(name, str):
            raise TypeError(f"score_funcs keys name result columns and must be strings, got "
                            f"{name!r}: use e.g. score_funcs={{'Accuracy': accuracy_score}}")
        if not callable(func):
            raise TypeError(f"score_funcs[{name!r}] must be a function (y_true, y_pred) -> float")
    if optimizer is not None:
        ours = {id(p) for p in model.parameters()}
        theirs = [p for group in optimizer.param_groups for p in group["params"]]
        if not any(id(p) in ours for p in theirs):
            raise ValueError("the optimizer holds none of this model's parameters (was it built "
                             "for another model?): build it with optimizer=...(model.parameters())")
    if isinstance(lr_schedule, str):
        if lr_schedule != "ReduceLROnPlateau":
            raise ValueError(f"lr_schedule={lr_schedule!r} is not understood: pass a "
                             "torch.optim.lr_scheduler object or the string 'ReduceLROnPlateau'")
    elif lr_schedule is not None:
        if not hasattr(lr_schedule, "step") or not hasattr(lr_schedule, "optimizer"):
            raise TypeError(f"lr_schedule must be a torch.optim.lr_scheduler object, got "
                            f"{type(lr_schedule).__name__}")
    plateau = lr_schedule == "ReduceLROnPlateau" or isinstance(lr_schedule, ReduceLROnPlateau)
    if plateau and val_loader is None:
        raise ValueError("ReduceLROnPlateau steps on the validation loss, but val_loader is None: "
                         "split a validation set off the training data (idlmam.data.split) and "
                         "pass val_loader=...")


def train_network(model: nn.Module, loss_func: Callable, train_loader: Iterable,
                  val_loader: Iterable | None = None, test_loader: Iterable | None = None,
                  score_funcs: Mapping[str, ScoreFunc] | None = None, epochs: int = 50,
                  device: torch.device | str = "cpu", checkpoint_file: str | os.PathLike | None = None,
                  optimizer: torch.optim.Optimizer | None = None, lr_schedule=None,
                  disable_tqdm: bool = False, *, on_epoch_end: EpochHook | None = None):
    """Train ``model`` for ``epochs`` and return the results frame, one row per epoch.

    Args:
        model: the network; moved to ``device``.
        loss_func: ``loss_func(y_hat, y)`` returning a scalar tensor.
        train_loader: yields ``(inputs, labels)`` batches (a ``DataLoader`` or a
            :class:`idlmam.data.ResidentLoader`).
        val_loader: evaluated after each epoch; needed by ``ReduceLROnPlateau``.
        test_loader: evaluated after each epoch; never used for a decision.
        score_funcs: ``{"Accuracy": accuracy_score}``: name -> ``f(y_true, y_pred)`` on NumPy
            arrays, computed once per epoch (class scores are turned into labels by argmax).
        epochs: passes over ``train_loader`` (at least 1).
        device: where to train.
        checkpoint_file: written atomically after every epoch (model, optimizer, schedule, results).
        optimizer: G, applied every batch; ``AdamW`` with its defaults when None.
        lr_schedule: L, stepped once per epoch: any ``torch.optim.lr_scheduler`` object built on
            ``optimizer``; ``ReduceLROnPlateau`` is stepped with the epoch's validation loss; the
            string ``"ReduceLROnPlateau"`` builds one (factor 0.2, patience 10).
        disable_tqdm: no progress bar (there is none anyway when ``TQDM_DISABLE`` or ``CI`` is set).
        on_epoch_end: called as ``on_epoch_end(epoch, row)`` after each epoch with that epoch's
            row; return True to stop training after it.

    Returns:
        A pandas DataFrame with ``epoch``, ``total time`` (seconds of training so far), ``lr``
        (the learning rate used in that epoch) and the loss and score columns.

    Example:
        >>> from idlmam.models import mlp
        >>> from idlmam.data import ResidentLoader
        >>> X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
        >>> frame = train_network(mlp(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 32), epochs=2)
        >>> list(frame.columns)
        ['epoch', 'total time', 'lr', 'train loss']
    """
    import pandas as pd
    from tqdm import tqdm

    _check_arguments(model, train_loader, val_loader, test_loader, score_funcs, epochs,
                     optimizer, lr_schedule)
    device = get_device(str(device))
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters())
    if lr_schedule == "ReduceLROnPlateau":
        lr_schedule = ReduceLROnPlateau(optimizer, mode="min", factor=0.2, patience=10)
    if lr_schedule is not None and lr_schedule.optimizer is not optimizer:
        raise ValueError("lr_schedule was built on another optimizer than the one training this "
                         "model: build it as Schedule(optimizer, ...) with the same optimizer")

    results: dict[str, list] = defaultdict(list)
    total_time = 0.0
    for epoch in tqdm(range(epochs), desc="Epoch", disable=not progress_enabled(disable_tqdm)):
        # 1. L: the learning rate this epoch uses (the schedule set it at the end of the last one)
        results["epoch"].append(epoch)
        results["lr"].append(optimizer.param_groups[0]["lr"])
        # 2-4. G: one pass over the training data, updating every batch
        total_time += run_epoch(model, optimizer, train_loader, loss_func, device, results,
                                score_funcs, prefix="train")
        results["total time"].append(total_time)
        # 5. evaluate without gradients
        if val_loader is not None:
            run_epoch(model, None, val_loader, loss_func, device, results, score_funcs, prefix="val")
        if test_loader is not None:
            run_epoch(model, None, test_loader, loss_func, device, results, score_funcs, prefix="test")
        # 6. L: move the schedule one epoch on
        if isinstance(lr_schedule, ReduceLROnPlateau):
            lr_schedule.step(results["val loss"][-1])
        elif lr_schedule is not None:
            lr_schedule.step()
        if checkpoint_file is not None:
            save_checkpoint(checkpoint_file, {
                "epoch": epoch,
                "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(),
                "lr_schedule_state_dict": None if lr_schedule is None else lr_schedule.state_dict(),
                "results": {k: list(v) for k, v in results.items()},
            })
        if on_epoch_end is not None and on_epoch_end(epoch, {k: v[-1] for k, v in results.items()}):
            break

    frame = pd.DataFrame.from_dict(results)
    first = ["epoch", "total time", "lr"]
    return frame[first + [c for c in frame.columns if c not in first]]
