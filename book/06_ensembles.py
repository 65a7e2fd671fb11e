# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Snapshot ensembles and weight averaging
#
# Averaging the predictions of several networks almost always beats any one of them, but
# training ten networks costs ten times as much. A cosine schedule with several dips offers a
# shortcut: every dip settles the weights into a good solution, and the next rise kicks them
# out towards another. This page trains one network on Fashion-MNIST, keeps a copy of its
# weights at every dip, and turns the copies into a *snapshot ensemble* (average the
# predictions) and into one *SWA* model (average the weights). A second run follows PyTorch's
# own stochastic weight averaging recipe. All are scored against the single model of the same
# run.

# %% tags=["hide-cell"]
# Colab only: install the companion package from the repository (does nothing elsewhere).
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
            "idlmam[tune] @ git+https://github.com/idlmam/modern-training-techniques",
        ],
        check=True,
    )

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.metrics import accuracy_score
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.ensembles import (
    SnapshotEnsemble,
    average_weights,
    cosine_dips,
    train_snapshots,
    train_swa,
)
from idlmam.models import count_parameters, mlp
from idlmam.notebook import glue, setup
from idlmam.optim import cosine_t_max
from idlmam.train import accuracy, predict
from idlmam.utils import get_device, set_seed

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
DIPS = 4  # snapshots wanted: one per dip of the cosine schedule
EPOCHS = max(BUDGET.epochs, 2 * DIPS)  # each dip needs an epoch down and an epoch back up
BATCH_SIZE = 256  # B
ETA_0, ETA_MIN = 0.1, 0.0001  # top and bottom of every cosine cycle
SWA_START = EPOCHS // 2  # SWA recipe: average the weights of every epoch from here
SWA_LR = 0.01  # SWA recipe: the rate held while averaging
DEVICE = get_device()
print(f"budget={BUDGET.name}, epochs={EPOCHS}, dips={DIPS}, swa_start={SWA_START}")

# %% [markdown]
# ## Where the dips are
#
# With $T$ epochs and $d$ dips wanted, the cosine schedule gets
# $T_{max} = \lfloor (T-1)/(2d - 1) \rfloor$, and its rate
#
# $$\eta_t = \eta_{min} + \tfrac{1}{2}(\eta_0 - \eta_{min})\left(1 + \cos\frac{\pi t}{T_{max}}\right)$$
#
# bottoms out at the odd multiples of $T_{max}$. Rather than trust that arithmetic, we read the
# dips off a real `CosineAnnealingLR` object, stepped once per epoch the way the training loop
# steps it. The rounding can leave room for one dip more than asked, which is one reason not to
# hard-code the list.

# %%
t_max = cosine_t_max(EPOCHS, DIPS)
dips = cosine_dips(EPOCHS, DIPS, eta_0=ETA_0, eta_min=ETA_MIN)
print(f"T_max = {t_max}; the rate is {ETA_MIN} in epochs {dips}")

# %% [markdown]
# ## A network where averaging has a catch
#
# We use the chapter's three-hidden-layer network with one change: a BatchNorm layer before
# each $\tanh$. BatchNorm keeps a running mean and variance of its inputs. Those are *buffers*,
# not parameters: they are not trained by gradients and, as we will see, not averaged either.

# %%
model = mlp(hidden=128, layers=3, batch_norm=True)
print(model)
print(f"{count_parameters(model):,} parameters")

# %% [markdown]
# ## One run, one snapshot per dip
#
# `train_snapshots` builds the cosine schedule, hands `train_network` a small `on_epoch_end`
# hook that copies the weights after every dip epoch, and returns the results frame with the
# copies. Each copy costs memory, not training time.

# %% tags=["nbval-ignore-output"]
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.train_size)
loss_func, score_funcs = nn.CrossEntropyLoss(), {"Accuracy": accuracy_score}
set_seed(0)
model = mlp(hidden=128, layers=3, batch_norm=True)
cyclic, states = train_snapshots(
    model,
    loss_func,
    loaders["train"],
    torch.optim.SGD(model.parameters(), lr=ETA_0),
    epochs=EPOCHS,
    dips=DIPS,
    eta_min=ETA_MIN,
    test_loader=loaders["test"],
    score_funcs=score_funcs,
    device=DEVICE,
)
cyclic[["epoch", "lr", "train loss", "test Accuracy"]].tail(4)

