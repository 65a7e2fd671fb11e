"""The quick build of the book that the site and Colab tests share, built once per session.

``site`` is the built ``html/`` folder: with ``IDL_SITE=<folder>`` the site that is already
there (``make site-check`` passes ``_build/html`` from ``make book``), otherwise a fresh
``jupyter-book build`` on the quick budget into ``_build/site-quick/`` (a few minutes; locked
against a concurrent run in the same checkout). ``executed_build`` is the folder above it, which
holds the executed notebooks (``jupyter_execute/``) that ``tools/colab.py`` reads.

``tests/conftest.py`` registers this module as a plugin, so any test can ask for either fixture;
within one session both test files share the one build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["BUILD_OUT", "build_site", "executed_build", "site"]

ROOT = Path(__file__).resolve().parents[1]
BUILD_OUT = ROOT / "_build" / "site-quick"  # jupyter-book writes BUILD_OUT/_build/html


def build_site() -> Path:
    """The quick build as `make book` makes it: the pages executed into the build's cache two at
    a time (``tools/execute_pages.py``), then ``jupyter-book build`` with -W, which must find
    every page in that cache. Returns html/."""
    shutil.rmtree(BUILD_OUT, ignore_errors=True)
    BUILD_OUT.mkdir(parents=True)
    env = dict(os.environ, IDL_BUDGET="quick", TQDM_DISABLE="1", PYTHONHASHSEED="0")
    env.setdefault("IDL_DATA", str(ROOT / "data"))  # notebooks run in book/: no relative ./data
    log = BUILD_OUT / "build.log"
    cache = BUILD_OUT / "_build" / ".jupyter_cache"
    execute = [sys.executable, str(ROOT / "tools" / "execute_pages.py"), "--cache", str(cache)]
    with (BUILD_OUT / "execute.log").open("w") as out:
        done = subprocess.run(
            execute, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600
        )
    if done.returncode != 0:
        pytest.fail(
            f"executing the pages failed (exit {done.returncode}); end of "
            f"{BUILD_OUT / 'execute.log'}:\n" + (BUILD_OUT / "execute.log").read_text()[-4000:],
            pytrace=False,
        )
    cmd = [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(ROOT),
        "--path-output",
        str(BUILD_OUT),
        "-W",
        "--keep-going",
    ]
    with log.open("w") as out:
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600
        )
    if done.returncode != 0:
        pytest.fail(
            f"the quick build failed (exit {done.returncode}); end of {log}:\n"
            + log.read_text()[-4000:],
            pytrace=False,
        )
    executed = [line for line in log.read_text().splitlines() if "Executing notebook" in line]
    if executed:  # the cache missed a page: execute_pages.py reads it unlike MyST-NB does
        pytest.fail(
            "jupyter-book executed pages that tools/execute_pages.py had executed:\n"
            + "\n".join(executed),
            pytrace=False,
        )
    return BUILD_OUT / "_build" / "html"


@pytest.fixture(scope="session")
def site():
    """The built html folder: IDL_SITE when set, else a fresh quick build (locked against a
    concurrent run in the same checkout)."""
    if os.environ.get("IDL_SITE"):
        folder = Path(os.environ["IDL_SITE"]).resolve()
        assert (folder / "index.html").exists(), f"IDL_SITE={folder} holds no built site"
        yield folder
        return
    # imported here, not at the top: this module is a plugin of every test session, and fcntl
    # exists on Linux and macOS only (on Windows the whole suite would fail to start)
    fcntl = pytest.importorskip(
        "fcntl",
        reason="building the site here needs fcntl's file lock (Linux, macOS); "
        "set IDL_SITE to a built html/ folder to test that instead",
    )
    (ROOT / "_build").mkdir(exist_ok=True)
    with open(ROOT / "_build" / "site-quick.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield build_site()


@pytest.fixture(scope="session")
def executed_build(site) -> Path:
    """The build folder above ``site``: its ``jupyter_execute/`` holds the executed notebooks."""
    build = site.parent
    assert (build / "jupyter_execute").is_dir(), f"{build} holds no jupyter_execute/ folder"
    return build
