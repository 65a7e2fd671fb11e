"""Training: one loop for one model or K stacked ones, its checks, its results frame, checkpoints.

* :mod:`.loop`: the one loop (:func:`~.loop.fit`) and :func:`train_network`, the chapter's
  loop (an optimizer G every batch, a schedule L every epoch or every batch), for one model;
* :mod:`.stacked`: :func:`train_many`, the same loop for K models of one architecture
  trained in one pass, each on its own batch order;
* :mod:`.stacking`: stacked modules (:class:`StackedMLP`, :class:`VmapModels`) and what may
  be stacked (:func:`why_not_stacked`);
* :mod:`.checks`: what the loop checks before the first epoch;
* :mod:`.frame`: the results frame (one row per epoch), divergence marks and warnings;
* :mod:`.checkpoint`: the checkpoint format, atomic writes, resuming and branching;
* :mod:`.evaluate`: :func:`predict` and :func:`accuracy`.

Both entry points return the results frame (see :mod:`.frame`), flag a run whose loss is no
longer finite, and raise the same errors for the same mistakes.
"""

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from .evaluate import accuracy, predict
from .frame import DivergenceWarning, results_frame, seeds_frame, warn_diverged_seeds
from .loop import batch_pass, run_epoch, train_network
from .stacked import train_many
from .stacking import StackedMLP, VmapModels, stack_models, why_not_stacked

__all__ = [
    "train_network",
    "train_many",
    "run_epoch",
    "batch_pass",
    "DivergenceWarning",
    "results_frame",
    "seeds_frame",
    "warn_diverged_seeds",
    "save_checkpoint",
    "load_checkpoint",
    "CheckpointError",
    "CHECKPOINT_FORMAT",
    "StackedMLP",
    "VmapModels",
    "stack_models",
    "why_not_stacked",
    "accuracy",
    "predict",
]
