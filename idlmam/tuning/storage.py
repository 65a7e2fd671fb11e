"""Where a study lives, and how workers share it: storages, studies, counting, optimising until full.

A study lives in a storage, named by a URL (:func:`open_storage`):

==============================  ===========================================================
``None`` or ``"memory"``        in this process only; gone when it ends
``sqlite:///study.db``          a file (RDB); one process at a time, resumable
``journal:///study.log``        an append-only file (Optuna's journal); several processes
                                on one machine
``postgresql+psycopg://...``    a PostgreSQL server (RDB); workers on any number of machines
==============================  ===========================================================

Paths follow SQLAlchemy's convention: three slashes then the path, so ``sqlite:///study.db`` is
relative to the working folder and ``journal:////tmp/study.log`` is absolute.

Workers share a study through its storage; :func:`optimize_until` runs trials until the study,
counted across all workers, holds a given number of them. ``python -m idlmam.tune`` is that loop
as a command (see :mod:`idlmam.tuning.worker`).

Example:
    >>> study = create_study("memory", "demo", seed=0)
    >>> optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 3)
    3
    >>> count_trials(study)
    3
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

import optuna
from optuna.trial import TrialState

__all__ = [
    "COUNTED_STATES",
    "StudyNotFoundError",
    "open_storage",
    "create_study",
    "count_trials",
    "optimize_until",
]

#: The trial states that count towards a study's total in :func:`optimize_until`. Running
#: trials count, so that parallel workers do not overshoot. Failed ones do not, so that a trial
#: lost with its worker is made up for. Waiting (queued) ones count once a worker runs them:
#: workers run queued trials first, retried ones included.
COUNTED_STATES: tuple[TrialState, ...] = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.RUNNING,
)

_RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")
_STORAGE_HELP = (
    "use 'memory', 'sqlite:///PATH', 'journal:///PATH' or "
    "'postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE'"
)


class StudyNotFoundError(LookupError):
    """The storage holds no study of that name (and we were told not to create one)."""


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    """Ignore Optuna's ExperimentalWarning inside the block.

    Optuna marks the heartbeat (``heartbeat_interval``,
    :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`,
    :func:`~optuna.storages.fail_stale_trials`) experimental, yet it is the documented way to
    recover the trials of dead workers; the warning would only repeat that on every worker's
    stderr, with nothing for the reader to change.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _hide_password(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: nothing to hide
        return url


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = None,
    max_retry: int | None = 3,
):
    """The Optuna storage a URL names (see the table in the module docstring).

    An RDB storage (SQLite, PostgreSQL, any SQLAlchemy URL Optuna accepts) gets a heartbeat: each
    running trial writes a timestamp every ``heartbeat_interval`` seconds; a trial silent for
    ``grace_period`` seconds (its worker was killed, its machine lost) is marked FAIL by the next
    worker that starts a trial, and queued again with the same parameters, up to ``max_retry``
    times. A journal file has no heartbeat: a worker killed there leaves its trial RUNNING.

    Args:
        url: ``None``/``"memory"``, ``sqlite:///PATH``, ``journal:///PATH`` or an SQLAlchemy URL
            such as ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE``.
        heartbeat_interval: seconds between heartbeats of a running trial (``None``: none).
        grace_period: seconds of silence after which a running trial is failed
            (``None``: twice ``heartbeat_interval``).
        max_retry: how often a failed trial is queued again (``None``: without limit).

    Returns:
        An ``optuna.storages`` object, ready for :func:`create_study`.

    Raises:
        ValueError: the URL names no storage we know, or the storage cannot be opened (the
            message says which and why).

    Example:
        >>> type(open_storage("memory")).__name__
        'InMemoryStorage'
    """
    if url is None or url == "memory":
        return optuna.storages.InMemoryStorage()
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"storage URL {url!r} has no scheme: {_STORAGE_HELP}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "journal":
        from optuna.storages.journal import JournalFileBackend

        path = url[len("journal:///") :] if url.startswith("journal:///") else ""
        if not path:
            raise ValueError(
                f"journal URL {url!r} names no file: write journal:///study.log "
                "(relative) or journal:////abs/path/study.log"
            )
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(path))
        except OSError as err:
            raise ValueError(
                f"cannot open the journal file {path!r}: {err.strerror or err}"
            ) from err
    if scheme.split("+", 1)[0] not in _RDB_SCHEMES:
        raise ValueError(
            f"unknown storage scheme {scheme!r} in {_hide_password(url)!r}: {_STORAGE_HELP}"
        )
    import sqlalchemy.exc

    retry = None
    with _quiet_experimental():
        if heartbeat_interval is not None:
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=retry,
            )
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as err:
            first_line = (
                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            )
            raise ValueError(f"cannot open storage {_hide_password(url)!r}: {first_line}") from err


def create_study(
    storage=None,
    study_name: str | None = None,
    *,
    seed: int | None = 0,
    direction: str = "maximize",
    sampler: optuna.samplers.BaseSampler | str | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    load_if_exists: bool = True,
    create: bool = True,
) -> optuna.Study:
    """Create (or load) a study with a seeded sampler (TPE unless told otherwise).

    A seeded sampler makes a *sequential* study reproducible: each proposal depends only on the
    seed and on the trials before it, and with the seeded objective of :func:`~idlmam.tuning.objective.make_objective`
    those come out the same on the CPU, so the same seed gives the same trials. *Parallel* workers
    are not reproducible: each worker has its own sampler, and what it proposes depends on which
    trials the other workers had finished at the moment it asked, which is a matter of timing.
    Two workers given the same seed would even propose the same first (random) trials: give each
    worker its own seed, or none.

    Args:
        storage: a URL for :func:`open_storage`, an ``optuna.storages`` object, or ``None``
            (in memory).
        study_name: the study's name in the storage (``None``: a generated one).
        seed: seed of the sampler (``None``: a fresh random one).
        sampler: a name for :func:`~idlmam.tuning.samplers.make_sampler`, seeded with ``seed``
            (``None``: ``"tpe"``, Optuna 5's default TPE whichever Optuna runs), or a sampler
            object, used as it is (``seed`` is then not used).
        direction: ``"maximize"`` (accuracy) or ``"minimize"``.
        pruner: used by objectives made with ``prune=True`` (``None``: Optuna's default,
            ``MedianPruner``).
        load_if_exists: load the study when one of that name exists (how a study is resumed).
        create: create it when it does not exist; ``False`` only loads, and a missing study is an
            error (how a worker avoids starting a new study under a mistyped name).

    Returns:
        The ``optuna.Study``.

    Raises:
        StudyNotFoundError: ``create=False`` and there is no such study.
        ValueError: the existing study optimizes in the other direction, or ``sampler`` names
            no sampler :func:`~idlmam.tuning.samplers.make_sampler` knows.

    Example:
        >>> study = create_study("memory", "demo", seed=0)
        >>> study.study_name, study.direction.name
        ('demo', 'MAXIMIZE')
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if storage is None or isinstance(storage, str):
        storage = open_storage(storage)
    if sampler is None or isinstance(sampler, str):
        from .samplers import make_sampler

        sampler = make_sampler("tpe" if sampler is None else sampler, seed)
    if not create:
        if study_name is None:
            raise ValueError("create=False needs the study_name of the study to load")
        try:
            study = optuna.load_study(
                study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
            )
        except KeyError:
            raise StudyNotFoundError(
                f"there is no study named {study_name!r} in this storage: "
                "check the name, or create it (create=True, "
                "or --create on the command line)"
            ) from None
    else:
        try:
            study = optuna.create_study(
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                study_name=study_name,
                direction=direction,
                load_if_exists=load_if_exists,
            )
        except optuna.exceptions.DuplicatedStudyError:
            raise ValueError(
                f"a study named {study_name!r} exists already: load it "
                "(load_if_exists=True) or choose another name"
            ) from None
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {study.study_name!r} {study.direction.name.lower()}s its "
            f"objective, but direction={direction!r} was asked for: use the study's "
            "own direction or another study name"
        )
    return study


def count_trials(study: optuna.Study, states: Sequence[TrialState] = COUNTED_STATES) -> int:
    """How many trials of ``study`` are in one of ``states``, all workers together.

    On a storage with a heartbeat, running trials whose worker has gone silent for the grace
    period are failed first, so that they do not count as running.

    Args:
        study: the study, in any storage.
        states: the trial states to count (default :data:`COUNTED_STATES`).

    Returns:
        The number of such trials.

    Example:
        >>> study = create_study(seed=0)
        >>> study.enqueue_trial({"x": 0.5})
        >>> count_trials(study), count_trials(study, [TrialState.WAITING])
        (0, 1)
    """
    with _quiet_experimental():
        optuna.storages.fail_stale_trials(study)
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def optimize_until(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    callbacks: Sequence[Callable] = (),
) -> int:
    """Run trials until the study holds ``n_trials``, counting those of every worker.

    ``n_trials`` is the study's total, not this call's share: start any number of workers with
    the same ``n_trials`` and together they make that many. Trials in :data:`COUNTED_STATES`
    count, running ones included, so a worker does not start a trial that another one's running
    trial already covers; two workers can still decide at the same instant, so the total can
    exceed ``n_trials`` by at most one per extra worker. Failed trials do not count: a trial
    whose worker died is failed (on an RDB storage with a heartbeat) and made up for.

    The check runs before the first trial (a worker joining a full study does nothing) and after
    each one (Optuna's ``MaxTrialsCallback``). On a storage with a heartbeat, a worker that
    reaches the total while other workers' trials still run waits, up to four heartbeats: a
    trial whose worker died goes silent, is failed after the grace period and retried (as a
    waiting copy), and this worker runs it. So a worker restarted right after a crash does not
    leave the dead trial running for ever. A live worker's longer trial is left to that worker.

    Args:
        study: the study, in any storage.
        objective: ``objective(trial) -> float``, e.g. from :func:`~idlmam.tuning.objective.make_objective`.
        n_trials: the total the study should hold (0 or more).
        callbacks: more ``callback(study, frozen_trial)``, run after each trial.

    Returns:
        How many trials this call ran.

    Example:
        >>> study = create_study(seed=0)
        >>> optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 3)
        3
        >>> optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 3)
        0
    """
    from optuna.study import MaxTrialsCallback

    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 0:
        raise ValueError(f"n_trials must be a whole number of at least 0, got {n_trials!r}")
    ran: list[int] = []
    interval = _heartbeat_interval(study)
    waited = 0
    while True:
        if interval is not None:
            with _quiet_experimental():
                optuna.storages.fail_stale_trials(study)  # dead workers' trials: failed, retried
        if count_trials(study) < n_trials:
            study.optimize(
                objective,
                callbacks=[
                    MaxTrialsCallback(n_trials, states=COUNTED_STATES),
                    lambda study, trial: ran.append(trial.number),
                    *callbacks,
                ],
            )
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if interval is None or not running or waited >= _WAIT_HEARTBEATS * interval:
            return len(ran)
        time.sleep(interval)  # another worker's trial runs: wait until it ends or goes silent
        waited += interval


# A dead worker's trial is failed once silent for the grace period (twice the heartbeat by
# default) after its last heartbeat: waiting four heartbeats sees it go. A longer trial of a live
# worker is left to that worker.
_WAIT_HEARTBEATS = 4


def _heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between the heartbeats of ``study``'s storage (None: it has none, e.g. a journal
    file or memory). Optuna's ``Study`` has no public accessor for its storage."""
    get = getattr(study._storage, "get_heartbeat_interval", None)
    return get() if callable(get) else None
