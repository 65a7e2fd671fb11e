"""Tests of idlmam.tune.workers: worker processes on one journal file, who ran which trial.

The objective is the toy :class:`Quadratic` (it sleeps instead of training), so the tests take
seconds; ``python -m idlmam.tune`` with real training is tested in test_worker.py.
"""

from __future__ import annotations

import time

import optuna
import pytest

from idlmam.tune import create_study
from idlmam.tune.workers import Quadratic, run_workers

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Broken:
    """An objective whose third call fails (picklable: defined at the top of a module)."""

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 2:
            raise ArithmeticError(f"trial {trial.number} went wrong")
        time.sleep(0.05)
        return x


def test_two_workers_fill_one_journal_study_to_exactly_n_trials_side_by_side(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    began = time.monotonic()
    trials = run_workers(url, "two", 12, n_workers=2, objective=Quadratic(seconds=0.15))
    assert time.monotonic() - began < 30

    # exactly 12 trials, numbered without gaps, each run by one of our two workers
    assert trials["trial"].tolist() == list(range(12))
    assert (trials["state"] == "COMPLETE").all() and trials["value"].notna().all()
    assert set(trials["worker"]) == {0, 1}, trials
    assert trials.groupby("worker")["process"].nunique().tolist() == [1, 1]
    stored = create_study(url, "two", direction="minimize", create=False)
    assert len(stored.trials) == 12
    assert [t.user_attrs["worker"] for t in stored.trials] == trials["process"].tolist()

    # interleaved: the trial numbers alternate between the workers more than once ...
    by_number = trials["worker"].tolist()
    switches = sum(a != b for a, b in zip(by_number, by_number[1:]))
    assert switches >= 2, by_number
    # ... and trials of different workers ran at the same time
    zero, one = (trials[trials["worker"] == w] for w in (0, 1))
    overlapping = [
        (a.trial, b.trial)
        for a in zero.itertuples()
        for b in one.itertuples()
        if a.start < b.complete and b.start < a.complete
    ]
    assert len(overlapping) >= 2, trials[["trial", "worker", "start", "complete"]]


def test_workers_fill_up_an_existing_study_and_mark_trials_they_did_not_run(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    first = run_workers(url, "more", 3, n_workers=1, objective=Quadratic(seconds=0))
    assert first["worker"].tolist() == [0, 0, 0]
    more = run_workers(url, "more", 6, n_workers=2, objective=Quadratic(seconds=0.05), seed=7)
    assert more["trial"].tolist() == list(range(6))
    assert more["worker"].tolist()[:3] == [-1, -1, -1]  # the first run's, not these workers'
    assert set(more["worker"].tolist()[3:]) <= {0, 1}
    # a full study: the workers start, find nothing to do, and stop
    assert len(run_workers(url, "more", 6, objective=Quadratic(seconds=0))) == 6


def test_a_failing_worker_is_reported_with_its_error(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    with pytest.raises(RuntimeError, match="ArithmeticError: trial 2 went wrong"):
        run_workers(url, "broken", 6, n_workers=1, objective=Broken(), direction="maximize")
    stored = create_study(url, "broken", create=False)
    assert stored.trials[2].state == optuna.trial.TrialState.FAIL


def test_workers_that_take_too_long_are_stopped(tmp_path):
    url = f"journal:///{tmp_path}/study.log"
    with pytest.raises(TimeoutError, match="1 of 1 workers were not done after 1 s"):
        run_workers(url, "slow", 2, n_workers=1, objective=Quadratic(seconds=30), timeout=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(storage="memory"), "cannot share an in-memory study.*journal:///"),
        (dict(n_workers=0), "n_workers must be a whole number of at least 1"),
        (dict(n_trials=-1), "n_trials must be a whole number of at least 0"),
        (dict(sampler="grid"), "unknown sampler 'grid'"),
    ],
)
def test_bad_arguments_are_refused_before_any_process_starts(kwargs, match, tmp_path):
    args = dict(storage=f"journal:///{tmp_path}/s.log", study_name="s", n_trials=2) | kwargs
    with pytest.raises(ValueError, match=match):
        run_workers(**args)
    assert not (tmp_path / "s.log").exists()
