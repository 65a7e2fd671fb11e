"""Small conveniences for the chapter notebooks: glue numbers into the prose, quiet defaults,
and the boxes that say which budget made a page's numbers and when they are too few to read.

The boxes are HTML outputs with inline styles, so they look the same on the site, in Jupyter
and in Colab.
"""

from __future__ import annotations

import html
from typing import Any

from .budget import DEFAULT, Budget, Sizes, get_budget

__all__ = ["glue", "setup", "finding", "budget_banner"]

_BOX = (
    '<div class="admonition {kind}" style="border-left: 4px solid {colour}; padding: 0.4em 0.8em;'
    ' margin: 0.5em 0; background: {background};"><p class="admonition-title"'
    ' style="font-weight: bold; margin: 0;">{title}</p><p style="margin: 0.3em 0 0 0;">{body}</p>'
    "</div>"
)


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the page's prose as ``{glue:text}`name```.

    Uses ``myst_nb.glue`` when the book's stack is installed; elsewhere (Colab, a bare Jupyter)
    it does nothing, so the notebook runs the same. Returns nothing: a cell that ends with a
    ``glue(...)`` shows no stray value under it.
    """
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # NumPy/torch scalars -> plain Python numbers, which format cleanly
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def setup(threads: int | None = None) -> None:
    """Plot defaults for the book and, optionally, a fixed number of torch threads."""
    import matplotlib as mpl
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )


def _box(kind: str, title: str, body: str) -> str:
    colour, background = {"note": ("#2a7ab0", "#eef6fb"), "warning": ("#c77700", "#fff6e5")}[kind]
    return _BOX.format(kind=kind, colour=colour, background=background, title=title, body=body)


def _show_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def budget_banner(
    budget: Budget | None = None, sizes: Sizes | str | None = None, *, trains: str | None = None
) -> None:
    """Show which budget produced the numbers of this page, and what it trains.

    Args:
        budget: the budget the page runs (default: :func:`idlmam.budget.get_budget`).
        sizes: the group of the budget the page runs (``budget.since``, ``budget.studies``,
            ...; default: ``budget.chapter``), a ``dataclasses.replace`` of it where the page
            trains other sizes, or those sizes said in words (a ``str`` built from the page's
            numbers) where no one group describes them.
        trains: what the page trains, for a page whose numbers no budget sizes (e.g.
            ``"nothing on data"``): the box says so instead of the budget's sizes.
    """
    budget = budget or get_budget()
    if trains is not None:
        body = html.escape(
            f"This page trains {trains}: its numbers and figures are the same on every budget"
            f" (this one is {budget.name})."
        )
        _show_html(_box("note", "Budget", body))
        return
    description = budget.describe(sizes)
    body = html.escape(f"The numbers and figures on this page come from {description}.")
    body = body.replace("`", "")
    if budget.name == DEFAULT:
        body += (
            " It is the default, on a CPU and on Colab's GPU alike: for another, set IDL_BUDGET"
            ' (in a notebook, os.environ["IDL_BUDGET"] = "chapter" before the imports).'
        )
    if not budget.findings:
        body += (
            " That is a smoke test of the code, too small for the chapter's findings: where a"
            " finding would stand, a box says so instead."
        )
    _show_html(_box("note", "Budget", body))


def finding(
    text: str, *, needs: str, budget: Budget | None = None, sizes: Sizes | str | None = None
) -> None:
    """State ``text`` (a finding of the runs above) only on a budget large enough to support it.

    On such a budget the cell shows ``text`` as Markdown; on ``quick`` (``findings`` false) it
    shows a warning box saying the runs are too small to ``needs`` and states nothing. Glue the
    numbers ``text`` is made of as well, if the prose needs them; the prose around the cell
    must not state the finding itself.

    Args:
        text: the finding, in Markdown, with its numbers already in it.
        needs: what the runs would have to show, completing "too small to ...".
        budget: the budget the runs used (default: :func:`idlmam.budget.get_budget`).
        sizes: the group of it the runs used, as in :func:`budget_banner`.

    Raises:
        ValueError: ``text`` or ``needs`` is empty.
    """
    if not text.strip() or not needs.strip():
        raise ValueError("finding() needs the finding's text and what it needs, both non-empty")
    budget = budget or get_budget()
    if budget.findings:
        from IPython.display import Markdown, display

        display(Markdown(text))
        return
    body = html.escape(
        f"These runs ({budget.describe(sizes)}) are too small to {needs}. "
        "Run the page with IDL_BUDGET=full to see it, or read it on the published site."
    ).replace("`", "")
    _show_html(_box("warning", "No finding on this budget", body))
