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
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .utils import get_device, move_to, progress_enabled, rng_state, set_rng_state

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["train_network", "run_epoch", "save_checkpoint", "load_checkpoint", "CheckpointError",
           "DivergenceWarning", "CHECKPOINT_FORMAT"]

ScoreFunc = Callable[[np.ndarray, np.ndarray], float]
EpochHook = Callable[[int, dict], "bool | None"]

CHECKPOINT_FORMAT = 2  # 1: the first loop's files (no random states); not resumable
CHECKPOINT_KEYS = ("format", "epoch", "model_class", "model_state_dict", "optimizer_class",
                   "optimizer_state_dict", "lr_schedule_class", "lr_schedule_state_dict", "rng",
                   "results", "total_time", "diverged")
# losses that broadcast a shape mismatch with only a warning: (B, 1) against (B,) trains on nonsense
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be resumed from (unreadable, or written by a different run)."""


class DivergenceWarning(RuntimeWarning):
    """The training loss became NaN or infinite and the run was stopped."""


def _predicted_labels(y_hat: torch.Tensor) -> torch.Tensor:
    """Class scores -> predicted labels by argmax, on the device; anything else is left as is."""
    if y_hat.dim() == 2 and y_hat.shape[1] > 1:
        return y_hat.argmax(dim=1)  # (B, classes) -> (B,)
    return y_hat


def _score(name: str, score_func: ScoreFunc, y_true: np.ndarray, y_pred: np.ndarray,
           where: str) -> float:
    """``score_func(y_true, y_pred)`` as a float; an error names the function and the arrays."""
    try:
        return float(score_func(y_true, y_pred))
    except Exception as err:
        func = getattr(score_func, "__qualname__", type(score_func).__name__)
        raise ValueError(f"score function {name!r} ({func}) failed on {where}: "
                         f"{type(err).__name__}: {err}. It is called as f(y_true, y_pred) with "
                         f"NumPy arrays, here of shapes {y_true.shape} and {y_pred.shape} (class "
                         "scores are turned into labels by argmax) and must return a number"
                         ) from err


def run_epoch(model: nn.Module, optimizer: torch.optim.Optimizer | None, data_loader: Iterable,
              loss_func: Callable, device: torch.device | str, results: dict,
              score_funcs: Mapping[str, ScoreFunc] | None, prefix: str = "") -> float:
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
    mean_loss = (running_loss / n_seen).item()  # one sync per epoch
    results[f"{prefix} loss"].append(mean_loss)
    if score_funcs:
        finite = math.isfinite(mean_loss)
        y_true_np = torch.cat(y_true).cpu().numpy()
        y_pred_np = _predicted_labels(torch.cat(y_pred)).cpu().numpy()
        for name, score_func in score_funcs.items():
            results[f"{prefix} {name}"].append(
                _score(name, score_func, y_true_np, y_pred_np, f"the {prefix} data")
                if finite else float("nan"))
    return time.perf_counter() - start


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    A kill at any moment leaves either the previous checkpoint or the new one, never half a file.

    Args:
        path: the checkpoint file; its folder is created if needed.
        state: anything ``torch.save`` takes (keep to tensors, numbers, strings, lists and dicts
            so that it loads with ``weights_only=True``).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.pt"
        >>> save_checkpoint(path, {"epoch": 3})
        >>> torch.load(path, weights_only=True)
        {'epoch': 3}
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


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint :func:`train_network` wrote, with ``weights_only=True``, onto the CPU.

    Args:
        path: the checkpoint file.

    Returns:
        The dict with the keys of :data:`CHECKPOINT_KEYS` (see :func:`train_network`).

    Raises:
        CheckpointError: the file is truncated, corrupted, or not such a checkpoint; the message
            names it and says what to do.

    Example:
        >>> state = load_checkpoint("run.pt")  # doctest: +SKIP
        >>> state["epoch"], state["results"]["train loss"][-1]  # doctest: +SKIP
    """
    fix = "delete it to start over, or pass resume=False to overwrite it"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a torn zip, a truncated pickle, a foreign object: all unreadable
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {detail}): "
                              f"it is truncated, corrupted or not a checkpoint; {fix}") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format", "none") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not in train_network's format "
                              f"{CHECKPOINT_FORMAT} (found {found}: another program or an older "
                              f"idlmam wrote it); {fix}")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; {fix}")
    return state


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


