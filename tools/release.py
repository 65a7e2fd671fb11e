"""The checks a release must pass, for `make release-check` and the `release` workflow.

A release is a version ``X.Y.Z`` in ``pyproject.toml`` that has no git tag ``vX.Y.Z`` yet: the
``release`` workflow finds one on ``main`` after the tests passed, runs these checks, publishes
the wheel and the sdist to PyPI, then makes the tag and the GitHub Release. Nobody tags by hand.

Subcommands (``python tools/release.py <command> --help``):

* ``check [--tag vX.Y.Z]``: the version is the same everywhere (``pyproject.toml``,
  ``CITATION.cff``, a dated ``CHANGELOG.md`` section with its link, every notebook's install
  pin, the README's Colab line, the tag if given); with a tag, the ``[Unreleased]`` section is
  empty (what is released is listed under its version);
* ``unreleased``: when ``idlmam/`` changed since the commit that set the version,
  ``CHANGELOG.md``'s ``[Unreleased]`` section says how;
* ``bump X.Y.Z``: sets the version everywhere ``check`` looks, and moves the ``[Unreleased]``
  notes under a dated ``[X.Y.Z]`` section (no notebook is executed again);
* ``notes [VERSION]``: prints the CHANGELOG section of a version (the GitHub Release's text);
* ``dist --out DIR``: builds the sdist and the wheel, runs ``twine check`` on them and checks
  that the wheel holds every module of ``idlmam/``; prints the wheel's files;
* ``smoke WHEEL``: installs the wheel into a new virtual environment outside the repository and
  executes one page on the ``quick`` budget with it.

Exit status 1 with one line per problem when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
VERSION_LINE = r"^version = "  # how pyproject.toml sets the version (git log -G)
SMOKE_PAGE = "book/01_two_parts.ipynb"


class ReleaseError(RuntimeError):
    """A release check failed; the message says what and how to fix it."""


def version(root: Path = ROOT) -> str:
    """The version in ``root/pyproject.toml``."""
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def pin(version: str) -> str:
    """The requirement a notebook of release ``version`` installs in Colab."""
    return f"idlmam[tune]=={version}"


def changelog_section(text: str, name: str) -> str:
    """The body of the ``## [name]`` section of a changelog, up to the next ``## `` heading.

    Raises:
        ReleaseError: the changelog has no such section.
    """
    match = re.search(
        rf"^## \[{re.escape(name)}\][^\n]*\n(.*?)(?=^## |^\[[^\]]+\]: |\Z)", text, re.M | re.S
    )
    if not match:
        raise ReleaseError(f"CHANGELOG.md has no '## [{name}]' section")
    return match.group(1).strip()


def _notebook_pins(root: Path) -> dict[str, list[str]]:
    """The quoted idlmam requirements of each notebook's setup cell, by path."""
    import nbformat

    found = {}
    for source in sorted((root / "book").rglob("*.py")):
        if "jupytext" not in source.read_text(encoding="utf-8")[:2000]:
            continue
        notebook = source.with_suffix(".ipynb")
        for path in (source, notebook):
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".ipynb":
                text = nbformat.reads(text, as_version=4).cells[1].source
            found[str(path.relative_to(root))] = re.findall(r"""["'](idlmam\[[^"']*)["']""", text)
    return found


