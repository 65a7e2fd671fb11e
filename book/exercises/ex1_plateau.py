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
            "idlmam[tune]==0.5.2",
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
from idlmam.text import plural
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
PATIENCE = EPOCHS // 10  # epochs without progress tolerated: the next one in a row cuts
THRESHOLD = 1 / EPOCHS  # progress: the best validation loss improved by 1/T of itself
DEVICE = get_device()
IMAGES = BUDGET.chapter.train_size or 60_000  # the training images, before the split
VAL_IMAGES = round(IMAGES * VAL_FRACTION)  # held out: the schedule watches them
budget_banner(  # two runs, one seed each
    BUDGET,
    replace(
        BUDGET.chapter,
        seeds=1,
        train_size=IMAGES - VAL_IMAGES,
        items=f"training images and {VAL_IMAGES:,} validation images",
    ),
)

# %% tags=["hide-input"]
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
ORDINALS += ("seventh", "eighth", "ninth", "tenth", "eleventh")


def nth(n):
    """'first', 'second', ... for the epoch in a row that cuts."""
    return ORDINALS[n - 1] if n <= len(ORDINALS) else f"{n}th"


glue("epochs", EPOCHS, display=False)
glue("patience", PATIENCE, display=False)
glue("threshold_pct", f"{THRESHOLD:.1%}", display=False)
CUT_ON = "first epoch" if PATIENCE == 0 else f"{nth(PATIENCE + 1)} epoch in a row"
glue("cut_on", CUT_ON, display=False)
glue("every_cut", "epoch" if PATIENCE == 0 else plural(PATIENCE + 1, "epoch"), display=False)
print(
    f"The scaled scheduler, for T = {EPOCHS} epochs: threshold = 1/T = {THRESHOLD:.3f}, "
    f"patience = T // 10 = {PATIENCE}, so the {CUT_ON} without progress cuts the rate."
)

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
n_images = {name: loader.n_examples for name, loader in loaders.items()}
print(
    f"{n_images['train']:,} training images, {n_images['val']:,} validation images (cut out of "
    f"the training data), {n_images['test']:,} test images."
)
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
# validation loss (`threshold = 1/T`), the patience is a tenth of the run (`patience = T // 10`
# epochs without progress are tolerated, and the next one in a row cuts: here the
# {glue:text}`cut_on`), and the rate never goes below the book's floor
# $\eta_{min} = \eta_0/100$ (`min_lr`). Until its first cut, each run *is* plain SGD at $\eta_0$.


# %% tags=["hide-input", "nbval-ignore-output"]
def sgd(params):
    return torch.optim.SGD(params, lr=ETA_0)


def cut_epochs(frame):
    """The epochs (from 0) that start at a lower rate than the one before: the cuts."""
    return [int(e) for e, change in zip(frame["epoch"], frame["lr"].diff()) if change < 0]


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

# %% mystnb={"figure": {"caption": "The two plateau schedules: the rate each epoch trained with (left) and the validation loss the schedule watched (right); dotted lines mark the scaled run's cuts.", "name": "fig-ex1-plateau"}, "image": {"alt": "Two panels against epoch. Left: learning rate on a log scale, one step line per run; the string version with the default patience of 10 stays at 0.1 unless it cuts, the scaled one steps down by a factor of 5 at each cut. Right: the validation cross-entropy loss of both runs, in the same two colours and markers, identical until the scaled run's first cut, with a dotted vertical line, in the scaled run's colour, between the epoch after which it cut and the first epoch at the lower rate."}} tags=["hide-input", "nbval-ignore-output"]
fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.6))
plot_rates(pd.concat(runs.values()), by="run", ax=ax_lr, title="Rate used in each epoch")
for (label, frame), marker in zip(runs.items(), "os"):  # plot_rates' colours and markers
    ax_loss.plot(frame["epoch"], frame["val loss"], marker=marker, markersize=4, label=label)
for i, epoch in enumerate(cut_epochs(runs["plateau (scaled)"])):
    label = "a cut of the scaled run" if i == 0 else None
    ax_loss.axvline(epoch - 0.5, color="C1", ls=":", lw=1.2, label=label)
ax_loss.set(xlabel="epoch", ylabel="validation loss (cross-entropy)")
ax_loss.set_title("What the schedule watches")
ax_loss.legend()
plt.show()


