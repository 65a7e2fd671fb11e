"""Faults of a PostgreSQL study: the server restarted or paused under two running workers, and a
worker killed while it writes a trial's result. Real workers, a real server of the module's own.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest
from faultkit import (
    PREFIX,
    Worker,
    check_finished,
    check_retried_once,
    create,
    in_a_trial,
    observe,
    recovered_after,
    tune,
    wait_until,
)
from optuna.trial import TrialState

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

N_TRIALS = 3


def two_workers_in_trials(url: str, name: str, env: dict, tmp_path) -> list[Worker]:
    create(url, name)
    workers = [Worker(tune(url, name, N_TRIALS), env, tmp_path / f"w{i}.log") for i in range(2)]
    study = observe(url, name)
    wait_until(lambda: in_a_trial(study, 2), 120, "both workers an epoch into a trial", *workers)
    return workers


def finish(workers: list[Worker]) -> None:
    for w in workers:
        assert w.finish(180) == 0, w.text()[-4000:]
        w.assert_no_traceback()


def test_a_server_restart_under_two_workers_loses_no_trial(
    pg_server, pg_url, env, tmp_path, record
):
    """Fast shutdown while both workers train; both ride it out and lose nothing."""
    workers = two_workers_in_trials(pg_url, "restart", env, tmp_path)
    down = time.monotonic()
    pg_server.shut_down()
    # down until both have met the outage (each writes a heartbeat every second), then back
    wait_until(
        lambda: all("did not answer" in w.text() for w in workers), 30, "the outage seen", *workers
    )
    pg_server.start_again()
    up = time.monotonic()
    wait_until(
        lambda: all("answers again" in w.text() for w in workers), 30, "the return seen", *workers
    )
    back = time.monotonic() - up
    finish(workers)
    count = check_finished(observe(pg_url, "restart"), N_TRIALS, lost_at_most=0)
    record(
        storage="postgresql",
        fault="server restarted (fast shutdown) under two workers",
        lost=count.get("FAIL", 0),
        down_s=round(up - down, 1),
        recovery_s=round(back, 1),
        outage_seen_s=recovered_after(*workers),
        lines=sorted({line for w in workers for line in w.said()}),
    )


def test_a_server_paused_past_the_grace_period_loses_at_most_one_trial(
    pg_server, pg_url, env, tmp_path, record
):
    """SIGSTOP on every server process for longer than the heartbeat's grace period (2 s)."""
    workers = two_workers_in_trials(pg_url, "pause", env, tmp_path)
    study = observe(pg_url, "pause")
    epochs = sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))
    processes = pg_server.processes()
    for pid in processes:
        os.kill(pid, signal.SIGSTOP)
    paused = time.monotonic()
    try:
        time.sleep(3.0)  # the fault itself: three heartbeats without an answer
    finally:
        for pid in processes:
            os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    wait_until(
        lambda: sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False)) > epochs,
        60,
        "an epoch reported after the pause",
        *workers,
    )
    back = time.monotonic() - resumed
    finish(workers)
    count = check_finished(observe(pg_url, "pause"), N_TRIALS, lost_at_most=1)
    record(
        storage="postgresql",
        fault="server paused (SIGSTOP) 3 s, grace period 2 s, under two workers",
        lost=count.get("FAIL", 0),
        down_s=round(resumed - paused, 1),
        recovery_s=round(back, 1),
        lines=sorted({line for w in workers for line in w.said()}),
    )


def test_a_worker_killed_while_it_writes_its_result_loses_that_trial_only(
    pg_server, pg_url, env, tmp_path, record
):
    """Hold the trial's row so that the worker's result write waits on it, SIGKILL the worker
    there, let go; a new worker fails the silent trial and runs it again."""
    create(pg_url, "write")
    first = Worker(tune(pg_url, "write", 1), env, tmp_path / "first.log")
    study = observe(pg_url, "write")
    (trial,) = wait_until(lambda: in_a_trial(study), 120, "a trial an epoch in", first)
    dsn = f"host=127.0.0.1 port={pg_server.port} user=postgres dbname={pg_url.rsplit('/', 1)[1]}"
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as spy:
        holder.execute(  # blocks the result's SELECT ... FOR UPDATE, not the epochs' reports
            "SELECT 1 FROM trials WHERE trial_id = %s FOR NO KEY UPDATE", (trial._trial_id,)
        )

        def writing() -> bool:
            return bool(
                spy.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    ("%FROM trials%FOR UPDATE%",),
                ).fetchall()
            )

        wait_until(writing, 120, "the worker writing its result", first)
        first.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        first.finish(30)
        holder.rollback()  # let go: the dead worker's transaction never commits
    assert study.trials[trial.number].state == TrialState.RUNNING
    second = Worker(tune(pg_url, "write", 1), env, tmp_path / "second.log")
    wait_until(
        lambda: study.trials[trial.number].state == TrialState.FAIL,
        120,
        "the dead worker's trial failed",
        second,
    )
    recovery = time.monotonic() - killed
    assert second.finish(180) == 0, second.text()[-4000:]
    second.assert_no_traceback()
    trials = observe(pg_url, "write").get_trials(deepcopy=False)
    count = check_finished(observe(pg_url, "write"), 1, lost_at_most=1)
    check_retried_once(trials, trial)
    assert any(f"trial {trial.number} went silent" in line for line in second.said())
    record(
        storage="postgresql",
        fault="worker SIGKILLed while it writes its result; a new worker started",
        lost=count.get("FAIL", 0),
        recovery_s=round(recovery, 1),
        lines=second.said(),
    )


def test_a_server_down_for_good_ends_the_worker_with_one_line(
    pg_server, pg_url, env, tmp_path, record
):
    """The server stays down past --retry-for (3 s): the worker exits with status 3 and one line;
    started again once the server is back, a worker fails the trial left running and reruns it."""
    create(pg_url, "gone")
    first = Worker(tune(pg_url, "gone", 1, "--retry-for", "3"), env, tmp_path / "first.log")
    study = observe(pg_url, "gone")
    (trial,) = wait_until(lambda: in_a_trial(study), 120, "a trial an epoch in", first)
    pg_server.shut_down()
    down = time.monotonic()
    try:
        status = first.finish(60)
        gave_up = time.monotonic() - down
    finally:
        pg_server.start_again()
    assert status == 3, first.text()[-4000:]
    first.assert_no_traceback()
    *_, last = first.said()
    assert last.startswith(f"{PREFIX}error: storage postgresql+psycopg://"), last
    assert "did not answer for 3 s" in last and "start this worker again" in last, last
    second = Worker(tune(pg_url, "gone", 1), env, tmp_path / "second.log")
    assert second.finish(180) == 0, second.text()[-4000:]
    second.assert_no_traceback()
    count = check_finished(observe(pg_url, "gone"), 1, lost_at_most=1)
    assert observe(pg_url, "gone").trials[trial.number].state == TrialState.FAIL
    assert any(f"trial {trial.number} went silent" in line for line in second.said())
    record(
        storage="postgresql",
        fault="server down for longer than --retry-for (3 s); a worker started once it is back",
        lost=count.get("FAIL", 0),
        gave_up_s=round(gave_up, 1),
        lines=[last, *second.said()],
    )
