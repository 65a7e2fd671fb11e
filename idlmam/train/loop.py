"""The training loop of the book: an optimizer G every batch, a schedule L every epoch or batch.

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

Optimizers with a mode of their own (schedule-free AdamW, whose ``train()`` and ``eval()`` move
the weights between the point the gradients are taken at and the average that is evaluated) are
switched with the model: ``train()`` before the training batches, ``eval()`` after them, before
any evaluation, checkpoint or hook (:func:`set_train_mode`).
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
    "set_train_mode",
    "has_modes",
    "check_schedule_every",
    "SCHEDULE_EVERY",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "DivergenceWarning",
    "CHECKPOINT_FORMAT",
]

ScoreFunc = Callable[[np.ndarray, np.ndarray], float]
EpochHook = Callable[[int, dict], "bool | None"]


SCHEDULE_EVERY = ("epoch", "batch")  # when a schedule steps: after each epoch, after each batch


class DivergenceWarning(RuntimeWarning):
    """The training loss became NaN or infinite and the run was stopped."""


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


def has_modes(optimizer: object) -> bool:
    """Whether ``optimizer`` has modes of its own: callable ``train`` and ``eval`` attributes
    (schedule-free optimizers; ``torch.optim`` ones have neither)."""
    return callable(getattr(optimizer, "train", None)) and callable(
        getattr(optimizer, "eval", None)
    )


def set_train_mode(model: nn.Module, optimizer: object, training: bool) -> None:
    """Put ``model`` and, when it has modes (:func:`has_modes`), ``optimizer`` in one mode.

    ``model.train(); optimizer.train()`` before training batches, ``model.eval();
    optimizer.eval()`` before evaluating, as the ``schedulefree`` package asks. Its optimizers
    keep two points: :math:`y`, where the gradients are taken (train mode), and the average
    :math:`x` of the iterates, which is the model to evaluate, save and return (eval mode);
    switching moves the model's weights from one to the other. Forgetting ``eval()`` evaluates
    :math:`y` instead, and forgetting ``train()`` makes the next ``step()`` raise.

    Example:
        >>> model = nn.Linear(2, 1)
        >>> set_train_mode(model, torch.optim.SGD(model.parameters(), lr=0.1), False)
        >>> model.training
        False
    """
    model.train(training)
    if not has_modes(optimizer):
        return
    if training:
        optimizer.train()
    else:
        optimizer.eval()


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
    on_step: Callable[[], object] | None = None,
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
        on_step: called after every ``optimizer`` step (a per-batch schedule's ``step``).

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
                if on_step is not None:
                    on_step()
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
    *,
    on_step: Callable[[], object] | None = None,
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
        on_step: called after every optimizer step (a per-batch schedule's ``step``).

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
        on_step=on_step,
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
    lr_schedule_every: str = "epoch",
    on_epoch_end: EpochHook | None = None,
    resume: bool = False,
) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` and return the results frame, one row per epoch.

    Each epoch: one pass over ``train_loader`` with an ``optimizer`` step per batch (G), an
    evaluation of ``val_loader`` and ``test_loader`` without gradients, then one step of
    ``lr_schedule`` (L; ``ReduceLROnPlateau`` steps on the validation loss). With
    ``lr_schedule_every="batch"`` L steps after every optimizer step instead, and not at the
    epoch's end.

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
      for a healthy run), and one :class:`DivergenceWarning` is issued. The schedule steps no
      more (a per-batch one has taken the steps of that last epoch: the loss is read once per
      epoch).
    * **Reproducibility.** Seed with :func:`idlmam.utils.set_seed` before building the model and
      give the loader a seed: two such runs give the same frame (on the CPU bitwise).
    * **Optimizers with modes.** An optimizer with callable ``train`` and ``eval`` attributes
      (``schedulefree.AdamWScheduleFree``, Defazio et al. 2024) is switched with the model
      (:func:`set_train_mode`): ``train()`` before each epoch's training batches, ``eval()``
      right after them, so every evaluation, checkpoint, ``on_epoch_end`` call and the model
      returned see its averaged weights. Batch-norm running statistics, though, were gathered
      at the training point, not at those weights: such a model gets a ``UserWarning`` before
      training (recompute the statistics before trusting ``val``/``test``; the book's MLP has
      no batch norm).

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
        lr_schedule_every: when L steps: ``"epoch"`` (after each epoch's evaluation, the
            chapter's way) or ``"batch"`` (after every optimizer step: for schedules counted
            in steps, such as warmup, ``OneCycleLR`` or a linear decay to zero, built with
            ``epochs * len(train_loader)`` steps). Not ``"batch"`` with ``ReduceLROnPlateau``,
            which needs a validation loss per step. The ``lr`` column holds the rate at the
            start of each epoch either way (the rate its first batch uses). The whole
            per-batch curve is ``idlmam.optim.schedule_lrs(make_schedule, epochs *
            len(train_loader), eta_0)``: it steps a schedule once per read, as this loop does
            per batch, so entry ``i`` is the rate of optimizer step ``i``.
        disable_tqdm: no progress bar (there is none when ``TQDM_DISABLE`` or ``CI`` is set).
        on_epoch_end: ``on_epoch_end(epoch, row)`` after each epoch (after its checkpoint);
            return True to stop training after it.
        resume: continue from ``checkpoint_file`` when it exists.

    Returns:
        A pandas DataFrame with ``epoch``, ``total time`` (seconds of training so far), ``lr``
        (the rate at the start of that epoch: with ``lr_schedule_every="epoch"`` the rate of
        the whole epoch; a schedule-free optimizer's own warmup is not in it), ``train loss``,
        ``train <score>``, the same for ``val`` and ``test`` when given, and ``diverged`` when
        the run diverged. The model and the optimizer are left in eval mode.

    Raises:
        ValueError, TypeError: a bad argument, loader, model output, score function or device,
            ``lr_schedule_every`` not ``"epoch"`` or ``"batch"``, ``"batch"`` with
            ``ReduceLROnPlateau``, before any training.
        CheckpointError: ``resume=True`` and ``checkpoint_file`` cannot be resumed from (delete
            it, or pass ``resume=False`` to train from scratch).

    Example:
        >>> from idlmam.models import mlp
        >>> from idlmam.data import ResidentLoader
        >>> X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
        >>> frame = train_network(mlp(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 32), epochs=2)
        >>> list(frame.columns), frame.attrs["diverged"]
        (['epoch', 'total time', 'lr', 'train loss'], False)

        A linear decay to zero over the run's 4 optimizer steps, stepped every batch; the
        ``lr`` column holds each epoch's first rate:

        >>> model = mlp()
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> decay = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=4)
        >>> frame = train_network(model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 32),
        ...                       epochs=2, optimizer=opt, lr_schedule=decay,
        ...                       lr_schedule_every="batch")
        >>> frame["lr"].round(4).tolist()
        [0.1, 0.05]
    """
    from tqdm import tqdm

    # 0. checks: arguments, device, then one batch of each loader (changes nothing)
    check_arguments(
        model, train_loader, val_loader, test_loader, score_funcs, epochs, optimizer, lr_schedule
    )
    check_schedule_every(lr_schedule_every, lr_schedule)
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
    if has_modes(optimizer) and any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        for m in model.modules()
    ):
        warnings.warn(
            f"{type(optimizer).__name__} evaluates the average of its iterates (its eval() "
            "mode), but the model's batch-norm running statistics are gathered at the "
            "training point: the val/test columns use statistics that do not belong to the "
            "weights. Recompute them at the averaged weights before trusting them (after "
            "optimizer.eval(): model.train(), a few training batches under torch.no_grad(), "
            "model.eval()), or train a model without batch norm",
            UserWarning,
            stacklevel=2,
        )
    per_batch = None if lr_schedule is None or lr_schedule_every == "epoch" else lr_schedule.step
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
            set_train_mode(model, optimizer, False)  # as a run that trained leaves them
            return _frame(results, diverged)

    bar = tqdm(
        range(start, epochs),
        desc="Epoch",
        initial=start,
        total=epochs,
        disable=not progress_enabled(disable_tqdm),
    )
    for epoch in bar:
        # 1. L: the learning rate this epoch starts with (the rate of its first batch)
        results["epoch"].append(epoch)
        results["lr"].append(float(optimizer.param_groups[0]["lr"]))
        # 2-4. G: one pass over the training data, updating every batch (and L, when per batch)
        set_train_mode(model, optimizer, True)
        total_time += run_epoch(
            model,
            optimizer,
            train_loader,
            loss_func,
            device,
            results,
            score_funcs,
            prefix="train",
            on_step=per_batch,
        )
        # an optimizer with modes now holds the weights to evaluate, save and return
        set_train_mode(model, optimizer, False)
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
        if lr_schedule is not None and lr_schedule_every == "epoch" and not diverged:
            if isinstance(lr_schedule, ReduceLROnPlateau):
                lr_schedule.step(results["val loss"][-1])
            else:
                lr_schedule.step()
        # 8. checkpoint: everything the next epoch depends on, random states included (an
        # optimizer with modes is saved in eval mode, the model at its averaged weights)
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
