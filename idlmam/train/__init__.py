"""Training: the loop, its checks, checkpoints, and the stacked path that trains K seeds at once.

* :mod:`.loop`: :func:`train_network`, the chapter's loop (an optimizer G every batch, a
  schedule L every epoch or every batch), one model at a time;
* :mod:`.stacked`: :func:`train_many`, the same contract for K models of one architecture
  trained in one pass, each on its own batch order;
* :mod:`.checks`: what both check before the first epoch;
* :mod:`.checkpoint`: atomic checkpoints and resuming;
* :mod:`.evaluate`: :func:`predict` and :func:`accuracy`.

Both paths return the *results frame* (one row per epoch; see :func:`train_network`), flag a
run whose loss is no longer finite, and raise the same errors for the same mistakes.
"""

from .checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from .evaluate import accuracy, predict
from .loop import DivergenceWarning, batch_pass, run_epoch, train_network
from .stacked import StackedMLP, VmapModels, stack_models, train_many, why_not_stacked

__all__ = [
    "train_network",
    "train_many",
    "run_epoch",
    "batch_pass",
    "DivergenceWarning",
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
