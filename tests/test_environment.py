"""environment.yml (conda users) must give the same stack as pyproject.toml + constraints.txt (pip).

constraints.txt is the exact stack `make` installs; pyproject.toml states what idlmam needs, in
loose bounds; environment.yml installs constraints.txt's pins for conda (-r constraints.txt). constraints-min.txt pins
each of pyproject.toml's lower bounds, the oldest stack `make test-min` installs and tests. These
tests fail when one of the four moves without the others.
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


def constraints(name: str = "constraints.txt") -> dict[str, Version]:
    """A constraints file as {canonical name: pinned version}; every line must be an exact pin."""
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # one specifier per line ...
        assert spec.operator == "==", f"{name}: {line!r} is not an exact pin"  # ... '=='
        assert canonicalize_name(req.name) not in pins, f"{name}: {req.name} pinned twice"
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
        if entry.startswith("-r "):  # a requirements file, relative to environment.yml
            pins.update(constraints(entry.removeprefix("-r ").strip()))
            continue
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
    for name in ("constraints.txt", "constraints-min.txt"):
        header = (ROOT / name).read_text().split("\n", 3)[:3]
        assert any(f"Python {PYTHON}" in line for line in header), f"{name} names its Python"
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


def lower_bound(req: Requirement) -> Version | None:
    """The oldest version ``req`` allows (None when it states no inclusive lower bound)."""
    bounds = [Version(s.version) for s in req.specifier if s.operator in {">=", "~=", "=="}]
    return max(bounds, default=None)


def minimum_drift(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """How constraints-min.txt's ``pins`` differ from the lower bounds of ``requirements``.

    Every requirement needs a lower bound and a pin at exactly that version, for each of its
    extras' packages too (psycopg[binary] -> psycopg-binary); nothing else may be pinned.
    One line per problem, empty when they agree.
    """
    found, bounds = [], {}
    for req in requirements:
        names = [canonicalize_name(n) for n in [req.name, *(f"{req.name}-{x}" for x in req.extras)]]
        bound = lower_bound(req)
        if bound is None:
            found.append(f"{req}: pyproject.toml states no lower bound")
            continue
        for name in names:  # a package required twice: the higher bound is the real one
            bounds[name] = max(bound, bounds.get(name, bound))
    found += [
        f"{n}: lower bound {bounds[n]} in pyproject.toml, not pinned in constraints-min.txt"
        for n in sorted(set(bounds) - set(pins))
    ]
    found += [
        f"{n}: constraints-min.txt pins {pins[n]}, pyproject.toml's lower bound is {bounds[n]}"
        for n in sorted(set(bounds) & set(pins))
        if pins[n] != bounds[n]
    ]
    found += [
        f"{n}: pinned in constraints-min.txt ({pins[n]}), but no lower bound of pyproject.toml"
        for n in sorted(set(pins) - set(bounds))
    ]
    return found


def test_constraints_min_pins_exactly_the_lower_bounds_of_pyproject():
    problems = minimum_drift(project_requirements(), constraints("constraints-min.txt"))
    assert not problems, "constraints-min.txt and pyproject.toml drifted:\n" + "\n".join(problems)


def test_the_minimum_check_notices_a_moved_a_missing_an_extra_and_an_unbounded_pin():
    reqs = [
        Requirement("numpy>=1.26"),
        Requirement("psycopg[binary]>=3.1.4"),
        Requirement("torch>=2.9"),
    ]
    pins = {
        "numpy": Version("1.26"),
        "psycopg": Version("3.1.4"),
        "psycopg-binary": Version("3.1.4"),
        "torch": Version("2.9"),
    }
    assert minimum_drift(reqs, pins) == []
    assert minimum_drift(reqs, dict(pins, numpy=Version("2.0"))) == [
        "numpy: constraints-min.txt pins 2.0, pyproject.toml's lower bound is 1.26"
    ]
    missing = {n: v for n, v in pins.items() if n != "psycopg-binary"}
    assert minimum_drift(reqs, missing) == [
        "psycopg-binary: lower bound 3.1.4 in pyproject.toml, not pinned in constraints-min.txt"
    ]
    assert len(minimum_drift(reqs, dict(pins, torch=Version("2.4")))) == 1  # torch too
    assert len(minimum_drift([*reqs, Requirement("tqdm")], pins)) == 1  # no lower bound
    assert len(minimum_drift([*reqs, Requirement("tqdm<5")], pins)) == 1  # an upper one only
