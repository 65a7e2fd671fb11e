"""Reading finished studies for a comparison of samplers and pruners: best-so-far curves, compute.

Two questions a comparison asks of each study:

* how good was the best trial after 1, 2, ... trials (:func:`best_so_far`; for several
  independent studies of one sampler, :func:`best_so_far_band` gives their mean curve and a
  t-interval around it), and
* how much training did the search cost (:func:`epochs_spent`: what a pruner saves is the
  difference between this and trials x epochs; :func:`best_by_epochs` draws the best value found
  against the epochs spent so far).

Over several studies per pruner, :func:`savings_sentence` says in words what a pruner saved and
what it kept, each with its interval over the studies.

To compare pruners at *equal compute* rather than at equal trials, give every study the same
budget of epochs: :func:`stop_at_epochs` is a callback that stops a study once it has spent it
(a pruned study then runs more trials, and different ones), :func:`best_within` reads the best
value a study had found within the budget, and :func:`best_by_epochs_band` draws the mean of
several studies' best so far against the epochs spent, with its interval.

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

from collections.abc import Callable, Mapping, Sequence

import optuna
import pandas as pd
from optuna.trial import TrialState

__all__ = [
    "SPENT_STATES",
    "best_so_far",
    "best_so_far_band",
    "best_by_epochs",
    "best_by_epochs_band",
    "best_within",
    "epochs_spent",
    "savings_sentence",
    "stop_at_epochs",
]

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
    per epoch, as :func:`~idlmam.tune.objective.make_objective` makes them), or, when the
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
    return sum(_epochs_of(t) for t in study.get_trials(deepcopy=False, states=tuple(states)))


def _epochs_of(trial: optuna.trial.FrozenTrial) -> int:
    """One trial's epochs: its ``epochs_trained`` user attribute, else the steps it reported."""
    epochs = trial.user_attrs.get("epochs_trained")
    return int(epochs) if epochs is not None else len(trial.intermediate_values)


