"""The objective of a search, for any model builder, its data, and how to read its trials.

A *builder* turns one Optuna trial into one training run: it asks the trial for its
hyperparameters and returns ``(model, optimizer, lr_schedule)``::

    def build(trial, epochs):
        width = trial.suggest_int("width", 16, 256)
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        return adamw_cosine(mlp(hidden=width), lr, epochs)

:func:`make_objective` trains what a builder returns and scores it on a validation split;
:func:`mlp_search` is the chapter's builder (the default), :func:`adamw_cosine` its optimizer
and schedule. The validation set is split off the *training* data (:func:`chapter_loaders`); the
test set is never touched, so the test accuracy of the best trial, retrained by
:func:`idlmam.tune.recipe.retrain_and_test`, stays an honest estimate.

:func:`trial_outcomes` counts how a study's trials ended, telling the trials the pruner stopped
from those whose training diverged.

Example:
    >>> train_loader, val_loader = chapter_loaders("quick")              # doctest: +SKIP
    >>> objective = make_objective(train_loader, val_loader, epochs=2)   # doctest: +SKIP
    >>> study = create_study(seed=0)                                     # doctest: +SKIP
    >>> study.optimize(objective, n_trials=4)                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import optuna
from optuna.trial import TrialState

if TYPE_CHECKING:  # pragma: no cover - for the type hints only
    import pandas as pd
    import torch

    from ..budget import Budget

    #: ``build(trial, epochs) -> (model, optimizer, lr_schedule)``; see the module docstring.
    Builder = Callable[[optuna.Trial, int], "tuple[torch.nn.Module, torch.optim.Optimizer, Any]"]

__all__ = [
    "BY_DIVERGENCE",
    "BY_PRUNER",
    "STOPPED_BY",
    "STOP_REASON",
    "TrialOutcomes",
    "adamw_cosine",
    "chapter_loaders",
    "check_epochs",
    "make_objective",
    "mlp_search",
    "outcomes_frame",
    "train_built",
    "train_trial",
    "trial_outcome",
    "trial_outcomes",
]

#: The user attribute that says what stopped a trial early: :data:`BY_PRUNER` or
#: :data:`BY_DIVERGENCE`. :func:`make_objective` sets it on every trial it stops; a trial that ran
#: to the end has none. Optuna files both kinds of stop under PRUNED; this attribute tells them
#: apart (:func:`trial_outcome`).
STOPPED_BY = "stopped_by"
#: ``stopped_by`` of a trial the study's pruner judged hopeless.
BY_PRUNER = "pruner"
#: ``stopped_by`` of a trial whose training diverged (its loss NaN, infinite or too high).
BY_DIVERGENCE = "divergence"
#: The user attribute holding why a stopped trial was stopped, in words
#: (``"diverged: train loss nan after epoch 1"``, ``"val Accuracy 0.41 after epoch 0 was below
#: the pruner's bar"``).
STOP_REASON = "stop_reason"

_CHAPTER_RANGES = {"neurons": (16, 256), "layers": (1, 6), "learning_rate": (1e-5, 1e-2)}


# --------------------------------------------------------------------------- builders


def _check_range(
    name: str, bounds: Sequence[float], *, positive: bool = False, integer: bool = False
) -> tuple:
    if len(bounds) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {bounds!r}")
    low, high = bounds
    if integer and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(f"{name} must be whole numbers, got {bounds!r}")
    if low > high:
        raise ValueError(f"{name}=({low}, {high}): low must not exceed high")
    if positive and low <= 0:
        raise ValueError(f"{name}=({low}, {high}): the range must be above 0")
    return (int(low), int(high)) if integer else (float(low), float(high))


def adamw_cosine(model: torch.nn.Module, learning_rate: float, epochs: int) -> tuple:
    r"""The chapter's training recipe for one model: ``AdamW`` and half a cosine over the run.

    The schedule is :func:`idlmam.optim.cosine_schedule` with one dip, stepped once per epoch:
    it starts at ``learning_rate`` (:math:`\eta_0`) and ends on its dip in the last epoch, at the
    book's floor :math:`\eta_{min}` = :func:`idlmam.optim.eta_min_for` (``learning_rate / 100``,
    never 0, so every epoch of a trial trains),

    .. math::
        \eta_t = \eta_{min} + \frac{1}{2}(\eta_0 - \eta_{min})
                 \left(1 + \cos\frac{\pi t}{T - 1}\right), \quad t = 0, \dots, T - 1.

    A run of one epoch has no schedule (``None``): it trains that epoch at ``learning_rate``.

    Args:
        model: the network to train.
        learning_rate: AdamW's learning rate (the schedule's starting value).
        epochs: epochs of the run the schedule spans.

    Returns:
        ``(model, optimizer, lr_schedule)``, what a builder returns.

    Example:
        >>> from idlmam.models import mlp
        >>> model, optimizer, schedule = adamw_cosine(mlp(), 1e-3, epochs=3)
        >>> lrs = []
        >>> for epoch in range(3):  # what train_network does, one step per epoch
        ...     lrs.append(round(optimizer.param_groups[0]["lr"], 6))
        ...     optimizer.step()
        ...     schedule.step()
        >>> type(optimizer).__name__, lrs
        ('AdamW', [0.001, 0.000505, 1e-05])
    """
    import torch

    from ..optim import cosine_schedule, eta_min_for

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    if epochs < 2:
        return model, optimizer, None  # one epoch: nothing to anneal
    schedule = cosine_schedule(optimizer, epochs, 1, eta_min=eta_min_for(learning_rate))
    return model, optimizer, schedule


def mlp_search(
    neurons: tuple[int, int] = (16, 256),
    layers: tuple[int, int] = (1, 6),
    learning_rate: tuple[float, float] = (1e-5, 1e-2),
) -> Builder:
    """The chapter's search space: an MLP's width and depth, and its learning rate.

    The builder it returns suggests ``neurons_per_layer`` (an int), ``hidden_layers`` (an int)
    and ``learning_rate`` (a float on a log scale), builds
    ``mlp(hidden=neurons_per_layer, layers=hidden_layers)`` and trains it with
    :func:`adamw_cosine`.

    Args:
        neurons: ``(low, high)`` of ``neurons_per_layer``, inclusive.
        layers: ``(low, high)`` of ``hidden_layers``, inclusive.
        learning_rate: ``(low, high)`` of ``learning_rate``, searched on a log scale.

    Returns:
        ``build(trial, epochs) -> (model, optimizer, lr_schedule)``, for :func:`make_objective`
        and :func:`idlmam.tune.recipe.retrain_and_test`.

    Raises:
        ValueError: a range is not a ``(low, high)`` pair of positive numbers with
            ``low <= high`` (whole numbers for ``neurons`` and ``layers``).

    Example:
        >>> from optuna.trial import FixedTrial
        >>> build = mlp_search()
        >>> model, optimizer, schedule = build(FixedTrial(
        ...     {"neurons_per_layer": 32, "hidden_layers": 2, "learning_rate": 1e-3}), 5)
        >>> [m.out_features for m in model if hasattr(m, "out_features")]
        [32, 32, 10]
    """
    neurons = _check_range("neurons", neurons, positive=True, integer=True)
    layers = _check_range("layers", layers, positive=True, integer=True)
    learning_rate = _check_range("learning_rate", learning_rate, positive=True)

    def build(trial: optuna.Trial, epochs: int) -> tuple:
        from ..models import mlp

        n = trial.suggest_int("neurons_per_layer", *neurons)
        depth = trial.suggest_int("hidden_layers", *layers)
        lr = trial.suggest_float("learning_rate", *learning_rate, log=True)
        return adamw_cosine(mlp(hidden=n, layers=depth), lr, epochs)

    return build


# --------------------------------------------------------------------------- one seeded run


def check_epochs(epochs: Any) -> int:
    """``epochs`` if it is an int of at least 1 (the epochs of a trial), else ValueError."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int of at least 1, got {epochs!r}")
    return epochs


