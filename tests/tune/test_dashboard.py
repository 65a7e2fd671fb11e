"""``python -m idlmam.tune.dashboard`` (``make dashboard``): a real server, read in a real browser.

A SQLite storage in ``tmp_path`` holds two small studies (a toy objective, the repo's
``create_study`` and ``optimize_until``). The command serves it on a free port of 127.0.0.1 in a
subprocess; headless Chromium (the shared one of ``tests/browser.py``; the test is
skipped where there is none) opens the study list, must find both studies there, follows the
link of one to its page and its trial list, and must find exactly that study's trials. Every
request that leaves 127.0.0.1 is blocked and fails the test, as does any console error: the
dashboard has to work offline. The command's bad input (a study that is not in the storage) is
checked without a browser.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from idlmam.tune import create_study, optimize_until

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard (the tune extra) not installed")

STUDY = "dashboard-demo"
OTHER = "another-study"
N_TRIALS = 4
COMMAND = [sys.executable, "-m", "idlmam.tune.dashboard"]


@pytest.fixture
def storage(tmp_path) -> str:
    """A SQLite storage with ``STUDY`` (``N_TRIALS`` trials) and ``OTHER`` (2 trials)."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    for name, n in ((OTHER, 2), (STUDY, N_TRIALS)):
        study = create_study(url, name, seed=0)
        assert optimize_until(study, lambda t: t.suggest_float("x", -1, 1) ** 2, n) == n
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dashboard(storage, tmp_path):
    """The command serving ``storage`` on a free loopback port; yields (base URL, its stderr)."""
    port = _free_port()
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*COMMAND, "--storage", storage, "--study", STUDY, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the dashboard exited ({proc.returncode}): {log.read_text()}")
            try:
                with urllib.request.urlopen(base + "api/studies", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the dashboard did not answer within 20 s: {log.read_text()}")
            time.sleep(0.2)
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def page(browser):
    """A fresh page of the shared Chromium (tests/browser.py) that blocks (and records) every
    request leaving 127.0.0.1, and records console errors; yields (page, problems)."""
    problems: list[str] = []

    def route(route, request):
        if urlsplit(request.url).hostname == "127.0.0.1":
            return route.continue_()
        problems.append(f"request leaves 127.0.0.1: {request.url}")
        return route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.set_default_timeout(15_000)
        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"),
        )
        page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
        yield page, problems
    finally:
        context.close()


def _browse(page, base: str, log: Path, screenshot: Path) -> list[int]:
    """Study list, study page, trial list; returns the trial numbers listed for ``STUDY``."""
    from playwright.sync_api import expect

    wait = {"timeout": 20_000}  # the first load parses a 4 MB bundle: slow on a busy machine
    page.goto(base + "dashboard")
    # each study is a card titled "<study id>. <name>"
    card = page.get_by_text(re.compile(rf"^\d+\. {re.escape(STUDY)}$"))
    expect(card).to_be_visible(**wait)
    expect(page.get_by_text(re.compile(rf"^\d+\. {re.escape(OTHER)}$"))).to_be_visible(**wait)
    study_id = int(card.inner_text().split(".")[0])
    # the command printed the address of this study's page
    assert f"{base}dashboard/studies/{study_id}" in log.read_text()

    card.click()
    page.wait_for_url(f"**/dashboard/studies/{study_id}")
    expect(page.get_by_text(f"{STUDY} (id={study_id})")).to_be_visible(**wait)
    page.locator(f'a[href="/dashboard/studies/{study_id}/trials"]').click()
    page.wait_for_url(f"**/dashboard/studies/{study_id}/trials")
    expect(page.get_by_text(f"{N_TRIALS} Trials", exact=True)).to_be_visible(**wait)
    listed = page.get_by_text(re.compile(r"^Trial \d+$"))  # the list's items, not the heading
    expect(listed).to_have_count(N_TRIALS, **wait)
    page.screenshot(path=screenshot, full_page=True)
    return sorted(int(text.split()[1]) for text in listed.all_inner_texts())


def test_the_dashboard_lists_the_study_and_its_trials(dashboard, page, tmp_path):
    base, log = dashboard
    page, problems = page
    try:
        numbers = _browse(page, base, log, tmp_path / "trials.png")
    except AssertionError as err:  # what the browser saw explains most failures
        raise AssertionError(f"{err}\nbrowser problems: {problems}") from None
    assert numbers == list(range(N_TRIALS)), numbers
    assert not problems, problems


def test_a_study_that_is_not_there_fails_before_serving(storage):
    # --port 1 would fail to bind if the command got as far as serving
    run = subprocess.run(
        [*COMMAND, "--storage", storage, "--study", "no-such-study", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run
    assert "no study named 'no-such-study'" in run.stderr
    assert f"'{OTHER}'" in run.stderr and f"'{STUDY}'" in run.stderr  # the studies there
    assert "Listening" not in run.stderr + run.stdout


def test_a_mistyped_database_path_is_not_created(tmp_path):
    missing = tmp_path / "typo.db"
    run = subprocess.run(
        [*COMMAND, "--storage", f"sqlite:///{missing}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run
    assert "there is no file" in run.stderr
    assert not missing.exists()


def test_a_bare_path_is_read_by_its_first_bytes(storage, tmp_path):
    from idlmam.tune.dashboard import storage_url

    db = Path(storage.removeprefix("sqlite:///"))
    assert storage_url(str(db)) == storage
    log = tmp_path / "study.log"
    log.write_text("")
    assert storage_url(str(log)) == f"journal:///{log}"
    with pytest.raises(ValueError, match="neither a storage URL nor an existing file"):
        storage_url(str(tmp_path / "missing.log"))
