"""The budget knob: the one place that reads ``IDL_BUDGET``.

Every notebook asks this module how many epochs, trials and seeds to use, so that one setting
decides how long the whole book takes:

* ``full`` (the default) is the book as published: every comparison with 3 seeds on all 60,000
  training images, 15 epochs per run, and the Optuna studies of the chapter (10 and 20 trials,
  of 5 epochs each); the costlier exercises train 8 epochs on 12,000 images, and the pages on
  what came after the chapter 10 epochs on 12,000 images. The page comparing samplers and
  pruners runs 10 studies per sampler, of 20 trials of 2 epochs, and 4 per pruner, each
  spending the same 72 epochs (trials of up to 6 epochs), on 3,000 images.
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
    >>> get_budget("quick").chapter.epochs
    7
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Budget", "Runs", "Studies", "Search", "Sizes", "BUDGETS", "DEFAULT", "get_budget"]

# the budget with IDL_BUDGET unset: the same on a CPU, on Colab's GPU and on an Apple GPU
DEFAULT = "full"


def _images(train_size: int | None) -> str:
    return f"{train_size:,}" if train_size else "all 60,000"


@dataclass(frozen=True)
class Runs:
    """The multi-seed runs of a group of pages.

    Args:
        epochs: epochs per run.
        seeds: how many seeds each comparison uses.
        train_size: training images (``None``: all 60,000).
        items: what ``train_size`` counts, for a page that trains on other data than the
            images (``replace(budget.exercises, train_size=4096, items="training sequences")``).
    """

    epochs: int
    seeds: int
    train_size: int | None = None
    items: str = "training images"

    def describe(self) -> str:
        """``"15 epochs per run, 3 seeds, all 60,000 training images"``."""
        return (
            f"{self.epochs} epochs per run, {self.seeds} seed{'s' * (self.seeds != 1)}, "
            f"{_images(self.train_size)} {self.items}"
        )


@dataclass(frozen=True)
class Studies:
    """The Optuna studies of the chapter's search page and of exercises 6 and 7.

    Args:
        trials: trials of the plain study.
        prune_trials: trials of the study with pruning.
        epochs: epochs inside one trial.
        train_size: training and validation images of the search (``None``: all 60,000).
        toy_trials: trials of the toy-function study (it costs microseconds).
    """

    trials: int
    prune_trials: int
    epochs: int
    train_size: int | None = None
    toy_trials: int = 100

    def describe(self) -> str:
        """``"studies of 10 trials (20 with pruning), 5 epochs per trial, ..."``."""
        return (
            f"studies of {self.trials} trials ({self.prune_trials} with pruning), "
            f"{self.epochs} epochs per trial, {_images(self.train_size)} training images"
        )


@dataclass(frozen=True)
class Search:
    """The repeated studies of the page comparing samplers and pruners.

    Args:
        studies: independent studies (sampler seeds) per sampler.
        trials: trials per study of the sampler comparison.
        epochs: epochs per trial there, and per fold of the cross-validated studies.
        train_size: training and validation images of its studies, together.
        prune_trials: trials of a study of the pruner comparison without pruning; with
            ``prune_epochs`` they set :attr:`prune_budget`, the epochs every pruner's study may
            spend, however many trials that buys it.
        prune_epochs: epochs of a trial of the pruner comparison that no pruner stops.
        prune_studies: independent studies (sampler seeds) per pruner.
        cv_studies: independent studies (sampler seeds) per arm of the cross-validated
            comparison (with the Wilcoxon pruner and without).
    """

    studies: int
    trials: int
    epochs: int
    train_size: int | None
    prune_trials: int
    prune_epochs: int
    prune_studies: int
    cv_studies: int

    @property
    def prune_budget(self) -> int:
        """The epochs each study of the pruner comparison spends: ``prune_trials`` trials of
        ``prune_epochs`` epochs, what a study without pruning spends (the equal compute)."""
        return self.prune_trials * self.prune_epochs

    def describe(self) -> str:
        """The studies' sizes, for a page's box."""
        return (
            f"{self.studies} studies per sampler of {self.trials} trials of {self.epochs} "
            f"epochs, and {self.prune_studies} per pruner of {self.prune_budget} epochs each "
            f"(trials of up to {self.prune_epochs} epochs), {_images(self.train_size)} "
            "training images"
        )


Sizes = Runs | Studies | Search


@dataclass(frozen=True)
class Budget:
    """How much work each page does, grouped by the pages each group sizes.

    Args:
        name: ``"full"``, ``"chapter"`` or ``"quick"``.
        chapter: the runs of pages 1, 2, 3 and 6 and of exercise 1 (and the seeds of the runs
            at a chosen rate on the page comparing samplers and pruners).
        studies: the Optuna studies of page 4; exercises 6 and 7 run studies this size on the
            exercises' ``train_size``.
        exercises: the runs of exercises 2 to 5 (the batch-size and depth sweeps, the RNN).
        since: the runs of the pages on what came after the chapter (schedules, optimizers).
        search: the studies of the page comparing samplers and pruners.
        findings: whether runs this size may be read as findings (a page states its
            comparisons only then; ``quick`` is a smoke test).
    """

    name: str
    chapter: Runs
    studies: Studies
    exercises: Runs
    since: Runs
    search: Search
    findings: bool = True

    def describe(self, sizes: Sizes | str | None = None) -> str:
        """One line for a page: which budget made its numbers, and ``sizes`` (default: the
        chapter's runs), e.g. ``"the `full` budget: 10 epochs per run, 3 seeds, ..."``.

        ``sizes`` may be a sentence instead of a group, for a page whose runs no one group
        describes (several kinds of studies, a split): built from the numbers the page uses.
        """
        said = sizes if isinstance(sizes, str) else (sizes or self.chapter).describe()
        return f"the `{self.name}` budget: {said}"


BUDGETS = {
    "full": Budget(
        "full",
        chapter=Runs(epochs=15, seeds=3),
        studies=Studies(trials=10, prune_trials=20, epochs=5),
        exercises=Runs(epochs=8, seeds=3, train_size=12_000),
        since=Runs(epochs=10, seeds=3, train_size=12_000),
        search=Search(
            studies=10,
            trials=20,
            epochs=2,
            train_size=3_000,
            prune_trials=12,
            prune_epochs=6,
            prune_studies=4,
            cv_studies=3,
        ),
    ),
    "chapter": Budget(
        "chapter",
        chapter=Runs(epochs=50, seeds=3),
        studies=Studies(trials=10, prune_trials=20, epochs=10),
        exercises=Runs(epochs=50, seeds=3),
        since=Runs(epochs=30, seeds=3),
        search=Search(
            studies=10,
            trials=40,
            epochs=5,
            train_size=12_000,
            prune_trials=20,
            prune_epochs=10,
            prune_studies=5,
            cv_studies=5,
        ),
    ),
    "quick": Budget(
        "quick",
        chapter=Runs(epochs=7, seeds=2, train_size=12_000),
        studies=Studies(trials=4, prune_trials=6, epochs=2, train_size=12_000),
        exercises=Runs(epochs=7, seeds=2, train_size=12_000),
        since=Runs(epochs=4, seeds=2, train_size=6_000),
        search=Search(
            studies=2,
            trials=12,
            epochs=2,
            train_size=1_000,
            prune_trials=6,
            prune_epochs=3,
            prune_studies=2,
            cv_studies=2,
        ),
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
