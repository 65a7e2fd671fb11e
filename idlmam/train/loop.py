"""The training loop of the book: an optimizer G every batch, a schedule L every epoch or batch.

.. math::
    \\Theta_{t+1} = \\Theta_t - L(\\eta_0, t) \\cdot G(g^t)

One loop, :func:`fit`, trains one model or K stacked ones; what differs between the two is an
*engine*: :class:`OneModel` here, :class:`idlmam.train.stacked.StackedModels` for K seeds in one
pass. Its phases are written once: prepare (the optimizer, AdamW by default, and the schedule
on it), pre-flight (one batch of each loader through the model, the loss and the score
functions, so a mistake stops the run in a second, not an hour in), resume, then every epoch:
the ``lr`` column, the training pass, divergence, evaluation, the schedule's step, the
checkpoint, the callbacks; last, the divergence warning. :func:`train_network` (one model) and
:func:`idlmam.train.train_many` (K seeds) are its public entry points; both return the results
frame (:mod:`idlmam.train.frame`).

The loop never loses work. After every epoch it writes a checkpoint atomically
(:mod:`idlmam.train.checkpoint`), from which ``resume=True`` continues exactly. When a training
loss becomes NaN or infinite, that model stops, its rows are kept and the stop is marked.

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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..utils import get_device, move_to, progress_enabled
from .checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    checkpoint_state,
    load_checkpoint,
    loader_generators,
    restore,
    save_checkpoint,
)
from .checks import (
    SCHEDULE_EVERY,
    check_arguments,
    check_optimizer,
    check_schedule_every,
    predicted_labels,
    preflight,
    score,
)
from .frame import (
    DivergenceWarning,
    diverged_where,
    fill_not_evaluated,
    result_columns,
    results_frame,
    warn_diverged,
    warn_diverged_seeds,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "train_network",
    "fit",
    "Engine",
    "OneModel",
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
# what a pass gives back: each model's mean loss, and its labels and predicted labels (NumPy
# arrays, one per model; empty lists when no score function asks for them)
PassResult = tuple[list[float], list[np.ndarray], list[np.ndarray]]


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


class Engine(Protocol):
    """What :func:`fit` needs of the models it trains: one model, or K stacked ones.

    Attributes:
        k: the number of models trained together.
        module: what trains and what :func:`set_train_mode` switches (the model, or the
            stacked module).
        plain: one plain model, for the pre-flight checks.
        loss_func: ``loss_func(y_hat, y)``, one model's mean loss on a batch.
        device: where the models are.
        seeds: the seed of each model (they name the models in the rows and the warning), or
            None for one model trained alone.
    """

    k: int
    module: nn.Module
    plain: nn.Module
    loss_func: Callable
    device: torch.device
    seeds: list[int] | None

    def check(self, optimizer: torch.optim.Optimizer, lr_schedule: object) -> None:
        """Refuse (or warn about) what this engine cannot train with, before any training."""

    def pass_over(
        self,
        optimizer: torch.optim.Optimizer | None,
        loader: Iterable,
        running: list[bool],
        *,
        keep_outputs: bool,
        name: str,
        on_step: Callable[[], object] | None = None,
    ) -> PassResult:
        """One pass of the models whose ``running[k]`` is True over ``loader`` (trains when
        ``optimizer`` is given; :func:`batch_pass` does the batches)."""

    def stopping(self, models: list[int]) -> None:
        """Models ``models`` train no more after this epoch."""


class OneModel:
    """The engine of :func:`train_network`: one model, fed the loader's own batches.

    Example:
        >>> engine = OneModel(nn.Linear(3, 2), nn.CrossEntropyLoss(), torch.device("cpu"))
        >>> batches = [(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))]
        >>> losses, _, _ = engine.pass_over(None, batches, [True], keep_outputs=False, name="val")
        >>> len(losses)
        1
    """

    k = 1
    seeds = None

    def __init__(self, model: nn.Module, loss_func: Callable, device: torch.device) -> None:
        self.module = self.plain = model
        self.loss_func, self.device = loss_func, device

    def check(self, optimizer: torch.optim.Optimizer, lr_schedule: object) -> None:
        """Warn when an optimizer with modes evaluates weights that batch-norm statistics do not
        belong to (see :func:`train_network`)."""
        if has_modes(optimizer) and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            for m in self.module.modules()
        ):
            warnings.warn(
                f"{type(optimizer).__name__} evaluates the average of its iterates (its eval() "
                "mode), but the model's batch-norm running statistics are gathered at the "
                "training point: the val/test columns use statistics that do not belong to the "
                "weights. Recompute them at the averaged weights before trusting them (after "
                "optimizer.eval(): model.train(), a few training batches under torch.no_grad(), "
                "model.eval()), or train a model without batch norm",
                UserWarning,
                stacklevel=4,  # the caller of train_network
            )

    def pass_over(self, optimizer, loader, running, *, keep_outputs, name, on_step=None):
        """One pass over ``loader`` (its ``eval_batches()`` when evaluating, if it has one)."""
        if optimizer is None and hasattr(loader, "eval_batches"):
            loader = loader.eval_batches()  # large batches: the order does not matter here
        mean_loss, y_true, y_pred = batch_pass(
            self.module,
            optimizer,
            loader,
            self.loss_func,
            self.device,
            keep_outputs=keep_outputs,
            name=name,
            on_step=on_step,
        )
        losses = [mean_loss.item()]  # one sync per pass
        if not keep_outputs:
            return losses, [], []
        labels = torch.cat(y_true).cpu().numpy()
        return losses, [labels], [predicted_labels(torch.cat(y_pred)).cpu().numpy()]

    def stopping(self, models: list[int]) -> None:
        """Nothing to keep: the model is the caller's own."""


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
    row: dict = {}
    engine = OneModel(model, loss_func, device)
    seconds = _pass(engine, optimizer, data_loader, prefix, [row], [True], score_funcs, on_step)
    for column, value in row.items():
        results[column].append(value)
    return seconds


