"""Every example in a docstring of the package runs and prints what it says.

Docstrings state each function's contract with an example; this runs them all (``doctest``), so
an example cannot drift from the code it documents.
"""

import doctest
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import pytest

import idlmam

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(idlmam.__path__, prefix="idlmam.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (above)"


ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted([*(ROOT / "tools").glob("*.py"), *(ROOT / "_ext").glob("*.py")])


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docstring_examples_of_the_build_tools_run(path):
    """tools/ and _ext/ are not in the package, but their docstrings' examples run all the same."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        )
    finally:
        del sys.modules[path.stem]
    assert result.failed == 0, f"{result.failed} docstring example(s) of {path.name} failed (above)"
