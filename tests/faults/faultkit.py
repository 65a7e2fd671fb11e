"""Helpers of the fault suite: start ``python -m idlmam.tune`` workers, wait on conditions with
deadlines, read what a worker said, count a study's trials."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from idlmam.tune import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[2]
PREFIX = "python -m idlmam.tune: "

# Tiny trials that still last a second or more (25 epochs on 1,600 images), a heartbeat every
# second (a silent trial is failed after 2 s), and a storage given up after 30 s.
TRIAL = ("--epochs", "25", "--train-size", "2000", "--threads", "1")
HEARTBEAT = ("--heartbeat", "1", "--retry-for", "30")


def create(storage: str, study: str) -> None:
    """Create the study, as ``python -m idlmam.tune --create --n-trials 0`` does."""
    from idlmam.tune.worker import main

    assert main(["--storage", storage, "--study", study, "--n-trials", "0", "--create"]) == 0


def tune(storage: str, study: str, n_trials: int, *extra: str) -> list[str]:
    """The command line of a worker on ``study`` with tiny trials."""
    return [
        sys.executable,
        "-m",
        "idlmam.tune",
        "--storage",
        storage,
        "--study",
        study,
        "--n-trials",
        str(n_trials),
        *TRIAL,
        *HEARTBEAT,
        *extra,
    ]


class Worker:
    """A worker process whose stdout and stderr go to a log file (a pipe could fill and block)."""

    def __init__(self, cmd: list[str], env: dict, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def finish(self, timeout: float) -> int:
        """Wait for the worker's exit status; kill it and fail the test after ``timeout`` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"worker {self.pid} still ran after {timeout} s:\n{self.text()[-3000:]}")

    def said(self) -> list[str]:
        """The lines the worker wrote about faults and errors (``python -m idlmam.tune: ...``)."""
        return [line for line in self.text().splitlines() if line.startswith(PREFIX)]

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.text(), self.text()[-4000:]


def wait_until(condition: Callable[[], object], timeout: float, what: str, *workers: Worker):
    """Poll ``condition`` every 0.1 s until it is true (returned); fail after ``timeout`` s,
    showing the workers' logs. A worker that exits meanwhile fails the wait at once."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        ended = [w for w in workers if w.proc.poll() is not None]
        if ended or time.monotonic() > deadline:
            logs = "\n".join(f"--- worker {w.pid}:\n{w.text()[-3000:]}" for w in workers)
            why = f"a worker exited ({ended[0].proc.returncode})" if ended else f"{timeout} s"
            pytest.fail(f"waited for {what}: {why}\n{logs}")
        time.sleep(0.1)


def observe(storage: str, study: str) -> optuna.Study:
    """The study as an onlooker sees it (no heartbeat of its own)."""
    return optuna.load_study(
        study_name=study, storage=open_storage(storage, heartbeat_interval=None, retry_for=30)
    )


def states(study: optuna.Study) -> Counter:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def in_a_trial(study: optuna.Study, n: int = 1) -> list[optuna.trial.FrozenTrial]:
    """The running trials an epoch or more into training, when there are at least ``n``."""
    running = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.intermediate_values
    ]
    return running if len(running) >= n else []


def recovered_after(*workers: Worker) -> float:
    """The longest outage the workers reported (``... answers again after X s``), 0 if none."""
    found = [
        float(m.group(1))
        for w in workers
        for m in re.finditer(r"answers again after ([\d.]+) s", w.text())
    ]
    return max(found, default=0.0)


def check_finished(study: optuna.Study, n_trials: int, lost_at_most: int) -> dict:
    """The study holds ``n_trials`` finished trials (one more where two workers decided at
    once), none running, and at most ``lost_at_most`` failed; returns the count of each state."""
    count = states(study)
    assert count["RUNNING"] == 0 and count["WAITING"] == 0, count
    assert n_trials <= count["COMPLETE"] + count["PRUNED"] <= n_trials + 1, count
    assert count["FAIL"] <= lost_at_most, count
    return dict(count)


def check_retried_once(trials: list[optuna.trial.FrozenTrial], failed: optuna.trial.FrozenTrial):
    """Exactly one copy of the ``failed`` trial was queued again (Optuna's retry callback marks
    it ``failed_trial``), with the same parameters, and it completed."""
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params
    assert retried[0].state == optuna.trial.TrialState.COMPLETE
