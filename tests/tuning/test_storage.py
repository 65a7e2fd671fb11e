"""Tests of idlmam.tuning.storage: storage URLs, studies that resume, counting across workers."""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.trial import TrialState

from idlmam.tuning import (
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