def _loader_generators(loaders: Iterable) -> list[torch.Generator]:
    """The ``torch.Generator`` objects that decide these loaders' order, each once, in order.

    A :class:`idlmam.data.ResidentLoader` has ``.generator``; a ``DataLoader`` has
    ``.generator`` and its sampler may hold one too.
    """
    found: list[torch.Generator] = []
    for loader in loaders:
        for owner in (loader, getattr(loader, "sampler", None)):
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
                found.append(generator)
    return found


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


def _check_first_batch(name: str, loader: Iterable, model: nn.Module, loss_func: Callable,
                       score_funcs: Mapping[str, ScoreFunc] | None, device: torch.device) -> None:
    """One batch of ``loader`` through the model, the loss and the scores; clear errors if not."""
    batches = iter(loader)
    if batches is loader:  # a one-shot iterator: peeking would eat a batch of the run
        return
    batch = next(batches, None)
    del batches  # a DataLoader's workers stop here
    if batch is None:
        raise ValueError(f"{name} yielded no batches: give it at least one example")
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError(f"{name} must yield (inputs, labels) pairs, but its first batch is "
                        f"{_describe(batch)}: make the dataset's items (x, y) pairs (a "
                        "TensorDataset(X, y) is) or use idlmam.data.ResidentLoader(X, y)")
    inputs, labels = move_to(batch[0], device), move_to(batch[1], device)
    try:
        y_hat = model(inputs)  # (B, ...) -> (B, classes)
    except torch.OutOfMemoryError:
        raise
    except Exception as err:
        raise ValueError(f"the model cannot take the first batch of {name}: inputs of shape "
                         f"{_shape(inputs)} gave {type(err).__name__}: {err}. Make the model's "
                         "first layer fit the inputs (e.g. its in_features)") from err
    fix = ("make the model's last layer output what loss_func expects (nn.CrossEntropyLoss: "
           "(B, classes) scores and (B,) integer labels; nn.MSELoss: the labels' shape)")
    mismatch = isinstance(loss_func, _ELEMENTWISE_LOSSES) and _shape(y_hat) != _shape(labels)
    if mismatch:
        raise ValueError(f"the model's output {_shape(y_hat)} and the labels {_shape(labels)} of "
                         f"{name} differ in shape, and {type(loss_func).__name__} would broadcast "
                         f"them into a wrong loss: {fix}")
    try:
        loss = loss_func(y_hat, labels)
    except torch.OutOfMemoryError:
        raise
    except Exception as err:
        raise ValueError(f"loss_func cannot compare the model's output of shape {_shape(y_hat)} "
                         f"with the labels of {name}, of shape {_shape(labels)} and dtype "
                         f"{getattr(labels, 'dtype', '?')}: {type(err).__name__}: {err}. "
                         f"Fix: {fix}") from err
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(f"loss_func must return one number (a scalar tensor) but returned "
                         f"{_shape(loss)} on {name}: use a loss with reduction='mean'")
    if score_funcs and bool(torch.isfinite(loss)):  # a NaN batch: the run will say it diverged
        y_true = labels.detach().cpu().numpy()
        y_pred = _predicted_labels(y_hat.detach()).cpu().numpy()
        for score_name, score_func in score_funcs.items():
            _score(score_name, score_func, y_true, y_pred, f"the first batch of {name}")


def _preflight(model: nn.Module, loss_func: Callable, loaders: Mapping[str, Iterable],
               score_funcs: Mapping[str, ScoreFunc] | None, device: torch.device) -> None:
    """Check the first batch of every loader before any training, without changing the run.

    The model runs in eval mode without gradients (no dropout drawn, no batch-norm statistics
    moved), and every random state, the loaders' generators included, is put back afterwards:
    the run that follows is bitwise the one that would have run without the check.
    """
    generators = _loader_generators(loaders.values())
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


def _expected_columns(loaders: Mapping[str, Iterable], score_funcs) -> set[str]:
    prefixes = [name.removesuffix("_loader") for name in loaders]
    return {"epoch", "lr", "total time"} | {
        f"{prefix} {column}" for prefix in prefixes for column in ["loss", *(score_funcs or {})]}


