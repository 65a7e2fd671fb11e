# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 1: a plateau schedule named by a string
#
# Every other schedule in the chapter needs only the epoch count; `ReduceLROnPlateau` needs to
# be *told* how training is going, through a validation loss. This page solves the exercise
# that makes `train_network` accept it by name, then trains the chapter's network with it on a
# validation split carved out of the Fashion-MNIST training data, so the schedule never sees a
# test image and no validation image is ever trained on.

# %% tags=["hide-cell"]
# Colab only: install the companion package from PyPI (does nothing elsewhere).
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and not importlib.util.find_spec("idlmam"):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "idlmam[tune]==0.5.0",
        ],
        check=True,
    )

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import run
from idlmam.models import mlp
from idlmam.notebook import budget_banner, glue, setup
from idlmam.optim import eta_min_for
from idlmam.plotting import plot_rates
from idlmam.train import train_network
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.chapter.epochs  # T
BATCH_SIZE = 256  # B
ETA_0 = 0.1  # SGD's initial rate, as in the chapter
ETA_MIN = eta_min_for(ETA_0)  # the book's floor for every schedule, eta_0 / 100
VAL_FRACTION = 0.2  # share of the training data held out for the schedule to watch
PATIENCE = EPOCHS // 10  # epochs without progress before a cut (5 of 50; 0: cut at once)
THRESHOLD = 1 / EPOCHS  # progress: the best validation loss improved by 1/T of itself
DEVICE = get_device()
TRAIN_IMAGES = round(
    (BUDGET.chapter.train_size or 60_000) * (1 - VAL_FRACTION)
)  # the rest: validation
budget_banner(BUDGET, replace(BUDGET.chapter, seeds=1, train_size=TRAIN_IMAGES))  # one seed each
print(f"budget={BUDGET.name}, epochs={EPOCHS}, patience={PATIENCE}, threshold={THRESHOLD:.3f}")

# %% [markdown]
# ## The exercise
#
# Let `train_network` take `lr_schedule="ReduceLROnPlateau"`. When it gets that string it
# should make sure a validation set was given (a plateau of *what*, otherwise?) and, if so,
# build a `ReduceLROnPlateau` scheduler on the training optimizer and step it with each
# epoch's validation loss.

# %% [markdown]
# ## Solution
#
# :::{dropdown} Solution: the three changes
# The package's `train_network` already accepts the string; the work sits in three places.
#
# 1. **Check the arguments first.** Before any training, a string other than
#    `"ReduceLROnPlateau"` is refused, and a plateau schedule (string or object) without a
#    `val_loader` raises a `ValueError` that says how to make one. Failing at once is kinder
#    than training for an hour and failing at the end of the first epoch.
# 2. **Build the scheduler** once the optimizer exists:
#    `ReduceLROnPlateau(optimizer, mode="min", factor=0.2, patience=10)`, which cuts the rate
#    by five once more than ten epochs in a row (so the eleventh) have not improved the best
#    validation loss.
# 3. **Step it with the validation loss.** Every other schedule is stepped with no argument at
#    the end of an epoch; this one is stepped with the epoch's `val loss`, so it must come after
#    the validation pass.
#
# ```{literalinclude} ../../idlmam/train/loop.py
# :pyobject: fit
# :language: python
# ```
# :::
#
# First, the check. Asking for the plateau schedule without a validation set fails before a
# single batch is trained:

# %% tags=["hide-input"]
loaders = book_loaders(
    BATCH_SIZE, device=DEVICE, train_size=BUDGET.chapter.train_size, val_fraction=VAL_FRACTION
)
print({name: loader.n_examples for name, loader in loaders.items()})
try:
    train_network(
        mlp(),
        nn.CrossEntropyLoss(),
        loaders["train"],
        test_loader=loaders["test"],
        epochs=1,
        device=DEVICE,
        lr_schedule="ReduceLROnPlateau",
    )
except ValueError as err:
    print(f"ValueError: {err}")