def agreement_problems(root: Path = ROOT, tag: str | None = None) -> list[str]:
    """How the version's appearances disagree with ``pyproject.toml`` (empty when they agree)."""
    import yaml

    current = version(root)
    problems = []
    if not re.fullmatch(r"\d+\.\d+\.\d+", current):
        problems.append(f"pyproject.toml's version {current!r} is not X.Y.Z")
    if tag is not None and tag != f"v{current}":
        problems.append(f"the tag {tag} is not v{current}, pyproject.toml's version")
    citation = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    if str(citation.get("version")) != current:
        problems.append(f"CITATION.cff says version {citation.get('version')}, not {current}")
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    if not re.search(rf"^## \[{re.escape(current)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M):
        problems.append(f"CHANGELOG.md has no '## [{current}] - YYYY-MM-DD' section")
    elif not changelog_section(changelog, current):
        problems.append(f"CHANGELOG.md's [{current}] section is empty")
    if tag is not None and changelog_section(changelog, "Unreleased"):
        problems.append(
            f"CHANGELOG.md's [Unreleased] section is not empty: {tag} would ship changes its "
            f"[{current}] section does not list (python tools/release.py bump X.Y.Z moves them)"
        )
    if not re.search(
        rf"^\[{re.escape(current)}\]: \S+/releases/tag/v{re.escape(current)}$", changelog, re.M
    ):
        problems.append(
            f"CHANGELOG.md has no '[{current}]: <repository>/releases/tag/v{current}' link"
        )
    for path, pins in _notebook_pins(root).items():
        if pins != [pin(current)]:
            problems.append(f"{path} installs {pins}, not ['{pin(current)}']")
    readme = (root / "README.md").read_text(encoding="utf-8")
    readme_pins = set(re.findall(r"idlmam\[tune\]==[\w.]+", readme))
    if readme_pins != {pin(current)}:
        problems.append(f"README.md's Colab line pins {sorted(readme_pins)}, not {pin(current)}")
    return problems


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise ReleaseError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def release_commit(root: Path = ROOT) -> str:
    """The last commit that changed the ``version = `` line of ``pyproject.toml``.

    Raises:
        ReleaseError: ``root`` is not a git checkout with that history (a shallow clone: fetch
            the whole history, ``actions/checkout`` with ``fetch-depth: 0``).
    """
    if _git(root, "rev-parse", "--is-shallow-repository") == "true":
        raise ReleaseError(
            "a shallow clone: the release commit is not in it (git fetch --unshallow)"
        )
    commit = _git(root, "log", "-1", "--format=%H", "-G", VERSION_LINE, "--", "pyproject.toml")
    if not commit:
        raise ReleaseError("no commit of pyproject.toml sets a version")
    return commit


def unreleased_problems(root: Path = ROOT) -> list[str]:
    """A problem when ``idlmam/`` differs from the release commit (work tree included) while
    ``CHANGELOG.md``'s ``[Unreleased]`` section is empty."""
    commit = release_commit(root)
    changed = _git(root, "diff", "--name-only", commit, "--", "idlmam")
    section = changelog_section((root / "CHANGELOG.md").read_text(encoding="utf-8"), "Unreleased")
    if changed and not section:
        files = changed.splitlines()
        return [
            f"idlmam/ changed since the release commit {commit[:10]} of {version(root)} "
            f"({len(files)} files: {', '.join(files[:3])}{', ...' if len(files) > 3 else ''}) "
            "and CHANGELOG.md's [Unreleased] section is empty: say what changed there, "
            "or make a release"
        ]
    return []


def bump(new: str, date: str, root: Path = ROOT) -> None:
    """Make ``new`` the version of ``root``: pyproject.toml, CITATION.cff, the notebooks' pins
    (``.py`` and ``.ipynb``, outputs untouched), the README, and the changelog, whose
    ``[Unreleased]`` notes become the dated ``[new]`` section.

    Raises:
        ReleaseError: ``new`` is not X.Y.Z, not above the current version, or there are no
            ``[Unreleased]`` notes to release.
    """
    from packaging.version import Version

    old = version(root)
    if not re.fullmatch(r"\d+\.\d+\.\d+", new) or Version(new) <= Version(old):
        raise ReleaseError(f"{new!r} is not an X.Y.Z version above {old}")
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    notes = changelog_section(changelog, "Unreleased")
    if not notes:
        raise ReleaseError("CHANGELOG.md's [Unreleased] section is empty: nothing to release")
    changelog = changelog.replace(
        f"## [Unreleased]\n\n{notes}\n", f"## [Unreleased]\n\n## [{new}] - {date}\n\n{notes}\n", 1
    )
    url = re.search(r"^\[Unreleased\]: (\S+)/compare/v[\w.]+\.\.\.HEAD$", changelog, re.M)
    if not url:
        raise ReleaseError(
            "CHANGELOG.md has no '[Unreleased]: <repository>/compare/vX.Y.Z...HEAD' link"
        )
    changelog = changelog.replace(
        url.group(0),
        f"[Unreleased]: {url.group(1)}/compare/v{new}...HEAD\n[{new}]: {url.group(1)}/releases/tag/v{new}",
    )
    _replace(root / "CHANGELOG.md", changelog)
    _replace(
        root / "pyproject.toml",
        re.sub(
            r'^version = "[^"]*"',
            f'version = "{new}"',
            (root / "pyproject.toml").read_text(),
            count=1,
            flags=re.M,
        ),
    )
    citation = (root / "CITATION.cff").read_text(encoding="utf-8")
    citation = re.sub(r"^version: .*$", f"version: {new}", citation, count=1, flags=re.M)
    citation = re.sub(
        r"^date-released: .*$", f'date-released: "{date}"', citation, count=1, flags=re.M
    )
    _replace(root / "CITATION.cff", citation)
    paths = [root / path for path in _notebook_pins(root)] + [root / "README.md"]
    for path in paths:
        _replace(path, path.read_text(encoding="utf-8").replace(pin(old), pin(new)))


def _replace(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------- distributions


def wheel_problems(wheel: Path, root: Path = ROOT) -> list[str]:
    """Modules of ``root/idlmam`` missing from ``wheel``, and a version other than pyproject's."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = {str(p.relative_to(root)) for p in (root / "idlmam").rglob("*.py")}
    problems = [f"{wheel.name} lacks {name}" for name in sorted(expected - names)]
    if f"idlmam-{version(root)}.dist-info/METADATA" not in names:
        problems.append(f"{wheel.name} is not version {version(root)}")
    return problems


def build_dist(out: Path, root: Path = ROOT) -> Path:
    """Build the sdist and the wheel into ``out``, ``twine check`` them; returns the wheel."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("idlmam-*"):
        old.unlink()
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(root)], check=True)
    dists = sorted(out.glob("idlmam-*"))
    subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)], check=True
    )
    (wheel,) = out.glob("idlmam-*.whl")
    return wheel


