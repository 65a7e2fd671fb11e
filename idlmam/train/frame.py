"""The results frame: what every training run returns, one row per epoch, whichever engine ran it.

Columns: ``epoch``, ``total time``, ``lr``, ``train loss``, ``train <score>``, the same for
``val`` and ``test`` where those loaders are given, and a boolean ``diverged`` when the run
diverged (True on the row of the epoch whose training loss was not finite);
``frame.attrs["diverged"]`` says whether it did, always. A frame of several seeds has a ``seed``
column first. This module builds those frames from the loop's rows, fills the row of a diverged
epoch, and issues the one :class:`DivergenceWarning` of a run.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "FIRST_COLUMNS",
    "DivergenceWarning",
    "result_columns",
    "fill_not_evaluated",
    "results_frame",
    "seeds_frame",
    "diverged_where",
    "warn_diverged",
    "warn_diverged_seeds",
]

FIRST_COLUMNS = ("epoch", "total time", "lr")  # then the loss and score columns, train/val/test


class DivergenceWarning(RuntimeWarning):
    """The training loss became NaN or infinite and the run was stopped."""


def result_columns(prefixes: Iterable[str], score_funcs: Mapping | None) -> set[str]:
    """The columns a run's rows hold (``diverged`` aside), for loaders named by ``prefixes``.

    Example:
        >>> sorted(result_columns(["train"], {"Accuracy": None}))
        ['epoch', 'lr', 'total time', 'train Accuracy', 'train loss']
    """
    return set(FIRST_COLUMNS) | {
        f"{prefix} {column}" for prefix in prefixes for column in ["loss", *(score_funcs or {})]
    }


def fill_not_evaluated(row: dict, prefix: str, score_funcs: Mapping | None) -> None:
    """NaN for ``prefix``'s loss and scores in ``row``: a diverged model has nothing to evaluate.

    Example:
        >>> row = {}
        >>> fill_not_evaluated(row, "val", {"Accuracy": None})
        >>> row
        {'val loss': nan, 'val Accuracy': nan}
    """
    for column in ["loss", *(score_funcs or {})]:
        row[f"{prefix} {column}"] = float("nan")


def results_frame(rows: Sequence[Mapping], diverged: bool) -> pd.DataFrame:
    """The results frame of one model from its rows, one dict per epoch.

    Args:
        rows: the columns of each epoch (at least one row), without ``diverged``.
        diverged: whether the last row is the epoch whose training loss was not finite.

    Returns:
        The frame, columns in the order of the module docstring; ``diverged`` is a column only
        when the run diverged, ``frame.attrs["diverged"]`` always.

    Example:
        >>> frame = results_frame([{"epoch": 0, "lr": 0.1, "train loss": 2.3, "total time": 1.0}],
        ...                       False)
        >>> list(frame.columns), frame.attrs["diverged"]
        (['epoch', 'total time', 'lr', 'train loss'], False)
    """
    frame = pd.DataFrame.from_records(list(rows))
    first = list(FIRST_COLUMNS)
    frame = frame[first + [c for c in frame.columns if c not in first]]
    if diverged:  # the last row is the epoch whose training loss was not finite
        frame["diverged"] = np.arange(len(frame)) == len(frame) - 1
    frame.attrs["diverged"] = diverged
    return frame


def seeds_frame(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The per-seed frames (each with a ``seed`` column) one below the other.

    ``diverged`` is a boolean column when any seed diverged (True on each diverged seed's last
    row) and ``frame.attrs["diverged"]`` says whether one did.

    Example:
        >>> one = results_frame([{"epoch": 0, "lr": 0.1, "total time": 1.0}], False)
        >>> frame = seeds_frame([one.assign(seed=0), one.assign(seed=1)])
        >>> list(frame.columns), frame.attrs["diverged"]
        (['seed', 'epoch', 'total time', 'lr'], False)
    """
    frame = pd.concat(frames, ignore_index=True)
    diverged = "diverged" in frame
    if diverged:
        frame["diverged"] = frame["diverged"].astype("boolean").fillna(False).astype(bool)
    first = ["seed", *FIRST_COLUMNS]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame.attrs["diverged"] = diverged
    return frame


def diverged_where(seed: int, row: Mapping) -> str:
    """``"seed 1 at epoch 3 (nan)"``: a diverged seed, as :func:`warn_diverged_seeds` names it.

    Example:
        >>> diverged_where(1, {"epoch": 3, "train loss": float("nan")})
        'seed 1 at epoch 3 (nan)'
    """
    return f"seed {seed} at epoch {int(row['epoch'])} ({row['train loss']})"


def warn_diverged(row: Mapping, rows: int, stacklevel: int = 2) -> None:
    """The one :class:`DivergenceWarning` of a one-model run whose epoch ``row`` diverged,
    ``rows`` being the number of rows its frame keeps."""
    warnings.warn(
        f"the training loss became {row['train loss']} at epoch {row['epoch']} "
        f"(lr {row['lr']:g}): training stopped. The frame keeps its {rows} rows, the last "
        "with diverged=True; lower the learning rate or clip the gradients",
        DivergenceWarning,
        stacklevel=stacklevel,
    )


def warn_diverged_seeds(where: Sequence[str], stacklevel: int = 2) -> None:
    """The one :class:`DivergenceWarning` of a multi-seed run (``where``: the seeds that
    diverged, e.g. ``["seed 1 at epoch 3 (nan)"]``, see :func:`diverged_where`)."""
    warnings.warn(
        f"the training loss became NaN or infinite for {', '.join(where)}: those seeds "
        "stopped, the others went on. The frame keeps their rows, the last with "
        "diverged=True; lower the learning rate or clip the gradients",
        DivergenceWarning,
        stacklevel=stacklevel,
    )
