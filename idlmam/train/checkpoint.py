"""Checkpoints of a training run: written atomically, read back with ``weights_only=True``.

:func:`idlmam.train.train_network` writes one after every epoch and resumes from it, and
:func:`idlmam.experiments.branch_runs` continues from one under a new schedule. This module owns
the file format, the only one that knows its keys: :func:`checkpoint_state` builds what is
saved, :func:`restore` loads it into a run that resumes, :func:`continue_from` into a branch; the
loop only says *when*.

A checkpoint is written at the end of an epoch, after the schedule's last step of that epoch (per
epoch or per batch, its state is saved whole) and in evaluation mode: an optimizer with
``train()``/``eval()`` modes (schedule-free AdamW) has been switched to ``eval()``, so
``model_state_dict`` holds its averaged weights and ``optimizer_state_dict`` says it is in eval
mode, as the ``schedulefree`` package asks. The loop's ``train()`` at the start of the next
epoch, resumed or not, then rebuilds the same training point, so a resumed run stays exact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from ..utils import rng_state, set_rng_state

__all__ = [
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_KEYS",
    "save_checkpoint",
    "load_checkpoint",
    "loader_generators",
    "checkpoint_state",
    "restore",
    "continue_from",
]

CHECKPOINT_FORMAT = 2  # 1: the first loop's files (no random states); not resumable
CHECKPOINT_KEYS = (
    "format",
    "epoch",
    "model_class",
    "model_state_dict",
    "optimizer_class",
    "optimizer_state_dict",
    "lr_schedule_class",
    "lr_schedule_state_dict",
    "rng",
    "results",
    "total_time",
    "diverged",
)


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be written (a full disk), or resumed from (unreadable, or written
    by a different run)."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    A kill at any moment leaves either the previous checkpoint or the new one, never half a file;
    so does a write that fails (a full disk): the temporary file is removed, the previous
    checkpoint is left as it was.

    Args:
        path: the checkpoint file; its folder is created if needed.
        state: anything ``torch.save`` takes (keep to tensors, numbers, strings, lists and dicts
            so that it loads with ``weights_only=True``).

    Raises:
        CheckpointError: the file could not be written (no space left, no permission); the
            message names it and the system's reason.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.pt"
        >>> save_checkpoint(path, {"epoch": 3})
        >>> torch.load(path, weights_only=True)
        {'epoch': 3}
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        system = _os_error_in(err)  # torch's zip writer hides a full disk behind its own error
        if system is not None:
            kept = "the previous one is unchanged" if path.exists() else "there was none before"
            raise CheckpointError(
                f"checkpoint {path} could not be written ({system.strerror or system}); {kept}: "
                "free space there (or give another checkpoint_file) and train again with "
                "resume=True"
            ) from err
        raise
    _sync_folder(path.parent)


def _os_error_in(err: BaseException | None) -> OSError | None:
    """The ``OSError`` in ``err`` or in the errors it was raised from or while handling."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where folders can be opened: not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {detail}): "
            f"it is truncated, corrupted or not a checkpoint; {fix}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format", "none") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"checkpoint {path} is not in train_network's format "
            f"{CHECKPOINT_FORMAT} (found {found}: another program or an older "
            f"idlmam wrote it); {fix}"
        )
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; {fix}")
    return state


def loader_generators(loaders: Iterable) -> list[torch.Generator]:
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