# %% [markdown]
# The split above is the one the chapter meant to use: the validation rows are cut *out* of the
# training data (the original code split the data, then trained on all of it, so the schedule
# watched images the network had already learned). Now two runs of the chapter's network with
# plain SGD: the string, with PyTorch's defaults (a patience of 10 epochs, a threshold of
# $10^{-4}$), and a scheduler object scaled to this budget's $T$ epochs as on the
# [schedules page](../02_schedules.ipynb): progress is an improvement of at least $1/T$ of the best
# validation loss (`threshold = 1/T`), the patience is a tenth of the run (`patience = T // 10`),
# and the rate never goes below the book's floor $\eta_{min} = \eta_0/100$ (`min_lr`). Until its
# first cut, each run *is* plain SGD at $\eta_0$.


# %% tags=["hide-input", "nbval-ignore-output"]
def sgd(params):
    return torch.optim.SGD(params, lr=ETA_0)


runs = {
    "plateau (string)": run(
        "plateau (string)", sgd, "ReduceLROnPlateau", loaders=loaders, epochs=EPOCHS, device=DEVICE
    ),
    "plateau (scaled)": run(
        "plateau (scaled)",
        sgd,
        lambda opt: ReduceLROnPlateau(
            opt, factor=0.2, patience=PATIENCE, threshold=THRESHOLD, min_lr=ETA_MIN
        ),
        loaders=loaders,
        epochs=EPOCHS,
        device=DEVICE,
    ),
}

# %% mystnb={"figure": {"caption": "The two plateau schedules: the rate each epoch trained with (left) and the validation loss the schedule watched (right).", "name": "fig-ex1-plateau"}, "image": {"alt": "Two panels against epoch. Left: learning rate on a log scale, one step line per run; the string version with the default patience of 10 stays at 0.1 unless it cuts, the scaled one steps down by a factor of 5 at each cut. Right: the validation cross-entropy loss of both runs, in the same two colours."}} tags=["hide-input", "nbval-ignore-output"]
fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.6))
plot_rates(pd.concat(runs.values()), by="run", ax=ax_lr, title="Rate used in each epoch")
for label, frame in runs.items():
    ax_loss.plot(frame["epoch"], frame["val loss"], marker="o", label=label)
ax_loss.set(xlabel="epoch", ylabel="validation loss (cross-entropy)")
ax_loss.set_title("What the schedule watches")
ax_loss.legend()
plt.show()

# %% tags=["hide-input", "nbval-ignore-output"]
for key, frame in zip(("string", "scaled"), runs.values()):
    glue(f"cuts_{key}", int((frame["lr"].diff() < 0).sum()), display=False)
    glue(f"test_{key}", frame["test Accuracy"].iloc[-1], display=False)
    glue(f"val_{key}", frame["val Accuracy"].iloc[-1], display=False)
glue("patience", PATIENCE, display=False)
glue("threshold", THRESHOLD, display=False)
summary = {
    label: frame.iloc[-1][["lr", "val Accuracy", "test Accuracy"]] for label, frame in runs.items()
}
print(pd.DataFrame(summary).T.round(4))

# %% [markdown]
# :::{dropdown} Solution: what the runs show
# Cuts of the learning rate in this run: {glue:text}`cuts_string` for the string version
# (patience 10, threshold $10^{-4}$), {glue:text}`cuts_scaled` for the scaled scheduler
# (patience {glue:text}`patience`, threshold {glue:text}`threshold:.3f`). Final test
# accuracies: the string version {glue:text}`test_string:.3f`, the scaled one
# {glue:text}`test_scaled:.3f` (validation accuracies {glue:text}`val_string:.3f` and
# {glue:text}`val_scaled:.3f`). That is one seed of each: too few to say which is better (the
# [schedules page](../02_schedules.ipynb) compares schedules over several seeds).
#
# A patience of 10 suits runs of many tens of epochs; in a short run it can hardly run out,
# and the "schedule" is then a constant rate. That is the one real design question the string
# hides: the defaults must match the run's length. A cut shows in the left panel as a step
# down; in the right panel, look at the validation loss in the epochs after it. Each cut also
# costs something: with `factor=0.2`, three cuts take the rate to the floor $\eta_0/100$
# ($0.2^3$ is below it), and a run that cuts too early learns slowly for the rest of its
# epochs.
# :::
#
# ## What we did
#
# - Let `train_network` build `ReduceLROnPlateau` from its name, refuse it without a
#   validation set, and step it with the validation loss.
# - Split the validation set off the training data, so no validation image is trained on and
#   no test image guides the schedule.
# - Compared PyTorch's default patience and threshold with ones scaled to the number of epochs.
