"""A release is one version everywhere, and nothing of the package changes unsaid after it.

Every notebook's setup cell installs ``idlmam[tune]==<version>`` from PyPI in Colab: the latest
release, never the moving ``main``. ``tools/release.py`` holds the checks the ``release``
workflow and ``make release-check`` run; these tests run them on the repository and show, on
a copy, that each one fails when it should. To release, see CONTRIBUTING.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("release", ROOT / "tools/release.py")
release = importlib.util.module_from_spec(spec)
spec.loader.exec_module(release)

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
HAS_GIT = shutil.which("git") is not None and (ROOT / ".git").exists()


def test_the_version_agrees_everywhere():
    problems = release.agreement_problems(ROOT)
    assert not problems, "\n".join(problems)


@pytest.fixture
def copy(tmp_path):
    """The files the release checks read, copied into tmp_path."""
    for name in ("pyproject.toml", "CITATION.cff", "CHANGELOG.md", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build"))
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} has no {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("CITATION.cff", f"version: {VERSION}", "version: 9.9.9", "CITATION.cff says version"),
        ("CHANGELOG.md", f"## [{VERSION}] - ", "## [9.9.9] - ", "no '## ["),
        ("CHANGELOG.md", f"[{VERSION}]: {REPO_URL}", "[9.9.9]: x", "link"),
        ("README.md", f"idlmam[tune]=={VERSION}", "idlmam[tune]==9.9.9", "README.md"),
        (
            "book/02_schedules.py",
            f"idlmam[tune]=={VERSION}",
            "idlmam[tune]==9.9.9",
            "02_schedules.py",
        ),
        (
            "book/exercises/ex1_plateau.ipynb",
            f"idlmam[tune]=={VERSION}",
            f"idlmam[tune] @ git+{REPO_URL}",
            "ex1",
        ),
    ],
)
def test_the_agreement_check_fails_on_each_disagreement(copy, file, old, new, message):
    assert release.agreement_problems(copy) == []
    _edit(copy / file, old, new)
    problems = release.agreement_problems(copy)
    assert len(problems) == 1 and message in problems[0], problems


def _unreleased(root: Path, notes: str) -> None:
    """Make the changelog's [Unreleased] section of ``root`` hold ``notes`` (empty: none)."""
    path = root / "CHANGELOG.md"
    text = path.read_text()
    now = release.changelog_section(text, "Unreleased")
    old = f"## [Unreleased]\n\n{now}\n" if now else "## [Unreleased]\n"
    path.write_text(
        text.replace(old, f"## [Unreleased]\n\n{notes}\n" if notes else "## [Unreleased]\n", 1)
    )


def test_the_tag_must_be_v_and_the_version_and_nothing_left_unreleased(copy):
    _unreleased(copy, "")  # as at a release commit
    assert release.agreement_problems(copy, tag=f"v{VERSION}") == []
    (problem,) = release.agreement_problems(copy, tag="v0.0.0")
    assert problem == f"the tag v0.0.0 is not v{VERSION}, pyproject.toml's version"
    _unreleased(copy, "- Not released yet.")
    (problem,) = release.agreement_problems(copy, tag=f"v{VERSION}")
    assert "[Unreleased] section is not empty" in problem
    assert release.agreement_problems(copy) == []  # between releases, notes are expected


def test_bump_sets_the_version_everywhere_and_releases_the_notes(copy):
    before = release.changelog_section((copy / "CHANGELOG.md").read_text(), "Unreleased")
    _edit(copy / "CHANGELOG.md", "## [Unreleased]\n", "## [Unreleased]\n\n- A fix.\n")
    major, minor, patch = map(int, VERSION.split("."))
    new = f"{major}.{minor}.{patch + 1}"
    release.bump(new, "2031-01-02", copy)
    assert release.agreement_problems(copy) == []
    changelog = (copy / "CHANGELOG.md").read_text()
    assert release.changelog_section(changelog, "Unreleased") == ""
    assert release.changelog_section(changelog, new) == "\n\n".join(
        filter(None, ["- A fix.", before])
    )
    assert f"## [{new}] - 2031-01-02" in changelog and f"compare/v{new}...HEAD" in changelog
    assert 'date-released: "2031-01-02"' in (copy / "CITATION.cff").read_text()
    with pytest.raises(release.ReleaseError, match="empty: nothing to release"):
        release.bump(f"{major}.{minor}.{patch + 2}", "2031-01-03", copy)
    with pytest.raises(release.ReleaseError, match="not an X.Y.Z version above"):
        release.bump(VERSION, "2031-01-03", copy)


def test_the_notes_are_the_versions_section():
    notes = release.changelog_section((ROOT / "CHANGELOG.md").read_text(), VERSION)
    headings = [line for line in notes.splitlines() if line.startswith("## ")]
    assert notes and not headings and f"[{VERSION}]:" not in notes
    with pytest.raises(release.ReleaseError, match=r"no '## \[0.0.0\]' section"):
        release.changelog_section("## [1.0.0] - 2020-01-01\n\n- x\n", "0.0.0")


# ----------------------------------------------------------------- nothing changes unsaid


@pytest.mark.skipif(not HAS_GIT, reason="needs git and a git checkout")
def test_the_package_has_not_changed_since_the_release_without_a_changelog_line():
    problems = release.unreleased_problems(ROOT)
    assert not problems, "\n".join(problems)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_unreleased_check_fails_when_the_package_changes_without_a_line(tmp_path):
    (tmp_path / "idlmam").mkdir()
    (tmp_path / "idlmam" / "a.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "idlmam"\nversion = "1.0.0"\n')
    (tmp_path / "CHANGELOG.md").write_text("## [Unreleased]\n\n## [1.0.0] - 2020-01-01\n\n- a\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "release 1.0.0")
    assert release.unreleased_problems(tmp_path) == []
    (tmp_path / "idlmam" / "a.py").write_text("x = 2\n")  # uncommitted counts too
    (problem,) = release.unreleased_problems(tmp_path)
    assert "idlmam/ changed since the release commit" in problem and "idlmam/a.py" in problem
    _git(tmp_path, "commit", "-qam", "change")
    assert len(release.unreleased_problems(tmp_path)) == 1
    _edit(tmp_path / "CHANGELOG.md", "## [Unreleased]\n", "## [Unreleased]\n\n- x is 2.\n")
    assert release.unreleased_problems(tmp_path) == []


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
