"""Cross-validated objectives: one score per fold, reported per fold, for ``WilcoxonPruner``.

The book's :func:`~idlmam.tune.objective.make_objective` reports a learning curve (one value
per epoch), which the median, successive-halving and Hyperband pruners read. ``WilcoxonPruner``
reads something else: one score per *instance*, the same instances in every trial, paired with
the best trial's scores on them (see :mod:`idlmam.tune.samplers`). The instances here are the
folds of k-fold cross-validation: :func:`kfold_loaders` cuts the images into ``k`` folds, and the
objective of :func:`make_fold_objective` trains one network per fold (on the other ``k - 1``),
scores it on that fold, reports the score with the fold's id as the step, and returns the mean
over the folds. A trial the pruner stops returns the mean of the folds it scored, as Optuna
advises, so that the sampler still learns from it.

Example:
    >>> import torch
    >>> folds = kfold_loaders(torch.zeros(10, 1, 28, 28), torch.arange(10) % 2, 5)
    >>> [(train.n_examples, val.n_examples) for train, val in folds]
    [(8, 2), (8, 2), (8, 2), (8, 2), (8, 2)]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import optuna

from .objective import BY_DIVERGENCE, STOP_REASON, STOPPED_BY, check_epochs, train_trial

if TYPE_CHECKING:  # pragma: no cover - for the type hints only
    import torch

    from ..data import ResidentLoader
    from .objective import Builder

__all__ = ["FOLDS_SCORED", "kfold_loaders", "make_fold_objective"]

#: The user attribute holding how many folds a trial of :func:`make_fold_objective` scored: all
#: of them, or fewer when the pruner stopped it.
FOLDS_SCORED = "folds_scored"


def kfold_loaders(
    X: torch.Tensor,
    y: torch.Tensor,
    folds: int,
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> list[tuple[ResidentLoader, ResidentLoader]]:
    """Cut ``(X, y)`` into ``folds`` folds: one ``(train_loader, val_loader)`` pair per fold.

    The examples are shuffled once with ``seed`` and cut into ``folds`` parts whose sizes differ by
    at most one; pair ``i`` validates on part ``i`` and trains on all the others, so every example
    is validated on exactly once and never trained on in the same pair.

    Args:
        X: inputs, first dimension the examples.
        y: labels, same first dimension.
        folds: how many folds (at least 2, at most the number of examples).
        seed: seed of the cut and of each training loader's batch order.
        batch_size: examples per training batch.
        device: where the tensors live (``None``: where ``X`` is).

    Returns:
        ``folds`` pairs of :class:`idlmam.data.ResidentLoader`, the training one shuffling.

    Raises:
        ValueError: ``folds`` is not a whole number from 2 to ``len(X)``, or ``X`` and ``y``
            differ in length.

    Example:
        >>> import torch
        >>> X, y = torch.arange(7.0).reshape(7, 1), torch.arange(7)
        >>> pairs = kfold_loaders(X, y, 3)
        >>> [val.y.tolist() for _, val in pairs]  # every example validated on once
        [[4, 0, 5], [3, 2], [6, 1]]
        >>> [sorted(train.y.tolist()) for train, _ in pairs][0]  # and trained on elsewhere
        [1, 2, 3, 6]
    """
    import torch

    from ..data import ResidentLoader

    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}: they must match")
    if not isinstance(folds, int) or isinstance(folds, bool) or not 2 <= folds <= n:
        raise ValueError(
            f"folds must be a whole number from 2 to {n} (the examples), got {folds!r}"
        )
    device = X.device if device is None else device
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = torch.tensor_split(order, folds)
    pairs = []
    for i, part in enumerate(parts):
        rest = torch.cat([p for j, p in enumerate(parts) if j != i])
        train = ResidentLoader(X[rest], y[rest], batch_size, shuffle=True, seed=seed, device=device)
        pairs.append((train, ResidentLoader(X[part], y[part], 1024, device=device)))
    return pairs


def make_fold_objective(
    folds: Sequence[tuple],
    *,
    epochs: int,
    build: Builder | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    prune: bool = False,
    shuffle: bool = True,
) -> Callable[[optuna.Trial], float]:
    """An objective that cross-validates what ``build`` makes of a trial, one report per fold.

    For each fold ``i`` (a ``(train_loader, val_loader)`` pair from :func:`kfold_loaders`) the
    trial's network is built and trained for ``epochs`` on the fold's training loader, from the
    same seed (weights and batch order) in every fold and every trial, and scored by its
    validation accuracy after the last epoch; ``trial.report(score, i)`` files the score under
    the fold's id. With ``prune=True`` the study's pruner is asked after each fold
    (``WilcoxonPruner``: is this trial worse than the best on the folds both have scored?); a
    trial it stops ends COMPLETE with the mean of the folds it scored, Optuna's advice for this
    pruner, so the sampler learns from it. Returns the mean of the fold scores.

    The folds run in a shuffled order (``shuffle``): a permutation drawn from ``seed`` and the
    trial's number, so that no fold is always judged first, and a trial is reproducible.

    Every trial records ``epochs_trained`` (all its folds' epochs together, what
    :func:`~idlmam.tune.compare.epochs_spent` counts) and ``folds_scored``
    (:data:`FOLDS_SCORED`). A fold whose training diverged (its validation score is not finite)
    stops the trial as PRUNED with ``stopped_by = "divergence"``, as
    :func:`~idlmam.tune.objective.make_objective` does.

    Args:
        folds: the folds, ``(train_loader, val_loader)`` pairs; at least 2.
        epochs: epochs per fold.
        build: ``build(trial, epochs) -> (model, optimizer, lr_schedule)``
            (``None``: :func:`~idlmam.tune.objective.mlp_search`, the chapter's search).
        device: where to train.
        seed: seed of every fold's weights and batch order, and of the folds' order.
        prune: consult the study's pruner after every fold.
        shuffle: run the folds in a shuffled order (``False``: in their order).

    Returns:
        ``objective(trial) -> float``: the mean validation accuracy over the folds scored.

    Raises:
        ValueError: fewer than 2 folds, or ``epochs`` below 1.

    Example:
        >>> objective = make_fold_objective(kfold_loaders(X, y, 5), epochs=2,
        ...                                 prune=True)                     # doctest: +SKIP
        >>> study = create_study(pruner=make_pruner("wilcoxon", reports="instances"))  # doctest: +SKIP
        >>> study.optimize(objective, n_trials=10)                           # doctest: +SKIP
    """
    import numpy as np

    from .objective import mlp_search

    epochs = check_epochs(epochs)
    folds = list(folds)
    if len(folds) < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {len(folds)}")
    build = mlp_search() if build is None else build

    def objective(trial: optuna.Trial) -> float:
        order = range(len(folds))
        if shuffle:
            order = np.random.default_rng([seed, trial.number]).permutation(len(folds)).tolist()
        scores: list[float] = []
        spent = 0
        for i in order:
            train_loader, val_loader = folds[i]
            results = train_trial(  # a diverged fold is an outcome, kept in stopped_by
                build, trial, train_loader, val_loader, epochs=epochs, device=device, seed=seed
            )
            spent += len(results)
            score = float(results["val Accuracy"].iloc[-1])
            if not math.isfinite(score):
                trial.set_user_attr("epochs_trained", spent)
                trial.set_user_attr(FOLDS_SCORED, len(scores))
                trial.set_user_attr(STOPPED_BY, BY_DIVERGENCE)
                reason = f"diverged: fold {i} scored {score} after {len(results)} epoch(s)"
                trial.set_user_attr(STOP_REASON, reason)
                raise optuna.TrialPruned(reason)
            scores.append(score)
            trial.report(score, i)
            if prune and _should_prune(trial):
                break
        trial.set_user_attr("epochs_trained", spent)
        trial.set_user_attr(FOLDS_SCORED, len(scores))
        return sum(scores) / len(scores)

    return objective


def _should_prune(trial: optuna.Trial) -> bool:
    """``trial.should_prune()``, without SciPy's notice (older SciPy, ties among the scores)
    that the signed-rank test of a few folds falls back on its normal approximation: with k
    folds there are only k paired scores, which is how the pruner is meant to be used."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "Sample size too small for normal approximation", UserWarning
        )
        return trial.should_prune()
