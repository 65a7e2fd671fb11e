"""Fixtures of the fault suite: a PostgreSQL server of its own (restarted and paused by the tests,
so never the session's shared one), the workers' environment, and a record of what each fault
cost.

(pytest finds them here, in the folder's conftest.py, for every test module beside it.)
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from pg_server import PostgresServer, find_pg_bin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: injects a fault into real processes (tests/faults)")


@pytest.fixture(scope="module")
def pg_server():
    """A throwaway PostgreSQL server for one test module (skipped where there is no pg_ctl)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no pg_ctl): apt-get install postgresql")
    server = PostgresServer(bin_dir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a fresh database on the module's server."""
    return pg_server.create_database(f"f_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def env(fashion_root) -> dict:
    """The environment of a worker process: the test's data, one torch thread, no progress bars."""
    return dict(
        os.environ,
        IDL_DATA=str(Path(fashion_root).resolve()),
        OMP_NUM_THREADS="1",
        TQDM_DISABLE="1",
    )


@pytest.fixture
def record(request):
    """``record(**figures)``: what a fault cost, printed, and appended as one JSON line to the
    file ``IDL_FAULT_REPORT`` names (when set; the measurements page is made from it)."""

    def write(**figures) -> None:
        figures = {"test": request.node.name, **figures}
        print(json.dumps(figures))
        target = os.environ.get("IDL_FAULT_REPORT")
        if target:
            with open(target, "a") as fh:
                fh.write(json.dumps(figures) + "\n")

    return write
