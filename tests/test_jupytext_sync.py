"""`jupytext --sync` on a fresh clone must leave every page's .py and .ipynb as they are.

A contributor who runs `jupytext --sync book/*.py` (or opens a page in Jupyter) gets whatever
the pair's modification times say: git writes files in no promised order, so in a clone the
.ipynb may be older, newer or as old as its .py, and jupytext then reads the cells from the
newer file and rewrites the other. The pair is stable only if the .py is exactly the text
jupytext writes from the .ipynb: the header of `jupytext.toml` (no jupytext version in it),
cell-metadata keys in alphabetical order (`mystnb` before `tags`), non-ASCII characters in cell
metadata as `\\uXXXX` escapes. These tests copy the pages into a temporary folder with each
order of modification times, run the real command there and fail on any file it changed.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    p for p in (ROOT / "book").rglob("*.py") if "jupytext" in p.read_text(encoding="utf-8")[:2000]
)
FIX = (
    "make the .py what jupytext writes from the .ipynb: after `make sync NB={py}`, run "
    "`.venv/bin/jupytext --to py:percent {ipynb}` (see CONTRIBUTING.md)"
)


def _copy_pages(dest: Path, order: str) -> list[Path]:
    """Copy every pair (and jupytext.toml) under dest with the modification times of `order`.

    order: "same" (both at one time, as a fast checkout gives), "ipynb-newer" or "py-newer".
    Returns the copied .py paths.
    """
    if (ROOT / "jupytext.toml").exists():
        shutil.copy2(ROOT / "jupytext.toml", dest / "jupytext.toml")
    base = 1_700_000_000
    copied = []
    for source in SOURCES:
        rel = source.relative_to(ROOT)
        py, ipynb = dest / rel, dest / rel.with_suffix(".ipynb")
        py.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, py)
        shutil.copyfile(source.with_suffix(".ipynb"), ipynb)
        py_time = base + (5 if order == "py-newer" else 0)
        ipynb_time = base + (5 if order == "ipynb-newer" else 0)
        os.utime(py, (py_time, py_time))
        os.utime(ipynb, (ipynb_time, ipynb_time))
        copied.append(py)
    return copied


@pytest.mark.parametrize(
    ("order", "named"),
    [("same", ".py"), ("ipynb-newer", ".py"), ("py-newer", ".py"), ("ipynb-newer", ".ipynb")],
    ids=["same-mtime", "ipynb-newer", "py-newer", "ipynb-newer-named-ipynb"],
)
def test_sync_changes_no_file(tmp_path, order, named):
    assert SOURCES, "no jupytext page found under book/"
    work = tmp_path / "repo"
    work.mkdir()
    pages = _copy_pages(work, order)
    files = [p for py in pages for p in (py, py.with_suffix(".ipynb"))]
    before = {p: p.read_bytes() for p in files}
    # no user-level jupytext configuration: the repository's jupytext.toml alone decides
    config_home = tmp_path / "config"
    config_home.mkdir()
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(config_home),
        "XDG_CONFIG_DIRS": str(config_home),
        "JUPYTER_CONFIG_DIR": str(config_home),
    }
    done = subprocess.run(
        [sys.executable, "-m", "jupytext", "--sync", "-q"]
        + [str(p.with_suffix(named).relative_to(work)) for p in pages],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    changed = [p for p in files if p.read_bytes() != before[p]]
    report = []
    for path in changed:
        old = before[path].decode("utf-8").splitlines()
        new = path.read_text(encoding="utf-8").splitlines()
        diff = difflib.unified_diff(
            old, new, "committed", "after jupytext --sync", n=0, lineterm=""
        )
        rel = path.relative_to(work)
        report.append(f"{rel} changed:\n" + "\n".join(line[:200] for line in list(diff)[:12]))
        py = rel.with_suffix(".py")
        report.append("  " + FIX.format(py=py, ipynb=py.with_suffix(".ipynb")))
    assert not changed, "\n".join(report)