def _build(build: Builder, trial: optuna.Trial, epochs: int) -> tuple:
    built = build(trial, epochs)
    if not (isinstance(built, tuple) and len(built) == 3):
        raise TypeError(
            f"build(trial, epochs) must return (model, optimizer, lr_schedule), "
            f"got {type(built).__name__}"
        )
    return built


def train_built(
    build: Builder,
    trial: optuna.Trial,
    train_loader: Iterable,
    val_loader: Iterable | None,
    *,
    epochs: int,
    device,
    seed: int,
    on_epoch_end: Callable | None = None,
) -> tuple:
    """Seed, build, train: the one run a trial is, and the one its retraining repeats.

    Returns ``(model, results)``.
    """
    from torch import nn

    from .. import train  # looked up at call time, so tests can watch train.train_network
    from ..utils import seed_run

    # the weights and the batch order of seed `seed` of idlmam.experiments.run, in every trial
    seed_run(seed, train_loader)
    model, optimizer, lr_schedule = _build(build, trial, epochs)
    results = train.train_network(
        model,
        nn.CrossEntropyLoss(),
        train_loader,
        val_loader,
        score_funcs={"Accuracy": train.accuracy},
        epochs=epochs,
        device=device,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
        disable_tqdm=True,
        on_epoch_end=on_epoch_end,
    )
    return model, results