def _restore(path, state: dict, model, optimizer, lr_schedule, generators, columns: set[str]):
    """Load ``state`` into the objects of this call; a mismatch is a :class:`CheckpointError`."""
    fix = f"resume with the same setup, or delete {path} / pass resume=False to start over"
    saved_columns = set(state["results"])
    if saved_columns != columns:
        raise CheckpointError(f"checkpoint {path} has the columns {sorted(saved_columns)} but "
                              f"this call makes {sorted(columns)} (other loaders or score_funcs?): "
                              f"{fix}")
    schedule_class = None if lr_schedule is None else type(lr_schedule).__name__
    for what, saved, ours in (("model", state["model_class"], type(model).__name__),
                              ("optimizer", state["optimizer_class"], type(optimizer).__name__),
                              ("lr_schedule", state["lr_schedule_class"], schedule_class)):
        if saved != ours:
            raise CheckpointError(f"checkpoint {path} was written with {what} {saved}, this call "
                                  f"has {ours}: {fix}")
    try:
        model.load_state_dict(state["model_state_dict"])
        optimizer.load_state_dict(state["optimizer_state_dict"])
        if lr_schedule is not None:
            lr_schedule.load_state_dict(state["lr_schedule_state_dict"])
        set_rng_state(state["rng"], generators)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"checkpoint {path} does not fit this run ({type(err).__name__}: "
                              f"{str(err).strip()[:300]}): {fix}") from err
    results = defaultdict(list, {column: list(values) for column, values in state["results"].items()})
    return state["epoch"] + 1, float(state["total_time"]), results, bool(state["diverged"])


