"""Every example in a docstring of the package runs and prints what it says.

Docstrings state each function's contract with an example; this runs them all (``doctest``), so
an example cannot drift from the code it documents.
"""

import doctest
import importlib
import pkgutil

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