def train_trial(build: Builder, trial: optuna.Trial, train_loader, val_loader, **kwargs):
    """:func:`train_built`'s results for a trial, whose divergence is an outcome of the trial
    (kept in ``stopped_by``), not a warning."""
    from .. import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", train.DivergenceWarning)
        return train_built(build, trial, train_loader, val_loader, **kwargs)[1]


# --------------------------------------------------------------------------- the objective


def make_objective(
    train_loader: Iterable,
    val_loader: Iterable,
    *,
    epochs: int,
    build: Builder | None = None,
    device: str = "cpu",
    prune: bool = False,
    neurons: tuple[int, int] | None = None,
    layers: tuple[int, int] | None = None,
    learning_rate: tuple[float, float] | None = None,
    seed: int = 0,
    max_train_loss: float | None = None,
) -> Callable[[optuna.Trial], float]:
    """An objective that trains what ``build`` makes of a trial and returns its val accuracy.

    Each trial calls ``build(trial, epochs)``, which suggests the hyperparameters and returns
    ``(model, optimizer, lr_schedule)``; the model is trained for ``epochs`` with
    ``CrossEntropyLoss`` (the schedule stepped once per epoch) and scored by its validation
    accuracy after the last epoch. Without ``build`` it is the chapter's search,
    :func:`mlp_search` over ``neurons``, ``layers`` and ``learning_rate``.
    Every trial starts from the same seed (weights and batch order), so trials differ only by
    their hyperparameters, and a trial's score does not depend on which worker ran it.

    The validation accuracy is reported after every epoch (``trial.report``), so the dashboard
    shows learning curves. With ``prune=True`` the study's pruner is asked after every epoch
    (``trial.should_prune``); a trial it stops ends as PRUNED, with the user attributes
    ``stopped_by = "pruner"`` and a ``stop_reason``.

    A trial whose training loss is not finite (NaN or infinite: the run diverged), or above
    ``max_train_loss`` when given, is stopped after that epoch and ends as PRUNED too, with
    ``stopped_by = "divergence"`` and the reason in ``stop_reason``
    (``"diverged: train loss nan after epoch 1"``); the study carries on. PRUNED rather than
    FAIL so that the sampler learns from it: TPE ranks a pruned trial below the complete ones,
    but ignores a failed one and would keep proposing the region that blew up. The two kinds of
    PRUNED trial are told apart by ``stopped_by`` (:func:`trial_outcomes` counts them apart).
    Every trial records ``epochs_trained``.

    Args:
        train_loader: the training batches (for example from :func:`chapter_loaders`); its
            ``generator``, when it has one, is reseeded before every trial as
            :func:`idlmam.utils.seed_run` does for seed ``seed`` of a run.
        val_loader: the validation batches the score is computed on.
        epochs: epochs per trial (``Budget.trial_epochs``).
        build: ``build(trial, epochs) -> (model, optimizer, lr_schedule)`` (``lr_schedule`` may
            be ``None``); ``None``: ``mlp_search(neurons, layers, learning_rate)``.
        device: where to train.
        prune: consult the study's pruner after every epoch.
        neurons: ``(low, high)`` of ``neurons_per_layer`` in the default search
            (``None``: ``(16, 256)``).
        layers: ``(low, high)`` of ``hidden_layers`` in the default search (``None``: ``(1, 6)``).
        learning_rate: ``(low, high)`` of ``learning_rate`` in the default search, on a log
            scale (``None``: ``(1e-5, 1e-2)``).
        seed: the seed every trial's weights and batch order start from: a trial sees what
            seed ``seed`` of :func:`idlmam.experiments.run` sees.
        max_train_loss: a finite training loss above this also counts as diverged (``None``:
            only NaN and infinity do). Guessing uniformly among 10 classes costs
            ``ln 10 = 2.3``.

    Returns:
        ``objective(trial) -> float``: the validation accuracy of the last epoch.

    Raises:
        ValueError: ``epochs`` below 1, a bad range (see :func:`mlp_search`), ranges given
            together with ``build`` (put them in the builder), or ``max_train_loss`` not above 0.
        TypeError: ``build`` is not callable, or (when a trial runs) returned something other
            than a 3-tuple.

    Example:
        >>> objective = make_objective(train_loader, val_loader, epochs=2)   # doctest: +SKIP
        >>> study.optimize(objective, n_trials=4)                            # doctest: +SKIP
        >>> wide = make_objective(train_loader, val_loader, epochs=2, prune=True,
        ...                       neurons=(1, 256), learning_rate=(1e-5, 100.0))  # doctest: +SKIP
        >>> def build_cnn(trial, epochs):
        ...     model = cnn(trial.suggest_int("channels", 4, 32), 2, 1)
        ...     return adamw_cosine(model, trial.suggest_float("learning_rate", 1e-4, 1e-2,
        ...                                                    log=True), epochs)
        >>> convolutional = make_objective(train_loader, val_loader, epochs=2,
        ...                                build=build_cnn)                  # doctest: +SKIP
    """
    epochs = check_epochs(epochs)
    ranges = {"neurons": neurons, "layers": layers, "learning_rate": learning_rate}
    if build is None:
        build = mlp_search(**{k: _CHAPTER_RANGES[k] if v is None else v for k, v in ranges.items()})
    elif any(v is not None for v in ranges.values()):
        given = ", ".join(k for k, v in ranges.items() if v is not None)
        raise ValueError(
            f"{given} shape the default MLP search; with build= the builder suggests its own ranges"
        )
    if not callable(build):
        raise TypeError(f"build must be callable as build(trial, epochs), got {build!r}")
    if max_train_loss is not None and not max_train_loss > 0:
        raise ValueError(f"max_train_loss must be above 0 (or None), got {max_train_loss!r}")

    def objective(trial: optuna.Trial) -> float:
        stop: dict[str, str] = {}

        def on_epoch_end(epoch: int, row: dict) -> bool:
            loss = row["train loss"]
            if not math.isfinite(loss) or (max_train_loss is not None and loss > max_train_loss):
                stop[BY_DIVERGENCE] = f"diverged: train loss {loss:.4g} after epoch {epoch}"
                return True
            if math.isfinite(row["val Accuracy"]):
                trial.report(row["val Accuracy"], epoch)
            if prune and trial.should_prune():
                stop[BY_PRUNER] = (
                    f"val Accuracy {row['val Accuracy']:.4f} after epoch {epoch} "
                    "was below the pruner's bar"
                )
                return True
            return False

        results = train_trial(
            build,
            trial,
            train_loader,
            val_loader,
            epochs=epochs,
            device=device,
            seed=seed,
            on_epoch_end=on_epoch_end,
        )
        trial.set_user_attr("epochs_trained", len(results))
        losses = results["train loss"]
        if not stop and not all(math.isfinite(x) for x in losses):
            # the loop may stop a diverging run by itself, before our hook has seen the NaN
            last = len(losses) - 1
            stop[BY_DIVERGENCE] = f"diverged: train loss {losses.iloc[-1]:.4g} after epoch {last}"
        if stop:
            ((stopped_by, reason),) = stop.items()  # one: the hook stops the run at the first
            trial.set_user_attr(STOPPED_BY, stopped_by)
            trial.set_user_attr(STOP_REASON, reason)
            raise optuna.TrialPruned(reason)  # Optuna's way to end a trial early
        return float(results["val Accuracy"].iloc[-1])

    return objective


