"""The optimizer race: the optimizers page's protocol, for its field and for a reader's optimizer.

Each contender gets a learning-rate search on a log grid from its usual rate up (one seed per
trial, scored on a validation split), grown by one rule where its best rate lies at an end
(:data:`EXTEND`), its best rate is run with every seed and scored once on the test set, and
every contender with no schedule of its own warms up and decays on one per-batch schedule
(:mod:`idlmam.experiments.sweep` does the training). The page ``book/03c_optimizers_since.py``
and the command ``python -m idlmam.race`` both race through :func:`run_race` and rank with
:func:`leaderboard`; the field's runs are cached per budget, package version and device.

Example:
    >>> list(field(warmup_steps=2))[:2]
    ['SGD w/ Nesterov', 'AdamW']
    >>> field(warmup_steps=2)["SGD w/ Nesterov"].rates()
    [0.1, 0.4, 1.6]
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import io
import json
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..budget import Budget
from ..data import book_loaders
from ..models import mlp
from ..optim import (
    SOAP,
    Lion,
    MuonWithAdamW,
    NAdamW,
    Shampoo,
    muon_param_groups,
    warmup_linear_decay,
)
from ..stats import compare, final_scores
from ..train import DivergenceWarning
from .sweep import OptimizerAt, best_rates, lr_sweep, rate_grid, time_to_target, with_seeds

__all__ = [
    "BATCH_SIZE",
    "VAL_FRACTION",
    "WARMUP",
    "DECAY",
    "GRID",
    "EXTEND",
    "MUON_DECAY",
    "Contender",
    "field",
    "field_names",
    "Setting",
    "setting",
    "RaceRuns",
    "planned_runs",
    "next_rate",
    "race_one",
    "run_race",
    "leaderboard",
    "step_costs",
    "cache_dir",
    "load_cached",
    "RaceInputError",
    "load_contender",
]

BATCH_SIZE = 256  # B, the chapter's
VAL_FRACTION = 0.2  # the share of the training images held out to choose the rates
WARMUP = 0.05  # the share of the steps spent warming up, for every optimizer
DECAY = 0.01  # lambda, AdamW's default weight decay, given to every decoupled decay
GRID = dict(below=0, above=2, factor=4.0)  # 3 trials: the usual rate, x 4 and x 16
EXTEND = 2  # at most this many rates added beyond the end of a grid where its best trial lies
MUON_DECAY = 0.1  # lambda of Muon's matrices: torch.optim.Muon's default, and Moonlight's

OK = "ok"
ALL_DIVERGED = "diverged at every rate"


@dataclass(frozen=True)
class Contender:
    """One optimizer of a race: how to build it, its usual rate and the grid it searches.

    Args:
        usual_rate: its default rate, the centre of its grid (:func:`rate_grid`).
        optimizer_at: ``(params, lr) -> optimizer``.
        decays: takes the shared schedule (a warmup over :data:`WARMUP` of the steps, then a
            linear decay to zero, stepped per batch: :func:`idlmam.optim.warmup_linear_decay`);
            False: a constant rate (an optimizer with a schedule of its own).
        grid: :func:`rate_grid`'s keyword arguments.
        extend: at most this many rates added beyond an end of the grid where the best trial
            lies (:func:`next_rate`); 0 keeps the grid as it is.
        elementwise: its seeds may train stacked into one model (its step acts value by value);
            False trains them one after the other, the safe choice for an optimizer nobody
            vouched for (one that reads a whole tensor would mix the stacked seeds).
    """

    usual_rate: float
    optimizer_at: OptimizerAt
    decays: bool = True
    grid: Mapping = dataclass_field(default_factory=lambda: dict(GRID))
    elementwise: bool = True
    extend: int = EXTEND

    def rates(self) -> list[float]:
        """The rates it tries, smallest first."""
        return rate_grid(self.usual_rate, **self.grid)


def _sgd_nesterov(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)


def _adamw(params, lr):
    return torch.optim.AdamW(params, lr=lr)  # torch's defaults: decay 0.01


def _muon(params, lr):
    hidden, other = muon_param_groups(params)  # the first and last layers on AdamW
    hidden = [{"params": hidden, "weight_decay": MUON_DECAY}]
    return MuonWithAdamW(hidden, other, lr=lr, weight_decay=DECAY)


def _shampoo(params, lr):
    # AdaGrad's step size (grafting), momentum 0.9, the roots recomputed every 10 steps
    return Shampoo(params, lr=lr, momentum=0.9, update_interval=10, weight_decay=DECAY)


def _schedule_free(params, lr, *, warmup_steps: int):
    import schedulefree

    return schedulefree.AdamWScheduleFree(
        params, lr=lr, weight_decay=DECAY, warmup_steps=warmup_steps
    )


def field(warmup_steps: int) -> dict[str, Contender]:
    """The optimizers page's ten contenders, in its order, with its usual rates and grids.

    Args:
        warmup_steps: the setting's warmup steps (:attr:`Setting.warmup_steps`), which
            schedule-free AdamW, having no outside schedule, takes as its own warmup.

    Returns:
        ``{name: Contender}``; adding an optimizer to the field is one entry here.
    """
    decoupled = dict(weight_decay=DECAY, decoupled_weight_decay=True)
    return {
        "SGD w/ Nesterov": Contender(0.1, _sgd_nesterov),
        "AdamW": Contender(1e-3, _adamw),
        "NAdamW": Contender(2e-3, partial(NAdamW, weight_decay=DECAY)),  # AlgoPerf's
        "RAdam": Contender(1e-3, partial(torch.optim.RAdam, **decoupled)),
        # torch's default decay, 0: its decay multiplies the nominal rate, not the step it takes
        # (the rate times the weights' RMS), and would shrink it far more than the others
        "Adafactor": Contender(1e-2, torch.optim.Adafactor),
        "Muon": Contender(1e-3, _muon),
        "Lion": Contender(1e-4, partial(Lion, weight_decay=10 * DECAY)),
        "Shampoo": Contender(1e-3, _shampoo),
        "SOAP": Contender(3e-3, partial(SOAP, weight_decay=DECAY)),  # refreshed every 10 steps
        "Schedule-free AdamW": Contender(
            2.5e-3, partial(_schedule_free, warmup_steps=warmup_steps), decays=False
        ),
    }


def field_names() -> list[str]:
    """The names of the field, in order (without building a setting)."""
    return list(field(warmup_steps=1))


@dataclass
class Setting:
    """The data and the training every contender of a race gets.

    Args:
        loaders: ``{"train", "val", "test"}`` (:func:`idlmam.data.book_loaders`).
        epochs: epochs per run.
        seeds: the seeds of the tuned runs (seed 0 is the trial's).
        device: where to train.
        budget: the budget's name (part of the cache's key).
        make_model: the network (default: the chapter's MLP).

    Attributes:
        steps: optimizer steps per run, ``epochs * len(loaders["train"])``.
        warmup_steps: ``max(1, round(WARMUP * steps))``.
    """

    loaders: Mapping
    epochs: int
    seeds: list[int]
    device: torch.device | str = "cpu"
    budget: str = "custom"
    make_model: Callable[[], torch.nn.Module] = mlp
    steps: int = dataclass_field(init=False)
    warmup_steps: int = dataclass_field(init=False)

    def __post_init__(self) -> None:
        self.seeds = list(self.seeds)
        self.steps = self.epochs * len(self.loaders["train"])
        self.warmup_steps = max(1, round(WARMUP * self.steps))

    def run_kwargs(self) -> dict:
        """What every run of the race passes to :func:`idlmam.experiments.run`."""
        return dict(
            loaders=self.loaders,
            epochs=self.epochs,
            device=self.device,
            lr_schedule_every="batch",
            make_model=self.make_model,
        )

    def make_schedule(self, contender: Contender) -> Callable | None:
        """``contender``'s ``make_schedule``: the shared warmup and linear decay, or None."""
        if not contender.decays:
            return None
        return partial(warmup_linear_decay, total_steps=self.steps, warmup_steps=self.warmup_steps)

    def key(self) -> dict:
        """What a cached run depends on besides its contender (see :func:`cache_dir`)."""
        return {
            "epochs": self.epochs,
            "seeds": self.seeds,
            "train": self.loaders["train"].n_examples,
            "val": self.loaders["val"].n_examples,
            "batches": len(self.loaders["train"]),
            "model": getattr(self.make_model, "__name__", repr(self.make_model)),
        }


def setting(budget: Budget, device: torch.device | str = "cpu") -> Setting:
    """The optimizers page's setting on ``budget`` (its ``since`` sizes).

    Example:
        >>> from idlmam.budget import get_budget
        >>> race = setting(get_budget("quick"))  # doctest: +SKIP
        >>> race.epochs, race.seeds, race.steps  # doctest: +SKIP
        (4, [0, 1], 76)
    """
    since = budget.since
    loaders = book_loaders(
        BATCH_SIZE, device=device, train_size=since.train_size, val_fraction=VAL_FRACTION
    )
    return Setting(loaders, since.epochs, list(range(since.seeds)), device, budget.name)


@dataclass
class RaceRuns:
    """What one contender's race left: its trials, its tuned runs and how it ended.

    Attributes:
        name: the contender's name (the ``optimizer`` column, and ``run`` of ``tuned``).
        rates: the rates it tried, smallest first: its grid and those :func:`next_rate` added.
        trials: the long frame of :func:`lr_sweep` (empty when it raised before any finished).
        tuned: every seed at the chosen rate, ``run`` = ``name`` (empty when it failed).
        rate: the chosen rate (None when it failed).
        edge: ``"bottom"`` or ``"top"``: the chosen rate is an end of its grid; else ``"-"``.
        status: ``"ok"``, ``"diverged at every rate"`` or ``"raised: <one line>"``.
        steps_per_epoch: optimizer steps per epoch (for the steps to a target).
        cached: it was read from the cache, not trained.
        val_examples: the size of the validation split (for the target's margin), if known.
    """

    name: str
    rates: list[float]
    trials: pd.DataFrame
    tuned: pd.DataFrame
    rate: float | None
    edge: str
    status: str
    steps_per_epoch: int
    cached: bool = False
    val_examples: int | None = None

    @property
    def ok(self) -> bool:
        """It has a tuned result."""
        return self.status == OK


def planned_runs(contender: Contender, setting: Setting) -> int:
    """Runs :func:`race_one` may train for ``contender``: one per rate of its grid, the
    rates its grid may grow by (``extend``), then the other seeds."""
    return len(contender.rates()) + contender.extend + len([s for s in setting.seeds if s != 0])


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "(no message)"
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(err).__name__}: {text}"


