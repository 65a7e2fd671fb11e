"""The headless Chromium every browser test shares: one Playwright, one browser, per session.

Playwright's sync API refuses a second ``sync_playwright()`` while one is running in the same
process, so the site test and the dashboard test cannot each start their own: both ask for the
``browser`` fixture here (registered in ``tests/conftest.py``) and open their own contexts.
Skipped, with the way to get one, where no Chromium can be found.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["BROWSER_ARGS", "browser", "find_chromium"]

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """``CHROMIUM`` if set, else the first Chromium or Chrome on the ``PATH``."""
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


@pytest.fixture(scope="session")
def browser():
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(
            "no Chromium here: `make system-deps` installs Debian's chromium as root "
            "(or set CHROMIUM=/path/to/chrome)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        yield launched
        launched.close()