# --------------------------------------------------------------------------- data


def chapter_loaders(
    budget: Budget | str | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 256,
    train_size: int | None = None,
):
    """Training and validation loaders for the search, both cut from the Fashion-MNIST *training* set.

    The budget's ``studies.train_size`` examples (all 60,000 when it is ``None``) are drawn with ``seed``,
    then split 80/20 with ``seed`` into training and validation. The test set is not loaded.

    Args:
        budget: a :class:`idlmam.budget.Budget`, its name, or ``None`` for ``IDL_BUDGET``'s.
        seed: seed of the subset, of the split and of the training batch order.
        device: where the tensors live.
        batch_size: examples per training batch.
        train_size: examples to use, overriding the budget's (tests use a few thousand).

    Returns:
        ``(train_loader, val_loader)``, two :class:`idlmam.data.ResidentLoader`; the training one
        shuffles.

    Raises:
        ValueError: ``train_size`` below 10.

    Example:
        >>> train_loader, val_loader = chapter_loaders("quick")  # doctest: +SKIP
        >>> train_loader.n_examples, val_loader.n_examples       # doctest: +SKIP
        (9600, 2400)
    """
    from ..budget import Budget, get_budget
    from ..data import book_loaders

    if not isinstance(budget, Budget):
        budget = get_budget(budget)
    n = budget.studies.train_size if train_size is None else train_size
    if n is not None and n < 10:
        raise ValueError(f"train_size must be at least 10 examples (or None for all), got {n!r}")
    loaders = book_loaders(
        batch_size, device=device, train_size=n, val_fraction=0.2, seed=seed, test=False
    )
    return loaders["train"], loaders["val"]