def _band(table: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Each row of ``table`` (one column per study): the studies with a value, their mean and
    its t-interval."""
    from ..stats import t_interval

    rows = []
    for _, values in table.iterrows():
        present = values.dropna().to_numpy(dtype=float)
        low, high = t_interval(present, confidence)
        mean = float(present.mean()) if len(present) else float("nan")
        rows.append({"studies": len(present), "mean": mean, "low": low, "high": high})
    return pd.DataFrame(rows)


def best_so_far_band(
    studies: Sequence[optuna.Study] | Mapping[object, optuna.Study], *, confidence: float = 0.95
) -> pd.DataFrame:
    """The best-so-far curves of several independent studies: their mean and a t-interval.

    Each study's :func:`best_so_far` is carried forward over the trials that did not complete,
    up to its own last trial (a study never lends a value to trials it did not run), and
    before its first completed trial it has no value. At each trial number the curves that
    have a value give the mean and Student's t-interval of the mean
    (:func:`idlmam.stats.t_interval`, the interval every band of the book uses).

    Args:
        studies: the studies (say, one sampler under several seeds), as a sequence or as the
            values of a mapping; all single-objective, in the same direction.
        confidence: of the interval.

    Returns:
        A frame indexed by trial number (index name ``"trial"``, from 0 to the longest study's
        last trial) with ``studies`` (how many curves have a value there), ``mean``, ``low``
        and ``high`` (NaN where fewer than two curves have a value).

    Raises:
        ValueError: no study given, or their directions differ.

    Example:
        >>> import optuna
        >>> def study_of(values):
        ...     study = optuna.create_study(direction="maximize")
        ...     for v in values:
        ...         study.enqueue_trial({"x": v})
        ...     study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=len(values))
        ...     return study
        >>> band = best_so_far_band([study_of([0.2, 0.6]), study_of([0.4, 0.2])])
        >>> band["mean"].round(2).tolist(), band["studies"].tolist()
        ([0.3, 0.5], [2, 2])
    """
    studies = list(studies.values()) if isinstance(studies, Mapping) else list(studies)
    if not studies:
        raise ValueError("best_so_far_band needs at least one study")
    if len({s.direction for s in studies}) > 1:
        raise ValueError("the studies optimize in different directions: their bests do not mix")
    curves = []
    for study in studies:
        n = max((t.number for t in study.get_trials(deepcopy=False)), default=-1) + 1
        curve = best_so_far(study).reindex(pd.RangeIndex(n, name="trial")).ffill()
        curves.append(curve.reset_index(drop=True))
    table = pd.concat(curves, axis=1)  # one column per study, NaN where it has no value
    return _band(table, confidence).set_axis(pd.RangeIndex(len(table), name="trial"))


def best_by_epochs(
    study: optuna.Study, states: Sequence[TrialState] = SPENT_STATES
) -> pd.DataFrame:
    """The best value found so far against the epochs spent so far, trial after trial.

    Trials are taken in the order of their numbers; each adds its epochs (as :func:`epochs_spent`
    counts them) to the running total, and a COMPLETE one its value to the running best. A pruner
    makes the epochs grow more slowly; whether the best suffers is what this curve shows.

    Args:
        study: a single-objective study, in any storage.
        states: the trial states whose epochs count (default :data:`SPENT_STATES`); only
            COMPLETE ones have a value.

    Returns:
        One row per counted trial: ``trial`` (its number), ``epochs`` (spent up to and including
        it) and ``best value`` (NaN until a trial completes); the last row's ``epochs`` is
        :func:`epochs_spent`.

    Raises:
        ValueError: the study has more than one objective.

    Example:
        >>> import optuna
        >>> from optuna.distributions import FloatDistribution
        >>> from optuna.trial import TrialState, create_trial
        >>> study = optuna.create_study(direction="maximize")
        >>> for state, value, curve in [(TrialState.PRUNED, None, [0.1]),
        ...                             (TrialState.COMPLETE, 0.5, [0.3, 0.5]),
        ...                             (TrialState.COMPLETE, 0.4, [0.2, 0.4])]:
        ...     study.add_trial(create_trial(state=state, value=value, params={"x": 0.0},
        ...         distributions={"x": FloatDistribution(0, 1)},
        ...         intermediate_values=dict(enumerate(curve))))
        >>> best_by_epochs(study).to_dict("list")
        {'trial': [0, 1, 2], 'epochs': [1, 3, 5], 'best value': [nan, 0.5, 0.5]}
    """
    if len(study.directions) > 1:
        raise ValueError(
            "best_by_epochs needs a single-objective study; this one has "
            f"{len(study.directions)} objectives"
        )
    better = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    rows, epochs, best = [], 0, float("nan")
    trials = study.get_trials(deepcopy=False, states=tuple(states))
    for trial in sorted(trials, key=lambda t: t.number):
        epochs += _epochs_of(trial)
        if trial.state == TrialState.COMPLETE:
            value = float(trial.value)
            best = value if best != best else better(best, value)  # best != best: still NaN
        rows.append({"trial": trial.number, "epochs": epochs, "best value": best})
    return pd.DataFrame(rows, columns=["trial", "epochs", "best value"])


class _StopAtEpochs:
    """The callback :func:`stop_at_epochs` returns."""

    def __init__(self, budget: int, states: tuple[TrialState, ...]) -> None:
        self.budget = budget
        self.states = states

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if epochs_spent(study, self.states) >= self.budget:
            study.stop()

    def __repr__(self) -> str:
        return f"stop_at_epochs({self.budget})"


def stop_at_epochs(
    budget: int, states: Sequence[TrialState] = SPENT_STATES
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A callback that stops a study once its trials have spent ``budget`` epochs.

    Pass it to ``study.optimize(objective, n_trials=cap, callbacks=[stop_at_epochs(budget)])``:
    after each trial ends, it counts :func:`epochs_spent` (the trials of ``states``) and calls
    ``study.stop()`` once the count reaches ``budget``. Studies under different pruners then
    spend the same compute, and a pruner's savings buy it more trials instead of a smaller bill.

    **The last trial may overshoot.** The rule is read between trials, and a trial started
    below the budget runs to its end (or until its pruner stops it): a study ends having spent
    from ``budget`` to ``budget + E - 1`` epochs, where ``E`` is the most epochs one trial
    trains. :func:`epochs_spent` counts those extra epochs (they were spent); to compare
    studies at exactly the same compute, read their best with :func:`best_within` at
    ``budget``, which leaves out the trial that crossed it. A study that reached the budget
    exactly (every trial of a study without pruning trains ``E`` epochs, and ``E`` divides the
    budget) loses nothing. A study also ends at ``n_trials``, if given, before the budget.

    Args:
        budget: epochs, at least 1.
        states: the trial states whose epochs count (default :data:`SPENT_STATES`: complete and
            pruned; a failed trial's epochs count only when asked for).

    Returns:
        The callback, ``(study, trial) -> None``.

    Raises:
        ValueError: ``budget`` is not a whole number of at least 1.

    Example:
        >>> import optuna
        >>> def objective(trial):  # 3 epochs per trial
        ...     for epoch in range(3):
        ...         trial.report(0.1 * epoch, epoch)
        ...     return 0.2
        >>> study = optuna.create_study()
        >>> study.optimize(objective, n_trials=100, callbacks=[stop_at_epochs(7)])
        >>> len(study.trials), epochs_spent(study)  # the third trial crossed 7: 2 over
        (3, 9)
    """
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"budget must be a whole number of epochs, at least 1, got {budget!r}")
    return _StopAtEpochs(budget, tuple(states))


