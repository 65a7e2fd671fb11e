"""A throwaway PostgreSQL server for tests, and the ``postgres_url`` fixture built on it.

The server is made by the tests themselves: ``initdb`` into a temporary folder, ``pg_ctl start`` on
a free loopback port with the socket in that folder, trust authentication (loopback only), and
no fsync (the data is thrown away). One server serves the whole pytest session; each test gets
a database of its own. Root may not run ``initdb``, so as root the server runs as the
``postgres`` user (``runuser``).

Tests that use it are skipped only when there is no ``pg_ctl`` at all (PostgreSQL is not
installed); any other problem is an error, with the server's log in the message.

``tests/conftest.py`` registers this module as a plugin, so any test can ask for
``postgres_url``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_pg_bin", "postgres_url"]


def find_pg_bin() -> Path | None:
    """The folder of ``pg_ctl`` and ``initdb``: on the PATH, else Debian's newest, else ``None``."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server in a temporary folder, on ``127.0.0.1:port``.

    Example:
        >>> server = PostgresServer(find_pg_bin()).start()   # doctest: +SKIP
        >>> url = server.create_database("t1")               # doctest: +SKIP
        >>> server.stop()                                    # doctest: +SKIP
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = Path(bin_dir)
        self.root = Path(tempfile.mkdtemp(prefix="idlmam-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port: int | None = None
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)

    def _failed(self, what: str, result: subprocess.CompletedProcess) -> RuntimeError:
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        return RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}\n{log}")

    def start(self) -> PostgresServer:
        if self.as_postgres:
            shutil.chown(self.root, user="postgres", group="postgres")
        result = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        if result.returncode != 0:
            raise self._failed("initdb", result)
        for _ in range(3):  # the free port can be taken between choosing and binding it
            self.port = _free_port()
            result = self._pg_ctl_start()
            if result.returncode == 0:
                return self
        raise self._failed("pg_ctl start", result)

    def _pg_ctl_start(self) -> subprocess.CompletedProcess:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        return self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def shut_down(self) -> None:
        """Stop the server with a fast shutdown (sessions ended, transactions rolled back),
        keeping its data for :meth:`start_again`."""
        result = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if result.returncode != 0:
            raise self._failed("pg_ctl stop", result)

    def start_again(self) -> None:
        """Start the server again on its port after :meth:`shut_down`, once it accepts
        connections."""
        result = self._pg_ctl_start()
        if result.returncode != 0:
            raise self._failed("pg_ctl start", result)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def processes(self) -> list[int]:
        """The pids of the postmaster and of every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [postmaster, *children]

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


_SERVER: PostgresServer | None = None


def _session_server(config: pytest.Config) -> PostgresServer:
    """One server per pytest session, stopped when the session ends."""
    global _SERVER
    if _SERVER is None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL is not installed (no pg_ctl): apt-get install postgresql")
        server = PostgresServer(bin_dir)
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        _SERVER = server

        def stop() -> None:
            global _SERVER
            server.stop()
            _SERVER = None

        config.add_cleanup(stop)
    return _SERVER


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    """The SQLAlchemy URL of a fresh, empty database on the session's throwaway server."""
    server = _session_server(request.config)
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")
