"""Faults of an SQLite study: two workers writing to one file while another process holds the
database's lock longer than SQLite's busy timeout (5 s)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from faultkit import Worker, check_finished, create, in_a_trial, observe, tune, wait_until

pytestmark = pytest.mark.faults


def test_two_workers_ride_out_a_lock_held_past_the_busy_timeout(env, tmp_path, record):
    path = tmp_path / "study.db"
    url = f"sqlite:///{path}"
    create(url, "lock")
    workers = [Worker(tune(url, "lock", 3), env, tmp_path / f"w{i}.log") for i in range(2)]
    study = observe(url, "lock")
    wait_until(lambda: in_a_trial(study, 2), 120, "both workers an epoch into a trial", *workers)
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")  # nobody else reads or writes until COMMIT
    locked = time.monotonic()
    try:  # held until both workers have given up waiting once (each beats every second)
        wait_until(
            lambda: all("did not answer" in w.text() for w in workers),
            60,
            "both locked out",
            *workers,
        )
    finally:
        holder.execute("COMMIT")
        holder.close()
    released = time.monotonic()
    wait_until(
        lambda: all("answers again" in w.text() for w in workers), 30, "the return seen", *workers
    )
    back = time.monotonic() - released
    for w in workers:
        assert w.finish(180) == 0, w.text()[-4000:]
        w.assert_no_traceback()
    count = check_finished(observe(url, "lock"), 3, lost_at_most=0)
    record(
        storage="sqlite",
        fault="two workers, the database locked by another process past the busy timeout",
        lost=count.get("FAIL", 0),
        down_s=round(released - locked, 1),
        recovery_s=round(back, 1),
        lines=sorted({line for w in workers for line in w.said()}),
    )
