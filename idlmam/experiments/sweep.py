"""Compare optimizers fairly: a learning-rate sweep each on the validation split, then test.

A claim that one optimizer trains better or faster than another holds only under a stated
tuning protocol (the lesson of the AlgoPerf benchmark, Dahl et al. 2023, arXiv:2306.07179).
The protocol here:

1. every optimizer gets the same number of trials: a log grid that holds its usual rate
   (:func:`rate_grid`), one seed each (:func:`lr_sweep`), scored on the validation split;
2. each optimizer's best rate by that score (:func:`best_rates`) is run with every seed
   (:func:`with_seeds`, which reuses the trial already run at that rate) and scored once on the
   test split (:func:`idlmam.stats.final_scores`, :func:`idlmam.stats.compare`);
3. beside the final score, how soon each run reached a target score (:func:`time_to_target`).

The frames are the long results frames of :func:`idlmam.experiments.run` with two more columns:
``optimizer`` (its name) and ``rate`` (the learning rate it was given); the ``run`` column is
:func:`sweep_label` of the two.

Example:
    >>> rates = rate_grid(0.01)  # 0.01 / 3, 0.01, 0.01 * 3
    >>> [sweep_label("AdamW", rate) for rate in rates]
    ['AdamW, lr 0.0033', 'AdamW, lr 0.01', 'AdamW, lr 0.03']
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from ..stats import last_epochs
from ..train import DivergenceWarning
from .runs import run

__all__ = ["rate_grid", "sweep_label", "lr_sweep", "with_seeds", "best_rates", "time_to_target"]

OptimizerAt = Callable[[Iterable[torch.nn.Parameter], float], torch.optim.Optimizer]


def rate_grid(center: float, *, below: int = 1, above: int = 1, factor: float = 3.0) -> list[float]:
    r"""Learning rates on a log grid around ``center``: :math:`c \cdot f^k`, :math:`-b \le k \le a`.

    Args:
        center: the optimizer's usual rate, which the grid contains.
        below, above: how many rates below and above ``center``.
        factor: :math:`f`, the ratio of neighbouring rates (above 1).

    Returns:
        The rates, smallest first.

    Raises:
        ValueError: ``center`` not positive, ``factor`` not above 1, ``below`` or ``above``
            negative.

    Example:
        >>> rate_grid(0.1, below=0, above=2, factor=10)
        [0.1, 1.0, 10.0]
    """
    if not center > 0 or not factor > 1 or below < 0 or above < 0:
        raise ValueError(
            f"need center > 0, factor > 1, below >= 0 and above >= 0; got center={center}, "
            f"factor={factor}, below={below}, above={above}"
        )
    return [center * factor**k for k in range(-below, above + 1)]


def sweep_label(name: str, rate: float) -> str:
    """The ``run`` name of optimizer ``name`` at learning rate ``rate`` (two significant digits)."""
    return f"{name}, lr {rate:.2g}"


def _runs(name, optimizer_at, rates, seeds, quiet, run_kwargs) -> pd.DataFrame:
    frames = []
    for rate in rates:
        with warnings.catch_warnings():
            if quiet:  # a trial that diverges is a result of the sweep: its rows say so
                warnings.simplefilter("ignore", DivergenceWarning)
            frame = run(
                sweep_label(name, rate),
                lambda params, rate=rate: optimizer_at(params, rate),
                seeds=seeds,
                **run_kwargs,
            )
        frames.append(frame.assign(optimizer=name, rate=rate))
    diverged = any(f.attrs.get("diverged", False) for f in frames)
    out = pd.concat(frames, ignore_index=True)
    out.attrs["diverged"] = diverged
    return out


def lr_sweep(
    name: str,
    optimizer_at: OptimizerAt,
    rates: Sequence[float],
    *,
    seeds: Sequence[int] = (0,),
    **run_kwargs,
) -> pd.DataFrame:
    """Train ``optimizer_at(params, rate)`` at every rate: the trials of one optimizer.

    Each rate is one :func:`idlmam.experiments.run` (one seed by default: a trial, not yet a
    result). A trial that diverges is an outcome of the sweep, not a fault: its
    :class:`~idlmam.train.DivergenceWarning` is not raised, and its rows keep ``diverged``
    (``frame.attrs["diverged"]`` is True when any trial diverged); :func:`best_rates` ranks it
    last.

    Args:
        name: the optimizer's name (the ``optimizer`` column).
        optimizer_at: ``(params, rate) -> optimizer``.
        rates: the learning rates to try (:func:`rate_grid`).
        seeds: the seeds of every trial.
        **run_kwargs: the rest of :func:`idlmam.experiments.run`'s arguments (``loaders``,
            ``epochs``, ``make_schedule``, ``make_model``, ...).

    Returns:
        The long results frame of all trials, with ``optimizer`` and ``rate`` columns and
        ``run`` = :func:`sweep_label`.

    Example:
        >>> trials = lr_sweep("AdamW", lambda p, lr: torch.optim.AdamW(p, lr=lr),
        ...                   rate_grid(1e-3), loaders=loaders, epochs=5)  # doctest: +SKIP
    """
    return _runs(name, optimizer_at, list(rates), list(seeds), True, run_kwargs)


def with_seeds(
    sweep: pd.DataFrame,
    name: str,
    optimizer_at: OptimizerAt,
    rate: float,
    seeds: Sequence[int],
    **run_kwargs,
) -> pd.DataFrame:
    """Optimizer ``name`` at ``rate`` with every seed: the trials of ``sweep``, and the rest.

    The seeds that ``sweep`` already trained at this rate are taken from it (once, should its
    rows repeat, as in frames of earlier calls concatenated with their sweep); the missing ones
    are trained (together, where :func:`idlmam.experiments.run` can stack them, so their
    ``total time`` is the clock of that joint run: compare times with
    :func:`time_to_target`'s ``clock_seed``). A seed that diverges warns, as in ``run``.

    Args:
        sweep: a frame of :func:`lr_sweep` (possibly of several optimizers), or an empty frame.
        name, optimizer_at, rate: the optimizer, as given to :func:`lr_sweep`.
        seeds: every seed wanted.
        **run_kwargs: as for :func:`lr_sweep`; the same as the sweep's, or the frames mix
            different trainings.

    Returns:
        The rows of ``seeds`` only, with ``optimizer``, ``rate`` and ``run`` as in
        :func:`lr_sweep`, ordered by seed and epoch.

    Example:
        >>> best = best_rates(trials).loc["AdamW", "rate"]  # doctest: +SKIP
        >>> tuned = with_seeds(trials, "AdamW", lambda p, lr: torch.optim.AdamW(p, lr=lr),
        ...                    best, range(3), loaders=loaders, epochs=5)  # doctest: +SKIP
    """
    seeds = list(seeds)
    have = pd.DataFrame()
    if len(sweep):
        mine = (sweep["optimizer"] == name) & np.isclose(sweep["rate"], rate, rtol=1e-12, atol=0)
        have = sweep[mine & sweep["seed"].isin(seeds)].drop_duplicates(["seed", "epoch"])
    missing = [seed for seed in seeds if seed not in set(have.get("seed", ()))]
    frames = [have] if len(have) else []
    if missing:
        frames.append(_runs(name, optimizer_at, [rate], missing, False, run_kwargs))
    out = pd.concat(frames, ignore_index=True).sort_values(["seed", "epoch"], kind="stable")
    return out.reset_index(drop=True)


def best_rates(frame: pd.DataFrame, column: str = "val Accuracy") -> pd.DataFrame:
    r"""Each optimizer's best rate by its runs' final ``column``, and the grid it came from.

    A rate's score is the mean over its seeds of the last epoch's ``column``; a seed whose last
    score is NaN (it diverged) makes its rate's score :math:`-\infty`, the worst. Of equal
    scores, the smallest rate wins. Only ``column`` is read, so a sweep that also recorded test
    scores chooses on the validation split alone.

    Args:
        frame: trials of :func:`lr_sweep` (one optimizer or several).
        column: the score to maximise, by default the validation accuracy.

    Returns:
        A frame indexed by optimizer, in order of first appearance, with ``rate`` (the best),
        ``score`` (its mean final ``column``), ``trials`` (rates tried) and ``at_edge`` (the
        best is the smallest or the largest rate tried: the grid may not contain the optimum).

    Raises:
        ValueError: a column is missing.

    Example:
        >>> trials = pd.DataFrame({"optimizer": "SGD", "rate": [0.01, 0.1, 1.0], "run": ["a", "b", "c"],
        ...                        "seed": 0, "epoch": 0, "val Accuracy": [0.80, 0.85, float("nan")]})
        >>> best_rates(trials)
             rate  score  trials  at_edge
        SGD   0.1   0.85       3    False
    """
    last = last_epochs(frame, column, ["optimizer", "rate"], sort=False)
    scores = last.assign(score=last[column].fillna(-math.inf))
    per_rate = scores.groupby(["optimizer", "rate"], sort=False)["score"].mean().reset_index()
    rows = {}
    for name in dict.fromkeys(last["optimizer"]):  # first-appearance order
        mine = per_rate[per_rate["optimizer"] == name].sort_values("rate", kind="stable")
        best = mine.loc[mine["score"].idxmax()]  # the first of equal maxima: the smallest rate
        edge = len(mine) > 1 and best["rate"] in (mine["rate"].min(), mine["rate"].max())
        rows[name] = {
            "rate": float(best["rate"]),
            "score": float(best["score"]),
            "trials": len(mine),
            "at_edge": bool(edge),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def time_to_target(
    frame: pd.DataFrame,
    target: float,
    column: str = "val Accuracy",
    *,
    clock_seed: int | None = None,
) -> pd.DataFrame:
    """How soon each run's seeds first reach ``column >= target``: epochs and seconds.

    A seed reaches the target at the first epoch whose ``column`` is at least ``target``;
    ``epochs`` counts the epochs trained by then (the ``epoch`` column starts at 0), ``seconds``
    reads ``total time`` (seconds of training) at that epoch. Seeds trained together share one
    clock that counts them all; ``clock_seed`` reads every seed's time off that seed's run at
    the same epoch instead (a seed trained alone gives each run a clock of one model).

    Args:
        frame: a long results frame (``run``, ``seed``, ``epoch``, ``total time``, ``column``).
        target: the score to reach.
        column: the score, by default the validation accuracy.
        clock_seed: the seed whose ``total time`` is every seed's clock (None: each its own).

    Returns:
        A frame indexed by run, in order of first appearance, with ``seeds``, ``reached`` (how
        many got there), ``epochs`` and ``seconds`` (means over the seeds that got there; NaN
        when none did).

    Raises:
        ValueError: a column is missing, or ``clock_seed`` is not among a run's seeds.

    Example:
        >>> frame = pd.DataFrame({"run": "A", "seed": [0, 0, 0, 1, 1, 1], "epoch": [0, 1, 2] * 2,
        ...                       "total time": [1.0, 2.0, 3.0, 1.5, 3.0, 4.5],
        ...                       "val Accuracy": [0.5, 0.8, 0.9, 0.5, 0.6, 0.85]})
        >>> time_to_target(frame, 0.8)  # seed 0 after 2 epochs (2.0 s), seed 1 after 3 (4.5 s)
           seeds  reached  epochs  seconds
        A      2        2     2.5     3.25
        >>> time_to_target(frame, 0.8, clock_seed=0)  # seed 1's 3 epochs on seed 0's clock
           seeds  reached  epochs  seconds
        A      2        2     2.5      2.5
    """
    missing = {"run", "seed", "epoch", "total time", column} - set(frame.columns)
    if missing:
        raise ValueError(f"the frame lacks the columns {sorted(missing)}")
    frame = frame.reset_index(drop=True)
    rows = {}
    for name, runs in frame.groupby("run", sort=False):
        clock = None
        if clock_seed is not None:
            if clock_seed not in set(runs["seed"]):
                raise ValueError(f"clock_seed {clock_seed} is not a seed of run {name!r}")
            clock = runs[runs["seed"] == clock_seed].set_index("epoch")["total time"]
        epochs, seconds = [], []
        for _, seed in runs.groupby("seed", sort=True):
            hit = seed[seed[column] >= target].sort_values("epoch")
            if hit.empty:
                continue
            epoch = int(hit["epoch"].iloc[0])
            epochs.append(epoch + 1)
            seconds.append(
                float(hit["total time"].iloc[0])
                if clock is None
                else float(clock.get(epoch, math.nan))
            )
        rows[name] = {
            "seeds": runs["seed"].nunique(),
            "reached": len(epochs),
            "epochs": float(np.mean(epochs)) if epochs else math.nan,
            "seconds": float(np.mean(seconds)) if seconds else math.nan,
        }
    return pd.DataFrame.from_dict(rows, orient="index")
