"""Hyperparameter search with Optuna: objectives, studies that persist, the final test.

Its rooms: :mod:`.objective` (the objective, the chapter's search space and data, how each trial
ended), :mod:`.storage` (where a study lives; workers filling one study to a total),
:mod:`.recipe` (the best trial retrained and tested once), :mod:`.samplers` (samplers and pruners
by name), :mod:`.compare` (what a comparison of studies reads), :mod:`.folds`
(cross-validated objectives), :mod:`.workers` (local worker processes), :mod:`.dashboard`, and
:mod:`.worker`, the command ``python -m idlmam.tune``. ``import idlmam.tune`` imports Optuna,
not torch.

Example:
    >>> from idlmam.tune import create_study, optimize_until
    >>> study = create_study(seed=0)                       # in memory
    >>> optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 3)
    3
"""

from .compare import (
    SPENT_STATES,
    best_by_epochs,
    best_by_epochs_band,
    best_so_far,
    best_so_far_band,
    best_within,
    epochs_spent,
    savings_sentence,
    stop_at_epochs,
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
from .samplers import (
    PRUNERS,
    QMC_DEFAULTS,
    REPORTS,
    SAMPLERS,
    TPE_DEFAULTS,
    make_pruner,
    make_sampler,
)
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
    "QMC_DEFAULTS",
    "make_sampler",
    "make_pruner",
    "SPENT_STATES",
    "best_so_far",
    "best_so_far_band",
    "best_by_epochs",
    "best_by_epochs_band",
    "stop_at_epochs",
    "best_within",
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