def best_within(
    study: optuna.Study, epochs: int, states: Sequence[TrialState] = SPENT_STATES
) -> float:
    """The best value ``study`` had found by the time its trials had spent ``epochs`` epochs.

    Trials are taken in the order of their numbers, as in :func:`best_by_epochs`; a trial counts
    only if the epochs spent up to and including it are at most ``epochs``, so the trial that
    crossed the budget (see :func:`stop_at_epochs`) and every later one are left out, whatever
    they scored.

    Args:
        study: a single-objective study, in any storage.
        epochs: the budget.
        states: the trial states whose epochs count (default :data:`SPENT_STATES`).

    Returns:
        The best value (the study's direction decides), NaN when no trial completed within the
        budget.

    Example:
        >>> import optuna
        >>> from optuna.distributions import FloatDistribution
        >>> study = optuna.create_study(direction="maximize")
        >>> for value in [0.5, 0.6, 0.9]:  # 3 epochs each: 3, 6 and 9 spent
        ...     study.add_trial(optuna.trial.create_trial(
        ...         value=value, params={"x": 0.0}, distributions={"x": FloatDistribution(0, 1)},
        ...         intermediate_values={0: 0.1, 1: 0.2, 2: value}))
        >>> best_within(study, 8), best_within(study, 9)
        (0.6, 0.9)
    """
    curve = best_by_epochs(study, states)
    within = curve.loc[curve["epochs"] <= epochs, "best value"]
    return float(within.iloc[-1]) if len(within) else float("nan")


def best_by_epochs_band(
    studies: Sequence[optuna.Study] | Mapping[object, optuna.Study],
    epochs: int,
    *,
    confidence: float = 0.95,
    states: Sequence[TrialState] = SPENT_STATES,
) -> pd.DataFrame:
    """The best value so far of several studies against the epochs spent: mean and t-interval.

    At each whole number of epochs ``e`` from 1 to ``epochs``, each study's value is
    :func:`best_within` ``e`` (its best among the trials finished within ``e`` epochs; none
    before its first completed trial), and the studies that have one give the mean and
    Student's t-interval of the mean (:func:`idlmam.stats.t_interval`). With studies stopped at
    the same budget by :func:`stop_at_epochs`, every curve runs to the same right edge.

    Args:
        studies: the studies (say, one pruner under several sampler seeds), as a sequence or as
            the values of a mapping; all single-objective, in the same direction.
        epochs: the last number of epochs of the curve (the budget).
        confidence: of the interval.
        states: the trial states whose epochs count (default :data:`SPENT_STATES`).

    Returns:
        A frame indexed by epochs spent (index name ``"epochs"``, 1 to ``epochs``) with
        ``studies`` (how many have a value there), ``mean``, ``low`` and ``high`` (NaN where
        fewer than two have a value).

    Raises:
        ValueError: no study given, their directions differ, or ``epochs`` is below 1.

    Example:
        >>> import optuna
        >>> from optuna.distributions import FloatDistribution
        >>> def study_of(values):  # each trial 2 epochs
        ...     study = optuna.create_study(direction="maximize")
        ...     for v in values:
        ...         study.add_trial(optuna.trial.create_trial(value=v, params={"x": 0.0},
        ...             distributions={"x": FloatDistribution(0, 1)},
        ...             intermediate_values={0: v, 1: v}))
        ...     return study
        >>> band = best_by_epochs_band([study_of([0.2, 0.6]), study_of([0.4, 0.2])], 4)
        >>> band["studies"].tolist(), band["mean"].round(2).tolist()
        ([0, 2, 2, 2], [nan, 0.3, 0.3, 0.5])
    """
    studies = list(studies.values()) if isinstance(studies, Mapping) else list(studies)
    if not studies:
        raise ValueError("best_by_epochs_band needs at least one study")
    if len({s.direction for s in studies}) > 1:
        raise ValueError("the studies optimize in different directions: their bests do not mix")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs!r}")
    grid = pd.RangeIndex(1, epochs + 1, name="epochs")
    curves = []
    for study in studies:
        curve = best_by_epochs(study, states)
        # the last trial finished within each e: its running best (NaN before the first)
        at = curve["epochs"].searchsorted(grid, side="right") - 1
        values = [float(curve["best value"].iloc[i]) if i >= 0 else float("nan") for i in at]
        curves.append(pd.Series(values, index=grid))
    table = pd.concat(curves, axis=1)  # one column per study
    return _band(table, confidence).set_axis(grid)


