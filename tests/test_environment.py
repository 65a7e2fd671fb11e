"""environment.yml (conda users) must give the same stack as pyproject.toml + constraints.txt (pip).

constraints.txt is the exact stack `make` installs; pyproject.toml states what idlmam needs, in
loose bounds; environment.yml repeats constraints.txt's pins for conda. These tests fail when one
of the three moves without the others.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYTHON = "3.11"  # the version the book is built and tested with


def constraints() -> dict[str, Version]:
    """constraints.txt as {canonical name: pinned version}; every line must be an exact pin."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # one specifier per line ...
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"  # ... '=='
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_and_pip_entries() -> tuple[list[str], list[str]]:
    conda, pip = [], []
    for dep in environment()["dependencies"]:
        if isinstance(dep, dict):
            pip += dep.get("pip", [])
        else:
            conda.append(str(dep))
    return conda, pip


def environment_pins() -> dict[str, Version]:
    """Every pinned package of environment.yml, conda (`name=1.2`) and pip (`name==1.2`) alike."""
    conda, pip = conda_and_pip_entries()
    pins = {}
    for entry in conda:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==?|\s)?\s*([0-9][^\s,]*)?", entry.strip())
        assert match, f"environment.yml: cannot read the conda entry {entry!r}"
        name, version = match.groups()
        if name in {"python", "pip"}:
            continue
        assert version, f"environment.yml: conda package {entry!r} has no pin"
        pins[canonicalize_name(name)] = Version(version)
    for entry in pip:
        if entry.startswith("-"):
            continue  # options, and the project itself (-e .[all])
        req = Requirement(entry)
        (spec,) = req.specifier
        assert spec.operator == "==", f"environment.yml: pip entry {entry!r} is not an exact pin"
        pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def project_requirements() -> list[Requirement]:
    """idlmam's dependencies and those of every extra (not the self-referencing `all`)."""
    proj = project()
    reqs = [Requirement(r) for r in proj["dependencies"]]
    for extra in proj.get("optional-dependencies", {}).values():
        reqs += [req for req in map(Requirement, extra) if canonicalize_name(req.name) != "idlmam"]
    return reqs


def drift(pinned: dict[str, Version], mirrored: dict[str, Version]) -> list[str]:
    """How two {name: version} pin sets differ, one line per package (empty when they agree)."""
    found = [
        f"{n}: pinned in constraints.txt ({pinned[n]}), missing from environment.yml"
        for n in sorted(set(pinned) - set(mirrored))
    ]
    found += [
        f"{n}: in environment.yml ({mirrored[n]}), not pinned in constraints.txt"
        for n in sorted(set(mirrored) - set(pinned))
    ]
    found += [
        f"{n}: constraints.txt {pinned[n]}, environment.yml {mirrored[n]}"
        for n in sorted(set(pinned) & set(mirrored))
        if pinned[n] != mirrored[n]
    ]
    return found


def test_environment_pins_exactly_what_constraints_pin():
    problems = drift(constraints(), environment_pins())
    assert not problems, "environment.yml and constraints.txt drifted:\n" + "\n".join(problems)


def test_the_drift_check_notices_a_moved_a_missing_and_an_extra_pin():
    pins = constraints()
    name, version = next(iter(pins.items()))
    moved = dict(pins, **{name: Version(f"{version.major + 1}.0")})
    assert drift(pins, moved) == [
        f"{name}: constraints.txt {version}, environment.yml {version.major + 1}.0"
    ]
    assert len(drift(pins, {n: v for n, v in pins.items() if n != name})) == 1
    assert len(drift(pins, dict(pins, extra_package=Version("1.0")))) == 1


def test_environment_uses_the_same_python():
    conda, _ = conda_and_pip_entries()
    pythons = [e for e in conda if re.match(r"python\b", e)]
    assert pythons == [f"python={PYTHON}"], pythons
    header = (ROOT / "constraints.txt").read_text().split("\n", 3)[:3]
    assert any(f"Python {PYTHON}" in line for line in header), "constraints.txt names its Python"
    assert Version(PYTHON) in SpecifierSet(project()["requires-python"])


def test_environment_installs_the_package_with_all_extras():
    _, pip = conda_and_pip_entries()
    assert "-e .[all]" in pip, "environment.yml must install idlmam itself (pip: -e .[all])"
    assert "all" in project()["optional-dependencies"]


@pytest.mark.parametrize("req", project_requirements(), ids=str)
def test_every_project_dependency_is_pinned_within_its_bounds(req):
    pinned = constraints()
    # psycopg[binary] needs psycopg and psycopg-binary pinned
    names = [canonicalize_name(n) for n in [req.name, *(f"{req.name}-{x}" for x in req.extras)]]
    for name in names:
        assert name in pinned, f"pyproject.toml needs {req}; constraints.txt does not pin {name}"
    version = pinned[canonicalize_name(req.name)]
    assert req.specifier.contains(version, prereleases=True), (
        f"constraints.txt pins {req.name}=={version}, outside pyproject.toml's {req}"
    )
