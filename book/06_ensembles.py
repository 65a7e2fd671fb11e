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
# # Snapshot ensembles and weight averaging
#
# Can one training run give several models whose average beats the model the run ends with?
# An ensemble averages the predictions of several independently trained networks, and ten
# networks cost ten runs. *Snapshot ensembles* {cite:p}`huang2017snapshot` take the members
# from one run instead: a cosine schedule with several dips, on the hope that every dip settles
# the weights into a good solution and the next rise kicks them out towards another. That is a
# hope, not a promise: the snapshots of one short run may be too alike, or the early ones too
# weak, to help. This page trains one network on Fashion-MNIST, keeps a copy of its weights at
# every dip, and turns the copies into a snapshot ensemble (average the predictions) and into
# one averaged model (average the weights). A second run follows PyTorch's stochastic weight
# averaging (*SWA*) recipe. Every run is repeated over several seeds, and each averaged model is
# scored against the single model of the same run and seed: whether averaging helps here is
# what those scores answer.

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
import numpy as np
import pandas as pd
import torch
from torch import nn

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
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import cosine_extremes, cosine_t_max, eta_min_for
from idlmam.plotting import run_colours
from idlmam.stats import compare, final_scores
from idlmam.text import plural
from idlmam.train import accuracy, predict
from idlmam.utils import get_device, order_seed, set_seed

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
DIPS = 4  # snapshots wanted: one per dip of the cosine schedule
EPOCHS = max(BUDGET.chapter.epochs, 2 * DIPS)  # each dip needs an epoch down and an epoch back up
SEEDS = range(BUDGET.chapter.seeds)  # every run is repeated with these seeds
BATCH_SIZE = 256  # B
ETA_0 = 0.1  # the top of every cosine cycle
ETA_MIN = eta_min_for(ETA_0)  # the bottom of every dip: the book's floor, eta_0 / 100
SWA_START = EPOCHS // 2  # SWA recipe: average the weights of every epoch from here
SWA_LR = 0.01  # SWA recipe: the rate held while averaging (10 times the floor: see below)
DEVICE = get_device()
print(f"budget={BUDGET.name}, epochs={EPOCHS}, dips={DIPS}, seeds={len(SEEDS)}")
if BUDGET.chapter.epochs < EPOCHS:
    print(
        f"(the budget's {BUDGET.chapter.epochs} epochs, raised to {EPOCHS} to fit {plural(DIPS, 'dip')})"
    )
RUNS = replace(BUDGET.chapter, epochs=EPOCHS)  # what this page trains, for its boxes
budget_banner(BUDGET, RUNS)


# %%
def say(comparison, a, b):
    """The sentence of an idlmam.stats comparison with the runs named in words, ``a`` and ``b``.

    A difference that rounds to 0.0 points is given with two decimals (never "+0.0").
    """
    comparison = replace(comparison, a=a, b=b)
    points, half = (
        comparison.scale * comparison.difference,
        comparison.scale * comparison.half_width,
    )
    if comparison.seeds < 2 or np.isnan(half) or round(points, 1) != 0:
        return comparison.sentence()
    seeds, unit = plural(comparison.seeds, "seed"), comparison.unit
    if comparison.differs:
        side = "above" if points > 0 else "below"
        return f"{a} ends {abs(points):.2f} ± {half:.2f} {unit} {side} {b} over {seeds}"
    shown = f"{points:+.2f}" if round(points, 2) != 0 else "0.00"
    return (
        f"{a} and {b} end within the noise of {seeds}, with no difference at one decimal "
        f"(difference {shown} ± {half:.2f} {unit})"
    )


# %% [markdown]
# ## Where the dips are
#
# A cosine schedule with $d$ dips over $T$ epochs goes down from $\eta_0$ to $\eta_{min}$ and
# back up $d - 1$ times, then down once more, and it should reach its last dip on the last
# epoch: that last dip is the model the run hands you. `idlmam.optim.cosine_schedule` spreads
# its $2d$ turning epochs (top, dip, top, ..., dip) as evenly as whole epochs allow from
# epoch 0 to epoch $T - 1$ and draws one half-cosine between each pair,
#
# $$\eta_t = \eta_{to} + \tfrac{1}{2}(\eta_{from} - \eta_{to})\left(1 + \cos\frac{\pi (t - t_{from})}{t_{to} - t_{from}}\right).$$
#
# PyTorch's `CosineAnnealingLR` draws the same curve but needs one whole half-period $T_{max}$
# for every stretch; the largest that fits is $\lfloor (T-1)/(2d - 1) \rfloor$, and unless
# $2d - 1$ divides $T - 1$ its last dip comes early and the run ends on the way back up. The
# floor is the book's $\eta_{min} = \eta_0 / 100$, the far end of the chapter's rule of 10 to
# 100 times below $\eta_0$, and never 0, since an epoch at a rate of 0 changes no weight.
# Rather than trust any arithmetic, we read the dips off the real scheduler object, stepped
# once per epoch the way the training loop steps it:

