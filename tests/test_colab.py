"""Colab: the first cells of every notebook install idlmam, and pip can install what they name.

Each chapter's second cell runs, in Colab only, ``pip install "idlmam[tune]==<version>"`` (the
latest release, from PyPI); the notebooks ``make colab`` writes for the ``colab`` branch install
the release or the commit the site was built from (``idlmam[tune] @ git+<repository>@<sha>``),
and the site's launch button opens them from the repository in ``_config.yml``. These tests
check that the line is a valid pip requirement for an extra the package has, and that pip builds
the package from a git URL of this repository at a commit (a local clone stands in for GitHub,
which this machine cannot reach).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
NOTEBOOKS = sorted(
    p.with_suffix(".ipynb")
    for p in (ROOT / "book").rglob("*.py")
    if "jupytext" in p.read_text()[:2000]
)
REQUIREMENT = re.compile(r"""["'](idlmam\[[^"']*)["']""")


def install_requirement(notebook: Path) -> Requirement:
    """The pip requirement in the notebook's setup cell (its second cell)."""
    setup = nbformat.read(notebook, as_version=4).cells[1]
    found = REQUIREMENT.findall(setup.source)
    assert len(found) == 1, (
        f"{notebook.name}: expected one idlmam[...] requirement in the setup cell"
    )
    return Requirement(found[0])


def test_config_names_a_github_repository_and_its_main_branch():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL), REPO_URL
    assert CONFIG["repository"].get("branch", "main") == "main"
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_setup_cell_installs_a_release_with_extras_the_package_has(notebook):
    req = install_requirement(notebook)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert req.name == "idlmam" and req.url is None
    assert str(req.specifier) == f"=={project['version']}", f"{notebook.name}: {req}"
    assert req.extras <= set(extras), f"{notebook.name}: unknown extras {req.extras - set(extras)}"


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout",
)
def test_pip_builds_the_package_from_a_git_url_at_a_commit(tmp_path):
    """What the colab branch installs between releases, with this checkout in place of GitHub."""
    req = install_requirement(NOTEBOOKS[0])
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    local = f"{req.name}[{','.join(sorted(req.extras))}] @ git+file://{ROOT}@{head}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            local,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("idlmam-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    # every subpackage ships: a wheel without idlmam/train/ would import nothing in Colab
    for module in (
        "idlmam/__init__.py",
        "idlmam/train/loop.py",
        "idlmam/train/stacked.py",
        "idlmam/tune/__init__.py",
        "idlmam/tune/worker.py",
    ):
        assert module in names, module
    for extra in req.extras:
        assert f"Provides-Extra: {extra}" in metadata
