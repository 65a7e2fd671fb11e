"""Faults of a journal-file study: a worker killed in the middle of a trial, and a journal whose
last record a killed writer left cut short. Real workers on one machine, as a journal is meant.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
from faultkit import (
    Worker,
    check_finished,
    check_retried_once,
    create,
    in_a_trial,
    observe,
    tune,
    wait_until,
)
from optuna.trial import TrialState

pytestmark = pytest.mark.faults


def test_a_worker_killed_in_a_trial_leaves_no_trial_running(env, tmp_path, record):
    """No heartbeat here: the next worker sees that the trial's process is gone, fails the trial
    and runs it again."""
    url = f"journal:///{tmp_path}/study.log"
    create(url, "kill")
    first = Worker(tune(url, "kill", 1), env, tmp_path / "first.log")
    study = observe(url, "kill")
    (trial,) = wait_until(lambda: in_a_trial(study), 120, "a trial an epoch in", first)
    first.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    first.finish(30)
    second = Worker(tune(url, "kill", 1), env, tmp_path / "second.log")
    wait_until(
        lambda: study.trials[trial.number].state == TrialState.FAIL,
        120,
        "the dead worker's trial failed",
        second,
    )
    recovery = time.monotonic() - killed
    assert second.finish(180) == 0, second.text()[-4000:]
    second.assert_no_traceback()
    study = observe(url, "kill")
    count = check_finished(study, 1, lost_at_most=1)
    check_retried_once(study.trials, trial)
    assert any(f"trial {trial.number} was left running" in line for line in second.said())
    record(
        storage="journal",
        fault="worker SIGKILLed in a trial; a new worker started",
        lost=count.get("FAIL", 0),
        recovery_s=round(recovery, 1),
        lines=second.said(),
    )


def test_a_journal_whose_last_record_is_cut_short_is_mended_by_the_next_worker(
    env, tmp_path, record
):
    """Cut the journal's last record in half (as a writer killed mid-line leaves it: here the
    result of the last trial), then start a worker on it."""
    path = tmp_path / "study.log"
    url = f"journal:///{path}"
    create(url, "torn")
    first = Worker(tune(url, "torn", 2, "--epochs", "2"), env, tmp_path / "first.log")
    assert first.finish(120) == 0, first.text()[-4000:]
    data = path.read_bytes()
    last = data[:-1].rfind(b"\n") + 1
    assert json.loads(data[last:])["state"] == TrialState.COMPLETE.value  # the last result
    torn = observe(url, "torn").trials[-1].number  # the trial whose result is cut
    path.write_bytes(data[: last + (len(data) - last) // 2])
    second = Worker(tune(url, "torn", 2, "--epochs", "2"), env, tmp_path / "second.log")
    started = time.monotonic()
    study = observe(url, "torn")
    wait_until(
        lambda: study.trials[torn].state == TrialState.FAIL, 120, "the torn trial failed", second
    )
    recovery = time.monotonic() - started
    assert second.finish(180) == 0, second.text()[-4000:]
    second.assert_no_traceback()
    said = second.said()
    assert any("ended in a record cut short" in line for line in said), said
    lines = path.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines)
    for line in lines:
        json.loads(line)  # every record whole: any reader can read the study
    count = check_finished(observe(url, "torn"), 2, lost_at_most=1)
    record(
        storage="journal",
        fault="last record cut short (writer killed mid-line); a new worker started",
        lost=count.get("FAIL", 0),
        recovery_s=round(recovery, 1),
        lines=said,
    )