def _edge(rate: float, rates: list[float], at_edge: bool) -> str:
    if not at_edge:
        return "-"
    return "top" if math.isclose(rate, max(rates), rel_tol=1e-12) else "bottom"


def next_rate(trials: pd.DataFrame, name: str, factor: float) -> float | None:
    """The rate the grid-extension rule tries next, or None: the grid is done.

    The rule, fixed before any run: where the best trial (on validation) is the largest rate
    tried, try ``factor`` times that rate; where it is the smallest, or every trial diverged, a
    ``factor`` below the smallest. :func:`race_one` applies it at most ``extend`` times
    (:class:`Contender`; :data:`EXTEND` by default).

    Example:
        >>> trials = pd.DataFrame({"optimizer": "A", "rate": [1.0, 4.0], "run": ["a", "b"],
        ...                        "seed": 0, "epoch": 0, "val Accuracy": [0.80, 0.85]})
        >>> next_rate(trials, "A", 4.0)  # the best is the top: go on up
        16.0
    """
    best = best_rates(trials).loc[name]
    tried = sorted(set(trials["rate"]))
    if best["score"] == -math.inf:
        return tried[0] / factor  # every rate failed: lower
    if not best["at_edge"]:
        return None
    top = math.isclose(best["rate"], tried[-1], rel_tol=1e-12)
    return tried[-1] * factor if top else tried[0] / factor


