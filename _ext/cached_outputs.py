"""Sphinx extension: a page taken from the execution cache keeps its outputs in ``jupyter_execute/``.

MyST-NB writes every page's notebook to ``_build/jupyter_execute/`` after rendering it, and
``make colab`` (``tools/colab.py``) turns those notebooks into the Colab ones. When MyST-NB runs
a page itself, it executes the notebook object it later writes, outputs included. When the page
comes from the cache (``execute_notebooks: cache``: every page of ``make book``, which
``tools/execute_pages.py`` executes beforehand, and any page unchanged since the last build),
MyST-NB 1.4 renders a *copy* with the cached outputs merged in and writes the original, without
any output. This extension makes the cached case behave like the executed one: the merged
outputs go into the notebook object MyST-NB writes.

Set in ``_config.yml`` (``sphinx.local_extensions: {cached_outputs: _ext}``); nothing to
configure. ``tests/test_colab_notebooks.py`` fails if the written notebooks lose their outputs.
"""

from __future__ import annotations

from typing import Any

from myst_nb.core.execute.cache import NotebookClientCache
from sphinx.application import Sphinx

__all__ = ["setup"]

_start_client = NotebookClientCache.start_client


def _start_client_in_place(self: NotebookClientCache) -> None:
    original = self._notebook
    _start_client(self)
    if self._notebook is not original:  # a cache hit: move the merged notebook into the original
        original.cells = self._notebook.cells
        original.metadata = self._notebook.metadata
        self._notebook = original


def setup(app: Sphinx) -> dict[str, Any]:
    NotebookClientCache.start_client = _start_client_in_place
    return {"parallel_read_safe": True, "parallel_write_safe": True}
