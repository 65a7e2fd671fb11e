"""Hyperparameter search with Optuna: objectives for any model, studies that persist, the final test.

The rooms:

* :mod:`.objective`: :func:`make_objective` (trains what a *builder* makes of each trial, returns
  its validation accuracy, stops diverged runs), the chapter's builder :func:`mlp_search` and
  recipe :func:`adamw_cosine`, the search's data :func:`chapter_loaders` (the training set only),
  and :func:`trial_outcomes`, which counts trials the pruner stopped apart from diverged ones
  (Optuna's trial states plus the user attribute ``stopped_by``);
* :mod:`.storage`: where a study lives (:func:`open_storage`: memory, SQLite, a journal file,
  PostgreSQL), :func:`create_study`, and :func:`optimize_until`, which lets any number of workers
  fill one study to a total;
* :mod:`.recipe`: :func:`retrain_and_test`, the best trial retrained on training + validation
  images and scored once on the test set;
* :mod:`.samplers`: samplers and pruners by name (:func:`make_sampler`: random, tpe, gp,
  cmaes; :func:`make_pruner`: none, median, halving, hyperband, wilcoxon);
* :mod:`.compare`: what a comparison reads from a study: :func:`best_so_far` (the best-so-far
  curve; :func:`best_so_far_band` over several studies), :func:`epochs_spent` (the compute, less
  with a pruner), :func:`best_by_epochs` (the best so far against the epochs so far) and
  :func:`savings_sentence` (what a pruner saved and kept, over several studies, in words);
* :mod:`.folds`: cross-validation for ``WilcoxonPruner``: :func:`kfold_loaders` and
  :func:`make_fold_objective`, one score reported per fold;
* :mod:`.workers`: :func:`run_workers`, several local processes filling one study (a journal
  file) to exactly a total, and which worker ran each trial;
* :mod:`.worker`: the command ``python -m idlmam.tune``, one worker of a shared study.

``import idlmam.tuning`` imports Optuna but not torch; torch loads when a trial first runs.

Example:
    >>> from idlmam.tuning import create_study, optimize_until
    >>> study = create_study(seed=0)                       # in memory
    >>> optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 3)
    3
    >>> train_loader, val_loader = chapter_loaders("quick")  # doctest: +SKIP
    >>> study.optimize(make_objective(train_loader, val_loader, epochs=2), n_trials=4)  # doctest: +SKIP
    >>> final = retrain_and_test(study, train_loader, val_loader, epochs=2)  # doctest: +SKIP
    >>> final.test_accuracy  # the one number to report                      # doctest: +SKIP
"""

from .compare import (
    SPENT_STATES,
    best_by_epochs,
    best_so_far,
    best_so_far_band,
    epochs_spent,
    savings_sentence,
)
from .folds import FOLDS_SCORED, kfold_loaders, make_fold_objective
from .objective import (
    BY_DIVERGENCE,
    BY_PRUNER,
    STOP_REASON,
    STOPPED_BY,
    TrialOutcomes,
    adamw_cosine,
    chapter_loaders,
    make_objective,
    mlp_search,
    outcomes_frame,
    trial_outcome,
    trial_outcomes,
)
from .recipe import Retrained, combine_loaders, retrain_and_test
from .samplers import PRUNERS, REPORTS, SAMPLERS, TPE_DEFAULTS, make_pruner, make_sampler
from .storage import (
    COUNTED_STATES,
    StorageUnavailableError,
    StudyNotFoundError,
    count_trials,
    create_study,
    open_storage,
    optimize_until,
)
from .workers import Quadratic, run_workers

__all__ = [
    # samplers, pruners, and comparing them
    "SAMPLERS",
    "PRUNERS",
    "REPORTS",
    "TPE_DEFAULTS",
    "make_sampler",
    "make_pruner",
    "SPENT_STATES",
    "best_so_far",
    "best_so_far_band",
    "best_by_epochs",
    "epochs_spent",
    "savings_sentence",
    "kfold_loaders",
    "make_fold_objective",
    "FOLDS_SCORED",
    "run_workers",
    "Quadratic",
    # the objective
    "make_objective",
    "mlp_search",
    "adamw_cosine",
    "chapter_loaders",
    "STOPPED_BY",
    "BY_PRUNER",
    "BY_DIVERGENCE",
    "STOP_REASON",
    "TrialOutcomes",
    "trial_outcome",
    "trial_outcomes",
    "outcomes_frame",
    # storages and studies
    "COUNTED_STATES",
    "StudyNotFoundError",
    "StorageUnavailableError",
    "open_storage",
    "create_study",
    "count_trials",
    "optimize_until",
    # after the search
    "Retrained",
    "retrain_and_test",
    "combine_loaders",
    # choosing a learning rate
]