# %% [markdown]
# The ensemble wraps one copy of the network per snapshot. Its `predict_proba` averages the
# members' softmax outputs, and its `forward` returns the logarithm of that average, so the
# usual loss and argmax treat the ensemble like any other model:
#
# ````{dropdown} The source of `SnapshotEnsemble`
# ```{literalinclude} ../idlmam/ensembles.py
# :pyobject: SnapshotEnsemble
# :language: python
# ```
# ````

# %% tags=["nbval-ignore-output"]
ensemble = SnapshotEnsemble(model, states)
single = [
    accuracy(*predict(SnapshotEnsemble(model, [state]), loaders["test"], device=DEVICE))
    for state in states
]
ensemble_acc = accuracy(*predict(ensemble, loaders["test"], device=DEVICE))
glue("snap_last", single[-1], display=False)
glue("snap_best", max(single), display=False)
glue("snap_ensemble", ensemble_acc, display=False)
glue("snap_gain", ensemble_acc - single[-1], display=False)
print(
    "each snapshot:",
    [round(a, 4) for a in single],
    f"ensemble of {len(states)}: {ensemble_acc:.4f}",
)

# %% [markdown]
# The last snapshot, which is the model a plain run would hand you, scores
# {glue:text}`snap_last:.3f` on the test set; the best single snapshot
# {glue:text}`snap_best:.3f`. Averaging the predictions of all of them gives
# {glue:text}`snap_ensemble:.3f`, a change of {glue:text}`snap_gain:+.3f` over the last
# snapshot, for no extra training. Early snapshots are usually weaker than later ones, yet they
# still help when they make *different* mistakes: averaging cancels the errors the members do
# not share.

# %% [markdown]
# ## Averaging the weights instead
#
# An ensemble of $M$ snapshots costs $M$ forward passes per prediction. Stochastic weight
# averaging keeps one network whose weights are the mean of the snapshots,
# $\Theta_{SWA} = \frac{1}{M}\sum_m \Theta_m$. That only makes sense because the snapshots
# come from one run: they sit in the same wide basin, so their mean does too. (The mean of two
# networks trained from different starts is usually useless.)
#
# `torch.optim.swa_utils.AveragedModel` keeps that running mean. It averages *parameters*
# only, so the BatchNorm statistics inside it are still those of the network it was built
# from. `update_bn` fixes them with one pass over the training data. Here is the averaged model
# before and after that pass:

# %% tags=["nbval-ignore-output"]
stale = average_weights(model, states)
swa_snap = average_weights(model, states, bn_loader=loaders["train"], device=DEVICE)
glue("swa_stale", accuracy(*predict(stale, loaders["test"], device=DEVICE)), display=False)
glue("swa_snap", accuracy(*predict(swa_snap, loaders["test"], device=DEVICE)), display=False)
print(
    f"averaged, old BatchNorm statistics: {accuracy(*predict(stale, loaders['test'], device=DEVICE)):.4f}"
)
print(
    f"averaged, after update_bn:          {accuracy(*predict(swa_snap, loaders['test'], device=DEVICE)):.4f}"
)

# %% [markdown]
# With stale statistics the averaged network scores {glue:text}`swa_stale:.3f`; after
# `update_bn`, {glue:text}`swa_snap:.3f`. In a network without BatchNorm the call changes
# nothing, but it costs only one pass and removes a silent source of error, which is why
# PyTorch's SWA recipe always ends with it.

# %% [markdown]
# ## PyTorch's SWA recipe
#
# The usual SWA recipe does not wait for dips. It trains normally until epoch `SWA_START`
# (here with a cosine decay down to the SWA rate), then holds the rate at `SWA_LR` with
# `SWALR` and feeds the weights after *every* epoch to the `AveragedModel`. A constant, fairly
# large rate keeps the weights moving around the basin, and the average lands nearer its
# centre than any single point of the walk.

