"""A release is one version everywhere: pyproject.toml, the notebooks' install pin, the changelog.

Every notebook's setup cell installs ``idlmam[tune] @ git+<repository>@v<version>`` in Colab:
the tag of a release, never the moving ``main``, so that a notebook runs the package it was
written for. These tests fail when a notebook (.py or .ipynb), the README's Colab line or
CHANGELOG.md is not at the version of pyproject.toml. To release, see CONTRIBUTING.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
SOURCES = sorted(
    p for p in (ROOT / "book").rglob("*.py") if "jupytext" in p.read_text(encoding="utf-8")[:2000]
)
NOTEBOOKS = SOURCES + [p.with_suffix(".ipynb") for p in SOURCES]
# a git URL of this repository anywhere in a text, with the ref that follows it, if any
GIT_URL = re.compile(re.escape("git+" + REPO_URL) + r"(?:\.git)?(@[^\s\"'\\,)]*)?")


def _refs(text: str) -> list[str]:
    """The refs (`@v0.1.0`, or '' for none) of every git URL of this repository in text."""
    return [m.group(1) or "" for m in GIT_URL.finditer(text)]


def test_the_version_is_a_release_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), f"pyproject.toml's version {VERSION!r}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_setup_cell_installs_the_release_tag(notebook):
    nb = (
        jupytext.read(notebook)
        if notebook.suffix == ".py"
        else nbformat.read(notebook, as_version=4)
    )
    setup = nb.cells[1].source
    pins = re.findall(r"""["']([^"']*@\s*git\+[^"']*)["']""", setup)
    assert len(pins) == 1, f"{notebook.name}: expected one git requirement in the setup cell"
    requirement = Requirement(pins[0])
    assert requirement.url == f"git+{REPO_URL}@v{VERSION}", (
        f"{notebook.name} installs {requirement.url}; the release is v{VERSION} "
        f"(pyproject.toml): pin git+{REPO_URL}@v{VERSION}"
    )
    # nowhere else in the notebook a URL of this repository at another ref, or at none
    text = notebook.read_text(encoding="utf-8")
    assert set(_refs(text)) == {f"@v{VERSION}"}, (
        f"{notebook.name}: git URLs of this repository at {sorted(set(_refs(text)))}, "
        f"not only @v{VERSION}"
    )


def test_the_readme_gives_the_same_install_line():
    refs = _refs((ROOT / "README.md").read_text(encoding="utf-8"))
    assert refs, "README.md shows no Colab install line (git+ URL of this repository)"
    assert set(refs) == {f"@v{VERSION}"}, f"README.md pins {sorted(set(refs))}, not @v{VERSION}"


def test_the_changelog_has_an_entry_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    heading = re.compile(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", re.M)
    assert heading.search(changelog), (
        f"CHANGELOG.md has no '## [{VERSION}] - YYYY-MM-DD' section for pyproject's version"
    )
    link = rf"^\[{re.escape(VERSION)}\]: {re.escape(REPO_URL)}/releases/tag/v{re.escape(VERSION)}$"
    assert re.search(link, changelog, re.M), f"CHANGELOG.md: no link for [{VERSION}] at the bottom"


def test_the_installed_package_reports_the_version():
    import idlmam

    assert idlmam.__version__ == VERSION, (
        f"idlmam.__version__ is {idlmam.__version__}, pyproject.toml says {VERSION}: "
        "reinstall (`make venv`, or `pip install -e .`)"
    )


def test_the_citation_names_the_version_and_the_repository():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert str(citation["version"]) == VERSION, f"CITATION.cff says {citation['version']}"
    assert citation["repository-code"].rstrip("/") == REPO_URL