def _pass(engine, optimizer, loader, prefix, rows, running, score_funcs, on_step=None) -> float:
    """One pass of ``engine``'s running models; each one's loss and scores into ``rows[k]``.

    Scores are NaN where the loss is not finite (score functions are not asked to rate a
    diverged model). Returns the seconds spent.
    """
    start = time.perf_counter()
    losses, labels, predicted = engine.pass_over(
        optimizer,
        loader,
        running,
        keep_outputs=bool(score_funcs),
        name=prefix or "data",
        on_step=on_step,
    )
    for k, row in enumerate(rows):
        if not running[k]:
            continue
        row[f"{prefix} loss"] = losses[k]
        for name, score_func in (score_funcs or {}).items():
            row[f"{prefix} {name}"] = (
                score(name, score_func, labels[k], predicted[k], f"the {prefix} data")
                if math.isfinite(losses[k])
                else float("nan")
            )
    return time.perf_counter() - start


def _optimize(params, make_optimizer, make_schedule, lr_schedule_every):
    """The optimizer (``AdamW`` with its defaults when ``make_optimizer`` is None), the schedule
    built on it, and the checks that they belong to the parameters and to each other."""
    params = list(params)
    optimizer = (make_optimizer or torch.optim.AdamW)(params)
    check_optimizer(optimizer, params)
    lr_schedule = make_schedule(optimizer) if make_schedule is not None else None
    check_schedule_every(lr_schedule_every, lr_schedule)
    if lr_schedule is not None and getattr(lr_schedule, "optimizer", None) is not optimizer:
        raise ValueError(
            "the schedule was built on another optimizer than the one training the model: "
            "build it on that optimizer, lr_schedule=Schedule(optimizer, ...) or "
            "make_schedule=lambda optimizer: Schedule(optimizer, ...)"
        )
    return optimizer, lr_schedule