def checkpoint_state(
    *,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_schedule: object,
    generators: Sequence[torch.Generator],
    device: torch.device,
    rows: Sequence[Mapping],
    total_time: float,
    diverged: bool,
) -> dict:
    """What the loop saves after epoch ``epoch``: a dict with the keys of :data:`CHECKPOINT_KEYS`.

    Everything the next epoch depends on: the model, the optimizer and the schedule (their
    classes too, to refuse a file of another setup), every random state (the global ones and
    the loaders' ``generators``), the rows so far (``results``, column by column), the training
    time and whether the last epoch diverged. Tensors, numbers, strings, lists and dicts only,
    so that it loads with ``weights_only=True``.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> state = checkpoint_state(epoch=0, model=model, optimizer=opt, lr_schedule=None,
        ...                          generators=[], device=torch.device("cpu"),
        ...                          rows=[{"epoch": 0, "train loss": 0.5}], total_time=1.0,
        ...                          diverged=False)
        >>> sorted(state) == sorted(CHECKPOINT_KEYS), state["results"]
        (True, {'epoch': [0], 'train loss': [0.5]})
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "model_class": type(model).__name__,
        "model_state_dict": model.state_dict(),
        "optimizer_class": type(optimizer).__name__,
        "optimizer_state_dict": optimizer.state_dict(),
        "lr_schedule_class": None if lr_schedule is None else type(lr_schedule).__name__,
        "lr_schedule_state_dict": None if lr_schedule is None else lr_schedule.state_dict(),
        "rng": rng_state(generators, cuda=device.type == "cuda"),
        "results": {column: [row[column] for row in rows] for column in rows[0]} if rows else {},
        "total_time": total_time,
        "diverged": diverged,
    }


def restore(
    path: str | os.PathLike,
    state: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_schedule: object,
    generators: Sequence[torch.Generator],
    columns: set[str],
) -> tuple[int, float, list[dict], bool]:
    """Load ``state`` (from :func:`load_checkpoint`) into the objects of a run that resumes.

    Args:
        path: the checkpoint file, for the messages.
        state: what :func:`load_checkpoint` read from it.
        model, optimizer, lr_schedule: this run's, built as the saved run built them.
        generators: the loaders' generators, in the order the loop saves them
            (:func:`loader_generators` of the train, val and test loaders).
        columns: the columns this run makes (:func:`idlmam.train.frame.result_columns`).

    Returns:
        ``(start, total_time, rows, diverged)``: the first epoch to train, the training time so
        far, the saved rows (one dict per epoch) and whether the saved run diverged.

    Raises:
        CheckpointError: the file was written by another setup (other columns, model,
            optimizer or schedule class, or state that does not load); the message says so.
    """
    fix = f"resume with the same setup, or delete {path} / pass resume=False to start over"
    saved_columns = set(state["results"])
    if saved_columns != columns:
        raise CheckpointError(
            f"checkpoint {path} has the columns {sorted(saved_columns)} but "
            f"this call makes {sorted(columns)} (other loaders or score_funcs?): "
            f"{fix}"
        )
    schedule_class = None if lr_schedule is None else type(lr_schedule).__name__
    for what, saved, ours in (
        ("model", state["model_class"], type(model).__name__),
        ("optimizer", state["optimizer_class"], type(optimizer).__name__),
        ("lr_schedule", state["lr_schedule_class"], schedule_class),
    ):
        if saved != ours:
            raise CheckpointError(
                f"checkpoint {path} was written with {what} {saved}, this call has {ours}: {fix}"
            )
    _load_into(path, state, model, optimizer, lr_schedule, generators, fix)
    results = state["results"]
    rows = [dict(zip(results, values)) for values in zip(*results.values())]
    return state["epoch"] + 1, float(state["total_time"]), rows, bool(state["diverged"])


def continue_from(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loaders: Iterable,
) -> tuple[int, float]:
    """Load a checkpoint's weights, optimizer and random states to continue its run another way.

    What a branch needs (:func:`idlmam.experiments.branch_runs`): the next batches are those the
    saved run would have seen, while the schedule, the epochs and the checkpoint file are the
    branch's own (nothing of the saved schedule is loaded).

    Args:
        path: a checkpoint the loop wrote.
        model, optimizer: built as the saved run built them (the model on its device).
        loaders: the branch's train, val and test loaders in that order (None for one not
            given), whose generators the saved random states are put into.

    Returns:
        ``(epochs, total_time)``: the epochs the saved run had trained and its training time.

    Raises:
        CheckpointError: the file cannot be read, or does not fit ``model`` or ``optimizer``.

    Example:
        >>> epochs, seconds = continue_from("trunk.pt", model, opt, [train, None, test])  # doctest: +SKIP
    """
    state = load_checkpoint(path)
    fix = f"build the model and optimizer as the run that wrote {path} did"
    generators = loader_generators(loader for loader in loaders if loader is not None)
    _load_into(path, state, model, optimizer, None, generators, fix)
    return state["epoch"] + 1, float(state["total_time"])


def _load_into(path, state, model, optimizer, lr_schedule, generators, fix: str) -> None:
    """The saved weights, optimizer and schedule states and random states, into this run's."""
    try:
        model.load_state_dict(state["model_state_dict"])
        optimizer.load_state_dict(state["optimizer_state_dict"])
        if lr_schedule is not None:
            lr_schedule.load_state_dict(state["lr_schedule_state_dict"])
        set_rng_state(state["rng"], generators)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this run ({type(err).__name__}: "
            f"{str(err).strip()[:300]}): {fix}"
        ) from err