# %%
dips = cosine_dips(EPOCHS, DIPS, eta_0=ETA_0, eta_min=ETA_MIN)
assert dips == cosine_extremes(EPOCHS, DIPS)[1::2] and dips[-1] == EPOCHS - 1
t_max = cosine_t_max(EPOCHS, DIPS)
annealing_dips = [k * t_max for k in range(1, 2 * DIPS, 2)]
print(f"cosine_schedule: the rate is {ETA_MIN} in epochs {dips} (the last is epoch {EPOCHS - 1})")
same = "the same epochs" if annealing_dips[-1] == EPOCHS - 1 else "its last dip comes early"
print(f"CosineAnnealingLR(T_max={t_max}) would dip in epochs {annealing_dips}: {same}")
plan = f"{plural(DIPS, 'dip')} in {plural(EPOCHS, 'epoch')}"
if DIPS > EPOCHS // 4:  # the schedules page's rule: at most one dip per four epochs
    glue(
        "dips_vs_rule",
        f"With {plan}, a dip every {EPOCHS / DIPS:.1f} epochs on average, this page takes more "
        f"than the {plural(EPOCHS // 4, 'dip')} that rule allows, on purpose.",
    )
else:
    glue("dips_vs_rule", f"With {plan}, this page stays within that rule.")

# %% [markdown]
# The [schedules page](02_schedules.ipynb) keeps the dips few, at most one per four epochs: it
# wants only the run's final model, and every climb back up costs that model training time.
# Here each dip gives a member of the ensemble, so more dips mean more members, each with fewer
# epochs of its own since the previous top. {glue:text}`dips_vs_rule` The first table below shows
# how the early snapshots score against the last.

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
# ## One run per seed, one snapshot per dip
#
# `train_snapshots` builds the cosine schedule, hands `train_network` a small `on_epoch_end`
# hook that copies the weights after every dip epoch, and returns the results frame with the
# copies. Each copy costs memory, not training time.
#
# The ensemble wraps one copy of the network per snapshot. Its `predict_proba` averages the
# members' softmax outputs, and its `forward` returns the logarithm of that average, so the
# usual loss and argmax treat the ensemble like any other model:
#
# :::{dropdown} The source of `SnapshotEnsemble`
# ```{literalinclude} ../idlmam/ensembles.py
# :pyobject: SnapshotEnsemble
# :language: python
# ```
# :::
#
# An ensemble of $M$ snapshots costs $M$ forward passes per prediction. Stochastic weight
# averaging keeps one network whose weights are the mean of the snapshots,
# $\Theta_{SWA} = \frac{1}{M}\sum_m \Theta_m$. It rests on a premise: that the snapshots lie in
# one basin wide enough that their mean lies in it too. That is SWA's premise
# {cite:p}`izmailov2018averaging`, and for these runs a hypothesis, which the scores below test.
# Snapshots of one run are its best chance, since they all descend from the same weights; two
# networks trained from different starts are a worse bet, because their hidden units need not
# line up, so the mean of their weights need not compute what either of them does.
#
# `torch.optim.swa_utils.AveragedModel` keeps that running mean. It averages *parameters*
# only, so the BatchNorm statistics inside it are still those of the network it was built
# from. `update_bn` fixes them with one pass over the training data. We score the averaged
# model both before and after that pass.
#
# Each seed is a whole repetition (initial weights and batch order), and each one gets the
# same treatment: train with snapshots, then score every snapshot alone, the ensemble, and the
# averaged weights.

# %% tags=["nbval-ignore-output"]
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.chapter.train_size)
loss_func, score_funcs = nn.CrossEntropyLoss(), {"Accuracy": accuracy}


def test_accuracy(net):
    return accuracy(*predict(net, loaders["test"], device=DEVICE))


def fresh_model(seed):
    """Seed ``seed``'s initial weights and batch order, the way idlmam.experiments.run sets them."""
    loaders["train"].generator.manual_seed(order_seed(seed))
    set_seed(seed)
    return mlp(hidden=128, layers=3, batch_norm=True)


