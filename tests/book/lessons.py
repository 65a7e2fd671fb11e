"""The few lines a page shows a reader, taken from the page itself so its tests run them verbatim.

A page marks such a cell with the tag ``lesson`` (``# %% tags=["lesson"]`` in its percent
file). :func:`lesson` executes every lesson cell of a page, in order, in one fresh namespace and
returns it: a test then calls the page's own functions and compares their numbers with the
package's. A lesson cell must therefore stand alone: it may use ``torch`` and ``nn`` (as every
page imports them), imports anything else it uses, and reads no variable of the page.
"""

from __future__ import annotations

from pathlib import Path

import jupytext

BOOK = Path(__file__).resolve().parents[2] / "book"


def lesson_sources(page: str) -> list[str]:
    """The sources of the cells tagged ``lesson`` in ``book/<page>.py``, in page order."""
    path = BOOK / f"{page}.py"
    if not path.exists():
        raise FileNotFoundError(f"no page {path}: name it as under book/, without '.py'")
    notebook = jupytext.read(path)
    sources = [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and "lesson" in cell.metadata.get("tags", [])
    ]
    if not sources:
        raise LookupError(f"{path.name} has no cell tagged 'lesson'")
    return sources


def lesson(page: str) -> dict:
    """Execute the page's lesson cells in one fresh namespace and return that namespace."""
    import torch
    from torch import nn

    namespace: dict = {"__name__": f"lesson_{Path(page).name}", "torch": torch, "nn": nn}
    for source in lesson_sources(page):
        exec(compile(source, f"book/{page}.py (lesson cell)", "exec"), namespace)
    return namespace