def _trials(name, contender, setting, kwargs, tick) -> pd.DataFrame:
    frames = []

    def trial(rate: float) -> pd.DataFrame:
        frames.append(lr_sweep(name, contender.optimizer_at, [rate], **kwargs))
        tick(1)  # one rate at a time: one tick per trial
        out = pd.concat(frames, ignore_index=True)
        out.attrs["diverged"] = any(f.attrs["diverged"] for f in frames)
        return out

    for rate in contender.rates():
        out = trial(rate)
    factor = contender.grid.get("factor", GRID["factor"])
    for added in range(contender.extend):
        rate = next_rate(out, name, factor)
        if rate is None:
            tick(contender.extend - added)  # the planned extensions it did not need
            break
        out = trial(rate)
    return out


def _every_seed(name, contender, rate, trials, setting, kwargs, tick) -> pd.DataFrame:
    have = set(trials.loc[np.isclose(trials["rate"], rate, rtol=1e-12, atol=0), "seed"])
    missing = [seed for seed in setting.seeds if seed not in have]
    batches = [missing] if contender.elementwise else [[seed] for seed in missing]
    pool = trials
    for seeds in filter(None, batches):  # one batch: stacked where run can; else one by one
        more = with_seeds(pool, name, contender.optimizer_at, rate, seeds, **kwargs)
        pool = pd.concat([pool, more], ignore_index=True)
        tick(len(seeds))
    # every seed has run by now: this only gathers them
    tuned = with_seeds(pool, name, contender.optimizer_at, rate, setting.seeds, **kwargs)
    tuned = tuned.assign(run=name)
    tuned.attrs["diverged"] = _diverged(tuned)
    return tuned


