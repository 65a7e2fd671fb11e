"""Samplers and pruners by name: what proposes the next trial, and what stops a hopeless one early.

Pages compare samplers and pruners by name, so both come from one place, with the settings the
book uses stated here rather than left to Optuna's defaults of the day.

==========  ==================================================================================
sampler     what proposes the next trial
==========  ==================================================================================
``random``  :class:`~optuna.samplers.RandomSampler`: independent uniform draws; the baseline
``tpe``     :class:`~optuna.samplers.TPESampler`, multivariate with constant liar
            (:data:`TPE_DEFAULTS`)
``gp``      :class:`~optuna.samplers.GPSampler`: a Gaussian-process model with expected
            improvement (needs scipy and torch)
``cmaes``   :class:`~optuna.samplers.CmaEsSampler`: an evolution strategy that moves and reshapes
            a Gaussian over the search space (needs the ``cmaes`` package)
``qmc``     :class:`~optuna.samplers.QMCSampler`: quasi-random search, a scrambled Sobol sequence
            (:data:`QMC_DEFAULTS`), spread more evenly over the space than independent draws
==========  ==================================================================================

=============  ===============================================================================
pruner         what stops a trial
=============  ===============================================================================
``none``       :class:`~optuna.pruners.NopPruner`: nothing; every trial runs all its epochs
``median``     :class:`~optuna.pruners.MedianPruner`: below the median of earlier trials at the
               same epoch
``halving``    :class:`~optuna.pruners.SuccessiveHalvingPruner` (asynchronous successive
               halving, ASHA): outside the top ``1/reduction_factor`` at its rung's epoch
``hyperband``  :class:`~optuna.pruners.HyperbandPruner`: several ASHA brackets with different
               first rungs
``wilcoxon``   :class:`~optuna.pruners.WilcoxonPruner`: a signed-rank test says the trial is
               worse than the best one *on the same instances* (folds, seeds), not epochs
=============  ===============================================================================

``wilcoxon`` reads one score per *instance* (a fold, a training seed; ``step`` is its id), the
others a learning curve (``step`` is the epoch, as :func:`~idlmam.tune.objective.make_objective`
reports); :func:`make_pruner` refuses a pruner that cannot read what the objective reports
(:func:`~idlmam.tune.folds.make_fold_objective` reports per fold). A seeded sampler repeats its
trials when they run one after another; ``HyperbandPruner`` also needs a fixed study name.

Example:
    >>> import optuna
    >>> study = optuna.create_study(sampler=make_sampler("cmaes", seed=0),
    ...                             pruner=make_pruner("median"))
    >>> type(study.sampler).__name__, type(study.pruner).__name__
    ('CmaEsSampler', 'MedianPruner')
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Iterator
from typing import Any

import optuna

__all__ = [
    "SAMPLERS",
    "PRUNERS",
    "REPORTS",
    "TPE_DEFAULTS",
    "QMC_DEFAULTS",
    "make_sampler",
    "make_pruner",
    "quiet_experimental",
]


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Ignore Optuna's ExperimentalWarning inside the block.

    Optuna marks parts the book relies on experimental: the heartbeat that recovers the trials
    of dead workers (``heartbeat_interval``, ``RetryHeartbeatStaleTrialCallback``,
    ``fail_stale_trials``), multivariate TPE, ``GPSampler``, ``QMCSampler``, ``WilcoxonPruner``.
    The warning would only repeat that on every worker's stderr, with nothing for the reader to
    change.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


#: The names :func:`make_sampler` knows.
SAMPLERS: tuple[str, ...] = ("random", "tpe", "gp", "cmaes", "qmc")
#: The names :func:`make_pruner` knows.
PRUNERS: tuple[str, ...] = ("none", "median", "halving", "hyperband", "wilcoxon")
#: What an objective may report to its pruner (``make_pruner(..., reports=...)``): ``"epochs"``,
#: a learning curve (``step`` = epoch, as :func:`~idlmam.tune.objective.make_objective`
#: reports), or ``"instances"``, one score per fold, seed or problem (``step`` = its id).
REPORTS: tuple[str, ...] = ("epochs", "instances")

#: The settings of Optuna 5's default ``TPESampler()`` (Optuna 4.9 defaulted to False for both).
TPE_DEFAULTS: dict[str, Any] = {"multivariate": True, "constant_liar": True}

#: The settings of the ``"qmc"`` sampler: a *scrambled* Sobol sequence, the quasi-random search
#: the Tuning Playbook recommends for exploring (Godbole et al. 2023). Optuna's own default is
#: unscrambled, where every seed gives the same points: scrambling with the seed makes studies of
#: different seeds independent draws of an evenly spread sequence, so they can be repeated and
#: compared like random search's.
QMC_DEFAULTS: dict[str, Any] = {"qmc_type": "sobol", "scramble": True}

_READS = {  # what each pruner reads; "none" reads nothing and suits either
    "median": "epochs",
    "halving": "epochs",
    "hyperband": "epochs",
    "wilcoxon": "instances",
}


def _check_name(kind: str, name: Any, names: tuple[str, ...]) -> str:
    if not isinstance(name, str) or name.lower() not in names:
        raise ValueError(f"unknown {kind} {name!r}: choose one of {', '.join(names)}")
    return name.lower()


def make_sampler(name: str, seed: int | None = 0, **kwargs: Any) -> optuna.samplers.BaseSampler:
    """The sampler called ``name`` (see the table in the module docstring), seeded with ``seed``.

    Args:
        name: one of :data:`SAMPLERS`: ``"random"``, ``"tpe"``, ``"gp"``, ``"cmaes"``,
            ``"qmc"`` (case-insensitive).
        seed: the sampler's seed (``None``: a fresh random one). The same seed and the same
            sequential trials give the same proposals.
        **kwargs: more arguments for the Optuna class, e.g. ``n_startup_trials=5`` (the random
            trials TPE and GP start with, 10 by default; CMA-ES starts after 1). For ``"tpe"``
            they override :data:`TPE_DEFAULTS`, for ``"qmc"`` :data:`QMC_DEFAULTS` (its first
            trial is drawn by a ``RandomSampler`` with the same seed, the Sobol points after it).

    Returns:
        A new ``optuna.samplers`` object (a sampler keeps state: one per study).

    Raises:
        ValueError: ``name`` is not one of :data:`SAMPLERS` (the message lists them), or ``seed``
            is not a whole number.
        TypeError: ``kwargs`` holds an argument the Optuna class does not take.
        ImportError: ``"cmaes"`` without the ``cmaes`` package (``pip install cmaes``; it is in
            idlmam's ``tune`` extra).

    Example:
        >>> sampler = make_sampler("tpe", seed=1)
        >>> sampler._multivariate, sampler._constant_liar
        (True, True)
        >>> make_sampler("grid")
        Traceback (most recent call last):
        ...
        ValueError: unknown sampler 'grid': choose one of random, tpe, gp, cmaes, qmc
        >>> make_sampler("qmc", seed=1)._scramble
        True
    """
    name = _check_name("sampler", name, SAMPLERS)
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"seed must be a whole number or None, got {seed!r}")
    samplers = optuna.samplers
    with quiet_experimental():  # Optuna marks multivariate TPE, GPSampler, QMCSampler experimental
        if name == "random":
            return samplers.RandomSampler(seed=seed, **kwargs)
        if name == "tpe":
            return samplers.TPESampler(seed=seed, **{**TPE_DEFAULTS, **kwargs})
        if name == "gp":
            return samplers.GPSampler(seed=seed, **kwargs)
        if name == "qmc":
            return samplers.QMCSampler(seed=seed, **{**QMC_DEFAULTS, **kwargs})
        if importlib.util.find_spec("cmaes") is None:  # Optuna would fail only at trial 2
            raise ImportError(
                "the 'cmaes' sampler needs the cmaes package: pip install cmaes "
                "(or idlmam's tune extra: pip install -e '.[tune]')"
            )
        return samplers.CmaEsSampler(seed=seed, **kwargs)


def make_pruner(name: str, *, reports: str = "epochs", **kwargs: Any) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` (see the module docstring), for an objective that ``reports``.

    Args:
        name: one of :data:`PRUNERS`: ``"none"``, ``"median"``, ``"halving"``, ``"hyperband"``,
            ``"wilcoxon"`` (case-insensitive).
        reports: what the objective passes to ``trial.report(value, step)``: ``"epochs"`` (a
            learning curve, ``step`` = epoch: the book's
            :func:`~idlmam.tune.objective.make_objective`) or ``"instances"`` (one score per
            fold, seed or problem, ``step`` = its id). ``"wilcoxon"`` needs ``"instances"``; the
            others need ``"epochs"``; ``"none"`` takes either.
        **kwargs: arguments for the Optuna class, e.g. ``n_startup_trials=3`` (median),
            ``reduction_factor=3`` (halving, hyperband), ``p_threshold=0.05`` (wilcoxon).

    Returns:
        A new ``optuna.pruners`` object.

    Raises:
        ValueError: ``name`` is not one of :data:`PRUNERS` or ``reports`` not one of
            :data:`REPORTS` (the message lists them), or the pruner cannot read what the
            objective reports (the message says what it would need).
        TypeError: ``kwargs`` holds an argument the Optuna class does not take.

    Example:
        >>> make_pruner("halving", reduction_factor=3)._reduction_factor
        3
        >>> type(make_pruner("wilcoxon", reports="instances")).__name__
        'WilcoxonPruner'
        >>> make_pruner("wilcoxon")
        Traceback (most recent call last):
        ...
        ValueError: the wilcoxon pruner reads one score per instance ...
    """
    name = _check_name("pruner", name, PRUNERS)
    reports = _check_name("reports value", reports, REPORTS)
    needs = _READS.get(name, reports)
    if needs != reports:
        if name == "wilcoxon":
            raise ValueError(
                "the wilcoxon pruner reads one score per instance (step = the id of a fold, seed "
                "or problem, the same ids in every trial) and pairs them with the best trial's; "
                "a learning curve's epochs are not paired instances, and make_objective reports "
                "one validation score per epoch. Report per instance and pass "
                "reports='instances', or prune a learning curve with one of "
                "median, halving, hyperband"
            )
        raise ValueError(
            f"the {name} pruner compares learning curves epoch by epoch (step = epoch); an "
            "objective that reports one score per instance needs the wilcoxon pruner "
            "(or none)"
        )
    pruners = optuna.pruners
    with quiet_experimental():  # WilcoxonPruner is experimental
        if name == "none":
            if kwargs:
                raise TypeError(f"the none pruner takes no arguments, got {sorted(kwargs)}")
            return pruners.NopPruner()
        if name == "median":
            return pruners.MedianPruner(**kwargs)
        if name == "halving":
            return pruners.SuccessiveHalvingPruner(**kwargs)
        if name == "hyperband":
            return pruners.HyperbandPruner(**kwargs)
        return pruners.WilcoxonPruner(**kwargs)