cyclic_runs, snapshot_scores, per_snapshot = [], [], []
for seed in SEEDS:
    model = fresh_model(seed)
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
    cyclic_runs.append(cyclic.assign(run="cosine with dips", seed=seed))
    per_snapshot.append([test_accuracy(SnapshotEnsemble(model, [state])) for state in states])
    snapshot_scores += [
        ("last snapshot", seed, per_snapshot[-1][-1]),
        ("snapshot ensemble", seed, test_accuracy(SnapshotEnsemble(model, states))),
        ("snapshot average (stale BatchNorm)", seed, test_accuracy(average_weights(model, states))),
        (
            "snapshot average (update_bn)",
            seed,
            test_accuracy(
                average_weights(model, states, bn_loader=loaders["train"], device=DEVICE)
            ),
        ),
    ]
cyclic = pd.concat(cyclic_runs, ignore_index=True)
ends = pd.DataFrame(
    [("first", seed, s[0]) for seed, s in zip(SEEDS, per_snapshot)]
    + [("last", seed, s[-1]) for seed, s in zip(SEEDS, per_snapshot)],
    columns=["run", "seed", "test Accuracy"],
).assign(epoch=0)
glue("first_vs_last", say(compare(ends, "first", "last"), "the first snapshot", "the last"))
pd.DataFrame(per_snapshot, index=pd.Index(SEEDS, name="seed"), columns=dips).rename_axis(
    columns="test accuracy of the snapshot at epoch"
).round(4)

# %% [markdown]
# The table shows each snapshot alone. The last one is the model a plain run would hand you;
# {glue:text}`first_vs_last`. An early snapshot is trained for fewer epochs, yet it can still
# help an ensemble if it makes *different* mistakes: averaging cancels the errors the members
# do not share. But an equal vote also gives a weak member as much say as the best one, so weak
# early members can pull the ensemble below its best member even when they err differently.
# Which of the two wins in these runs is a comparison between runs, so it comes from the final
# scores over all seeds, each with a 95% interval:

# %% tags=["nbval-ignore-output"]
results = pd.DataFrame(snapshot_scores, columns=["run", "seed", "test Accuracy"]).assign(epoch=0)
final_scores(results)[["seeds", "mean", "half_width"]].round(4)

# %% tags=["nbval-ignore-output"]
snap_vs_last = compare(results, "snapshot ensemble", "last snapshot")
avg_vs_last = compare(results, "snapshot average (update_bn)", "last snapshot")
bn_effect = compare(results, "snapshot average (update_bn)", "snapshot average (stale BatchNorm)")
glue(
    "bn_effect",
    say(bn_effect, "the weight average after update_bn", "the same average with stale statistics"),
)
finding(
    "Averaging the snapshots' predictions: "
    f"{say(snap_vs_last, 'the snapshot ensemble', 'the last snapshot')}. Averaging their "
    f"weights (after `update_bn`): {say(avg_vs_last, 'the weight average', 'the last snapshot')}. "
    "Neither costs any extra training.",
    sizes=RUNS,
    needs="tell whether averaging the snapshots beats the last snapshot",
)

# %% [markdown]
# What the `update_bn` pass did: {glue:text}`bn_effect`. PyTorch's SWA recipe, next, always ends
# with that pass.

# %% [markdown]
# ## PyTorch's SWA recipe
#
# The usual SWA recipe does not wait for dips. It trains normally until epoch `SWA_START`,
# then holds the rate at `SWA_LR` with `SWALR` and feeds the weights after *every* epoch to the
# `AveragedModel`. The argument of its authors: a constant, fairly large rate keeps the weights
# moving around the basin, and the average lands nearer its centre than any single point of
# the walk. That is why `SWA_LR` is not the book's floor $\eta_0/100$: a rate that small would
# all but stop the walk, and the average would be little more than its last point.
#
# Before `SWA_START` we use `CosineAnnealingLR(optimizer, SWA_START, eta_min=SWA_LR)`: one
# half-cosine from $\eta_0$ whose bottom is the SWA rate and whose length is the first phase,
# so after its `SWA_START` steps the rate stands exactly at `SWA_LR` when `SWALR` takes over
# (and `SWALR` has nothing left to anneal). It is a decay *to* a rate that is then held, not a
# decay to a floor, so `cosine_schedule`'s dips are not what it needs.
#
# Written out, the recipe is a plain training loop with four pieces of `torch.optim.swa_utils`:
# an `AveragedModel` (a copy of the network that will hold the mean of the weights), `SWALR` as
# the schedule of the second phase, `update_parameters` after every epoch of that phase, and
# `update_bn` at the end:

# %% tags=["lesson"]
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn


