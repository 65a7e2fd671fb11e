"""Tests of idlmam.tune.worker, the command ``python -m idlmam.tune``: real worker processes
sharing one study.

Workers train on the quick budget's data; the PostgreSQL server is the throwaway one of
``pg_server``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from idlmam.tune import open_storage
from idlmam.tune.worker import main

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture
def env(fashion_root):
    """The environment of a worker process: the test's data, one torch thread."""
    return dict(os.environ, IDL_DATA=str(Path(fashion_root).resolve()), OMP_NUM_THREADS="1")


def worker(storage: str, study: str, n_trials: int, *extra: str) -> list[str]:
    """A worker on the quick budget: 12,000 examples (9,600 to train on), 2 epochs per trial."""
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
        "--budget",
        "quick",
        "--threads",
        "1",
        *extra,
    ]


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start a worker whose stdout and stderr go to ``log`` (a pipe could fill and block it)."""
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)


def ran(log: Path) -> int:
    """How many trials a worker says it ran."""
    found = re.search(r"this worker ran (\d+) trial", log.read_text())
    assert found, log.read_text()[-3000:]
    return int(found.group(1))


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(
        study_name=name, storage=open_storage(storage, heartbeat_interval=None)
    )


def two_workers(storage: str, name: str, n_trials: int, env: dict, tmp_path: Path) -> list[int]:
    """Create the study, run two workers on it at once, return how many trials each ran.

    Each trial trains 3 epochs on 48,000 images (seconds), so that the study outlasts the
    second worker's start: on the quick budget's 9,600 a trial took 0.3 s, and one worker
    could finish all of them before the other had imported torch.
    """
    assert main(["--storage", storage, "--study", name, "--n-trials", "0", "--create"]) == 0
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    longer = ("--epochs", "3", "--train-size", "60000")
    procs = [start(worker(storage, name, n_trials, *longer), env, log) for log in logs]
    for proc, log in zip(procs, logs):
        assert proc.wait(timeout=240) == 0, log.read_text()[-3000:]
    return [ran(log) for log in logs]


def check_shared_study(study: optuna.Study, n_trials: int, ran_by_worker: list[int]) -> None:
    trials = study.get_trials(deepcopy=False)
    assert n_trials <= len(trials) <= n_trials + 1  # both may decide at once: one extra at most
    assert [t.number for t in trials] == list(range(len(trials)))  # none lost, none twice
    assert all(t.state in FINISHED for t in trials), [t.state for t in trials]
    assert sum(ran_by_worker) == len(trials)  # every trial was run by exactly one worker
    assert min(ran_by_worker) >= 1, f"the workers did not both work: {ran_by_worker}"
    by_worker = Counter(t.user_attrs["worker"] for t in trials)
    assert sorted(by_worker.values()) == sorted(ran_by_worker)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params)  # unseeded workers do not propose the same trials


def test_two_workers_fill_one_journal_study(env, tmp_path, capsys):
    url = f"journal:///{tmp_path}/study.log"
    ran_by_worker = two_workers(url, "j", 6, env, tmp_path)
    check_shared_study(load(url, "j"), 6, ran_by_worker)
    # a worker that joins a full study runs nothing (and loads no data)
    capsys.readouterr()
    assert main(["--storage", url, "--study", "j", "--n-trials", "6"]) == 0
    assert "this worker ran 0 trial(s)" in capsys.readouterr().out


@pytest.mark.postgres
def test_two_workers_fill_one_postgres_study(env, tmp_path, postgres_url):
    ran_by_worker = two_workers(postgres_url, "pg", 6, env, tmp_path)
    check_shared_study(load(postgres_url, "pg"), 6, ran_by_worker)


@pytest.mark.postgres
def test_a_trial_killed_with_its_worker_is_failed_and_retried(env, tmp_path, postgres_url):
    """SIGKILL one worker in the middle of a trial; a new worker finishes the study."""
    # a dead trial is failed after 2 s; 6 short epochs leave time to kill one mid-trial
    n_trials, opts = 3, ("--heartbeat", "1", "--epochs", "6", "--train-size", "4000")
    assert main(["--storage", postgres_url, "--study", "k", "--n-trials", "0", "--create"]) == 0
    first = start(worker(postgres_url, "k", n_trials, *opts), env, tmp_path / "first.log")
    study = load(postgres_url, "k")
    deadline = time.monotonic() + 180
    while True:  # wait for: one trial done, and the next one an epoch into its training
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the worker never got into its second trial"
        trials = study.get_trials(deepcopy=False)
        if any(t.state == TrialState.COMPLETE for t in trials) and any(
            t.state == TrialState.RUNNING and t.intermediate_values for t in trials
        ):
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    (killed,) = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    assert killed.user_attrs["worker"].endswith(f":{first.pid}")

    second = start(worker(postgres_url, "k", n_trials, *opts), env, tmp_path / "second.log")
    assert second.wait(timeout=240) == 0, (tmp_path / "second.log").read_text()[-3000:]

    trials = load(postgres_url, "k").get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == n_trials
    assert trials[killed.number].state == TrialState.FAIL
    assert states.count(TrialState.FAIL) == 1 and len(trials) == n_trials + 1
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params
    assert retried[0].state == TrialState.COMPLETE


@pytest.mark.parametrize(
    "args, says",
    [
        (
            ["--storage", "foo://x", "--study", "s", "--n-trials", "3"],
            "unknown storage scheme 'foo'",
        ),
        (
            ["--storage", "journal:///{tmp}/j.log", "--study", "missing", "--n-trials", "3"],
            "no study named 'missing'.*--create",
        ),
        (
            ["--storage", "memory", "--study", "s", "--n-trials", "-3"],
            "--n-trials: must be 0 or more",
        ),
    ],
)
def test_bad_input_stops_with_one_line(args, says, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    out = subprocess.run(
        [sys.executable, "-m", "idlmam.tune", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("python -m idlmam.tune: error: ")
    assert re.search(says, lines[0]), lines[0]


def test_the_package_runs_the_worker_as_a_command():
    """``python -m idlmam.tune`` is the worker (``idlmam/tune/__main__.py``), no other module."""
    out = subprocess.run(
        [sys.executable, "-m", "idlmam.tune", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m idlmam.tune ")
    assert "--n-trials N" in out.stdout and out.stderr == ""


def test_a_worker_started_beside_a_dead_worker_s_last_trial_reruns_it(env, tmp_path, monkeypatch):
    """The study's last trial is RUNNING, its worker just killed (its heartbeat still fresh): the
    worker must not call the study full and leave; it waits for the heartbeat to go stale."""
    monkeypatch.setenv("IDL_DATA", env["IDL_DATA"])
    url = f"sqlite:///{tmp_path}/s.db"
    assert main(["--storage", url, "--study", "d", "--n-trials", "0", "--create"]) == 0
    storage = open_storage(url, heartbeat_interval=1)
    study = optuna.load_study(study_name="d", storage=storage)
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna: ask() is not optimize()
        dead = study.ask({"neurons_per_layer": optuna.distributions.IntDistribution(16, 256)})
    storage.record_heartbeat(dead._trial_id)  # its last beat, just now
    opts = ["--heartbeat", "1", "--epochs", "1", "--train-size", "200", "--threads", "1"]
    assert main(["--storage", url, "--study", "d", "--n-trials", "1", *opts]) == 0
    states = [t.state for t in load(url, "d").get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.COMPLETE], states


def test_main_leaves_the_loggers_as_it_found_them_and_drops_only_that_traceback(tmp_path):
    """A trial failed by another worker is one line of ours; Optuna's traceback of it goes,
    any other stays; and main, run inside another program, restores what it changed."""
    import logging
    import sys as _sys

    from idlmam.tune import worker as command
    from idlmam.tune.storage import log

    optuna_log = logging.getLogger("optuna")
    before = (log.propagate, list(log.handlers), list(optuna_log.filters))
    url = f"journal:///{tmp_path}/study.log"
    assert main(["--storage", url, "--study", "s", "--n-trials", "0", "--create"]) == 0
    assert (log.propagate, list(log.handlers), list(optuna_log.filters)) == before

    def record(error):
        try:
            raise error
        except Exception:
            return logging.LogRecord(
                "optuna", logging.WARNING, "", 0, "Trial 1 failed", (), _sys.exc_info()
            )

    elsewhere = record(optuna.exceptions.UpdateFinishedTrialError("Trial#1 has already finished"))
    assert command._no_traceback_for_a_trial_failed_elsewhere(elsewhere)
    assert elsewhere.exc_info is None and elsewhere.getMessage() == "Trial 1 failed"
    mine = record(ValueError("a bug in the objective"))
    assert command._no_traceback_for_a_trial_failed_elsewhere(mine)
    assert mine.exc_info is not None
