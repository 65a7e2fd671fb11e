"""Small conveniences for the chapter notebooks: glue numbers into the prose, quiet defaults."""

from __future__ import annotations

from typing import Any

__all__ = ["glue", "setup"]


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Make ``value`` available to the page's prose as ``{glue:text}`name```.

    Uses ``myst_nb.glue`` when the book's stack is installed; elsewhere (Colab, a bare Jupyter)
    it only returns ``value`` so the notebook runs the same.
    """
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # NumPy/torch scalars -> plain Python numbers, which format cleanly
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return value
    myst_glue(name, value, display=display)
    return value


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