def _diverged(frame: pd.DataFrame) -> bool:
    """Whether a seed of ``frame`` diverged (its ``diverged`` column, which concat keeps)."""
    return "diverged" in frame and bool(frame["diverged"].eq(True).any())


def race_one(
    name: str,
    contender: Contender,
    setting: Setting,
    *,
    done: Callable[[int], None] | None = None,
) -> RaceRuns:
    """Race one contender: its trials, its best rate on validation, that rate with every seed.

    The trials are :func:`lr_sweep`, one seed each, on the contender's grid and on the rates
    :func:`next_rate` adds beyond its ends (at most ``contender.extend``); :func:`best_rates` chooses
    on the final validation accuracy; :func:`with_seeds` runs the chosen rate with every seed of
    ``setting``, reusing the seed-0 trial. A contender that fails is a result, not an error:
    one whose factory or ``step`` raises, or that diverges at every rate, ends as a failed
    :class:`RaceRuns` with a one-line ``status``.

    Args:
        name: the contender's name.
        contender: what to race.
        setting: the data and training (:func:`setting`).
        done: called with 1 after every trained run, with the number of added rates the grid
            did not need, and once with the number of planned runs a failure left untrained, so
            the calls add up to :func:`planned_runs`.

    Returns:
        The contender's :class:`RaceRuns`.
    """
    done = done or (lambda n: None)
    trained = 0

    def tick(n: int) -> None:
        nonlocal trained
        trained += n  # runs trained, or planned and not needed: a failure ticks the rest
        done(n)

    kwargs = dict(setting.run_kwargs(), make_schedule=setting.make_schedule(contender))
    steps, rates = len(setting.loaders["train"]), contender.rates()
    n_val = setting.loaders["val"].n_examples
    empty = pd.DataFrame()
    trials = empty
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)  # the frames record it
            trials = _trials(name, contender, setting, kwargs, tick)
            rates = sorted(set(trials["rate"]))
            best = best_rates(trials).loc[name]
            if best["score"] == -math.inf:
                done(planned_runs(contender, setting) - trained)
                return RaceRuns(
                    name, rates, trials, empty, None, "-", ALL_DIVERGED, steps, val_examples=n_val
                )
            rate = float(best["rate"])
            tuned = _every_seed(name, contender, rate, trials, setting, kwargs, tick)
    except Exception as err:  # a reader's optimizer may raise anything: a result of the race
        done(planned_runs(contender, setting) - trained)
        status = f"raised: {_one_line(err)}"
        return RaceRuns(name, rates, trials, empty, None, "-", status, steps, val_examples=n_val)
    edge = _edge(rate, rates, bool(best["at_edge"]))
    return RaceRuns(name, rates, trials, tuned, rate, edge, OK, steps, val_examples=n_val)


def run_race(
    contenders: Mapping[str, Contender],
    setting: Setting,
    *,
    cache: Path | str | None = None,
    fresh: bool = False,
    done: Callable[[int], None] | None = None,
) -> dict[str, RaceRuns]:
    """Race every contender (:func:`race_one`), reading and writing a cache when given one.

    Args:
        contenders: ``{name: Contender}``, e.g. :func:`field` or a part of it.
        setting: the data and training.
        cache: a folder of cached runs (:func:`cache_dir`), or None: train everything.
        fresh: ignore the cache's runs and overwrite them.
        done: the progress callback of :func:`race_one` (cached contenders do not call it).

    Returns:
        ``{name: RaceRuns}`` in the order of ``contenders``; a cached one has ``cached=True``.
    """
    hits = {} if cache is None or fresh else load_cached(contenders, setting, cache)
    results = {}
    for name, contender in contenders.items():
        if name in hits:
            results[name] = hits[name]
            continue
        results[name] = race_one(name, contender, setting, done=done)
        if cache is not None:
            _save(results[name], contender, setting, Path(cache))
    return results