def _venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def smoke(wheel: Path, page: str = SMOKE_PAGE, root: Path = ROOT) -> None:
    """Install ``wheel`` into a new virtual environment outside ``root`` and execute ``page``.

    torch and torchvision come from ``constraints.txt`` (from ``$TORCH_INDEX`` when set), the
    package from the wheel alone; the page runs from a temporary folder on the ``quick`` budget
    on the CPU, so it can import nothing from the repository.

    Raises:
        ReleaseError: the installed package is not the wheel's, or the page failed.
    """
    constraints = str(root / "constraints.txt")
    with tempfile.TemporaryDirectory(prefix="idlmam-smoke-") as tmp:
        tmp = Path(tmp)
        python = _venv(tmp / "venv")
        pip = [str(python), "-m", "pip", "install", "-q", "-c", constraints]
        index = os.environ.get("TORCH_INDEX")
        subprocess.run(
            [*pip, *(["--index-url", index] if index else []), "torch", "torchvision"], check=True
        )
        subprocess.run(
            [*pip, f"idlmam[tune] @ {wheel.resolve().as_uri()}", "ipykernel", "nbclient"],
            check=True,
        )
        work = tmp / "page"
        work.mkdir()
        shutil.copy(root / page, work / Path(page).name)
        where = subprocess.run(
            [
                str(python),
                "-c",
                "import idlmam, json; print(json.dumps([idlmam.__file__, idlmam.__version__]))",
            ],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        )
        path, installed = json.loads(where.stdout)
        print(f"idlmam {installed} imported from {path}")
        if not path.startswith(str(tmp / "venv")) or installed != version(root):
            raise ReleaseError(
                f"the page would import idlmam {installed} from {path}, not the wheel's {version(root)}"
            )
        env = dict(
            os.environ,
            IDL_BUDGET="quick",
            IDL_DEVICE="cpu",
            IDL_DATA=os.environ.get("IDL_DATA", str(root / "data")),
        )
        run = (
            "import sys, nbformat; from nbclient import NotebookClient; "
            "nb = nbformat.read(sys.argv[1], as_version=4); "
            "client = NotebookClient(nb, timeout=1800, kernel_name='python3', "
            "resources={'metadata': {'path': sys.argv[2]}}); client.execute(); "
            "print(sum(len(c.get('outputs', [])) for c in nb.cells), 'outputs')"
        )
        done = subprocess.run(
            [str(python), "-c", run, str(work / Path(page).name), str(work)], cwd=work, env=env
        )
        if done.returncode:
            raise ReleaseError(f"{page} failed with the installed wheel (above)")
        print(f"{page} executed on quick with the wheel {wheel.name}")


# -------------------------------------------------------------------------------- commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/release.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="the version agrees everywhere")
    check.add_argument("--tag", help="the tag the release will have (vX.Y.Z)")
    commands.add_parser("unreleased", help="idlmam/ changes since the release are in the changelog")
    up = commands.add_parser("bump", help="set a new version everywhere, release the notes")
    up.add_argument("new", help="X.Y.Z")
    up.add_argument("--date", default=None, help="YYYY-MM-DD (default: today, UTC)")
    notes = commands.add_parser("notes", help="print a version's CHANGELOG section")
    notes.add_argument("version", nargs="?", help="default: pyproject.toml's")
    dist = commands.add_parser("dist", help="build, twine check and list the distributions")
    dist.add_argument("--out", type=Path, default=ROOT / "dist")
    run = commands.add_parser("smoke", help="install a wheel outside the repository, run a page")
    run.add_argument("wheel", type=Path)
    run.add_argument("--page", default=SMOKE_PAGE)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            problems = agreement_problems(tag=args.tag)
        elif args.command == "unreleased":
            problems = unreleased_problems()
        elif args.command == "bump":
            import datetime

            today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
            bump(args.new, args.date or today)
            problems = agreement_problems()
            print(f"release: version {args.new}: review `git diff`, then `make test` and merge")
        elif args.command == "notes":
            changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
            print(changelog_section(changelog, args.version or version()))
            return 0
        elif args.command == "dist":
            wheel = build_dist(args.out)
            problems = wheel_problems(wheel)
            with zipfile.ZipFile(wheel) as archive:
                print(f"{wheel.name}:", *sorted(archive.namelist()), sep="\n  ")
        else:
            smoke(args.wheel, args.page)
            problems = []
    except (ReleaseError, subprocess.CalledProcessError) as err:
        problems = [str(err)]
    for problem in problems:
        print(f"release: {problem}", file=sys.stderr)
    if not problems and args.command in {"check", "unreleased"}:
        print(f"release: {args.command}: version {version()} ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
