"""Several worker processes filling one study on this machine, and who ran which trial.

:func:`run_workers` is the page-sized version of starting ``python -m idlmam.tune`` in several
terminals: it creates a study in a storage that processes can share (a journal file, one machine),
starts ``n_workers`` processes that each load the study with their own seeded sampler and run
trials until the study holds ``n_trials``, waits for them, and returns one row per trial with the
worker that ran it. Each worker records itself in the trial's user attribute ``worker``
(``host:pid``), as the command does.

Unlike :func:`~idlmam.tune.storage.optimize_until` (workers anywhere, which may overshoot by one
trial per extra worker when they decide at the same instant), the workers started here take a
shared lock around "count the trials, ask for a new one", so the study ends with exactly
``n_trials`` trials. They also wait for each other before the first trial (a barrier), so that a
worker that starts faster does not run the whole study alone.

The objective runs in other processes: it must be picklable, that is defined at the top level of
an importable module (a function defined in a notebook is not), such as :class:`Quadratic`, the
toy objective here, which sleeps to stand for training.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> trials = run_workers(f"journal:///{folder}/study.log", "demo", 6, n_workers=2,
    ...                      objective=Quadratic(seconds=0.05))
    >>> len(trials), sorted(trials["worker"].unique().tolist())
    (6, [0, 1])
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import time
import traceback
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

__all__ = ["Quadratic", "run_workers"]


class Quadratic:
    """A toy objective to minimize, ``(x - 1)² + (y + 0.5)²`` on ``[-3, 3]²``, that takes its time.

    Args:
        seconds: how long each trial sleeps, standing for training (0: none).

    Example:
        >>> study = optuna.create_study()
        >>> study.enqueue_trial({"x": 1.0, "y": 0.5})
        >>> study.optimize(Quadratic(seconds=0), n_trials=1)
        >>> study.best_value
        1.0
    """

    def __init__(self, seconds: float = 0.2) -> None:
        if not seconds >= 0:
            raise ValueError(f"seconds must be 0 or more, got {seconds!r}")
        self.seconds = seconds

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -3, 3)
        y = trial.suggest_float("y", -3, 3)
        time.sleep(self.seconds)
        return (x - 1) ** 2 + (y + 0.5) ** 2

    def __repr__(self) -> str:
        return f"Quadratic(seconds={self.seconds})"


def _work(
    storage: str,
    study_name: str,
    n_trials: int,
    objective: Any,
    sampler: str,
    seed: int | None,
    direction: str,
    barrier: Any,
    lock: Any,
    errors: Any,
) -> None:
    """One worker process: load the study, wait for the others, run trials until it is full."""
    try:
        from .storage import count_trials, create_study

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = create_study(
            storage, study_name, seed=seed, direction=direction, sampler=sampler, create=False
        )
        me = f"{socket.gethostname()}:{os.getpid()}"
        barrier.wait()
        while True:
            with lock:  # no other worker of ours counts or asks in between: no overshoot
                if count_trials(study) >= n_trials:
                    break
                trial = study.ask()
            trial.set_user_attr("worker", me)
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                study.tell(trial, value)
    except BaseException as err:
        errors.put(f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
        barrier.abort()  # do not leave the others waiting for a worker that will not come
        raise SystemExit(1) from None


def run_workers(
    storage: str,
    study_name: str,
    n_trials: int,
    *,
    n_workers: int = 2,
    objective: Any = None,
    sampler: str = "tpe",
    seed: int | None = 0,
    direction: str = "minimize",
    timeout: float = 300.0,
) -> pd.DataFrame:
    """Start ``n_workers`` processes on one study until it holds ``n_trials``; who ran which.

    The study is created (or loaded, and then filled up to ``n_trials``) in ``storage`` by this
    process; each worker loads it with ``make_sampler(sampler, seed + i)`` (worker ``i``; all
    unseeded when ``seed`` is None), waits until every worker is ready, then runs trials.
    Parallel workers are not reproducible: which trials a sampler has seen when it proposes
    depends on timing, so the trials differ from run to run; their number does not.

    Args:
        storage: a storage URL several processes can open: ``journal:///PATH`` on one machine
            (or ``sqlite:///PATH``, ``postgresql+psycopg://...``); not ``"memory"``.
        study_name: the study's name in the storage.
        n_trials: the study's total number of trials, all workers together (0 or more).
        n_workers: how many processes (1 or more).
        objective: a picklable ``objective(trial) -> float`` (``None``: :class:`Quadratic`).
        sampler: a name from :data:`~idlmam.tune.samplers.SAMPLERS`.
        seed: worker ``i`` seeds its sampler with ``seed + i`` (``None``: unseeded).
        direction: ``"minimize"`` (the toy) or ``"maximize"``.
        timeout: seconds to wait for the workers; then they are stopped.

    Returns:
        One row per trial of the study, in trial order: ``trial`` (its number), ``worker``
        (``0`` to ``n_workers - 1``, in the order the workers were started; ``-1`` for a trial
        none of them ran, such as one a study already held), ``process`` (``host:pid``),
        ``state``, ``value``, ``start`` and ``complete`` (datetimes).

    Raises:
        ValueError: a storage other processes cannot open, a bad count, an unknown sampler.
        RuntimeError: a worker failed (the message carries its error).
        TimeoutError: the workers were not done after ``timeout`` seconds.

    Example:
        >>> run_workers("memory", "demo", 4)
        Traceback (most recent call last):
        ...
        ValueError: worker processes cannot share an in-memory study: ...
    """
    from .samplers import make_sampler
    from .storage import create_study

    if storage is None or not isinstance(storage, str) or storage == "memory":
        raise ValueError(
            "worker processes cannot share an in-memory study: give a URL they can all open, "
            "such as journal:///study.log"
        )
    for label, value, least in (("n_trials", n_trials, 0), ("n_workers", n_workers, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"{label} must be a whole number of at least {least}, got {value!r}")
    make_sampler(sampler, seed)  # a bad name fails here, not in every worker
    if objective is None:
        objective = Quadratic()
    create_study(storage, study_name, seed=seed, direction=direction)

    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    barrier, lock, errors = context.Barrier(n_workers), context.Lock(), context.Queue()
    processes = [
        context.Process(
            target=_work,
            args=(
                storage,
                study_name,
                n_trials,
                objective,
                sampler,
                None if seed is None else seed + i,
                direction,
                barrier,
                lock,
                errors,
            ),
            name=f"idlmam worker {i}",
        )
        for i in range(n_workers)
    ]
    started = datetime.datetime.now()  # Optuna's datetimes are local and naive
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    late = [p for p in processes if p.is_alive()]
    for process in late:
        process.terminate()
        process.join()
    if late:
        raise TimeoutError(f"{len(late)} of {n_workers} workers were not done after {timeout} s")
    failed = [i for i, p in enumerate(processes) if p.exitcode != 0]
    if failed:
        message = errors.get(timeout=5) if not errors.empty() else "no message"
        raise RuntimeError(f"worker(s) {failed} failed: {message}")

    ranks = {p.pid: i for i, p in enumerate(processes)}
    study = create_study(storage, study_name, direction=direction, create=False)
    rows = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        process = t.user_attrs.get("worker", "")
        pid = process.rsplit(":", 1)[-1]
        ours = pid.isdigit() and t.datetime_start is not None and t.datetime_start >= started
        rows.append(
            {
                "trial": t.number,
                "worker": ranks.get(int(pid), -1) if ours else -1,  # pids of old runs recur
                "process": process,
                "state": t.state.name,
                "value": t.value,
                "start": t.datetime_start,
                "complete": t.datetime_complete,
            }
        )
    return pd.DataFrame(
        rows, columns=["trial", "worker", "process", "state", "value", "start", "complete"]
    )