def default_target(results: Mapping[str, RaceRuns]) -> tuple[float, str]:
    r"""The page's target: the baseline's mean final validation accuracy :math:`p`, less the
    standard error of one run's accuracy on the validation split, :math:`\sqrt{p (1 - p) / n}`
    for its :math:`n` images, rounded down to 0.5 points; the baseline is AdamW when it has a
    result, else the leader (best on test).

    The margin keeps a run that trains as well as the baseline from missing the target by the
    noise of the split alone. Without the split's size (``val_examples`` None) there is no margin.

    Returns:
        ``(target, the rule in words)``.
    """
    ok = {name: r for name, r in results.items() if r.ok}
    tuned = pd.concat([r.tuned for r in ok.values()], ignore_index=True)
    baseline = "AdamW" if "AdamW" in ok else final_scores(tuned).index[0]
    value = final_scores(tuned, "val Accuracy").loc[baseline, "mean"]
    n = ok[baseline].val_examples
    error = math.sqrt(value * (1 - value) / n) if n else 0.0
    target = float(np.floor((value - error) * 200 + 1e-9) / 200)
    margin = (
        f", less one standard error of a run's accuracy on the {n:,} validation images "
        f"({100 * error:.1f} points)"
        if n
        else ""
    )
    return target, (
        f"{baseline}'s mean final validation accuracy{margin}, rounded down to a multiple of "
        "0.5 points"
    )


def _verdict(tuned: pd.DataFrame, name: str, leader: str) -> tuple[float, float, str]:
    if name == leader:
        return 0.0, math.nan, "leader"
    c = compare(tuned, name, leader)
    if c.seeds < 2 or math.isnan(c.half_width):
        return c.difference, c.half_width, "no interval (1 seed)"
    if not c.differs:
        return c.difference, c.half_width, "within the noise"
    return c.difference, c.half_width, "below the leader" if c.difference < 0 else "above"


def leaderboard(results: Mapping[str, RaceRuns], target: float | None = None) -> pd.DataFrame:
    """One row per contender, best first: its final test accuracy and how sure that is.

    Columns: ``test acc.`` (mean over seeds of the last epoch's test accuracy) and ``±`` (the
    half-width of its 95% t-interval, :func:`idlmam.stats.final_scores`); ``seeds``;
    ``vs leader`` and ``vs leader ±`` (the difference to the leader, the best mean, paired by
    seed, :func:`idlmam.stats.compare`) and ``verdict`` (``leader``, ``within the noise``
    where the interval covers 0, ``below the leader``); ``steps to target`` (mean over the
    seeds that reached it, :func:`time_to_target`) and ``reached`` (how many seeds did);
    ``rate`` (the chosen rate), ``edge`` (``bottom``/``top``: at an end of its grid) and
    ``status``. Accuracies are fractions. Failed contenders come last, with NaNs.

    Args:
        results: ``{name: RaceRuns}`` of :func:`run_race`.
        target: the validation accuracy to reach; None: :func:`default_target`.

    Returns:
        The table, indexed by ``optimizer``; ``attrs["target"]`` and ``attrs["target_rule"]``.
    """
    ok = [r for r in results.values() if r.ok]
    rows = {}
    rule = "given"
    if ok:
        tuned = pd.concat([r.tuned for r in ok], ignore_index=True)
        scores = final_scores(tuned)
        if target is None:
            target, rule = default_target(results)
        reach = time_to_target(tuned, target)
        leader = scores.index[0]
        for name in scores.index:
            r = results[name]
            diff, half, verdict = _verdict(tuned, name, leader)
            rows[name] = {
                "test acc.": scores.loc[name, "mean"],
                "±": scores.loc[name, "half_width"],
                "seeds": int(scores.loc[name, "seeds"]),
                "vs leader": diff,
                "vs leader ±": half,
                "verdict": verdict,
                "steps to target": reach.loc[name, "epochs"] * r.steps_per_epoch,
                "reached": f"{reach.loc[name, 'reached']}/{reach.loc[name, 'seeds']}",
                "rate": r.rate,
                "edge": r.edge,
                "status": r.status,
            }
    for r in results.values():
        if r.name not in rows:
            rows[r.name] = {"seeds": 0, "verdict": "-", "reached": "-", "edge": "-"}
            rows[r.name]["status"] = r.status
    board = pd.DataFrame.from_dict(rows, orient="index").rename_axis("optimizer")
    board["seeds"] = board["seeds"].astype(int)
    board.attrs.update(target=target, target_rule=rule)
    return board


