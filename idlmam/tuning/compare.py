"""Reading finished studies for a comparison of samplers and pruners: best-so-far curves, compute.

Two questions a comparison asks of each study:

* how good was the best trial after 1, 2, ... trials (:func:`best_so_far`: concatenate the curves
  of several seeds with a ``seed`` column and hand them to seaborn for a band), and
* how much training did the search cost (:func:`epochs_spent`: what a pruner saves is the
  difference between this and trials x epochs).

Example:
    >>> import optuna
    >>> from optuna.distributions import FloatDistribution
    >>> study = optuna.create_study(direction="maximize")
    >>> for value, curve in [(0.5, [0.3, 0.5]), (0.4, [0.2, 0.4]), (0.7, [0.4, 0.6, 0.7])]:
    ...     study.add_trial(optuna.trial.create_trial(
    ...         value=value, params={"x": 0.0}, distributions={"x": FloatDistribution(0, 1)},
    ...         intermediate_values=dict(enumerate(curve, start=1))))
    >>> best_so_far(study).tolist(), epochs_spent(study)
    ([0.5, 0.5, 0.7], 7)
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
import pandas as pd
from optuna.trial import TrialState

__all__ = ["SPENT_STATES", "best_so_far", "epochs_spent"]

#: The trial states whose epochs :func:`epochs_spent` counts by default: every trial that ran to
#: its end or was stopped on the way (a FAIL trial's epochs are counted only when asked for).
SPENT_STATES: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)


def best_so_far(study: optuna.Study) -> pd.Series:
    """The best value among the completed trials so far, after each completed trial.

    Trials are taken in the order of their numbers (the order a sequential study ran them); only
    COMPLETE trials have a value, so pruned, failed and running ones are left out. "Best" follows
    the study's direction (the highest value for ``maximize``, the lowest for ``minimize``).

    Args:
        study: a single-objective study, in any storage.

    Returns:
        A float ``Series`` named ``"best value"``, indexed by trial number (index name
        ``"trial"``), non-decreasing for ``maximize`` and non-increasing for ``minimize``;
        empty when no trial completed. For bands over seeds::

            curves = pd.concat({seed: best_so_far(s) for seed, s in studies.items()},
                               names=["seed"]).reset_index()
            seaborn.lineplot(curves, x="trial", y="best value")

    Raises:
        ValueError: the study has more than one objective.

    Example:
        >>> import optuna
        >>> study = optuna.create_study(direction="minimize")
        >>> for x in [3.0, 1.0, 2.0, 0.5]:
        ...     study.enqueue_trial({"x": x})
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 5), n_trials=4)
        >>> best_so_far(study).tolist()
        [3.0, 1.0, 1.0, 0.5]
    """
    if len(study.directions) > 1:
        raise ValueError(
            "best_so_far needs a single-objective study; this one has "
            f"{len(study.directions)} objectives"
        )
    trials = sorted(
        study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number
    )
    values = pd.Series(
        [float(t.value) for t in trials],
        index=pd.Index([t.number for t in trials], name="trial", dtype="int64"),
        name="best value",
        dtype="float64",
    )
    if study.direction == optuna.study.StudyDirection.MINIMIZE:
        return values.cummin()
    return values.cummax()


def epochs_spent(study: optuna.Study, states: Sequence[TrialState] = SPENT_STATES) -> int:
    """The epochs every trial of ``study`` trained, all together: the compute the search cost.

    A trial's epochs are the steps it reported (``len(trial.intermediate_values)``: one report
    per epoch, as :func:`~idlmam.tuning.objective.make_objective` makes them), or, when the
    trial recorded it, its user attribute ``epochs_trained`` (which also counts an epoch whose
    score was not reported, such as the one in which a run diverged). A pruned trial counts the
    epochs it ran before it was stopped, so with a pruner this is below ``trials x epochs``.

    Args:
        study: the study, in any storage.
        states: the trial states to count (default :data:`SPENT_STATES`: complete and pruned).

    Returns:
        The number of epochs, 0 for a study without such trials.

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> def objective(trial):
        ...     for epoch in range(1, 4):
        ...         trial.report(0.1 * epoch, epoch)
        ...     return 0.3
        >>> study.optimize(objective, n_trials=2)
        >>> epochs_spent(study)
        6
    """
    total = 0
    for trial in study.get_trials(deepcopy=False, states=tuple(states)):
        epochs = trial.user_attrs.get("epochs_trained")
        total += int(epochs) if epochs is not None else len(trial.intermediate_values)
    return total