def swa_by_hand(model, loss_func, loader, optimizer, *, epochs, swa_start, swa_lr):
    """Train ``model``; return the average of its weights after epochs ``swa_start`` on."""
    schedule = CosineAnnealingLR(optimizer, swa_start, eta_min=swa_lr)  # phase 1: down to swa_lr
    swa_schedule = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=1)  # phase 2: hold swa_lr
    swa_model = AveragedModel(model)  # will hold the running mean of the weights
    for epoch in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss_func(model(x), y).backward()
            optimizer.step()
        if epoch >= swa_start:
            swa_model.update_parameters(model)  # mean += (weights - mean) / (n + 1)
            swa_schedule.step()
        else:
            schedule.step()
    update_bn(loader, swa_model)  # BatchNorm statistics for the mean weights: one pass
    return swa_model


# %% [markdown]
# `AveragedModel` averages the parameters only; its BatchNorm statistics are still those of the
# network it copied, which is why `update_bn` ends the loop with one pass over the training
# data. In a network without BatchNorm the call returns at once and costs no pass: its source
# first collects the BatchNorm layers to reset, and returns when there are none
# (`if not momenta: return`), before reading a single batch. Here is the loop once, on a small
# run of one seed:

# %% tags=["nbval-ignore-output"]
SMALL_SIZE, SMALL_EPOCHS = 4_000, 4  # a few thousand images, a few epochs
small = book_loaders(BATCH_SIZE, device=DEVICE, train_size=SMALL_SIZE, test=False)
set_seed(0)
model = mlp(hidden=128, layers=3, batch_norm=True).to(DEVICE)
swa_model = swa_by_hand(
    model,
    loss_func,
    small["train"],
    torch.optim.SGD(model.parameters(), lr=ETA_0),
    epochs=SMALL_EPOCHS,
    swa_start=SMALL_EPOCHS // 2,
    swa_lr=SWA_LR,
)
print(
    f"{plural(SMALL_EPOCHS, 'epoch')} on {plural(SMALL_SIZE, 'training image')}, the weights of "
    f"the last {plural(int(swa_model.n_averaged), 'epoch')} averaged. Test accuracy: "
    f"{test_accuracy(model):.4f} for the final weights, {test_accuracy(swa_model):.4f} for the "
    "average."
)

# %% [markdown]
# One seed of a small run cannot tell which of the two is better; it shows the loop at work. The multi-seed runs below use the package's `idlmam.ensembles.train_swa`, the same
# recipe inside the book's `train_network`, which also records the rate and the test accuracy
# of every epoch. A test of the book (`tests/book/test_06_ensembles.py`) trains a small network
# from one seed on the same tiny data with this page's loop and with `train_swa`, and checks
# that both give exactly the same averaged weights, BatchNorm statistics and final weights.

# %% tags=["nbval-ignore-output"]
recipe_runs, recipe_scores = [], []
for seed in SEEDS:
    model = fresh_model(seed)
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
    recipe_runs.append(recipe.assign(run="SWA recipe", seed=seed))
    recipe_scores += [
        ("SWA recipe: final weights", seed, test_accuracy(model)),
        ("SWA recipe: average", seed, test_accuracy(swa_model)),
    ]
recipe = pd.concat(recipe_runs, ignore_index=True)
results = pd.DataFrame(
    snapshot_scores + recipe_scores, columns=["run", "seed", "test Accuracy"]
).assign(epoch=0)
held = recipe.loc[recipe["epoch"] >= SWA_START, "lr"]
assert held.sub(SWA_LR).abs().max() < 1e-12  # the rate is SWA_LR from SWA_START on
glue("recipe_n", EPOCHS - SWA_START, display=False)
recipe.loc[recipe["seed"] == 0, ["epoch", "lr", "averaged", "test Accuracy"]].set_index(
    "epoch"
).round(4).T

# %% [markdown]
# The `lr` row shows the two phases: the cosine decay from $\eta_0$, then the SWA rate held
# for the last {glue:text}`recipe_n` epochs, whose weights are averaged.
#
# ## Side by side
#
# The figure shows the two schedules as the runs used them: both step once per epoch, so each
# epoch trains at a single rate, drawn as one flat step, with the snapshot epochs marked. Next
# to them, the test accuracy of each run after every epoch, averaged over the seeds, with the
# averaged models as horizontal lines.