def _frame(results: Mapping[str, list], diverged: bool) -> "pd.DataFrame":
    import pandas as pd

    frame = pd.DataFrame.from_dict(results)
    first = ["epoch", "total time", "lr"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    if diverged:  # the last row is the epoch whose training loss was not finite
        frame["diverged"] = np.arange(len(frame)) == len(frame) - 1
    frame.attrs["diverged"] = diverged
    return frame


def train_network(model: nn.Module, loss_func: Callable, train_loader: Iterable,
                  val_loader: Iterable | None = None, test_loader: Iterable | None = None,
                  score_funcs: Mapping[str, ScoreFunc] | None = None, epochs: int = 50,
                  device: torch.device | str | None = "cpu",
                  checkpoint_file: str | os.PathLike | None = None,
                  optimizer: torch.optim.Optimizer | None = None, lr_schedule=None,
                  disable_tqdm: bool = False, *, on_epoch_end: EpochHook | None = None,
                  resume: bool = False) -> "pd.DataFrame":
    """Train ``model`` for ``epochs`` and return the results frame, one row per epoch.

    **Checks first.** Before any training, one batch of each loader goes through the model, the
    loss and the score functions (eval mode, no gradients, every random state put back), so a
    loader that does not yield ``(inputs, labels)``, a model whose output does not fit the
    labels, or a failing score function stops the call at once with a message naming the
    shapes or the function. A device this machine lacks is refused the same way.

    **Checkpoints.** With ``checkpoint_file``, a file is written atomically after every epoch
    (a kill leaves the previous or the new one, never half a file). It loads with
    ``torch.load(path, weights_only=True)`` (or :func:`load_checkpoint`) and holds the keys
    ``format`` (2), ``epoch`` (the last one finished), ``model_class``, ``model_state_dict``,
    ``optimizer_class``, ``optimizer_state_dict``, ``lr_schedule_class``,
    ``lr_schedule_state_dict`` (None without a schedule), ``rng`` (Python's ``random``, NumPy's
    global generator, torch CPU, CUDA when training there, and the generators of the loaders'
    order, e.g. ``ResidentLoader.generator``; see :func:`idlmam.utils.rng_state`), ``results``
    (the frame so far, as ``{column: [values]}``), ``total_time`` and ``diverged``.

    **Resume.** ``resume=True`` continues from ``checkpoint_file``: the model, optimizer,
    schedule, random states and rows come back, and training goes on at the next epoch up to
    ``epochs`` (counted from the start of the run). Built with the same seed, a run killed
    after epoch k and resumed returns the same frame as one never interrupted (on the CPU
    bitwise; ``total time`` aside). If the file does not exist yet, training starts fresh, so
    the same call serves the first start and every restart. A truncated or corrupted file, or
    one from a different setup, raises :class:`CheckpointError` naming it: delete it or pass
    ``resume=False`` (which trains from scratch and overwrites it). A run that
    ``on_epoch_end`` stopped resumes after its last epoch (the hook is asked again); a run that
    diverged resumes to its rows, training nothing. Not restored: state a caller
    keeps outside (its ``on_epoch_end`` closure, a ``np.random.default_rng``), and random
    augmentation drawn inside ``DataLoader`` worker processes.

    **Divergence.** When an epoch's training loss is NaN or infinite, training stops after that
    epoch: its row is kept (its ``val``/``test`` columns are NaN, there is nothing to evaluate),
    the frame gets a boolean ``diverged`` column (True on that last row only; the column is
    absent from runs that did not diverge) and ``frame.attrs["diverged"]`` is True (False
    otherwise), and one :class:`DivergenceWarning` is issued. ``on_epoch_end`` still sees that
    row, with ``row["diverged"] = True``. The check reads the loss the epoch already brought
    back to the host: no extra synchronisation.

    **Reproducibility.** Call :func:`idlmam.utils.set_seed` before building the model and give
    the loaders a seed (``ResidentLoader(..., seed=s)``, ``classic_loader(..., seed=s)``): two
    such runs give the same frame, bitwise on the CPU except ``total time``. On a GPU, atomic
    additions and cuBLAS/cuDNN algorithm choice make the numbers differ in the last digits
    unless ``set_seed(s, deterministic=True)`` (``torch.use_deterministic_algorithms``); see
    :func:`idlmam.utils.set_seed`.

    Args:
        model: the network; moved to ``device``.
        loss_func: ``loss_func(y_hat, y)`` returning a scalar tensor.
        train_loader: yields ``(inputs, labels)`` batches (a ``DataLoader`` or a
            :class:`idlmam.data.ResidentLoader`).
        val_loader: evaluated after each epoch; needed by ``ReduceLROnPlateau``.
        test_loader: evaluated after each epoch; never used for a decision.
        score_funcs: ``{"Accuracy": accuracy_score}``: name -> ``f(y_true, y_pred)`` on NumPy
            arrays, computed once per epoch (class scores are turned into labels by argmax).
        epochs: passes over ``train_loader`` (at least 1), counted from the start of the run.
        device: where to train (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; None chooses).
        checkpoint_file: written atomically after every epoch (see above).
        optimizer: G, applied every batch; ``AdamW`` with its defaults when None.
        lr_schedule: L, stepped once per epoch: any ``torch.optim.lr_scheduler`` object built on
            ``optimizer``; ``ReduceLROnPlateau`` is stepped with the epoch's validation loss; the
            string ``"ReduceLROnPlateau"`` builds one (factor 0.2, patience 10).
        disable_tqdm: no progress bar (there is none anyway when ``TQDM_DISABLE`` or ``CI`` is set).
        on_epoch_end: called as ``on_epoch_end(epoch, row)`` after each epoch (after its
            checkpoint) with that epoch's row; return True to stop training after it.
        resume: continue from ``checkpoint_file`` when it exists (see above).

    Returns:
        A pandas DataFrame with ``epoch``, ``total time`` (seconds of training so far), ``lr``
        (the learning rate used in that epoch), the loss and score columns, and ``diverged``
        when the run diverged; ``frame.attrs["diverged"]`` says whether it did.

    Raises:
        ValueError, TypeError: a bad argument, loader, model output, score function or device,
            before any training.
        CheckpointError: ``resume=True`` and ``checkpoint_file`` cannot be resumed from.

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
    _check_arguments(model, train_loader, val_loader, test_loader, score_funcs, epochs,
                     optimizer, lr_schedule)
    if resume and checkpoint_file is None:
        raise ValueError("resume=True needs checkpoint_file=...: the file to continue from")
    device = get_device(None if device is None else str(device))
    model.to(device)
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters())
    if lr_schedule == "ReduceLROnPlateau":
        lr_schedule = ReduceLROnPlateau(optimizer, mode="min", factor=0.2, patience=10)
    if lr_schedule is not None and lr_schedule.optimizer is not optimizer:
        raise ValueError("lr_schedule was built on another optimizer than the one training this "
                         "model: build it as Schedule(optimizer, ...) with the same optimizer")
    loaders = {name: loader for name, loader in (("train_loader", train_loader),
               ("val_loader", val_loader), ("test_loader", test_loader)) if loader is not None}
    _preflight(model, loss_func, loaders, score_funcs, device)
    generators = _loader_generators(loaders.values())

    results: dict[str, list] = defaultdict(list)
    total_time, start, diverged = 0.0, 0, False
    if resume and Path(checkpoint_file).exists():  # no file yet: this is the first start
        state = load_checkpoint(checkpoint_file)
        start, total_time, results, diverged = _restore(
            checkpoint_file, state, model, optimizer, lr_schedule, generators,
            _expected_columns(loaders, score_funcs))
        if diverged:
            warnings.warn(f"checkpoint {checkpoint_file} holds a run that diverged at epoch "
                          f"{state['epoch']}: returning its rows without training (delete it "
                          "or pass resume=False to train again)", DivergenceWarning, stacklevel=2)
            return _frame(results, diverged)

    bar = tqdm(range(start, epochs), desc="Epoch", initial=start, total=epochs,
               disable=not progress_enabled(disable_tqdm))
    for epoch in bar:
        # 1. L: the learning rate this epoch uses (the schedule set it at the end of the last one)
        results["epoch"].append(epoch)
        results["lr"].append(float(optimizer.param_groups[0]["lr"]))
        # 2-4. G: one pass over the training data, updating every batch
        total_time += run_epoch(model, optimizer, train_loader, loss_func, device, results,
                                score_funcs, prefix="train")
        results["total time"].append(total_time)
        # 5. divergence: the pass already brought its loss to the host, so this costs no sync
        diverged = not math.isfinite(results["train loss"][-1])
        # 6. evaluate without gradients (a diverged model has nothing to evaluate: NaN)
        for prefix, loader in (("val", val_loader), ("test", test_loader)):
            if loader is not None and diverged:
                for column in ["loss", *(score_funcs or {})]:
                    results[f"{prefix} {column}"].append(float("nan"))
            elif loader is not None:
                run_epoch(model, None, loader, loss_func, device, results, score_funcs, prefix=prefix)
        # 7. L: move the schedule one epoch on (not after a divergence: the run ends here)
        if isinstance(lr_schedule, ReduceLROnPlateau) and not diverged:
            lr_schedule.step(results["val loss"][-1])
        elif lr_schedule is not None and not diverged:
            lr_schedule.step()
        # 8. checkpoint: everything the next epoch depends on, random states included
        if checkpoint_file is not None:
            save_checkpoint(checkpoint_file, {
                "format": CHECKPOINT_FORMAT,
                "epoch": epoch,
                "model_class": type(model).__name__,
                "model_state_dict": model.state_dict(),
                "optimizer_class": type(optimizer).__name__,
                "optimizer_state_dict": optimizer.state_dict(),
                "lr_schedule_class": None if lr_schedule is None else type(lr_schedule).__name__,
                "lr_schedule_state_dict": None if lr_schedule is None else lr_schedule.state_dict(),
                "rng": rng_state(generators, cuda=device.type == "cuda"),
                "results": {k: list(v) for k, v in results.items()},
                "total_time": total_time,
                "diverged": diverged,
            })
        # 9. hooks: tell the caller; stop on divergence or when the caller asks
        row = {k: v[-1] for k, v in results.items()}
        if diverged:
            row["diverged"] = True
            warnings.warn(f"the training loss became {row['train loss']} at epoch {epoch} "
                          f"(lr {row['lr']:g}): training stopped. The frame keeps its "
                          f"{len(results['epoch'])} rows, the last with diverged=True; lower the "
                          "learning rate or clip the gradients", DivergenceWarning, stacklevel=2)
        stop = on_epoch_end is not None and on_epoch_end(epoch, row)
        if diverged or stop:
            break
    bar.close()
    return _frame(results, diverged)