def readable(board: pd.DataFrame, mine: str | None = None) -> pd.DataFrame:
    """:func:`leaderboard` as text: percentages and points, "not reached", ``mine`` marked *.

    Args:
        board: a :func:`leaderboard`.
        mine: the name to mark with a star (the reader's optimizer), if any.

    Returns:
        A frame of strings, indexed by ``optimizer``: ``test acc. (%)``, ``vs leader
        (points)``, ``verdict``, ``steps to target``, ``rate``, ``edge``, ``status``.
    """

    def pm(mean, half, sign=""):
        if pd.isna(mean):
            return "-"
        tail = "" if pd.isna(half) else f" ± {100 * half:.2f}"
        return f"{round(100 * mean, 2) + 0.0:{sign}.2f}{tail}"  # + 0.0: no "-0.00"

    shown = pd.DataFrame(index=[f"{n} *" if n == mine else n for n in board.index])
    shown["test acc. (%)"] = [pm(m, h) for m, h in zip(board["test acc."], board["±"])]
    shown["vs leader (points)"] = [
        pm(d, h, "+") for d, h in zip(board["vs leader"], board["vs leader ±"])
    ]
    shown["verdict"] = board["verdict"].to_numpy()
    shown["steps to target"] = [
        "-" if status != "ok" else "not reached" if pd.isna(steps) else f"{steps:.0f} ({reached})"
        for steps, reached, status in zip(
            board["steps to target"], board["reached"], board["status"]
        )
    ]
    shown["rate"] = [("-" if pd.isna(r) else f"{r:.2g}") for r in board["rate"]]
    shown["edge"] = board["edge"].to_numpy()
    shown["status"] = board["status"].to_numpy()
    return shown.rename_axis("optimizer")


# What a step costs ------------------------------------------------------------------------------


def step_costs(
    makers: Mapping[str, Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer]],
    *,
    make_model: Callable[[], torch.nn.Module] = mlp,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    steps: int = 20,
    rounds: int = 5,
    reference: str | None = None,
    device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """Seconds per training step of each optimizer, timed in interleaved rounds.

    A step is what training does per batch: forward, loss, backward and the optimizer's step,
    here on one fixed batch. Each optimizer steps its own copy of one model (the same initial
    weights). A round times ``steps`` steps of every optimizer in turn, so that a change in the
    machine's load during the measurement falls on all of them alike; the first round warms up
    and is dropped. An optimizer with ``train()`` (schedule-free) is put in training mode.

    Args:
        makers: ``{name: params -> optimizer}``.
        make_model: the network (default: the chapter's MLP).
        batch: ``(x, y)``; default 256 random 784-pixel images and labels among 10 classes.
        steps: steps per optimizer per round.
        rounds: rounds kept (one more is run first, to warm up).
        reference: a name of ``makers``: each round's times are also divided by its time.
        device: where to step.

    Returns:
        A frame indexed by name: ``ms per step`` (median over the rounds), ``ms min``,
        ``ms max``; with ``reference``, ``x ref`` (the median over the rounds of the ratio within
        each round), ``x min`` and ``x max``.

    Raises:
        ValueError: ``steps`` or ``rounds`` below 1, or ``reference`` not in ``makers``.

    Example:
        >>> costs = step_costs({"SGD": lambda p: torch.optim.SGD(p, lr=0.1)}, steps=2, rounds=1)
        >>> list(costs.columns)
        ['ms per step', 'ms min', 'ms max']
    """
    if steps < 1 or rounds < 1:
        raise ValueError(f"need steps >= 1 and rounds >= 1; got steps={steps}, rounds={rounds}")
    if reference is not None and reference not in makers:
        raise ValueError(f"reference {reference!r} is not one of {list(makers)}")
    torch.manual_seed(0)
    base = make_model().to(device)
    if batch is None:
        batch = (torch.randn(BATCH_SIZE, 784), torch.randint(0, 10, (BATCH_SIZE,)))
    x, y = (t.to(device) for t in batch)
    models, optimizers = {}, {}
    for name, make in makers.items():
        models[name] = copy.deepcopy(base)
        optimizers[name] = make(list(models[name].parameters()))
        if hasattr(optimizers[name], "train"):
            optimizers[name].train()
    times = {name: [] for name in makers}
    for _ in range(rounds + 1):
        for name in makers:
            model, optimizer = models[name], optimizers[name]
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / steps)
    kept = pd.DataFrame({name: t[1:] for name, t in times.items()})  # rows: rounds
    out = pd.DataFrame(
        {
            "ms per step": 1000 * kept.median(),
            "ms min": 1000 * kept.min(),
            "ms max": 1000 * kept.max(),
        }
    )
    if reference is not None:
        ratios = kept.div(kept[reference], axis=0)
        out["x ref"], out["x min"], out["x max"] = ratios.median(), ratios.min(), ratios.max()
    return out