# --------------------------------------------------------------------------- reading the trials


class TrialOutcomes(NamedTuple):
    """How many trials of a study ended which way (see :func:`trial_outcome`)."""

    complete: int
    pruned: int
    diverged: int
    failed: int
    running: int
    waiting: int

    @property
    def total(self) -> int:
        """All trials of the study."""
        return sum(self)

    def summary(self) -> str:
        """One line: ``"pruned by the pruner: 2; diverged: 1; completed: 3"`` (and any others).

        Failed, running and waiting trials are named only when there are some.

        Example:
            >>> TrialOutcomes(3, 2, 1, 0, 0, 0).summary()
            'pruned by the pruner: 2; diverged: 1; completed: 3'
        """
        parts = [
            f"pruned by the pruner: {self.pruned}",
            f"diverged: {self.diverged}",
            f"completed: {self.complete}",
        ]
        parts += [
            f"{k}: {getattr(self, k)}" for k in ("failed", "running", "waiting") if getattr(self, k)
        ]
        return "; ".join(parts)


_OUTCOME = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def trial_outcome(trial: optuna.trial.FrozenTrial) -> str:
    """How one trial ended, from its Optuna state and its ``stopped_by`` user attribute.

    Returns:
        ``"diverged"`` for a PRUNED or FAIL trial whose ``stopped_by`` is ``"divergence"`` (its
        training blew up; :func:`make_objective` ends those as PRUNED), else its Optuna state in
        lower case: ``"complete"``, ``"pruned"`` (stopped by the study's pruner), ``"failed"``
        (the objective raised, or the worker died), ``"running"`` or ``"waiting"``.

    Example:
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        >>> trial_outcome(study.trials[0])
        'complete'
    """
    stopped = trial.state in (TrialState.PRUNED, TrialState.FAIL)
    if stopped and trial.user_attrs.get(STOPPED_BY) == BY_DIVERGENCE:
        return "diverged"
    return _OUTCOME[trial.state]


def trial_outcomes(study: optuna.Study) -> TrialOutcomes:
    """Count a study's trials by :func:`trial_outcome`: the pruner's stops apart from divergence.

    Counted from the trials' Optuna states and their ``stopped_by``: ``pruned`` holds the PRUNED
    trials not stopped by divergence (those the pruner stopped), ``diverged`` the PRUNED or FAIL
    ones with ``stopped_by = "divergence"``, ``failed`` the other FAIL trials. The counts add up
    to ``len(study.trials)``.

    Args:
        study: the study, in any storage.

    Returns:
        A :class:`TrialOutcomes` (``complete``, ``pruned``, ``diverged``, ``failed``,
        ``running``, ``waiting``, ``total`` and ``summary()``); ``._asdict()`` gives a dict.

    Example:
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        >>> trial_outcomes(study)
        TrialOutcomes(complete=2, pruned=0, diverged=0, failed=0, running=0, waiting=0)
    """
    kinds = [trial_outcome(t) for t in study.get_trials(deepcopy=False)]
    return TrialOutcomes(*(kinds.count(field) for field in TrialOutcomes._fields))


_FRAME_COLUMNS = ["number", "outcome", "value", "epochs_trained", "stop_reason"]


def outcomes_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: ``number``, ``outcome`` (:func:`trial_outcome`), ``value``,
    ``epochs_trained``, ``stop_reason`` and the parameters (``params_<name>``).

    Example:
        >>> study = optuna.create_study()
        >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        >>> list(outcomes_frame(study).columns)
        ['number', 'outcome', 'value', 'epochs_trained', 'stop_reason', 'params_x']
    """
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "number": t.number,
                "outcome": trial_outcome(t),
                "value": t.value,
                "epochs_trained": t.user_attrs.get("epochs_trained"),
                "stop_reason": t.user_attrs.get(STOP_REASON, ""),
                **{f"params_{k}": v for k, v in t.params.items()},
            }
        )
    return pd.DataFrame(rows, columns=None if rows else _FRAME_COLUMNS)