# %% mystnb={"figure": {"caption": "Left: the learning rate of each epoch (log scale) for the cosine schedule with dips, snapshots marked at its dips, and for the SWA recipe. Both schedules step once per epoch, so each epoch trains at one rate, drawn as a flat step across the epoch. Right: test accuracy after each epoch of both runs (mean over seeds), with the snapshot ensemble (dashed) and the SWA recipe's average (dotted) as horizontal lines.", "name": "fig-ensembles-side-by-side"}, "image": {"alt": "Two panels. Left: learning rate against epoch on a log scale, drawn as steps, one per epoch; the cosine schedule falls to its floor and rises again, reaching the floor at each dip with a dot, the last dip on the last epoch; the SWA recipe decays once to the SWA rate, ten times above the floor, and then stays flat. Right: test accuracy against epoch for both runs, with dots at the snapshots, a dashed horizontal line for the snapshot ensemble and a dotted one for the SWA recipe's average."}} tags=["nbval-ignore-output"]
colours = run_colours(["cosine with dips", "SWA recipe"])
means = results.groupby("run")["test Accuracy"].mean()
edges = np.arange(EPOCHS + 1) - 0.5  # epoch e trains at one rate: a step from e - 0.5 to e + 0.5
fig, (ax_lr, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for frame, run in ((cyclic, "cosine with dips"), (recipe, "SWA recipe")):
    curve = frame.groupby("epoch")[["lr", "test Accuracy"]].mean()
    ax_lr.stairs(curve["lr"], edges, color=colours[run], lw=1.8, baseline=None)
    ax_acc.plot(curve.index, curve["test Accuracy"], color=colours[run], label=run)
cyclic_mean = cyclic.groupby("epoch")[["lr", "test Accuracy"]].mean()
ax_lr.scatter(dips, cyclic_mean["lr"].loc[dips], color=colours["cosine with dips"], zorder=3)
ax_lr.set(
    xlabel="epoch", ylabel="learning rate (log scale)", yscale="log", title="Rate of each epoch"
)
ax_acc.scatter(
    dips,
    cyclic_mean["test Accuracy"].loc[dips],
    color=colours["cosine with dips"],
    zorder=3,
    label="snapshots",
)
ax_acc.axhline(
    means["snapshot ensemble"],
    color=colours["cosine with dips"],
    ls="--",
    label="snapshot ensemble",
)
ax_acc.axhline(
    means["SWA recipe: average"], color=colours["SWA recipe"], ls=":", lw=2, label="SWA average"
)
ax_acc.set(
    xlabel="epoch",
    ylabel="test accuracy",
    title=f"Test accuracy (mean of {plural(len(SEEDS), 'seed')})",
)
fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncol=5, frameon=False)
plt.show()

# %% tags=["nbval-ignore-output"]
final_scores(results)[["seeds", "mean", "half_width"]].round(4)

# %% tags=["nbval-ignore-output"]
recipe_gain = compare(results, "SWA recipe: average", "SWA recipe: final weights")
snap_vs_swa = compare(results, "snapshot ensemble", "SWA recipe: average")
finding(
    f"In the recipe run, {say(recipe_gain, 'the average', 'the final weights')}. Across the two "
    f"runs, {say(snap_vs_swa, 'the snapshot ensemble', 'the SWA average')}.",
    sizes=RUNS,
    needs="tell whether the SWA average beats its run's final weights",
)

# %% [markdown]
# Both averaging methods cost nothing in training time: the ensemble pays at prediction time
# (one forward pass per member); SWA pays one pass over the training data for `update_bn`,
# and only when the network has batch norm (without it, `update_bn` finds nothing to update and
# returns at once). Whether either gains, and by how much, depends on how good the members are
# and how differently they err; the boxes above say what these runs show.
# Note also that the recipe holds a fairly large rate until the end: its final weights are a
# point taken mid-stride, and the average is what that run is for. Each sentence above comes
# with its 95% interval over the seeds; a difference whose interval contains 0 is not one these
# runs can show.
#
# ## What we did
#
# - Read the dips of a cosine schedule that ends on its last dip off the real scheduler object,
#   and kept the weights at each one, inside a normal `train_network` call, through its
#   `on_epoch_end` hook.
# - Averaged the snapshots' predicted probabilities into a snapshot ensemble.
# - Averaged the snapshots' weights with `AveragedModel`, and measured what `update_bn`'s pass
#   over the training data changes when the network has BatchNorm.
# - Wrote PyTorch's SWA recipe out as a loop (a cosine decay to the SWA rate, then `SWALR`
#   holding it, `update_parameters` after every late epoch, `update_bn` at the end) and ran it
#   once; the multi-seed runs used `idlmam.ensembles.train_swa`, which a test shows gives the
#   same averaged weights.
# - Compared every averaged model with the single model of the same run, over several seeds.