# The cache of the field's runs ------------------------------------------------------------------


def cache_dir(setting: Setting) -> Path:
    """Where the race caches ``setting``'s runs: ``$IDL_CACHE/race/<key>`` (default
    ``~/.cache/idlmam``), the key being the budget, the package's version and the device type.
    """
    from .. import __version__

    root = Path(os.environ.get("IDL_CACHE") or Path.home() / ".cache" / "idlmam").expanduser()
    device = torch.device(setting.device).type
    return root / "race" / f"{setting.budget}-{__version__}-{device}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "contender"


def _meta_key(name: str, contender: Contender, setting: Setting) -> dict:
    return {
        "name": name,
        "rates": contender.rates(),
        "extend": contender.extend,
        "decays": contender.decays,
        **setting.key(),
    }


def _save(result: RaceRuns, contender: Contender, setting: Setting, cache: Path) -> None:
    if result.status.startswith("raised"):
        return  # perhaps this machine's trouble: try again next time
    cache.mkdir(parents=True, exist_ok=True)
    meta = {
        "key": _meta_key(result.name, contender, setting),
        "rate": result.rate,
        "edge": result.edge,
        "status": result.status,
        "diverged": [
            bool(result.trials.attrs.get("diverged")),
            bool(result.tuned.attrs.get("diverged")),
        ],
    }
    frames = [result.trials.assign(stage="trial")]
    if len(result.tuned):
        frames.append(result.tuned.assign(stage="tuned"))
    body = pd.concat(frames, ignore_index=True).to_csv(index=False, lineterminator="\n")
    meta["sha256"] = hashlib.sha256(body.encode("utf-8")).hexdigest()
    path = cache / f"{_slug(result.name)}.csv"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as file:
        file.write("# " + json.dumps(meta) + "\n" + body)
    os.replace(temporary, path)  # a reader never sees half a file


# pandas 3 reads floats back exactly by default, and deprecates asking for it
_EXACT = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _load(path: Path, name: str, contender: Contender, setting: Setting) -> RaceRuns | None:
    head, _, body = path.read_text(encoding="utf-8").partition("\n")
    meta = json.loads(head.removeprefix("# "))
    if meta["key"] != json.loads(json.dumps(_meta_key(name, contender, setting))):
        return None  # another setting or grid: stale, not corrupt
    if hashlib.sha256(body.encode("utf-8")).hexdigest() != meta["sha256"]:
        raise ValueError("its runs do not match their checksum")
    frame = pd.read_csv(io.StringIO(body), **_EXACT)
    parts = []
    for stage, diverged in zip(("trial", "tuned"), meta["diverged"]):
        part = frame[frame["stage"] == stage].drop(columns="stage").reset_index(drop=True)
        if "diverged" in part and part["diverged"].isna().all():
            part = part.drop(columns="diverged")  # the other stage's column
        part.attrs["diverged"] = diverged
        parts.append(part)
    if parts[0].empty or (meta["status"] == OK and parts[1].empty):
        raise ValueError("the file holds no runs")
    steps = len(setting.loaders["train"])
    rates = sorted(set(parts[0]["rate"]))  # the grid and the rates its rule added
    n_val = setting.loaders["val"].n_examples
    status = meta["status"]
    return RaceRuns(name, rates, *parts, meta["rate"], meta["edge"], status, steps, True, n_val)


