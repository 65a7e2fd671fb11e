"""The training loop of the book: an optimizer G applied every batch, a schedule L every epoch.

.. math::
    \\Theta_{t+1} = \\Theta_t - L(\\eta_0, t) \\cdot G(g^t)

:func:`train_network` returns one row per epoch in a pandas DataFrame (the *results frame*):
``epoch``, ``total time``, ``lr``, ``train loss``, ``train <score>``, then the same for ``val``
and ``test`` where those loaders are given.

The loop never loses work. Before the first epoch it runs one batch of each loader through the
model, the loss and the score functions, so a mistake stops the run in a second, not an hour
in. After every epoch it writes a checkpoint atomically (model, optimizer, schedule, every random
state, the rows so far), from which ``resume=True`` continues exactly. When the training loss
becomes NaN or infinite it stops, keeps the rows and marks the stop in the frame.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..utils import get_device, move_to, progress_enabled, rng_state
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_checkpoint,
    loader_generators,
    restore,
    save_checkpoint,
)
from .checks import check_arguments, predicted_labels, preflight, score

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "train_network",
    "run_epoch",
    "batch_pass",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "DivergenceWarning",
    "CHECKPOINT_FORMAT",
]

ScoreFunc = Callable[[np.ndarray, np.ndarray], float]
EpochHook = Callable[[int, dict], "bool | None"]


class DivergenceWarning(RuntimeWarning):
    """The training loss became NaN or infinite and the run was stopped."""


def batch_pass(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    batches: Iterable,
    loss_of: Callable,
    device: torch.device | str,
    *,
    keep_outputs: bool,
    name: str,
    batch_dim: int = 0,
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """The loop over the batches of one pass, shared by :func:`run_epoch` and ``train_many``.

    Trains (one ``optimizer`` step per batch) when ``optimizer`` is given, else evaluates under
    ``torch.inference_mode()``. Never waits for the device: the losses are summed there.

    Args:
        loss_of: ``loss_of(y_hat, labels)``, a scalar, or one loss per model (``(K,)``) for
            stacked models, whose sum is what is minimised.
        keep_outputs: keep the labels and the model outputs of every batch (for score functions).
        name: the loader's name in the error raised when it yields nothing.
        batch_dim: the dimension of the labels that counts the examples (1 when the K stacked
            models each get their own batch, labels ``(K, B)``).

    Returns:
        ``(mean_loss, y_true, y_pred)``: the mean loss per example (a tensor on the device,
        shaped like ``loss_of``'s result), and the lists of labels and outputs (empty unless
        ``keep_outputs``).
    """
    training = optimizer is not None
    model.train(training)
    running_loss = torch.zeros((), device=device)
    n_seen = 0
    y_true, y_pred = [], []
    with torch.enable_grad() if training else torch.inference_mode():
        for inputs, labels in batches:
            inputs, labels = move_to(inputs, device), move_to(labels, device)
            y_hat = model(inputs)  # (B, ...) -> (B, classes), or (K, B, classes) stacked
            loss = loss_of(y_hat, labels)
            if training:
                optimizer.zero_grad(set_to_none=True)
                (loss if loss.dim() == 0 else loss.sum()).backward()
                optimizer.step()
            batch = labels.shape[batch_dim]
            running_loss = running_loss + loss.detach() * batch  # stays on the device: no sync
            n_seen += batch
            if keep_outputs:
                y_true.append(labels.detach())
                y_pred.append(y_hat.detach())
    if n_seen == 0:
        raise ValueError(f"the {name} loader yielded no batches: give it at least one example")
    return running_loss / n_seen, y_true, y_pred


def run_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    data_loader: Iterable,
    loss_func: Callable,
    device: torch.device | str,
    results: dict,
    score_funcs: Mapping[str, ScoreFunc] | None,
    prefix: str = "",
) -> float:
    """Run one pass over ``data_loader``: train when ``optimizer`` is given, else evaluate.

    Appends ``"<prefix> loss"`` (the mean loss per example) and ``"<prefix> <name>"`` for each
    score function to ``results``. The loop never waits for the device inside the pass: losses
    are summed on the device and predictions kept there, then read back once at the end. When
    that loss is NaN or infinite the scores are NaN too (score functions are not asked to rate
    a diverged model).

    Args:
        model: the network, already on ``device``.
        optimizer: G; None evaluates without gradients.
        data_loader: yields ``(inputs, labels)``; its ``eval_batches()`` is used for evaluation
            when it has one.
        loss_func: ``loss_func(y_hat, labels)`` -> scalar tensor.
        device: where the batches go.
        results: ``{column: [values]}``, appended to.
        score_funcs: name -> ``f(y_true, y_pred)``, or None.
        prefix: ``"train"``, ``"val"`` or ``"test"``.

    Returns:
        Seconds spent in the pass.

    Example:
        >>> from collections import defaultdict
        >>> model, results = nn.Linear(3, 2), defaultdict(list)
        >>> batches = [(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))]
        >>> _ = run_epoch(model, None, batches, nn.CrossEntropyLoss(), "cpu", results, None, "val")
        >>> list(results)
        ['val loss']
    """
    if optimizer is None and hasattr(data_loader, "eval_batches"):
        data_loader = data_loader.eval_batches()  # large batches: the order does not matter here
    start = time.perf_counter()
    running_loss, y_true, y_pred = batch_pass(
        model,
        optimizer,
        data_loader,
        loss_func,
        device,
        keep_outputs=bool(score_funcs),
        name=prefix or "data",
    )
    mean_loss = running_loss.item()  # one sync per epoch
    results[f"{prefix} loss"].append(mean_loss)
    if score_funcs:
        finite = math.isfinite(mean_loss)
        y_true_np = torch.cat(y_true).cpu().numpy()
        y_pred_np = predicted_labels(torch.cat(y_pred)).cpu().numpy()
        for name, score_func in score_funcs.items():
            results[f"{prefix} {name}"].append(
                score(name, score_func, y_true_np, y_pred_np, f"the {prefix} data")
                if finite
                else float("nan")
            )
    return time.perf_counter() - start


def _expected_columns(loaders: Mapping[str, Iterable], score_funcs) -> set[str]:
    prefixes = [name.removesuffix("_loader") for name in loaders]
    return {"epoch", "lr", "total time"} | {
        f"{prefix} {column}" for prefix in prefixes for column in ["loss", *(score_funcs or {})]
    }


def _frame(results: Mapping[str, list], diverged: bool) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_dict(results)
    first = ["epoch", "total time", "lr"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    if diverged:  # the last row is the epoch whose training loss was not finite
        frame["diverged"] = np.arange(len(frame)) == len(frame) - 1
    frame.attrs["diverged"] = diverged
    return frame


def train_network(
    model: nn.Module,
    loss_func: Callable,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    test_loader: Iterable | None = None,
    score_funcs: Mapping[str, ScoreFunc] | None = None,
    epochs: int = 50,
    device: torch.device | str | None = "cpu",
    checkpoint_file: str | os.PathLike | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    lr_schedule=None,
    disable_tqdm: bool = False,
    *,
    on_epoch_end: EpochHook | None = None,
    resume: bool = False,
) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` and return the results frame, one row per epoch.

    Each epoch: one pass over ``train_loader`` with an ``optimizer`` step per batch (G), an
    evaluation of ``val_loader`` and ``test_loader`` without gradients, then one step of
    ``lr_schedule`` (L; ``ReduceLROnPlateau`` steps on the validation loss).

    * **Checks first.** Before any training one batch of each loader goes through the model,
      the loss and the score functions (eval mode, every random state put back), so a misfit
      loader, model output or score function raises at once, naming the shapes or the function.
    * **Checkpoints.** With ``checkpoint_file``, everything the next epoch depends on (model,
      optimizer, schedule, random states, the rows so far; see :mod:`idlmam.train.checkpoint`)
      is written atomically after every epoch. ``resume=True`` continues from it, or starts
      fresh when it does not exist yet; a resumed run returns the frame of an uninterrupted one
      (on the CPU bitwise, ``total time`` aside).
    * **Divergence.** When an epoch's training loss is NaN or infinite, training stops after
      that epoch: its row is kept (``val``/``test`` columns NaN), the frame gets a boolean
      ``diverged`` column (True on that row only), ``frame.attrs["diverged"]`` is True (False
      for a healthy run), and one :class:`DivergenceWarning` is issued.
    * **Reproducibility.** Seed with :func:`idlmam.utils.set_seed` before building the model and
      give the loader a seed: two such runs give the same frame (on the CPU bitwise).

    Args:
        model: the network; moved to ``device``.
        loss_func: ``loss_func(y_hat, y)`` returning a scalar tensor.
        train_loader: yields ``(inputs, labels)`` batches (a ``DataLoader`` or a
            :class:`idlmam.data.ResidentLoader`).
        val_loader: evaluated after each epoch; needed by ``ReduceLROnPlateau``.
        test_loader: evaluated after each epoch; never used for a decision.
        score_funcs: ``{"Accuracy": accuracy}``: name -> ``f(y_true, y_pred)`` on NumPy arrays
            of labels (class scores are turned into labels by argmax).
        epochs: passes over ``train_loader`` (at least 1), counted from the start of the run.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; None chooses.
        checkpoint_file: written atomically after every epoch.
        optimizer: G; ``AdamW`` with its defaults when None.
        lr_schedule: L, a ``torch.optim.lr_scheduler`` object built on ``optimizer``, or the
            string ``"ReduceLROnPlateau"`` (factor 0.2, patience 10).
        disable_tqdm: no progress bar (there is none when ``TQDM_DISABLE`` or ``CI`` is set).
        on_epoch_end: ``on_epoch_end(epoch, row)`` after each epoch (after its checkpoint);
            return True to stop training after it.
        resume: continue from ``checkpoint_file`` when it exists.

    Returns:
        A pandas DataFrame with ``epoch``, ``total time`` (seconds of training so far), ``lr``
        (the rate used in that epoch), ``train loss``, ``train <score>``, the same for ``val``
        and ``test`` when given, and ``diverged`` when the run diverged.

    Raises:
        ValueError, TypeError: a bad argument, loader, model output, score function or device,
            before any training.
        CheckpointError: ``resume=True`` and ``checkpoint_file`` cannot be resumed from (delete
            it, or pass ``resume=False`` to train from scratch).

    Example:
        >>> from idlmam.models import mlp
        >>> from idlmam.data import ResidentLoader
        >>> X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
        >>> frame = train_network(mlp(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 32), epochs=2)
        >>> list(frame.columns), frame.attrs["diverged"]
        (['epoch', 'total time', 'lr', 'train loss'], False)
    """
    from tqdm import tqdm

    # 0. checks: arguments, device, then one batch of each loader (changes nothing)
    check_arguments(
        model, train_loader, val_loader, test_loader, score_funcs, epochs, optimizer, lr_schedule
    )
    if resume and checkpoint_file is None:
        raise ValueError("resume=True needs checkpoint_file=...: the file to continue from")
    device = get_device(None if device is None else str(device))
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters())
    if lr_schedule == "ReduceLROnPlateau":
        lr_schedule = ReduceLROnPlateau(optimizer, mode="min", factor=0.2, patience=10)
    if lr_schedule is not None and lr_schedule.optimizer is not optimizer:
        raise ValueError(
            "lr_schedule was built on another optimizer than the one training this "
            "model: build it as Schedule(optimizer, ...) with the same optimizer"
        )
    loaders = {
        name: loader
        for name, loader in (
            ("train_loader", train_loader),
            ("val_loader", val_loader),
            ("test_loader", test_loader),
        )
        if loader is not None
    }
    preflight(model, loss_func, loaders, score_funcs, device)
    generators = loader_generators(loaders.values())

    results: dict[str, list] = defaultdict(list)
    total_time, start, diverged = 0.0, 0, False
    if resume and Path(checkpoint_file).exists():  # no file yet: this is the first start
        state = load_checkpoint(checkpoint_file)
        start, total_time, results, diverged = restore(
            checkpoint_file,
            state,
            model,
            optimizer,
            lr_schedule,
            generators,
            _expected_columns(loaders, score_funcs),
        )
        if diverged:
            warnings.warn(
                f"checkpoint {checkpoint_file} holds a run that diverged at epoch "
                f"{state['epoch']}: returning its rows without training (delete it "
                "or pass resume=False to train again)",
                DivergenceWarning,
                stacklevel=2,
            )
            return _frame(results, diverged)

    bar = tqdm(
        range(start, epochs),
        desc="Epoch",
        initial=start,
        total=epochs,
        disable=not progress_enabled(disable_tqdm),
    )
    for epoch in bar:
        # 1. L: the learning rate this epoch uses (the schedule set it at the end of the last one)
        results["epoch"].append(epoch)
        results["lr"].append(float(optimizer.param_groups[0]["lr"]))
        # 2-4. G: one pass over the training data, updating every batch
        total_time += run_epoch(
            model, optimizer, train_loader, loss_func, device, results, score_funcs, prefix="train"
        )
        results["total time"].append(total_time)
        # 5. divergence: the pass already brought its loss to the host, so this costs no sync
        diverged = not math.isfinite(results["train loss"][-1])
        # 6. evaluate without gradients (a diverged model has nothing to evaluate: NaN)
        for prefix, loader in (("val", val_loader), ("test", test_loader)):
            if loader is not None and diverged:
                for column in ["loss", *(score_funcs or {})]:
                    results[f"{prefix} {column}"].append(float("nan"))
            elif loader is not None:
                run_epoch(
                    model, None, loader, loss_func, device, results, score_funcs, prefix=prefix
                )
        # 7. L: move the schedule one epoch on (not after a divergence: the run ends here)
        if isinstance(lr_schedule, ReduceLROnPlateau) and not diverged:
            lr_schedule.step(results["val loss"][-1])
        elif lr_schedule is not None and not diverged:
            lr_schedule.step()
        # 8. checkpoint: everything the next epoch depends on, random states included
        if checkpoint_file is not None:
            save_checkpoint(
                checkpoint_file,
                {
                    "format": CHECKPOINT_FORMAT,
                    "epoch": epoch,
                    "model_class": type(model).__name__,
                    "model_state_dict": model.state_dict(),
                    "optimizer_class": type(optimizer).__name__,
                    "optimizer_state_dict": optimizer.state_dict(),
                    "lr_schedule_class": None
                    if lr_schedule is None
                    else type(lr_schedule).__name__,
                    "lr_schedule_state_dict": None
                    if lr_schedule is None
                    else lr_schedule.state_dict(),
                    "rng": rng_state(generators, cuda=device.type == "cuda"),
                    "results": {k: list(v) for k, v in results.items()},
                    "total_time": total_time,
                    "diverged": diverged,
                },
            )
        # 9. hooks: tell the caller; stop on divergence or when the caller asks
        row = {k: v[-1] for k, v in results.items()}
        if diverged:
            row["diverged"] = True
            warnings.warn(
                f"the training loss became {row['train loss']} at epoch {epoch} "
                f"(lr {row['lr']:g}): training stopped. The frame keeps its "
                f"{len(results['epoch'])} rows, the last with diverged=True; lower the "
                "learning rate or clip the gradients",
                DivergenceWarning,
                stacklevel=2,
            )
        stop = on_epoch_end is not None and on_epoch_end(epoch, row)
        if diverged or stop:
            break
    bar.close()
    return _frame(results, diverged)