def savings_sentence(
    frame: pd.DataFrame,
    run: str,
    reference: str,
    *,
    cost: str = "epochs spent",
    score: str = "best accuracy",
    cost_unit: str = "epochs",
    confidence: float = 0.95,
) -> str:
    """What ``run`` (a pruner, say) saved against ``reference`` and what it kept, in one sentence.

    Both halves come from :func:`idlmam.stats.compare` on the per-study rows of ``frame``: the
    difference of the mean ``cost`` and of the mean ``score``, paired by seed when both runs have
    the same seeds, with a t-interval. The cost is written in ``cost_unit`` and as a share of the
    reference's mean cost; the score (an accuracy) in points. A difference whose interval holds 0
    is said to be within the noise; a score equal in every pair is said to be the same.

    Args:
        frame: one row per study: ``run``, ``seed``, ``epoch`` (any constant), ``cost`` and
            ``score`` (the shape :func:`idlmam.stats.compare` reads).
        run, reference: the two runs compared.
        cost: the column of what a study spent (fewer is better).
        score: the column of the best score a study reached, a fraction (accuracy).
        cost_unit: the unit of ``cost`` in the sentence.
        confidence: of the intervals.

    Returns:
        A Markdown bullet, e.g. ``"- **Median** spent 21 ± 5 epochs fewer than no pruning (30% of
        its 70); its best accuracy was the same as no pruning's in every study."``: the bullet is
        a sentence, so a run named in lower case is capitalised where it starts it (only there).

    Raises:
        ValueError: a run or a column is missing (from :func:`idlmam.stats.compare`).

    Example:
        >>> rows = [("none", 0, 70, 0.8), ("none", 1, 72, 0.7), ("none", 2, 68, 0.9),
        ...         ("median", 0, 50, 0.8), ("median", 1, 50, 0.7), ("median", 2, 50, 0.9)]
        >>> frame = pd.DataFrame(rows, columns=["run", "seed", "epochs spent", "best accuracy"])
        >>> sentence = savings_sentence(frame.assign(epoch=0), "median", "none")
        >>> print(sentence)  # doctest: +NORMALIZE_WHITESPACE
        - **Median** spent 20 ± 5 epochs fewer than none (29% of its 70); its best accuracy
        was the same as none's in every study.
    """
    from ..stats import compare

    spent = compare(frame, run, reference, cost, confidence=confidence, scale=1, unit=cost_unit)
    kept = compare(frame, run, reference, score, confidence=confidence)
    total = float(frame.loc[frame["run"] == reference, cost].mean())
    studies = f"{spent.seeds} {'study' if spent.seeds == 1 else 'studies'}"
    few = spent.seeds < 2 or kept.seeds < 2
    noise = f"with {studies}, no interval" if few else f"within the noise of {studies}"
    side = "fewer" if spent.difference < 0 else "more"
    saved = (
        f"spent {abs(spent.difference):.0f} ± {spent.half_width:.0f} {cost_unit} {side} than "
        f"{reference} ({abs(spent.difference) / total:.0%} of its {total:.0f})"
    )
    if not spent.differs:
        saved += f", {noise}"
    if kept.paired and kept.difference == 0 and kept.half_width == 0:
        reached = f"the same as {reference}'s in every study"
    elif kept.differs:
        direction = "above" if kept.difference > 0 else "below"
        reached = (
            f"{100 * abs(kept.difference):.1f} ± {100 * kept.half_width:.1f} points {direction} "
            f"{reference}'s"
        )
    else:
        reached = (
            f"{round(100 * kept.difference, 1) + 0.0:+.1f} ± {100 * kept.half_width:.1f} points against "
            f"{reference}'s, {noise}"
        )
    name = run[:1].upper() + run[1:]  # the bullet is a sentence; the rest of the name is kept
    return f"- **{name}** {saved}; its best {score.split()[-1]} was {reached}."
