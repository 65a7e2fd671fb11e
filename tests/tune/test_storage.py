"""Tests of idlmam.tune.storage: storage URLs, studies that resume, counting across workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from idlmam.tune import (
    StorageUnavailableError,
    StudyNotFoundError,
    count_trials,
    create_study,
    open_storage,
    optimize_until,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


# --------------------------------------------------------------------------- storages and studies


def test_open_storage_maps_urls_to_optuna_storages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_storage(None), optuna.storages.InMemoryStorage)
    assert isinstance(open_storage("memory"), optuna.storages.InMemoryStorage)
    assert isinstance(open_storage("journal:///rel.log"), optuna.storages.JournalStorage)
    assert (tmp_path / "rel.log").exists()
    open_storage(f"journal:///{tmp_path}/abs.log")  # four slashes: an absolute path
    assert (tmp_path / "abs.log").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        rdb = open_storage("sqlite:///s.db", heartbeat_interval=5, grace_period=7, max_retry=2)
    assert isinstance(rdb, optuna.storages.RDBStorage) and (tmp_path / "s.db").exists()
    assert (rdb.heartbeat_interval, rdb.grace_period) == (5, 7)
    assert isinstance(
        rdb.heartbeat_stale_trial_callback, optuna.storages.RetryHeartbeatStaleTrialCallback
    )


@pytest.mark.parametrize(
    "url, match",
    [
        ("foo://x", "unknown storage scheme 'foo'.*journal:///PATH"),
        ("study.db", "has no scheme"),
        ("journal://", "names no file"),
        ("sqlite:////no/such/folder/s.db", "cannot open storage"),
        ("postgresql+psycopg://me:secret@127.0.0.1:1/db", r"cannot open storage .*me:\*\*\*@"),
    ],
)
def test_open_storage_says_what_is_wrong(url, match):
    with pytest.raises(ValueError, match=match) as info:
        open_storage(url)
    assert "secret" not in str(info.value)


@pytest.mark.postgres
def test_postgres_storage_has_a_heartbeat_and_keeps_studies(postgres_url):
    storage = open_storage(postgres_url, heartbeat_interval=3)
    assert isinstance(storage, optuna.storages.RDBStorage) and storage.heartbeat_interval == 3
    study = create_study(storage, "pg", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = create_study(postgres_url, "pg", create=False)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_sqlite_study_resumes_and_load_only_needs_an_existing_study(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"

    def f(t):
        return t.suggest_float("x", 0, 1)

    assert optimize_until(create_study(url, "s", seed=0), f, 3) == 3
    resumed = create_study(url, "s", seed=0)  # as a new process would
    assert optimize_until(resumed, f, 5) == 2
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3, 4]
    with pytest.raises(StudyNotFoundError, match="no study named 'typo'.*create"):
        create_study(url, "typo", create=False)
    with pytest.raises(ValueError, match="maximizes its objective"):
        create_study(url, "s", direction="minimize")


def test_optimize_until_counts_running_trials_and_runs_queued_ones_first():
    study = create_study(seed=0)
    study.enqueue_trial({"x": 0.25})
    study.enqueue_trial({"x": 0.75})
    assert count_trials(study) == 0  # queued trials count once they run
    assert optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 2) == 2
    assert [t.params["x"] for t in study.trials] == [0.25, 0.75]  # ran them first, added none
    running = study.ask()  # as if another worker were running a trial
    assert optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 4) == 1
    assert len(study.trials) == 4 and study.trials[running.number].state == TrialState.RUNNING
    with pytest.raises(ValueError, match="at least 0"):
        optimize_until(study, lambda t: 0.0, -1)


def test_create_study_takes_a_sampler_by_name_or_as_an_object():
    tpe = create_study(seed=3).sampler  # the default: Optuna 5's TPE, on any Optuna
    assert type(tpe).__name__ == "TPESampler"
    assert (tpe._multivariate, tpe._constant_liar) == (True, True)
    assert type(create_study(sampler="cmaes", seed=3).sampler).__name__ == "CmaEsSampler"
    mine = optuna.samplers.RandomSampler(seed=1)
    assert create_study(sampler=mine).sampler is mine
    with pytest.raises(ValueError, match="unknown sampler 'grid': choose one of"):
        create_study(sampler="grid")


def test_a_worker_that_reaches_the_total_waits_for_a_dead_trial_and_makes_it_up(tmp_path):
    """A trial whose worker died still counts as RUNNING; the next worker waits for its heartbeat
    to go stale, and runs the retried copy, instead of leaving it running for ever."""
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1)
    study = create_study(storage, study_name="dead", seed=0)
    optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 1)
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: ask() is not optimize()
        dead = study.ask()  # a worker took this trial and died: RUNNING, its heartbeat silent
    storage.record_heartbeat(dead._trial_id)  # the one beat it sent before it died
    assert count_trials(study) == 2
    ran = optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 2)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(TrialState.COMPLETE) == 2 and TrialState.RUNNING not in states
    assert study.trials[dead.number].state == TrialState.FAIL and ran == 1


def test_a_running_trial_that_never_goes_stale_does_not_keep_a_worker_for_ever(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1)
    study = create_study(storage, study_name="live", seed=0)
    with pytest.warns(UserWarning, match="Heartbeat"):
        study.ask()  # no heartbeat recorded: never stale (as a live worker's long trial)
    assert optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 1) == 0


# --------------------------------------------------------------------------- faults ridden out


class _Down(Exception):
    """Stands for a storage error that is not a lost connection."""


def _lost(message="connection refused"):
    """What RDBStorage raises when its server is gone: StorageInternalError from OperationalError."""
    err = optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
    err.__cause__ = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(message))
    return err


def test_an_rdb_call_is_retried_while_the_connection_is_lost_then_given_up(tmp_path, caplog):
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", retry_for=5)
    failures = [_lost(), _lost()]

    def flaky():
        if failures:
            raise failures.pop()
        return "answer"

    with caplog.at_level("WARNING", logger="idlmam.tune"):
        assert storage._retry(flaky) == "answer"
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "did not answer (OperationalError" in said[0]
    assert "retrying for up to 5 s" in said[0] and "answers again after" in said[1]

    def other():
        raise _Down("not a connection")

    with pytest.raises(_Down):  # any other error at once, untouched
        storage._retry(other)

    storage.retry_for = 0.3

    def gone():
        raise _lost("server closed the connection unexpectedly")

    with pytest.raises(StorageUnavailableError, match=r"did not answer for 0.3 s .*closed"):
        storage._retry(gone)
    with pytest.raises(StorageUnavailableError):  # still down: every later call gives up at once
        storage._retry(gone)


def test_every_call_a_study_makes_waits_out_a_locked_sqlite_file(tmp_path, caplog):
    """Optuna's _CachedStorage, which wraps a study's RDB storage, calls some of its private
    methods directly (the best trial after every tell, ask, suggest, the trials): each is retried."""
    import sqlite3
    import threading

    from idlmam.tune.storage import _RetryingRDBStorage

    path = tmp_path / "s.db"
    storage = _RetryingRDBStorage(  # SQLite's own busy wait cut to 0.05 s: ours does the waiting
        f"sqlite:///{path}", retry_for=20, engine_kwargs={"connect_args": {"timeout": 0.05}}
    )
    study = optuna.create_study(storage=storage, study_name="locked", direction="maximize")
    study.tell(study.ask(), 1.0)
    assert type(study._storage).__name__ == "_CachedStorage"

    def locked(call):
        holder = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(0.5, lambda: (holder.execute("COMMIT"), holder.close()))
        release.start()
        caplog.clear()
        try:
            with caplog.at_level("WARNING", logger="idlmam.tune"):
                result = call()
        finally:
            release.join()
        said = [r.getMessage() for r in caplog.records]
        assert any("did not answer" in line for line in said), said
        assert any("answers again" in line for line in said), said
        return result

    assert locked(lambda: study.best_trial.value) == 1.0  # _get_best_trial_id
    trial = locked(study.ask)  # _create_new_trial
    assert locked(lambda: trial.suggest_float("x", 0, 1)) <= 1  # _set_trial_param
    study.tell(trial, 2.0)
    assert [t.value for t in locked(lambda: study.trials)] == [1.0, 2.0]  # _get_trials


def test_every_database_call_of_optunas_cached_storage_is_retried():
    """The installed Optuna's _CachedStorage, read for the calls it makes on its backend: a call
    that a new release adds would go unretried, and fail a worker on the first locked moment."""
    import inspect
    import re

    from optuna.storages import _cached_storage

    from idlmam.tune.storage import _RetryingRDBStorage

    called = set(re.findall(r"self\._backend\.(\w+)", inspect.getsource(_cached_storage)))
    settings = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}  # no database
    assert {"_get_best_trial_id", "record_heartbeat"} <= called  # the reading finds them
    unretried = {name for name in called - settings if name not in vars(_RetryingRDBStorage)}
    assert not unretried, f"add these to the retried methods in idlmam/tune/storage.py: {unretried}"


def test_a_journal_record_cut_short_is_cut_off_before_the_next_write(tmp_path, caplog):
    path = tmp_path / "j.log"
    url = f"journal:///{path}"
    study = create_study(url, "torn", seed=0)
    optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 2)
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # the last record, cut 40 bytes short
    resumed = create_study(url, "torn", seed=1)
    with caplog.at_level("WARNING", logger="idlmam.tune"):
        optimize_until(resumed, lambda t: t.suggest_float("x", 0, 1), 3)
    assert any("ended in a record cut short" in r.getMessage() for r in caplog.records)
    for line in path.read_bytes().splitlines(keepends=True):
        assert line.endswith(b"\n")
        json.loads(line)
    fresh = create_study(url, "torn", create=False)  # any new reader reads it all
    assert count_trials(fresh) == 3


def test_a_trial_whose_worker_process_is_gone_is_failed_and_queued_again(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    study = create_study(f"journal:///{tmp_path}/j.log", "dead", seed=0)
    dead, alive, elsewhere = study.ask(), study.ask(), study.ask()
    dead.set_user_attr("worker", f"{host}:{gone.pid}")
    alive.set_user_attr("worker", f"{host}:{os.getpid()}")
    elsewhere.set_user_attr("worker", f"another-machine:{gone.pid}")
    assert count_trials(study) == 2  # the dead one no longer counts
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials[:3]] == [
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.RUNNING,
    ]
    (copy,) = trials[3:]
    assert copy.state == TrialState.WAITING and copy.system_attrs["failed_trial"] == dead.number
    assert "worker" not in copy.user_attrs  # it must not look dead once a worker runs it
    assert count_trials(study) == 2  # once only


def test_a_trial_failed_by_another_worker_while_it_ran_is_given_up_not_fatal(tmp_path, caplog):
    """As when a paused database let the heartbeat go stale: another worker fails the trial,
    whose next report is refused; the worker carries on with the next trial."""
    url = f"sqlite:///{tmp_path}/s.db"
    study = create_study(open_storage(url, heartbeat_interval=1), "elsewhere", seed=0)
    other = open_storage(url, heartbeat_interval=None)

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 0:
            other.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            trial.report(x, 0)  # refused: the trial is over
        return x

    with caplog.at_level("WARNING", logger="idlmam.tune"):
        assert optimize_until(study, objective, 2) == 2
    assert [t.state for t in study.trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert any("trial 0 was failed by another worker" in r.getMessage() for r in caplog.records)

    def broken(trial):
        raise RuntimeError("the objective's own error")

    with pytest.raises(RuntimeError, match="own error"):  # still raised as it is
        optimize_until(study, broken, 3)


class _LosesItsServer(optuna.storages.InMemoryStorage):
    """A storage whose server is lost while a trial's result is written, for good."""

    down = False

    def set_trial_state_values(self, trial_id, state, values=None):
        if self.down:
            raise _unavailable()
        return super().set_trial_state_values(trial_id, state, values)

    def get_trial(self, trial_id):
        if self.down:
            raise _unavailable()
        return super().get_trial(trial_id)


def _unavailable():
    return StorageUnavailableError("storage x did not answer for 1 s (OperationalError: gone)")


def test_a_storage_given_up_in_a_trial_s_last_write_is_raised_as_such():
    """Optuna 5.0 masks it with UnboundLocalError ('updated_state'); we raise what happened."""
    storage = _LosesItsServer()
    study = create_study(storage, "lost", seed=0)

    def objective(trial):
        storage.down = True  # the server goes while the trial trains
        return trial.suggest_float("x", 0, 1)

    with pytest.raises(StorageUnavailableError, match="did not answer for 1 s") as info:
        optimize_until(study, objective, 1)
    assert isinstance(info.value.__cause__, UnboundLocalError)  # what Optuna raised
