"""How sure a comparison is: final scores over seeds with intervals, and "A beats B" or not.

Every run of the book is repeated over seeds, and the long results frame (``run``, ``seed``,
``epoch`` and the score columns) holds them all. This module turns such a frame into the numbers
and the sentence a page may state: each run's final score as mean ± a confidence interval over
its seeds, and whether two runs differ by more than the seed-to-seed noise.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"run": ["A"] * 3 + ["B"] * 3, "seed": [0, 1, 2] * 2,
    ...                       "epoch": [0] * 6,
    ...                       "test Accuracy": [0.90, 0.91, 0.92, 0.80, 0.80, 0.81]})
    >>> compare(frame, "A", "B").sentence()
    'A ends 10.7 ± 1.4 points above B over 3 seeds'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .text import plural

__all__ = ["final_scores", "last_epochs", "compare", "compare_pairs", "Comparison", "t_interval"]


def _t_quantile(confidence: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, dof))


def t_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Student's t confidence interval of the mean of ``values`` (NaNs: fewer than 2 values).

    The interval every figure and sentence of the book uses, so that a band drawn around a
    curve and the ± printed beside it are the same thing.

    Example:
        >>> [round(x, 4) for x in t_interval([0.90, 0.91, 0.92])]  # 0.91 ± 4.303 * 0.01 / 3**0.5
        [0.8852, 0.9348]
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan, math.nan
    half = _t_quantile(confidence, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean()) - half, float(x.mean()) + half


def last_epochs(
    frame: pd.DataFrame, column: str, keep: Sequence[str] = (), *, sort: bool = True
) -> pd.DataFrame:
    """One row per (run, seed): its last epoch's ``column`` (a diverged seed ends early), and
    the ``keep`` columns; sorted by run and seed, or (``sort=False``) in order of appearance.

    The one rule for "where a seed ended", which :func:`final_scores`, :func:`compare` and the
    pages use.

    Raises:
        ValueError: ``frame`` lacks ``run``, ``seed``, ``epoch``, ``column`` or a ``keep`` column.

    Example:
        >>> frame = pd.DataFrame({"run": ["a"] * 3, "seed": [0, 0, 1], "epoch": [0, 1, 0],
        ...                       "acc": [0.5, 0.75, 0.25]})
        >>> last_epochs(frame, "acc")["acc"].tolist()
        [0.75, 0.25]
    """
    missing = {"run", "seed", "epoch", column, *keep} - set(frame.columns)
    if missing:
        raise ValueError(
            f"the frame lacks the columns {sorted(missing)}: give the long results frame of "
            "idlmam.experiments.run (run, seed, epoch and the score columns)"
        )
    frame = frame.reset_index(drop=True)  # frames concatenated without ignore_index repeat labels
    last = frame.loc[frame.groupby(["run", "seed"], sort=sort)["epoch"].idxmax()]
    return last[["run", "seed", column, *keep]]


def final_scores(
    frame: pd.DataFrame, column: str = "test Accuracy", *, confidence: float = 0.95
) -> pd.DataFrame:
    """Each run's final ``column`` over its seeds: mean and a t-interval, best first.

    Args:
        frame: the long results frame (``run``, ``seed``, ``epoch``, ``column``).
        column: the score to summarise.
        confidence: of the interval (Student's t over the seeds).

    Returns:
        A frame indexed by run with ``seeds``, ``mean``, ``std`` (over seeds), ``half_width``
        (NaN with one seed: no interval), ``low`` and ``high``; sorted by ``mean``, best first.
        Seeds whose last score is NaN (a diverged run) are left out of ``seeds``.

    Raises:
        ValueError: a column is missing.
    """
    last = last_epochs(frame, column).dropna(subset=[column])
    rows = {}
    for run, group in last.groupby("run", sort=False):
        values = group[column].to_numpy(dtype=float)
        n = len(values)
        std = float(values.std(ddof=1)) if n > 1 else math.nan
        half = _t_quantile(confidence, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
        mean = float(values.mean())
        rows[run] = {
            "seeds": n,
            "mean": mean,
            "std": std,
            "half_width": half,
            "low": mean - half,
            "high": mean + half,
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_values("mean", ascending=False)


@dataclass(frozen=True)
class Comparison:
    """The difference of two runs' final scores, ``a - b``, and how sure it is.

    Attributes:
        a, b: the two runs' names.
        difference: mean of ``a`` minus mean of ``b`` (paired by seed when both have them).
        half_width: of the confidence interval of the difference (NaN: too few seeds).
        seeds: how many seeds (pairs, when paired) the interval rests on.
        paired: whether the seeds were paired (the same seeds in both runs).
        differs: the interval excludes 0: the difference is larger than the seed noise.
        scale: multiplies numbers in the sentence (100: accuracies as points).
        unit: the unit in the sentence.
    """

    a: str
    b: str
    difference: float
    half_width: float
    seeds: int
    paired: bool
    differs: bool
    scale: float = 100.0
    unit: str = "points"

    def sentence(self) -> str:
        """The claim the runs support, e.g. ``"A ends 1.8 ± 0.5 points above B over 3 seeds"``."""
        if self.seeds < 2 or math.isnan(self.half_width):
            return (
                f"{self.a} and {self.b} cannot be told apart with {plural(self.seeds, 'seed')}: "
                "no interval without repetitions"
            )
        if not self.differs:
            return (
                f"{self.a} and {self.b} end within the noise of {self.seeds} seeds "
                f"(difference {round(self.scale * self.difference, 1) + 0.0:+.1f} ± "
                f"{self.scale * self.half_width:.1f} {self.unit})"
            )
        side = "above" if self.difference > 0 else "below"
        size, half = self.scale * abs(self.difference), self.scale * self.half_width
        digits = 1  # more where "0.7 ± 0.7" would read as an interval that reaches zero
        while digits < 3 and f"{size:.{digits}f}" == f"{half:.{digits}f}":
            digits += 1
        return (
            f"{self.a} ends {size:.{digits}f} ± {half:.{digits}f} {self.unit} {side} {self.b} "
            f"over {self.seeds} seeds"
        )


def compare(
    frame: pd.DataFrame,
    a: str,
    b: str,
    column: str = "test Accuracy",
    *,
    confidence: float = 0.95,
    scale: float = 100.0,
    unit: str = "points",
) -> Comparison:
    """Whether run ``a`` ends above or below run ``b`` by more than the seed-to-seed noise.

    When both runs have the same seeds (a seed fixes the weights and the batch order, so the
    runs are paired), the interval is a paired t-interval on the per-seed differences; otherwise
    Welch's interval on the two means. ``differs`` is True when the interval excludes 0.

    Args:
        frame: the long results frame holding both runs.
        a, b: run names (the ``run`` column).
        column: the final score compared.
        confidence: of the interval.
        scale, unit: how :meth:`Comparison.sentence` writes the numbers (accuracies as points).

    Raises:
        ValueError: a run is not in the frame, or a column is missing.
    """
    last = last_epochs(frame, column).dropna(subset=[column])
    runs = set(last["run"])
    for name in (a, b):
        if name not in runs:
            raise ValueError(f"run {name!r} is not in the frame (runs: {sorted(runs)})")
    va = last[last["run"] == a].set_index("seed")[column]
    vb = last[last["run"] == b].set_index("seed")[column]
    paired = set(va.index) == set(vb.index)
    if paired:
        d = (va - vb.loc[va.index]).to_numpy(dtype=float)
        n = len(d)
        difference = float(d.mean())
        half = (
            _t_quantile(confidence, n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
            if n > 1
            else math.nan
        )
    else:
        xa, xb = va.to_numpy(dtype=float), vb.to_numpy(dtype=float)
        n = min(len(xa), len(xb))
        difference = float(xa.mean() - xb.mean())
        if n > 1:
            sa, sb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
            dof = (sa + sb) ** 2 / (sa**2 / (len(xa) - 1) + sb**2 / (len(xb) - 1)) if sa + sb else 1
            half = _t_quantile(confidence, dof) * math.sqrt(sa + sb)
        else:
            half = math.nan
    differs = bool(n > 1 and np.isfinite(half) and abs(difference) > half)
    return Comparison(a, b, difference, half, n, paired, differs, scale, unit)


def compare_pairs(
    frame: pd.DataFrame,
    pairs: Iterable[tuple[str, str]],
    column: str = "test Accuracy",
    *,
    confidence: float = 0.95,
) -> str:
    """One Markdown bullet per ``(a, b)`` pair: the sentence :func:`compare` makes of it, its
    first letter capitalised (a run named in lower case still starts a sentence).

    What a page hands to :func:`idlmam.notebook.finding` when it states several comparisons of
    one results frame at once. ``confidence`` is each interval's; for ``k`` comparisons read
    together at 95%, pass ``1 - 0.05 / k`` (Bonferroni's correction).

    Example:
        >>> rows = [{"run": r, "seed": s, "epoch": 0, "test Accuracy": v}
        ...         for r, vs in {"A": [0.80, 0.82, 0.84], "B": [0.78, 0.79, 0.83]}.items()
        ...         for s, v in enumerate(vs)]
        >>> print(compare_pairs(pd.DataFrame(rows), [("A", "B")]))
        - A and B end within the noise of 3 seeds (difference +2.0 ± 2.5 points).
    """
    sentences = (compare(frame, a, b, column, confidence=confidence).sentence() for a, b in pairs)
    return "\n".join(f"- {s[:1].upper()}{s[1:]}." for s in sentences)  # each bullet a sentence