# %% tags=["nbval-ignore-output"]
set_seed(0)
model = mlp(hidden=128, layers=3, batch_norm=True)
optimizer = torch.optim.SGD(model.parameters(), lr=ETA_0)
recipe, swa_model = train_swa(
    model,
    loss_func,
    loaders["train"],
    optimizer,
    epochs=EPOCHS,
    swa_start=SWA_START,
    swa_lr=SWA_LR,
    lr_schedule=CosineAnnealingLR(optimizer, SWA_START, eta_min=SWA_LR),
    test_loader=loaders["test"],
    score_funcs=score_funcs,
    device=DEVICE,
)
glue("recipe_last", accuracy(*predict(model, loaders["test"], device=DEVICE)), display=False)
glue("recipe_swa", accuracy(*predict(swa_model, loaders["test"], device=DEVICE)), display=False)
glue("recipe_n", int(swa_model.n_averaged), display=False)
recipe[["epoch", "lr", "averaged", "test Accuracy"]].tail(3)

# %% [markdown]
# ## Side by side
#
# The left panel shows the two schedules, with the snapshot epochs marked; the right one the
# test accuracy of each run per epoch, with the averaged models as horizontal lines.

# %% tags=["nbval-ignore-output"]
fig, (ax_lr, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
for frame, label in ((cyclic, "cosine with dips"), (recipe, "SWA recipe")):
    ax_lr.plot(frame["epoch"], frame["lr"], label=label)
    ax_acc.plot(frame["epoch"], frame["test Accuracy"], label=label)
ax_lr.scatter(dips, cyclic["lr"].iloc[dips], color="C0", zorder=3, label="snapshots")
ax_lr.set(xlabel="epoch", ylabel="learning rate", title="Schedules")
ax_acc.scatter(dips, cyclic["test Accuracy"].iloc[dips], color="C0", zorder=3)
ax_acc.axhline(ensemble_acc, color="C0", ls="--", label="snapshot ensemble")
ax_acc.axhline(
    accuracy(*predict(swa_model, loaders["test"], device=DEVICE)),
    color="C1",
    ls="--",
    label="SWA model",
)
ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="Test accuracy")
ax_lr.legend()
ax_acc.legend(loc="lower right")

# %% tags=["nbval-ignore-output"]
summary = pd.Series(
    {
        "last snapshot (single model)": single[-1],
        f"snapshot ensemble ({len(states)} members)": ensemble_acc,
        "average of the snapshots (SWA, update_bn)": accuracy(
            *predict(swa_snap, loaders["test"], device=DEVICE)
        ),
        "SWA recipe: final weights (single model)": accuracy(
            *predict(model, loaders["test"], device=DEVICE)
        ),
        f"SWA recipe: average of {int(swa_model.n_averaged)} epochs": accuracy(
            *predict(swa_model, loaders["test"], device=DEVICE)
        ),
    },
    name="test accuracy",
)
summary.round(4).to_frame()

# %% [markdown]
# In the recipe run, the final weights score {glue:text}`recipe_last:.3f` and the average of
# the last {glue:text}`recipe_n` epochs {glue:text}`recipe_swa:.3f`. Both averaging methods
# cost nothing in training time: the ensemble pays at prediction time (one forward pass per
# member), SWA pays one pass over the training data for `update_bn`. How much either gains
# depends on how good the members are and how differently they err, so it varies from run to
# run. Note also that the recipe holds a fairly large rate until the end: its final weights are
# a snapshot taken mid-stride, and the average is what that run is for. Results from a single
# seed move by a few tenths of a percent from seed to seed, so treat small differences with
# care.
#
# ## What we did
#
# - Read the dips of a cosine schedule off the real scheduler object and kept the weights at
#   each one, inside a normal `train_network` call, through its `on_epoch_end` hook.
# - Averaged the snapshots' predicted probabilities into a snapshot ensemble.
# - Averaged the snapshots' weights with `AveragedModel`, and saw why `update_bn` must follow
#   when the network has BatchNorm.
# - Ran PyTorch's SWA recipe (`SWALR` holding the rate, an average of every late epoch) and
#   compared every averaged model with the single model of the same run.