def load_cached(
    contenders: Mapping[str, Contender], setting: Setting, cache: Path | str
) -> dict[str, RaceRuns]:
    """The contenders whose runs ``cache`` holds for this setting and grid.

    A file that cannot be read warns (:class:`RuntimeWarning`) and is left out, so that the
    contender is trained again; a file of another setting or grid is left out quietly.

    Returns:
        ``{name: RaceRuns}`` (with ``cached=True``) of those found.
    """
    found = {}
    for name, contender in contenders.items():
        path = Path(cache) / f"{_slug(name)}.csv"
        if not path.exists():
            continue
        try:
            hit = _load(path, name, contender, setting)
        except Exception as err:  # a truncated or edited file: train again
            warnings.warn(
                f"the cached runs of {name} ({path}) cannot be read ({_one_line(err)}): "
                "training them again",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        if hit is not None:
            found[name] = hit
    return found


# A reader's optimizer ---------------------------------------------------------------------------


class RaceInputError(ValueError):
    """A ``MODULE:NAME`` that does not give a usable optimizer; the message is one line."""


def _import(module: str):
    if module.endswith(".py") or "/" in module or os.sep in module:
        path = Path(module).expanduser().resolve()
        if not path.is_file():
            raise RaceInputError(f"no file {module!r}: give the path of a .py file, or a module")
        unique = f"idlmam_race_{_slug(path.stem)}_{abs(hash(path))}"
        spec = importlib.util.spec_from_file_location(unique, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[unique] = loaded  # dataclasses and pickling look the module up there
        sys.path.insert(0, str(path.parent))  # its own imports of files beside it, as `python x.py`
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[unique]
            raise
        return loaded
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does
    importlib.invalidate_caches()
    return importlib.import_module(module)


def _looks_like_optimizers(module) -> list[str]:
    names = []
    for key, value in vars(module).items():
        if key.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if (inspect.isclass(value) and issubclass(value, torch.optim.Optimizer)) or (
            inspect.isfunction(value)
        ):
            names.append(key)
    return names[:5]


def _factory(spec: str, obj) -> OptimizerAt:
    if inspect.isclass(obj):
        if not issubclass(obj, torch.optim.Optimizer):
            raise RaceInputError(
                f"{spec} is a class but not a torch.optim.Optimizer subclass: subclass "
                "torch.optim.Optimizer, or give a function (params, lr) -> optimizer"
            )

        def make(params, lr):
            return obj(params, lr=lr)

        return make
    if not callable(obj):
        raise RaceInputError(
            f"{spec} is a {type(obj).__name__}, neither a torch.optim.Optimizer subclass nor "
            "callable: give the optimizer's class, or a function (params, lr) -> optimizer"
        )
    return obj


def load_contender(spec: str, *, lr: float) -> tuple[str, Contender]:
    """The reader's optimizer named by ``MODULE:NAME``, checked once on a tiny model.

    ``MODULE`` is a dotted module importable from here (the current directory is on the path,
    as with ``python -m``) or the path of a ``.py`` file; ``NAME`` is a
    ``torch.optim.Optimizer`` subclass (built as ``NAME(params, lr=lr)``) or a function
    ``(params, lr) -> optimizer``. It takes the shared schedule, the field's grid around ``lr``,
    and its seeds train one at a time (``elementwise=False``).

    Args:
        spec: ``"MODULE:NAME"``.
        lr: its usual rate, the centre of its grid.

    Returns:
        ``(NAME, Contender)``.

    Raises:
        RaceInputError: with one line naming the problem and the fix: no colon; the module
            does not import; no ``NAME`` in it; ``NAME`` neither an optimizer class nor
            callable; building it on a tiny model's parameters raises or gives no optimizer.

    Example:
        >>> name, mine = load_contender("torch.optim:SGD", lr=0.1)
        >>> name, mine.rates()
        ('SGD', [0.1, 0.4, 1.6])
    """
    module_name, colon, name = spec.rpartition(":")
    if not colon or not module_name or not name:
        raise RaceInputError(
            f"{spec!r} is not MODULE:NAME: write e.g. myopt:MyOptimizer or path/to/myopt.py:MyOptimizer"
        )
    try:
        module = _import(module_name)
    except RaceInputError:
        raise
    except Exception as err:
        raise RaceInputError(
            f"cannot import {module_name!r} ({_one_line(err)}): fix the module, or run from the "
            "folder that holds it (or give its .py path)"
        ) from None
    if not hasattr(module, name):
        have = _looks_like_optimizers(module)
        hint = f"it has {', '.join(have)}" if have else "it defines no optimizer class or function"
        raise RaceInputError(f"{module_name!r} has no {name!r}: {hint}")
    make = _factory(spec, getattr(module, name))
    _probe(spec, make, lr)
    return name, Contender(lr, make, elementwise=False)


def _probe(spec: str, make: OptimizerAt, lr: float) -> None:
    model = mlp(hidden=8, layers=1)
    try:
        optimizer = make(model.parameters(), lr)
    except Exception as err:
        raise RaceInputError(
            f"{spec}(params, lr={lr:g}) on a small MLP's parameters raised {_one_line(err)}; "
            "it must build an optimizer from (params, lr)"
        ) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise RaceInputError(
            f"{spec}(params, lr={lr:g}) returned a {type(optimizer).__name__}, not a "
            "torch.optim.Optimizer: return the optimizer built on params"
        )
