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
as a command (see :mod:`idlmam.tune.worker`).

Faults a study survives: a database server that restarts, pauses or stays locked (every call to an
RDB storage is retried with backoff until it has failed for ``retry_for`` seconds in a row, then
:class:`StorageUnavailableError`); a worker that dies in a trial (on an RDB storage its heartbeat
goes silent, on a journal file its process is gone: the trial is failed and queued again); a
journal file whose last record a killed writer left cut short (the next write cuts it off
first). What each costs is on the book's measurements page.

Example:
    >>> study = create_study("memory", "demo", seed=0)
    >>> optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 3)
    3
    >>> count_trials(study)
    3
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence

import optuna
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import TrialState

from .samplers import make_sampler, quiet_experimental

__all__ = [
    "COUNTED_STATES",
    "StudyNotFoundError",
    "StorageUnavailableError",
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


#: Where the faults a worker survives are reported (a lost connection and its return, a torn
#: journal record cut off, a dead worker's trial failed), one line each, as warnings.
log = logging.getLogger("idlmam.tune")

#: The user attribute in which a worker records itself (``host:pid``) on each trial it runs.
WORKER_ATTR = "worker"


class StudyNotFoundError(LookupError):
    """The storage holds no study of that name (and we were told not to create one)."""


class StorageUnavailableError(ConnectionError):
    """The storage failed every call for ``retry_for`` seconds in a row (its server down or
    paused, its database locked); the message names it and the last error."""


def hide_password(url: str) -> str:
    """``url`` with its password shown as ``***`` (unchanged when it is not a database URL).

    Example:
        >>> hide_password("postgresql+psycopg://book:secret@127.0.0.1/db")
        'postgresql+psycopg://book:***@127.0.0.1/db'
    """
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: nothing to hide
        return url


def _lost_connection(err: BaseException | None) -> BaseException | None:
    """The database error behind ``err`` (its causes and contexts) that waiting may cure: a lost
    or refused connection, a locked SQLite file (SQLAlchemy's ``OperationalError`` and
    ``InterfaceError``); ``None`` for any other error, and for a retry that already gave up."""
    import sqlalchemy.exc

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, StorageUnavailableError):
            return None
        if isinstance(err, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) or (
            isinstance(err, sqlalchemy.exc.DBAPIError) and err.connection_invalidated
        ):
            return err
        err = err.__cause__ or err.__context__
    return None


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200] if text else ''}".rstrip(": ")