# %% tags=["hide-input", "nbval-ignore-output"]
def listed(items):
    """'8', '8 and 11', '8, 11 and 13'."""
    items = [str(item) for item in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]


table = {}
for key, (label, frame) in zip(("string", "scaled"), runs.items()):
    last = frame.iloc[-1]
    glue(f"test_{key}", last["test Accuracy"], display=False)
    glue(f"val_{key}", last["val Accuracy"], display=False)
    table[label] = {
        "rate cuts": len(cut_epochs(frame)),
        "final rate": f"{last['lr']:g}",
        "validation accuracy": f"{last['val Accuracy']:.3f}",
        "test accuracy": f"{last['test Accuracy']:.3f}",
    }
n_string = table["plateau (string)"]["rate cuts"]
glue(
    "string_story",
    f"it cut the rate {plural(n_string, 'time')}"
    if n_string
    else 'it never cut the rate: its "schedule" was a constant rate',
    display=False,
)
# the scaled run: when it cut, and whether the validation loss was still reaching new lows in
# the epochs it counted as "no progress" (a new low, but by less than the threshold)
val_loss = runs["plateau (scaled)"].set_index("epoch")["val loss"]
cuts = cut_epochs(runs["plateau (scaled)"])
falling = [
    e
    for e in cuts
    if val_loss.loc[e - 1 - PATIENCE : e - 1].min() < val_loss.loc[: e - 2 - PATIENCE].min()
]
if not cuts:
    story = "in this run it never cut the rate"
else:
    story = f"in this run it cut the rate before epoch{'s' * (len(cuts) > 1)} {listed(cuts)}"
    if len(cuts) > 1:
        gaps = [later - earlier for earlier, later in zip(cuts, cuts[1:])]
        story += f", {listed(gaps)} epochs apart"
    which = (
        "that cut"
        if len(cuts) == 1
        else f"each of these {len(cuts)} cuts"
        if len(falling) == len(cuts)
        else f"{len(falling)} of these {len(cuts)} cuts"
    )
    if falling:
        story += (
            f"; before {which} the validation loss had just reached a new low: it was still "
            "falling, by less than the threshold"
        )
    else:
        story += (
            "; before each, the validation loss had reached no new low in the epochs it counted"
        )
glue("scaled_story", story, display=False)
pd.DataFrame(table).T

# %% [markdown]
# :::{dropdown} Solution: what the runs show
# With PyTorch's default patience of 10, the string version cuts only on the eleventh epoch in
# a row that fails to improve the best validation loss (by more than $10^{-4}$ of it): in this
# run of {glue:text}`epochs` epochs {glue:text}`string_story`. A patience of 10 suits runs of
# many tens of epochs. That is the one real design question the string hides: the defaults
# must match the run's length.
#
# The scaled scheduler errs the other way. An epoch counts as progress only if it brings the
# best validation loss down by {glue:text}`threshold_pct` of itself ($1/T$). With a patience of
# {glue:text}`patience`, the {glue:text}`cut_on` without such progress cuts, so
# once the loss falls more slowly than that, the rate can be cut as often as every
# {glue:text}`every_cut`, whether the validation loss still falls or not:
# {glue:text}`scaled_story` (epochs counted from 0, as in the figure). Like the plateau
# schedule of the [schedules page](../02_schedules.ipynb), it detects *slowing* progress, not
# a flat loss. Each cut also costs something: with `factor=0.2`, three cuts take the rate to
# the floor $\eta_0/100$ ($0.2^3$ is below it), and a run that cuts too early learns slowly for
# the rest of its epochs.
#
# Final test accuracies: the string version {glue:text}`test_string:.3f`, the scaled one
# {glue:text}`test_scaled:.3f` (validation accuracies {glue:text}`val_string:.3f` and
# {glue:text}`val_scaled:.3f`). That is one seed of each: too few to say which is better (the
# [schedules page](../02_schedules.ipynb) compares schedules over several seeds).
# :::
#
# ## What we did
#
# - Let `train_network` build `ReduceLROnPlateau` from its name, refuse it without a
#   validation set, and step it with the validation loss.
# - Split the validation set off the training data, so no validation image is trained on and
#   no test image guides the schedule.
# - Compared PyTorch's default patience and threshold with ones scaled to the number of epochs.
