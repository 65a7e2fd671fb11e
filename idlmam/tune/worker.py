"""``python -m idlmam.tune``: one worker of a hyperparameter study that any number of workers share.

Each worker runs the chapter's objective (:func:`idlmam.tune.objective.make_objective`) against
one study in one storage (:func:`idlmam.tune.storage.open_storage`) until the study holds
``--n-trials`` trials, every worker's counted; a worker stopped and started again resumes the
study, and a dead worker's trial is failed and run again. ``--help`` lists the options; the
README shows workers sharing a journal file or a PostgreSQL database.

Exit statuses: 0 the study is full; 1 data missing or damaged; 2 bad input (one line on
stderr); 3 the storage stayed unreachable for ``--retry-for`` seconds (the study is kept there).

Example::

    python -m idlmam.tune --storage journal:///study.log --study ch5 --create --n-trials 16
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import NoReturn

from ..budget import BUDGETS  # no torch: the worker parses its command line at once

__all__ = ["main", "build_parser"]

PROG = "python -m idlmam.tune"


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (argparse adds a usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of the worker (see the module docstring)."""
    parser = _OneLineParser(
        prog=PROG,
        description="Run trials of the chapter's study until it "
        "holds --n-trials, together with any other workers on the same study.",
    )
    parser.add_argument(
        "--storage",
        required=True,
        metavar="URL",
        help="memory, sqlite:///PATH, journal:///PATH or postgresql+psycopg://...",
    )
    parser.add_argument("--study", required=True, metavar="NAME", help="the study's name")
    parser.add_argument(
        "--n-trials",
        required=True,
        type=_whole,
        metavar="N",
        help="total trials of the study, all workers together",
    )
    parser.add_argument("--create", action="store_true", help="create the study if it is missing")
    parser.add_argument("--prune", action="store_true", help="prune with a MedianPruner")
    parser.add_argument(
        "--seed",
        type=_whole,
        default=None,
        metavar="S",
        help="seed of this worker's sampler (one per worker; default: random)",
    )
    parser.add_argument(
        "--budget", choices=sorted(BUDGETS), default=None, help="default: IDL_BUDGET, else full"
    )
    parser.add_argument(
        "--epochs",
        type=_positive,
        default=None,
        metavar="E",
        help="epochs per trial (default: the budget's)",
    )
    parser.add_argument(
        "--train-size",
        type=_positive,
        default=None,
        metavar="M",
        help="examples to split into training and validation (default: the budget's)",
    )
    parser.add_argument(
        "--threads", type=_positive, default=None, metavar="T", help="torch threads in this worker"
    )
    parser.add_argument("--device", default=None, metavar="D", help="default: CUDA if present")
    parser.add_argument(
        "--heartbeat",
        type=_positive,
        default=10,
        metavar="S",
        help="seconds between heartbeats on an RDB storage (default 10)",
    )
    parser.add_argument(
        "--retry-for",
        type=_positive,
        default=60,
        metavar="S",
        help="seconds to retry an RDB storage that does not answer, then give up (default 60)",
    )
    return parser


def _fail(message: str, status: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _summary(study, ran: int) -> str:
    from .objective import trial_outcomes

    outcomes = trial_outcomes(study)  # the pruner's stops apart from diverged runs
    line = (
        f"this worker ran {ran} trial(s); study {study.study_name!r} holds {outcomes.total}: "
        f"{outcomes.summary()}"
    )
    if outcomes.complete:
        best = study.best_trial
        line += f"; best: trial {best.number}, val Accuracy {best.value:.4f}, {best.params}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker; returns the exit status (0 done, 1 no data, 2 bad input, 3 storage lost,
    130 interrupted).

    Example:
        >>> main(["--storage", "journal:///study.log", "--study", "demo", "--n-trials", "0",
        ...       "--create"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)

    from .storage import StorageUnavailableError

    with _faults_on_stderr():
        try:
            return _work(args)
        except StorageUnavailableError as err:
            return _fail(
                f"{err}: the study is kept there; start this worker again once the database "
                "answers (a trial it left running is failed and run again)",
                status=3,
            )


class _StderrLine(logging.Handler):
    """Each record as one line on the current ``sys.stderr``, after the command's name."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{PROG}: {record.getMessage()}", file=sys.stderr)


@contextlib.contextmanager
def _faults_on_stderr() -> Iterator[None]:
    """While the worker runs, print the faults :mod:`idlmam.tune.storage` logs (``log``) as
    one line each, and only there; the logger is as it was afterwards (``main`` may run inside
    another program, a test or a notebook)."""
    from .storage import log

    handler, propagate, optuna_log = _StderrLine(), log.propagate, logging.getLogger("optuna")
    log.addHandler(handler)
    log.propagate = False  # no second copy through the root logger's last-resort handler
    optuna_log.addFilter(_no_traceback_for_a_trial_failed_elsewhere)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = propagate
        optuna_log.removeFilter(_no_traceback_for_a_trial_failed_elsewhere)


def _no_traceback_for_a_trial_failed_elsewhere(record: logging.LogRecord) -> bool:
    """Drop the traceback Optuna logs with "Trial N failed ... UpdateFinishedTrialError": the
    heartbeat of another worker failed this worker's trial while it ran (its own heartbeat
    went unrecorded, a database locked or away), which the worker reports in one line of its
    own and survives. The record itself is kept."""
    from optuna.exceptions import UpdateFinishedTrialError

    if record.exc_info and isinstance(record.exc_info[1], UpdateFinishedTrialError):
        record.exc_info, record.exc_text = None, None
    return True


def _work(args: argparse.Namespace) -> int:
    import optuna

    from .storage import WORKER_ATTR, StudyNotFoundError, count_trials, create_study, open_storage

    try:
        storage = open_storage(
            args.storage, heartbeat_interval=args.heartbeat, retry_for=args.retry_for
        )
        pruner = optuna.pruners.MedianPruner() if args.prune else None
        study = create_study(storage, args.study, seed=args.seed, pruner=pruner, create=args.create)
    except (ValueError, StudyNotFoundError) as err:
        return _fail(str(err))
    # nothing left to do: do not even load the data. A running trial may be a dead worker's,
    # still within its grace period: then optimize_until waits for it to go stale and reruns it
    counted = count_trials(study)  # fails the trials of dead workers it can tell are dead
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    if counted >= args.n_trials and not running:
        print(_summary(study, 0))
        return 0

    import torch

    from ..budget import get_budget
    from ..data import CorruptDataError, DataUnavailableError
    from ..utils import get_device
    from .objective import chapter_loaders, make_objective
    from .storage import optimize_until

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        device = get_device(args.device)
    except (ValueError, RuntimeError) as err:
        return _fail(str(err))
    budget = get_budget(args.budget)
    try:
        train_loader, val_loader = chapter_loaders(
            budget, seed=0, device=device, train_size=args.train_size
        )
    except (DataUnavailableError, CorruptDataError) as err:
        return _fail(str(err).strip().splitlines()[0], status=1)
    chapter_objective = make_objective(
        train_loader,
        val_loader,
        device=device,
        prune=args.prune,
        epochs=args.epochs or budget.studies.epochs,
    )
    worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker_id)  # who runs it: dashboard, dead-worker checks
        return chapter_objective(trial)

    try:
        ran = optimize_until(study, objective, args.n_trials)
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; the running trial is marked FAIL, start a worker to go on",
            file=sys.stderr,
        )
        return 130
    print(_summary(study, ran))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