class _RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's ``RDBStorage``, each call retried with backoff while the database cannot be reached.

    A call that fails with a lost connection (:func:`_lost_connection`) is tried again after
    0.1 s, 0.2 s, ... (at most 2 s apart) until it succeeds or the storage has failed every call
    for ``retry_for`` seconds in a row; then it raises :class:`StorageUnavailableError`, and so does
    every later call that fails. The first failure and the return are logged, one line each. The
    heartbeat thread's calls are retried too, so a restart does not kill it.
    """

    def __init__(self, url: str, *, retry_for: float, **kwargs) -> None:
        self.retry_for = retry_for
        self._down_since: float | None = None
        self._state_lock = threading.Lock()
        super().__init__(url, **kwargs)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        del state["_state_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        state["_state_lock"] = threading.Lock()
        super().__setstate__(state)

    def _retry(self, call: Callable):
        delay = 0.1
        while True:
            try:
                result = call()
            except Exception as err:
                cause = _lost_connection(err)
                if cause is None:
                    raise
                with self._state_lock:
                    now = time.monotonic()
                    if self._down_since is None:
                        self._down_since = now
                        log.warning(
                            f"storage {hide_password(self.url)} did not answer "
                            f"({_first_line(cause)}); retrying for up to {self.retry_for:g} s"
                        )
                    down = now - self._down_since
                if down >= self.retry_for:
                    raise StorageUnavailableError(
                        f"storage {hide_password(self.url)} did not answer for "
                        f"{self.retry_for:g} s ({_first_line(cause)})"
                    ) from err
                time.sleep(min(delay, self.retry_for - down))
                delay = min(2 * delay, 2.0)
            else:
                with self._state_lock:
                    if self._down_since is not None:
                        down, self._down_since = time.monotonic() - self._down_since, None
                        log.warning(
                            f"storage {hide_password(self.url)} answers again after {down:.1f} s"
                        )
                return result


def _retried(name: str) -> Callable:
    method = getattr(optuna.storages.RDBStorage, name)

    def call(self: _RetryingRDBStorage, *args, **kwargs):
        return self._retry(lambda: method(self, *args, **kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = method.__doc__
    return call


# every RDBStorage method that talks to the database: the public ones, and the private ones that
# Optuna's _CachedStorage (which wraps every RDB storage of a study) calls on it directly
# (_get_stale_trial_ids: fail_stale_trials; _get_best_trial_id: the best trial, read after every
# trial is told; _create_new_trial, _set_trial_param, _get_trials: ask, suggest, the trials)
for _name in (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    "_get_stale_trial_ids",
    "_get_best_trial_id",
    "_create_new_trial",
    "_set_trial_param",
    "_get_trials",
):
    if hasattr(optuna.storages.RDBStorage, _name):  # the private ones may move between releases
        setattr(_RetryingRDBStorage, _name, _retried(_name))


def _record_heartbeat(self: _RetryingRDBStorage, trial_id: int) -> None:
    """Record a heartbeat, retried; once given up, skipped without an error (it runs in Optuna's
    heartbeat thread, where an error would print a traceback and end the heartbeat): the trial's
    own next call meets the same unavailable storage and ends the worker."""
    with contextlib.suppress(StorageUnavailableError):
        self._retry(lambda: optuna.storages.RDBStorage.record_heartbeat(self, trial_id))


_RetryingRDBStorage.record_heartbeat = _record_heartbeat


def _cut_torn_record(path: str) -> None:
    """Cut off the end of a journal file after its last newline: a record that a writer killed
    mid-write left cut short. Call it holding the journal's lock (no live writer is then
    half-way through a record)."""
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        end = size
        while end > 0:  # back to the last complete record, a block at a time
            start = max(0, end - 65536)
            fh.seek(start)
            newline = fh.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())
    log.warning(
        f"journal file {path} ended in a record cut short ({size - end} bytes, left by a writer "
        "killed while writing): cut off; the one operation it held is lost"
    )


class _RepairingJournalFileBackend(JournalFileBackend):
    """Optuna's ``JournalFileBackend``, whose every append first cuts off a torn last record
    (:func:`_cut_torn_record`), under the journal's lock. Without that, the next record is glued
    to the torn one: that operation is lost, and the line in the middle of the file stops every
    later reader."""

    def __init__(self, path: str) -> None:
        self._journal_path = path
        self._journal_lock = JournalFileSymlinkLock(path)
        super().__init__(path, lock_obj=self._journal_lock)

    def append_logs(self, logs: list[dict]) -> None:
        self._journal_lock.acquire()
        try:
            _cut_torn_record(self._journal_path)
            text = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs)
            with open(self._journal_path, "ab") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            self._journal_lock.release()


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = 10,
    grace_period: int | None = None,
    max_retry: int | None = 3,
    retry_for: float | None = 60.0,
):
    """The Optuna storage a URL names (see the table in the module docstring).

    An RDB storage (SQLite, PostgreSQL, any SQLAlchemy URL Optuna accepts) gets a heartbeat: each
    running trial writes a timestamp every ``heartbeat_interval`` seconds; a trial silent for
    ``grace_period`` seconds (its worker was killed, its machine lost) is marked FAIL by the next
    worker that starts a trial, and queued again with the same parameters, up to ``max_retry``
    times. A journal file has no heartbeat: there, a running trial whose worker process (on this
    machine) is gone is failed and queued again by :func:`count_trials`.

    Every call to an RDB storage that fails with a lost connection (a server restarted, paused or
    unreachable, an SQLite file locked) is retried with backoff until it has failed for
    ``retry_for`` seconds in a row. Every write to a journal file first cuts off a last record
    that a killed writer left cut short.

    Args:
        url: ``None``/``"memory"``, ``sqlite:///PATH``, ``journal:///PATH`` or an SQLAlchemy URL
            such as ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE``.
        heartbeat_interval: seconds between heartbeats of a running trial (``None``: none).
        grace_period: seconds of silence after which a running trial is failed
            (``None``: twice ``heartbeat_interval``).
        max_retry: how often a failed trial is queued again (``None``: without limit).
        retry_for: seconds an RDB storage may fail every call before a call raises
            :class:`StorageUnavailableError` (``None``: no retries, Optuna's own errors at once).

    Returns:
        An ``optuna.storages`` object, ready for :func:`create_study`.

    Raises:
        ValueError: the URL names no storage we know, or the storage cannot be opened (the
            message says which and why).

    Its storage's later calls raise :class:`StorageUnavailableError` when the database stays
    unreachable for ``retry_for`` seconds.

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
        path = url[len("journal:///") :] if url.startswith("journal:///") else ""
        if not path:
            raise ValueError(
                f"journal URL {url!r} names no file: write journal:///study.log "
                "(relative) or journal:////abs/path/study.log"
            )
        try:
            return optuna.storages.JournalStorage(_RepairingJournalFileBackend(path))
        except OSError as err:
            raise ValueError(
                f"cannot open the journal file {path!r}: {err.strerror or err}"
            ) from err
    if scheme.split("+", 1)[0] not in _RDB_SCHEMES:
        raise ValueError(
            f"unknown storage scheme {scheme!r} in {hide_password(url)!r}: {_STORAGE_HELP}"
        )
    import sqlalchemy.exc

    retry = None
    with quiet_experimental():
        if heartbeat_interval is not None:
            retry = _RetryLostTrial(
                max_retry,
                "went silent for the heartbeat's grace period (its worker died, or could not "
                "write to the database)",
            )
        options = dict(
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=retry,
        )
        if scheme.startswith("postgresql"):  # test a pooled connection; give up a connect in 10 s
            options["engine_kwargs"] = {
                "pool_pre_ping": True,
                "connect_args": {"connect_timeout": 10},
            }
        try:
            if retry_for is None:
                return optuna.storages.RDBStorage(url, **options)
            return _RetryingRDBStorage(url, retry_for=retry_for, **options)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as err:
            first_line = (
                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            )
            raise ValueError(f"cannot open storage {hide_password(url)!r}: {first_line}") from err


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
    seed and on the trials before it, and with the seeded objective of :func:`~idlmam.tune.objective.make_objective`
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
        sampler: a name for :func:`~idlmam.tune.samplers.make_sampler`, seeded with ``seed``
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
            no sampler :func:`~idlmam.tune.samplers.make_sampler` knows.

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

    Running trials whose worker is gone are failed first (and queued again), so that they do not
    count as running: on a storage with a heartbeat, those silent for the grace period; on one
    without (a journal file), those whose worker process, on this machine, no longer exists.

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
    with quiet_experimental():
        optuna.storages.fail_stale_trials(study)
    _fail_trials_of_dead_processes(study)
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except OSError:  # no /proc (macOS): it exists
        return True


def _fail_trials_of_dead_processes(study: optuna.Study) -> None:
    """Fail, and queue again, the running trials whose worker process on this machine is gone.

    Only for storages with no heartbeat but files several processes share (a journal file):
    there nothing else ever ends such a trial. A trial names its process in its user attribute
    :data:`WORKER_ATTR` (``host:pid``); trials of other machines, or without it, are left alone.
    """
    storage = study._storage  # Optuna's Study has no public accessor for its storage
    if os.name != "posix" or isinstance(storage, optuna.storages.InMemoryStorage):
        return
    if _heartbeat_interval(study) is not None:
        return  # fail_stale_trials' business
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        where, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if where != host or not pid.isdigit() or _process_exists(int(pid)):
            continue
        try:
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        failed = copy.deepcopy(storage.get_trial(trial._trial_id))
        # the copy must not name the dead worker: it would look dead again once a worker runs it
        failed.user_attrs = {k: v for k, v in failed.user_attrs.items() if k != WORKER_ATTR}
        with quiet_experimental():
            retry = _RetryLostTrial(3, f"was left running by worker {where}:{pid}, which is gone")
            retry(study, failed)


class _RetryLostTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a failed trial (a waiting copy, same parameters, up to ``max_retry``
    times), which also logs what happened to the trial, as ``trial N <why>: ...``."""

    def __init__(self, max_retry: int | None, why: str) -> None:
        super().__init__(max_retry=max_retry)
        self.max_retry, self.why = max_retry, why

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        retried = len(trial.system_attrs.get("retry_history", []))
        if self.max_retry is None or retried < self.max_retry:
            then = "queued again with the same parameters"
        else:
            then = f"not queued again (retried {retried} times already)"
        log.warning(f"trial {trial.number} {self.why}: failed, and {then}")
        super().__call__(study, trial)


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
    A trial of this call that another worker failed meanwhile (its heartbeat unrecorded for the
    grace period, as when the database was paused) is given up, and its retried copy runs.

    Args:
        study: the study, in any storage.
        objective: ``objective(trial) -> float``, e.g. from :func:`~idlmam.tune.objective.make_objective`.
        n_trials: the total the study should hold (0 or more).
        callbacks: more ``callback(study, frozen_trial)``, run after each trial.

    Returns:
        How many trials this call ran.

    Raises:
        StorageUnavailableError: the storage failed every call for its ``retry_for`` seconds.
        ValueError: ``n_trials`` is not a whole number of at least 0.

    Any error of the objective itself is raised as it is, after Optuna has failed its trial.

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
    current: dict = {}  # the trial this call runs, and the objective's own error, if any

    def tracked(trial: optuna.Trial) -> float:
        current.update(trial=trial, error=None)
        try:
            return objective(trial)
        except (optuna.TrialPruned, optuna.exceptions.UpdateFinishedTrialError):
            raise  # a pruned trial; a report refused because the trial was ended elsewhere
        except Exception as err:
            current["error"] = err
            raise

    interval = _heartbeat_interval(study)
    waited = 0
    while True:
        if interval is not None:
            with quiet_experimental():
                optuna.storages.fail_stale_trials(study)  # dead workers' trials: failed, retried
        if count_trials(study) < n_trials:
            try:
                study.optimize(
                    tracked,
                    callbacks=[
                        lambda study, trial: current.clear(),  # that trial is told, and done
                        MaxTrialsCallback(n_trials, states=COUNTED_STATES),
                        lambda study, trial: ran.append(trial.number),
                        *callbacks,
                    ],
                )
            except Exception as err:
                _carry_on_or_raise(study, err, current)
            continue
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if interval is None or not running or waited >= _WAIT_HEARTBEATS * interval:
            return len(ran)
        time.sleep(interval)  # another worker's trial runs: wait until it ends or goes silent
        waited += interval


def _carry_on_or_raise(study: optuna.Study, err: Exception, current: dict) -> None:
    """Decide what an error out of ``study.optimize`` means for :func:`optimize_until`.

    Returns (the loop goes on) when the running trial was ended by another worker, the usual
    cause being its heartbeat that a paused database kept from being written for the grace
    period; its retried copy runs instead. Raises :class:`StorageUnavailableError` when one is
    anywhere in the error's chain (Optuna 5.0 masks a storage error in its trial's last write
    with an ``UnboundLocalError``); any other error, the objective's own first, as it is.
    """
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, StorageUnavailableError):
            raise StorageUnavailableError(str(cause)) from err
        cause = cause.__cause__ or cause.__context__
    trial = current.pop("trial", None)
    if trial is None or current.pop("error", None) is not None:
        raise err
    ended = study._storage.get_trial(trial._trial_id).state
    if not ended.is_finished() or not isinstance(
        err, (ValueError, optuna.exceptions.UpdateFinishedTrialError)
    ):
        raise err
    if ended == TrialState.FAIL:
        log.warning(
            f"trial {trial.number} was failed by another worker while this one ran it (its "
            "heartbeat went unrecorded for the grace period): its retried copy runs instead"
        )


# A dead worker's trial is failed once silent for the grace period (twice the heartbeat by
# default) after its last heartbeat: waiting four heartbeats sees it go. A longer trial of a live
# worker is left to that worker.
_WAIT_HEARTBEATS = 4


def _heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between the heartbeats of ``study``'s storage (None: it has none, e.g. a journal
    file or memory). Optuna's ``Study`` has no public accessor for its storage."""
    get = getattr(study._storage, "get_heartbeat_interval", None)
    return get() if callable(get) else None
