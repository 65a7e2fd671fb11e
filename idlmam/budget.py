"""The budget knob: the one place that reads ``IDL_BUDGET``.

Every notebook asks this module how many epochs, trials and seeds to use, so that one setting
decides how long the whole book takes:

* ``full`` (the default) is the book as published: every comparison with 3 seeds on all 60,000
  training images, 15 epochs per run, and the Optuna studies of the chapter (10 and 20 trials,
  of 5 epochs each); the costlier exercises train 8 epochs on 12,000 images, and the pages on
  what came after the chapter 10 epochs on 12,000 images. The page comparing samplers and
  pruners repeats each 3 times: studies of 20 trials of 2 epochs (12 trials of up to 6 epochs
  with a pruner), on 3,000 images.
* ``chapter`` is the source chapter's own numbers: 50 epochs per run, trials of 10 epochs, and
  the exercises at their largest. Several times ``full``'s cost: meant for a GPU.
* ``quick`` runs every cell of every notebook with small numbers (7 epochs, 12,000 training
  images); it is what CI and the notebook regression suite use. It is a smoke test, too small
  for the chapter's findings: a page states a finding only on a budget whose ``findings`` is
  true, and shows a box in its place on ``quick`` (:func:`idlmam.notebook.finding`).

With ``IDL_BUDGET`` unset the budget is ``full``, on every machine: a CPU, Colab's GPU runtime,
an Apple GPU. ``chapter`` is asked for by name (``IDL_BUDGET=chapter``, or
``os.environ["IDL_BUDGET"] = "chapter"`` in a notebook before the imports).

What each budget costs on one machine is measured in ``book/measurements.md``.

Example:
    >>> from idlmam.budget import get_budget
    >>> get_budget("quick").epochs
    7
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

__all__ = ["Budget", "BUDGETS", "DEFAULT", "get_budget"]

# the budget with IDL_BUDGET unset: the same on a CPU, on Colab's GPU and on an Apple GPU
DEFAULT = "full"


@dataclass(frozen=True)
class Budget:
    """How much work each notebook does.

    Args:
        name: ``"full"``, ``"chapter"`` or ``"quick"``.
        epochs: epochs for every training run of the chapter.
        trials: Optuna trials of the plain study.
        prune_trials: Optuna trials of the study with pruning.
        trial_epochs: epochs inside one Optuna trial.
        seeds: how many seeds each multi-seed comparison uses.
        train_size: training examples used (``None``: all 60,000).
        toy_trials: trials of the toy-function study (it costs microseconds).
        exercise_train_size: training examples of the costlier exercises (the batch-size and
            depth sweeps, the two searches of exercises 6 and 7; ``None``: all 60,000).
        exercise_epochs: epochs per run of the sweeps of exercises 2 to 5.
        since_train_size: training examples of the pages on what came after the chapter
            (their many schedules and optimizers; ``None``: all 60,000).
        since_epochs: epochs per run on those pages.
        search_studies: independent studies (sampler seeds) per sampler and per pruner on the
            page comparing them.
        search_trials: trials per study of its sampler comparison.
        search_epochs: epochs per trial of its sampler comparison, and per fold of its
            cross-validated studies.
        search_train_size: training and validation images of its studies, together
            (``None``: all 60,000).
        search_prune_trials: trials per study of its pruner comparison.
        search_prune_epochs: epochs of a trial of its pruner comparison that no pruner stops.
        prune_epochs: epochs of a trial of the studies with pruning, where they differ from
            ``trial_epochs`` (``None``: the same); :meth:`search` sets it.
        findings: whether runs this size may be read as findings (a page states its
            comparisons only then; ``quick`` is a smoke test).
    """

    name: str
    epochs: int
    trials: int
    prune_trials: int
    trial_epochs: int
    seeds: int
    train_size: int | None
    toy_trials: int = 100
    exercise_train_size: int | None = None
    exercise_epochs: int = 50
    since_train_size: int | None = None
    since_epochs: int = 50
    search_studies: int = 3
    search_trials: int = 20
    search_epochs: int = 2
    search_train_size: int | None = 3_000
    search_prune_trials: int = 12
    search_prune_epochs: int = 6
    prune_epochs: int | None = None
    findings: bool = True

    def exercises(self) -> Budget:
        """This budget as the costlier exercises use it: their epochs and training-set size."""
        return replace(self, epochs=self.exercise_epochs, train_size=self.exercise_train_size)

    def since(self) -> Budget:
        """This budget as the pages on what came after the chapter use it (epochs, images)."""
        return replace(self, epochs=self.since_epochs, train_size=self.since_train_size)

    def search(self) -> Budget:
        """This budget as the page comparing samplers and pruners uses it: its trials, epochs
        and images (``prune_trials`` and ``prune_epochs`` are those of its pruner studies; a run
        there trains ``search_epochs``, and is repeated ``search_studies`` times)."""
        return replace(
            self,
            epochs=self.search_epochs,
            seeds=self.search_studies,
            trials=self.search_trials,
            trial_epochs=self.search_epochs,
            prune_trials=self.search_prune_trials,
            prune_epochs=self.search_prune_epochs,
            train_size=self.search_train_size,
        )

    def describe(self, *, trials: bool = False) -> str:
        """One line for a page: which budget made its numbers, and how big it is.

        Args:
            trials: describe the Optuna studies (trials, epochs per trial) instead of the
                multi-seed runs.
        """
        images = f"{self.train_size:,}" if self.train_size else "all 60,000"
        if trials and self.prune_epochs is not None and self.prune_epochs != self.trial_epochs:
            return (
                f"the `{self.name}` budget: studies of {self.trials} trials of "
                f"{self.trial_epochs} epochs, and of {self.prune_trials} trials of up to "
                f"{self.prune_epochs} epochs with pruning, {images} training images"
            )
        if trials:
            return (
                f"the `{self.name}` budget: studies of {self.trials} trials ({self.prune_trials}"
                f" with pruning), {self.trial_epochs} epochs per trial, {images} training images"
            )
        return (
            f"the `{self.name}` budget: {self.epochs} epochs per run, {self.seeds} seeds, "
            f"{images} training images"
        )


BUDGETS = {
    "full": Budget(
        "full",
        epochs=15,
        trials=10,
        prune_trials=20,
        trial_epochs=5,
        seeds=3,
        train_size=None,
        exercise_train_size=12_000,
        exercise_epochs=8,
        since_train_size=12_000,
        since_epochs=10,
        search_studies=3,
        search_trials=20,
        search_epochs=2,
        search_train_size=3_000,
        search_prune_trials=12,
        search_prune_epochs=6,
    ),
    "chapter": Budget(
        "chapter",
        epochs=50,
        trials=10,
        prune_trials=20,
        trial_epochs=10,
        seeds=3,
        train_size=None,
        exercise_train_size=None,
        exercise_epochs=50,
        since_train_size=None,
        since_epochs=30,
        search_studies=5,
        search_trials=40,
        search_epochs=5,
        search_train_size=12_000,
        search_prune_trials=20,
        search_prune_epochs=10,
    ),
    "quick": Budget(
        "quick",
        epochs=7,
        trials=4,
        prune_trials=6,
        trial_epochs=2,
        seeds=2,
        train_size=12_000,
        exercise_train_size=12_000,
        exercise_epochs=7,
        since_train_size=6_000,
        since_epochs=4,
        search_studies=2,
        search_trials=12,
        search_epochs=2,
        search_train_size=1_000,
        search_prune_trials=6,
        search_prune_epochs=3,
        findings=False,
    ),
}


def get_budget(name: str | None = None) -> Budget:
    """Return the budget named ``name``, or the one ``IDL_BUDGET`` names.

    With neither, ``full``, whatever the machine.

    Raises:
        ValueError: the name is not one of :data:`BUDGETS`.
    """
    chosen = name if name is not None else os.environ.get("IDL_BUDGET") or DEFAULT
    chosen = chosen.strip().lower()
    if chosen not in BUDGETS:
        raise ValueError(
            f"unknown budget {chosen!r}: set IDL_BUDGET to one of {sorted(BUDGETS)} "
            "(for example IDL_BUDGET=quick)"
        )
    return BUDGETS[chosen]
