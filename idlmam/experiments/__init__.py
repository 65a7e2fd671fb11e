"""Experiments that train, without Optuna: named runs over seeds, rate sweeps, the range test.

* :mod:`.runs`: :func:`run` trains one named setup (model, optimizer, schedule) over seeds
  and returns the long results frame; :func:`branch_runs` grows branches off one run's
  checkpoints;
* :mod:`.sweep`: a learning-rate sweep per optimizer on the validation split, the best rate
  with every seed on test, and the time to a target;
* :mod:`.range_test`: :func:`lr_range_test`, one pass with the rate growing exponentially, and
  the rate it suggests;
* :mod:`.race`: the optimizers page's field and protocol as a race, with a leaderboard and a
  cache of the field's runs (``python -m idlmam.race`` races a reader's optimizer); import
  it from there (``idlmam.experiments.race``), which keeps this package's import light.
"""

from .range_test import MIN_STEPS, RangeTest, lr_range_test
from .runs import branch_runs, run
from .sweep import best_rates, lr_sweep, rate_grid, sweep_label, time_to_target, with_seeds

__all__ = [
    "run",
    "branch_runs",
    "rate_grid",
    "sweep_label",
    "lr_sweep",
    "with_seeds",
    "best_rates",
    "time_to_target",
    "RangeTest",
    "lr_range_test",
    "MIN_STEPS",
]