def fit(
    engine: Engine,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    test_loader: Iterable | None = None,
    *,
    make_optimizer: Callable[[list], torch.optim.Optimizer] | None = None,
    make_schedule: Callable[[torch.optim.Optimizer], object] | None = None,
    lr_schedule_every: str = "epoch",
    score_funcs: Mapping[str, ScoreFunc] | None = None,
    epochs: int = 50,
    checkpoint_file: str | os.PathLike | None = None,
    resume: bool = False,
    on_epoch_end: EpochHook | None = None,
    disable_tqdm: bool = False,
) -> tuple[list[list[dict]], list[bool]]:
    """The one training loop, for the models of ``engine``; the contract of :func:`train_network`.

    Args:
        engine: the models (:class:`OneModel`, or K stacked ones).
        make_optimizer: ``params -> optimizer`` over ``engine.module``'s parameters (AdamW
            with its defaults when None).
        make_schedule: ``optimizer -> schedule``, or None.
        checkpoint_file, resume: as in :func:`train_network` (one model only).
        train_loader, val_loader, test_loader, lr_schedule_every, score_funcs, epochs,
            on_epoch_end, disable_tqdm: as in :func:`train_network`; ``on_epoch_end``'s row has
            the model's ``seed`` when the engine has seeds.

    Returns:
        ``(rows, diverged)``: for each model, its rows (one dict per epoch trained) and
        whether it diverged. The modules and the optimizer are left in eval mode.

    Raises:
        ValueError, TypeError, CheckpointError: as :func:`train_network`, before any training.
    """
    from tqdm import tqdm

    # 1. prepare: the optimizer, the schedule on it, what this engine cannot train with
    optimizer, lr_schedule = _optimize(
        engine.module.parameters(), make_optimizer, make_schedule, lr_schedule_every
    )
    engine.check(optimizer, lr_schedule)
    per_batch = None if lr_schedule is None or lr_schedule_every == "epoch" else lr_schedule.step
    # 2. pre-flight: one batch of each loader through a plain model (changes nothing)
    named = {"train_loader": train_loader, "val_loader": val_loader, "test_loader": test_loader}
    loaders = {name: loader for name, loader in named.items() if loader is not None}
    preflight(engine.plain, engine.loss_func, loaders, score_funcs, engine.device)
    generators = loader_generators(loaders.values())
    # 3. resume: the rows, the states and the random states of the last epoch saved
    history: list[list[dict]] = [[] for _ in range(engine.k)]
    diverged, start, total_time = [False] * engine.k, 0, 0.0
    if resume and Path(checkpoint_file).exists():  # no file yet: this is the first start
        state = load_checkpoint(checkpoint_file)
        columns = result_columns([n.removesuffix("_loader") for n in loaders], score_funcs)
        start, total_time, history[0], diverged[0] = restore(
            checkpoint_file, state, engine.module, optimizer, lr_schedule, generators, columns
        )
        if diverged[0]:
            warnings.warn(
                f"checkpoint {checkpoint_file} holds a run that diverged at epoch "
                f"{state['epoch']}: returning its rows without training (delete it "
                "or pass resume=False to train again)",
                DivergenceWarning,
                stacklevel=3,
            )
            set_train_mode(engine.module, optimizer, False)  # as a run that trained leaves them
            return history, diverged
    running = [True] * engine.k  # models still training

    bar = tqdm(
        range(start, epochs),
        desc="Epoch",
        initial=start,
        total=epochs,
        disable=not progress_enabled(disable_tqdm),
    )
    for epoch in bar:
        # 4. L: the learning rate this epoch starts with (the rate of its first batch)
        lr = float(optimizer.param_groups[0]["lr"])
        rows = [{"epoch": epoch, "lr": lr} for _ in range(engine.k)]
        # 5. G: one pass over the training data, updating every batch (and L, when per batch)
        set_train_mode(engine.module, optimizer, True)
        total_time += _pass(
            engine, optimizer, train_loader, "train", rows, running, score_funcs, per_batch
        )
        # an optimizer with modes now holds the weights to evaluate, save and return
        set_train_mode(engine.module, optimizer, False)
        for row in rows:
            row["total time"] = total_time
        # 6. divergence: the pass already brought the losses to the host, so this costs no sync
        bad = [
            k for k in range(engine.k) if running[k] and not math.isfinite(rows[k]["train loss"])
        ]
        healthy = [running[k] and k not in bad for k in range(engine.k)]
        # 7. evaluate without gradients (a diverged model has nothing to evaluate: NaN)
        for prefix, loader in (("val", val_loader), ("test", test_loader)):
            if loader is None:
                continue
            if any(healthy):
                _pass(engine, None, loader, prefix, rows, healthy, score_funcs)
            for k in bad:
                fill_not_evaluated(rows[k], prefix, score_funcs)
        # 8. L: move the schedule one epoch on (not when every model diverged: the run ends)
        if lr_schedule is not None and lr_schedule_every == "epoch" and any(healthy):
            if isinstance(lr_schedule, ReduceLROnPlateau):  # never stacked: one model
                lr_schedule.step(rows[0]["val loss"])
            else:
                lr_schedule.step()
        for k in range(engine.k):
            if running[k]:
                history[k].append(rows[k])
                diverged[k] = k in bad
        # 9. checkpoint: everything the next epoch depends on, random states included (an
        # optimizer with modes is saved in eval mode, the model at its averaged weights)
        if checkpoint_file is not None:
            save_checkpoint(
                checkpoint_file,
                checkpoint_state(
                    epoch=epoch,
                    model=engine.module,
                    optimizer=optimizer,
                    lr_schedule=lr_schedule,
                    generators=generators,
                    device=engine.device,
                    rows=history[0],
                    total_time=total_time,
                    diverged=diverged[0],
                ),
            )
        # 10. callbacks: tell the caller; a model stops on divergence or when the caller asks
        stop = list(bad)
        for k in (k for k in range(engine.k) if running[k]):
            row = {**rows[k], **({"diverged": True} if k in bad else {})}
            if engine.seeds is not None:
                row["seed"] = engine.seeds[k]
            if on_epoch_end is not None and on_epoch_end(epoch, row) and k not in bad:
                stop.append(k)
        if stop:
            engine.stopping(sorted(stop))
        for k in stop:
            running[k] = False
        if not any(running):
            break
    bar.close()
    # 11. the one divergence warning of the run
    if any(diverged):
        if engine.seeds is None:
            warn_diverged(history[0][-1], len(history[0]), stacklevel=4)
        else:
            where = [
                diverged_where(s, h[-1]) for s, h, d in zip(engine.seeds, history, diverged) if d
            ]
            warn_diverged_seeds(where, stacklevel=4)
    return history, diverged


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
    # the checks of this entry point's arguments (fit makes the rest)
    check_arguments(train_loader, val_loader, test_loader, score_funcs, epochs, lr_schedule)
    if resume and checkpoint_file is None:
        raise ValueError("resume=True needs checkpoint_file=...: the file to continue from")
    device = get_device(None if device is None else str(device))
    if lr_schedule == "ReduceLROnPlateau":
        make_schedule = _plateau
    else:
        make_schedule = None if lr_schedule is None else (lambda _: lr_schedule)
    history, diverged = fit(
        OneModel(model.to(device), loss_func, device),
        train_loader,
        val_loader,
        test_loader,
        make_optimizer=None if optimizer is None else (lambda _: optimizer),
        make_schedule=make_schedule,
        lr_schedule_every=lr_schedule_every,
        score_funcs=score_funcs,
        epochs=epochs,
        checkpoint_file=checkpoint_file,
        resume=resume,
        on_epoch_end=on_epoch_end,
        disable_tqdm=disable_tqdm,
    )
    return results_frame(history[0], diverged[0])


def _plateau(optimizer: torch.optim.Optimizer) -> ReduceLROnPlateau:
    """The schedule ``lr_schedule="ReduceLROnPlateau"`` names: factor 0.2, patience 10."""
    return ReduceLROnPlateau(optimizer, mode="min", factor=0.2, patience=10)
