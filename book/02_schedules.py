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
# # Learning-rate schedules
#
# A schedule $L(\eta_0, t)$ changes the learning rate once per epoch. This page builds the four
# schedules every practitioner should know (exponential decay, step drops, cosine annealing and
# reduce-on-plateau), draws each one from the real PyTorch scheduler object, trains the
# baseline network with each on Fashion-MNIST, and compares them side by side.

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
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import run
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import (
    cosine_extremes,
    cosine_schedule,
    cosine_t_max,
    eta_min_for,
    exponential_gamma,
    schedule_lrs,
)
from idlmam.plotting import RUN_COLOURS, plot_rates, plot_runs, plot_schedules
from idlmam.stats import compare, final_scores, t_interval
from idlmam.text import plural
from idlmam.utils import get_device

budget_banner()  # says which budget made this page's numbers
setup()

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.chapter.epochs  # T, epochs per run
SEEDS = range(BUDGET.chapter.seeds)  # each run is repeated with these seeds
BATCH_SIZE = 256  # B
ETA_0 = 0.1  # initial learning rate, the same as the baseline's
ETA_MIN = eta_min_for(ETA_0)  # the floor of every schedule: eta_0 / 100 (why: see below)
STEP_DROPS = 4  # StepLR: drops asked for (fewer when no whole step size gives four)
COSINE_DIPS = max(1, min(2, EPOCHS // 4))  # cosine: two dips, at most one per 4 epochs
PATIENCE = EPOCHS // 10  # ReduceLROnPlateau: a tenth of the run without progress, then cut
THRESHOLD = 1 / EPOCHS  # ReduceLROnPlateau: progress = the best loss improved by 1/T of it
DEVICE = get_device()
print(f"budget={BUDGET.name}, T={EPOCHS}, seeds={len(SEEDS)}, eta_min={ETA_MIN:g}")
print(f"cosine dips={COSINE_DIPS}, plateau patience={PATIENCE}, threshold={THRESHOLD:.3f}")

# %% [markdown]
# Every run below is the baseline of the previous page (the 3-hidden-layer tanh network, SGD,
# $\eta_0 = 0.1$, batch 256) with one change: the schedule. So we train the baseline again
# here, with the same seeds, to compare against.

# %% tags=["nbval-ignore-output"]
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.chapter.train_size)


def sgd(params):  # G stays plain SGD on this page
    return torch.optim.SGD(params, lr=ETA_0)


baseline = run("constant rate", sgd, loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS)

# %% [markdown]
# ## Exponential decay: calmer training
#
# If accuracy jumps up and down from one epoch to the next, shrinking the learning rate a little
# every epoch calms it. Pick $0 < \gamma < 1$ and multiply:
#
# $$\eta_t = L_\gamma(\eta_0, t) = \eta_0 \cdot \gamma^t$$
#
# Guessing $\gamma$ is risky, because the power amplifies small differences:

# %%
gap = (0.99 / 0.9) ** 50
glue("gamma_gap", gap)
print(f"after 50 epochs, 0.99**50 / 0.9**50 = {gap:.0f}")

# %% [markdown]
# Over 50 epochs, $\gamma = 0.9$ and $\gamma = 0.99$ end a factor of
# {glue:text}`gamma_gap:.0f` apart. Instead decide where the rate should *end*,
# $\eta_{min}$, and solve for $\gamma$. Epoch 0 trains at $\eta_0$ and the schedule steps after
# each epoch, so the last of $T$ epochs, $t = T - 1$, trains at $\eta_0 \gamma^{T-1}$; for that
# to be $\eta_{min}$:
#
# $$\gamma = \sqrt[T-1]{\eta_{min} / \eta_0}$$
#
# How far to decay is a choice. This book makes it once, for every schedule on every page:
# $\eta_{min} = \eta_0 / 100$ (`idlmam.optim.eta_min_for`), low enough that the last epochs
# take small steps, and never 0, because an epoch at a rate of 0 changes no weight and is
# wasted.

# %%
gamma = exponential_gamma(ETA_0, ETA_MIN, EPOCHS - 1)  # T - 1 steps to the last epoch
last = ETA_0 * gamma ** (EPOCHS - 1)
print(f"gamma = ({ETA_MIN:g} / {ETA_0}) ** (1 / {EPOCHS - 1}) = {gamma:.5f}")
print(f"check: the last epoch trains at eta_0 * gamma**(T - 1) = {last:.6f}")

# %% [markdown]
# A schedule is only a function of the epoch, and stepping it means writing that function's value
# into the optimizer before the epoch trains. By hand, for this schedule and the step drops
# below, that is:


# %% tags=["lesson"]
def exponential_rate(eta_0, gamma, t):
    """L for exponential decay: the rate of epoch t (t = 0 trains at eta_0)."""
    return eta_0 * gamma**t


def step_rate(eta_0, gamma, step_size, t):
    """L for step drops: eta_0, multiplied by gamma every step_size epochs."""
    return eta_0 * gamma ** (t // step_size)


def set_rate(optimizer, lr):
    """What a scheduler's step() comes down to: the rate written into every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


# %% [markdown]
# In the loop of page 01, `set_rate(optimizer, exponential_rate(ETA_0, gamma, epoch))` at the
# start of each epoch would replace the scheduler object. PyTorch's schedulers do the same with
# more care (they chain, they save their state in a checkpoint), so the runs use them.
#
# The figure reads the rates off a real `ExponentialLR` object, stepped once per epoch exactly
# as `train_network` steps it, so what you see is what the training runs get. The rate axis is
# logarithmic: a decay by the same factor every epoch is then a straight line, and the floor
# $\eta_{min}$, a hundred times below the start, is visible.

# %% mystnb={"figure": {"caption": "Exponential decay from eta_0 to eta_min, read off a real ExponentialLR, against a constant rate.", "name": "fig-exponential-schedule"}, "image": {"alt": "Learning rate (log scale) against epoch: the constant rate stays at 0.1, the exponential decay falls along a straight line and reaches the dotted eta_min line, 100 times lower, on the last epoch."}}
schedules = {
    "constant": lambda opt: StepLR(opt, step_size=EPOCHS + 1),
    "exponential": lambda opt: ExponentialLR(opt, gamma),
}
plot_schedules(schedules, EPOCHS, ETA_0, eta_min=ETA_MIN, log=True, title="Exponential decay")
plt.show()

# %% [markdown]
# Why it helps: far from a minimum a large step covers ground quickly, but near the minimum the
# same step overshoots it, back and forth, and the loss wobbles. Shrinking the step lets the
# weights settle into the minimum instead of circling it, like a train braking into a station.

# %% tags=["nbval-ignore-output"]
expo = run(
    "exponential decay",
    sgd,
    lambda opt: ExponentialLR(opt, gamma),
    loaders=loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)

# %% [markdown]
# ## Step drops: full speed, then brake hard
#
# Exponential decay starts braking in the first epoch, when we are still far from any minimum.
# The *step* schedule keeps $\eta_0$ for $S$ epochs, then drops it by a factor $\gamma$, and
# again every $S$ epochs:
#
# $$\eta_t = \eta_0 \cdot \gamma^{\lfloor t / S \rfloor}$$
#
# With $S = 1$ this *is* exponential decay; a larger $S$ means fewer but bigger drops. Two to
# four drops per run are typical; we ask for four. Four drops cut the run into five stretches
# at a constant rate, but `StepLR` needs a whole $S$: $S = \lceil T / 5 \rceil$ is the shortest
# step that makes no more than four drops in epochs $0 \ldots T-1$. For $\gamma$ we reuse the
# exponential formula with the number of drops in place of $T$, so that the last stretch runs
# at $\eta_{min}$, like every schedule of the book. We count the drops off the real `StepLR`:

# %%
step_size = math.ceil(EPOCHS / (STEP_DROPS + 1))  # S: at most STEP_DROPS drops in T epochs
probe = schedule_lrs(lambda opt: StepLR(opt, step_size), EPOCHS, ETA_0)
drop_epochs = [t for t in range(1, EPOCHS) if probe[t] < probe[t - 1]]
step_gamma = exponential_gamma(ETA_0, ETA_MIN, len(drop_epochs))  # the last stretch: eta_min
fewer = len(drop_epochs) < STEP_DROPS
at_floor = EPOCHS - drop_epochs[-1]  # epochs after the last drop
glue(
    "step_story",
    f"S = {step_size} gives {len(drop_epochs)} drops in {EPOCHS} epochs, at epochs "
    f"{', '.join(map(str, drop_epochs))}"
    + (f" (no whole S gives {STEP_DROPS} in {EPOCHS} epochs)" if fewer else "")
    + f", each by γ = {step_gamma:.3f}; "
    + (f"the last {at_floor} epochs run" if at_floor > 1 else "the last epoch runs")
    + f" at the floor, {ETA_MIN:g}",
)
print(f"S = {step_size}: drops at epochs {drop_epochs}, each by gamma = {step_gamma:.3f}")

# %% [markdown]
# Here {glue:text}`step_story`.

# %% mystnb={"figure": {"caption": "Step drops (StepLR) against exponential decay: both end at eta_min.", "name": "fig-step-schedule"}, "image": {"alt": "Learning rate (log scale) against epoch: the step schedule holds each rate for S epochs and drops in equal steps down to the dotted eta_min line, while the exponential decay falls steadily to the same floor."}}
schedules["step"] = lambda opt: StepLR(opt, step_size, gamma=step_gamma)
plot_schedules(
    schedules, EPOCHS, ETA_0, eta_min=ETA_MIN, log=True, title="Step drops against exponential"
)
plt.show()

# %% [markdown]
# The functions of the lesson cell, with this section's step size and factor, give the rates
# PyTorch's two schedulers give, epoch for epoch:

# %%
for name, by_hand, scheduler in (
    ("exponential", lambda t: exponential_rate(ETA_0, gamma, t), schedules["exponential"]),
    ("step", lambda t: step_rate(ETA_0, step_gamma, step_size, t), schedules["step"]),
):
    torch_rates = schedule_lrs(scheduler, EPOCHS, ETA_0)
    gap = max(abs(by_hand(t) / r - 1) for t, r in enumerate(torch_rates))
    print(f"{name}: {EPOCHS} epochs, largest relative difference {gap:.0e}")

# %% tags=["nbval-ignore-output"]
step = run(
    "step schedule",
    sgd,
    schedules["step"],
    loaders=loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)

# %% [markdown]
# ## Cosine annealing: down, up, and down again
#
# The first two schedules only ever slow down. Cosine annealing swings the rate between
# $\eta_0$ and $\eta_{min}$ along a cosine, one half-period from each top to the next dip and
# from each dip to the next top:
#
# $$\eta_t = \eta_{min} + \frac{\eta_0 - \eta_{min}}{2}\left(1 + \cos\left(\frac{t}{T_{max}}\pi\right)\right)$$
#
# with a half-period of $T_{max}$ epochs. Why speed up again? A network's loss surface has many
# minima, and a run that has settled into a poor, narrow one stays there if the rate only
# shrinks. Raising the rate may shake it loose, and lowering it again lets it settle, perhaps
# somewhere better: that is the hope behind raising the rate again, a hypothesis rather than a
# rule (the ensembles page tests one version of it). Two rules: always *end on a dip*, so the run finishes slowly, and keep the
# dips few (at most one per four epochs). With $d$ dips the run has $2d$ turning points (top,
# dip, top, ..., dip) and $2d - 1$ half-periods between them, from epoch 0 to the last epoch
# $T - 1$, so $T_{max} = (T - 1)/(2d - 1)$.
#
# PyTorch's `CosineAnnealingLR` takes $T_{max}$ as a whole number of epochs, and its $k$-th dip
# falls at epoch $(2k - 1)\,T_{max}$. The last dip lands on the last epoch only when $2d - 1$
# divides $T - 1$; otherwise the largest whole $T_{max}$ that fits (`idlmam.optim.cosine_t_max`)
# leaves the last epochs climbing back up:


# %%
def annealing_story(epochs, dips):
    """What CosineAnnealingLR with the largest whole T_max does in `epochs` epochs."""
    t_max = cosine_t_max(epochs, dips)
    lrs = schedule_lrs(lambda opt: CosineAnnealingLR(opt, t_max, ETA_MIN), epochs, ETA_0)
    dip_epochs = [(2 * k - 1) * t_max for k in range(1, dips + 1)]
    epochs_list = ", ".join(map(str, dip_epochs))
    where = f"its dip at epoch {epochs_list}" if dips == 1 else f"the dips at epochs {epochs_list}"
    story = f"with T = {epochs} and d = {dips}, Tₘₐₓ = {t_max} puts {where}"
    climb = epochs - 1 - dip_epochs[-1]
    if climb == 0:
        return climb, story + f", and epoch {epochs - 1} is the last: it ends on the dip"
    climbing = (
        f"the last {climb} epochs climb back up, the last of them to"
        if climb > 1
        else "the last epoch climbs back up to"
    )
    return climb, story + f", and {climbing} {lrs[-1]:.3g}, {lrs[-1] / ETA_0:.0%} of η₀"


climb, story = annealing_story(EPOCHS, COSINE_DIPS)
example = (EPOCHS, COSINE_DIPS)
if climb == 0:  # these numbers happen to fit: show the next epoch count that does not
    example = next((t, 2) for t in range(max(EPOCHS, 8), 1000) if (t - 1) % 3)
    story = f"{story}; but {annealing_story(*example)[1]}"
glue("annealing_story", story)
glue("cosine_plan", f"{COSINE_DIPS} dip{'s' if COSINE_DIPS > 1 else ''} in {EPOCHS} epochs")
print(story)

# %% [markdown]
# On this page, {glue:text}`annealing_story`. The book's `cosine_schedule` (a `LambdaLR`) draws
# the same curve between turning points it places itself: evenly spread over the epochs,
# rounded to whole epochs, the first at epoch 0 and the last dip on epoch $T - 1$, for any
# $T \geq 2d$. A run that ends mid-climb is measured at a high rate, before it had a chance to
# settle, and a comparison with it says little about cosine annealing.
#
# :::{dropdown} The source of `cosine_schedule`
# ```{literalinclude} ../idlmam/optim/schedules.py
# :pyobject: cosine_schedule
# :language: python
# ```
# :::

# %% mystnb={"figure": {"caption": "CosineAnnealingLR with the largest whole T_max against cosine_schedule, which ends on its last dip.", "name": "fig-cosine-annealing-lr"}, "image": {"alt": "Learning rate (log scale) against epoch for two cosine schedules with the same dips: CosineAnnealingLR reaches its last dip before the end and climbs back up in the last epochs, while cosine_schedule reaches the dotted eta_min line on the last epoch."}}
ex_epochs, ex_dips = example
annealing = {
    f"CosineAnnealingLR, T_max = {cosine_t_max(ex_epochs, ex_dips)}": lambda opt: CosineAnnealingLR(
        opt, cosine_t_max(ex_epochs, ex_dips), eta_min=ETA_MIN
    ),
    "cosine_schedule": lambda opt: cosine_schedule(opt, ex_epochs, ex_dips, eta_min=ETA_MIN),
}
title = f"Two cosine schedules, {ex_dips} dips in {ex_epochs} epochs"
ax = plot_schedules(annealing, ex_epochs, ETA_0, eta_min=ETA_MIN, log=True, title=title)
for line, colour in zip(ax.get_lines(), ("tab:gray", RUN_COLOURS["cosine annealing"])):
    line.set_color(colour)  # the runs' cosine in its colour, PyTorch's in grey
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
plt.show()

# %% [markdown]
# The runs of this page use `cosine_schedule`, with {glue:text}`cosine_plan`:

# %% mystnb={"figure": {"caption": "The cosine schedule of this page's runs against the other schedules: it ends on its last dip, at eta_min.", "name": "fig-cosine-schedule"}, "image": {"alt": "Learning rate (log scale) against epoch for the constant, exponential, step and cosine schedules: the cosine rate swings from 0.1 down to the dotted eta_min line and back, and its last dip falls on the last epoch, where the exponential and step schedules also reach eta_min."}}
turns = cosine_extremes(EPOCHS, COSINE_DIPS)
print(f"{plural(COSINE_DIPS, 'dip')} in {EPOCHS} epochs: tops and dips at epochs {turns}")
schedules["cosine"] = lambda opt: cosine_schedule(opt, EPOCHS, COSINE_DIPS, eta_min=ETA_MIN)
plot_schedules(
    schedules, EPOCHS, ETA_0, eta_min=ETA_MIN, log=True, title="Cosine against the others"
)
plt.show()

# %% tags=["nbval-ignore-output"]
cosine = run(
    "cosine annealing",
    sgd,
    schedules["cosine"],
    loaders=loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)

# %% [markdown]
# ```{admonition} Cosine's relatives: warm restarts, snapshot ensembles and SWA
# Raising the rate again is older than the cosine: the *cyclical learning rates* of
# {cite:t}`smith2015cyclical` move it up and down between two bounds for the whole run.
# *SGDR*, stochastic gradient descent with warm restarts {cite:p}`loshchilov2017sgdr`, gave it the
# cosine shape: anneal along a cosine, then jump straight back to
# $\eta_0$ and anneal again, so that each restart can leave the basin the last one settled in
# (our schedule climbs back smoothly instead of jumping). *Snapshot ensembles*
# {cite:p}`huang2017snapshot` built on it: averaging the predictions of many networks beats any one
# of them, but training 20 networks costs 20 runs, so save a copy of the weights at every dip of one
# run instead: $d$ dips give a $d$-model ensemble for the price of one run. *Stochastic weight
# averaging* (SWA, {cite:alp}`izmailov2018averaging`; `torch.optim.swa_utils`) goes further and
# averages the weights themselves into a single model. Both are built and measured on the ensembles
# page.
# ```
#
# ## Reduce on plateau: let the validation loss decide
#
# The schedules so far follow a fixed plan, whatever the training does. The plateau schedule
# watches the loss instead. Look at the baseline's losses first:

# %% mystnb={"figure": {"caption": "Baseline (constant rate): training and test loss per epoch, mean and 95% band over the seeds.", "name": "fig-plateau-losses"}, "image": {"alt": "Cross-entropy loss against epoch for the baseline at a constant rate, two lines in two colours, training loss and test loss, each the mean over the seeds with a shaded 95% band; the text below says how much each fell in the second half of the run."}} tags=["nbval-ignore-output"]
losses = baseline[["seed", "epoch", "train loss", "test loss"]].melt(
    id_vars=["seed", "epoch"], var_name="run", value_name="loss"
)
ax = plot_runs(losses, "loss", title="Baseline SGD at a constant rate: training and test loss")
ax.set_ylabel("loss (cross-entropy)")
plt.show()

# %% tags=["nbval-ignore-output"]
half = EPOCHS // 2  # the second half of the run: epochs half .. T-1
per_seed = baseline.set_index(["seed", "epoch"])[["train loss", "test loss"]].unstack("seed")
fall = 1 - per_seed.loc[EPOCHS - 1] / per_seed.loc[half]  # relative fall, per seed
rises = (per_seed.loc[half:].diff() > 0).sum()  # epoch-to-epoch rises, per seed
steps = (EPOCHS - 1 - half) * len(SEEDS)
glue(
    "loss_story",
    f"from epoch {half} to epoch {EPOCHS - 1}, the training loss fell by "
    f"{fall['train loss'].mean():.0%} and the test loss by {fall['test loss'].mean():.0%} "
    f"(means over the seeds); over the {steps} steps from one epoch to the next (all seeds), "
    + "; ".join(
        f"the {name} " + (f"rose {plural(n, 'time')}" if n else "never rose")
        for name, n in (
            ("training loss", rises["train loss"].sum()),
            ("test loss", rises["test loss"].sum()),
        )
    ),
)
glue("plateau_setting", f"T = {EPOCHS}, so threshold {THRESHOLD:.3f} and patience {PATIENCE}")
print(f"threshold = 1/{EPOCHS} = {THRESHOLD:.3f}, patience = {EPOCHS} // 10 = {PATIENCE}")

# %% [markdown]
# The training loss keeps falling, as it nearly always does: the network grows ever better at
# the examples it sees again and again. It tells us little. The loss on unseen data is the one
# to watch; in the second half of these runs, {glue:text}`loss_story`. Once that loss stops
# improving, the run is on a *plateau*, and that is a good moment to slow down.
#
# `ReduceLROnPlateau` multiplies the rate by `factor` once *more than* `patience` epochs in a
# row have failed to improve on the best value so far by more than `threshold` (relative):
# with a patience of 1, the second such epoch in a row cuts. PyTorch's defaults
# (a patience of 10 epochs, a threshold of $10^{-4}$) are made for runs of hundreds of epochs:
# in a short run the first cut would come late if at all, and a loss that still creeps down by
# 0.1% per epoch would count as progress. So we scale both to the run's length $T$:
#
# - progress is an improvement of at least $1/T$ of the best loss so far (`threshold = 1/T`).
#   At that pace all $T$ epochs together shrink the loss by about a factor of $e$; a slower
#   pace, which would not even do that, counts as a plateau;
# - the patience is a tenth of the run (`patience = T // 10` epochs; 0 would cut right after
#   the first epoch without progress).
#
# That makes it a detector of *slowing* progress, not of a flat loss: once the first fast
# epochs are over, an epoch seldom improves the validation loss by a whole $1/T$, so the rate
# can be cut while the validation loss is still falling. The figure below shows when each seed's
# rate was cut.
#
# Each cut multiplies the rate by `factor = 0.2`, and `min_lr` $= \eta_{min}$ is the floor, as
# for the other schedules. On this page {glue:text}`plateau_setting`.
#
# The unseen data must not be the test set: choosing *when* to slow down by looking at the test
# loss is fitting to the test set, and the test score would flatter us. So we carve a
# validation set out of the *training* data, 80/20, train on the 80 only, and keep the test
# set for the final score. Each seed draws its own split: a seed is a whole repetition (initial
# weights, batch order, split), so the spread over seeds includes the luck of the split.


# %%
def split_loaders(seed):
    """The loaders of one seed: its own 80/20 split of the training images."""
    return book_loaders(
        BATCH_SIZE, device=DEVICE, train_size=BUDGET.chapter.train_size, val_fraction=0.2, seed=seed
    )


def plateau_schedule(opt):
    return ReduceLROnPlateau(
        opt, factor=0.2, patience=PATIENCE, threshold=THRESHOLD, min_lr=ETA_MIN
    )


print(", ".join(f"{n.n_examples:,} {name} images" for name, n in split_loaders(0).items()))

# %% [markdown]
# ```{warning}
# A random split assumes the examples are independent. When several rows come from the same
# person, or when time matters (forecasting the weather from the future is cheating), split by
# person or by date instead, or the validation loss leaks and lies.
# ```

# %% tags=["nbval-ignore-output"]
plateau = run(
    "plateau schedule",
    sgd,
    plateau_schedule,
    loaders=split_loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)
cuts = {
    seed: int((rows.sort_values("epoch")["lr"].diff() < 0).sum())
    for seed, rows in plateau.groupby("seed")
}
times = [f"{plural(n, 'time')} for seed {seed}" for seed, n in cuts.items()]
if len(set(cuts.values())) == 1:  # every seed alike: say it once
    times = [f"{plural(next(iter(cuts.values())), 'time')} for each seed"]
glue("plateau_cuts", ", ".join(times[:-1]) + " and " + times[-1] if len(times) > 1 else times[0])
print("rate cuts per seed:", ", ".join(f"seed {seed}: {n}" for seed, n in cuts.items()))

# %% mystnb={"figure": {"caption": "Learning rates chosen by ReduceLROnPlateau, one line per seed: each seed cuts when its own validation loss stalls.", "name": "fig-plateau-schedule"}, "image": {"alt": "Learning rate (log scale) against epoch, one step line per seed in its own colour and marker: each starts at 0.1 and steps down by a factor of 5 at the epochs where its validation loss stopped improving, never below eta_min."}} tags=["nbval-ignore-output"]
plot_rates(plateau, by="seed", title="Rates chosen by the plateau schedule, per seed")
plt.show()

# %% [markdown]
# The plateau schedule cut the rate {glue:text}`plateau_cuts`. It acts only on evidence: each
# seed cuts when its own validation loss slows down, so the seeds may cut at different epochs.
#
# ## Comparing the schedules

# %% mystnb={"figure": {"caption": "Test accuracy of SGD with each schedule, mean and 95% band over the seeds.", "name": "fig-schedule-comparison"}, "image": {"alt": "Two panels of test accuracy against epoch sharing one accuracy axis, the constant rate in both: on the left exponential decay and the step schedule, on the right cosine annealing and the plateau schedule, each a mean line with a shaded 95% band over the seeds."}} tags=["nbval-ignore-output"]
everything = pd.concat([baseline, expo, step, cosine, plateau], ignore_index=True)
fig, panels = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, names in zip(
    panels,
    (
        ["constant rate", "exponential decay", "step schedule"],
        ["constant rate", "cosine annealing", "plateau schedule"],
    ),
):
    title = "Exponential and step decay" if "step schedule" in names else "Cosine and plateau"
    plot_runs(everything[everything["run"].isin(names)], "test Accuracy", ax=ax, title=title)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
fig.suptitle("Test accuracy with each schedule (mean and 95% band over seeds)")
plt.show()

# %% tags=["nbval-ignore-output"]
final_scores(everything)[["seeds", "mean", "half_width"]].round(4)

# %% [markdown]
# The table holds each run's final test accuracy, the mean over the seeds with the half-width
# of its 95% confidence interval. Whether a schedule beat the constant rate is a question for
# all the seeds at once: each seed of a schedule is paired with the same seed of the constant
# rate (same initial weights and, except for the plateau schedule, which trains on its own
# split, the same batch order), and the difference counts only when it is larger than the
# seed-to-seed noise.

# %% tags=["nbval-ignore-output"]
SCHEDULES = ["exponential decay", "step schedule", "cosine annealing", "plateau schedule"]
sentences = [compare(everything, name, "constant rate").sentence() for name in SCHEDULES]
late = everything[everything["epoch"] >= half].sort_values("epoch")
moves = late.groupby(["run", "seed"])["test Accuracy"].apply(lambda a: a.diff().abs().mean())
moves = 100 * moves  # points of accuracy per epoch, one value per run and seed
wobble = moves.groupby("run").mean()
wobble_half = moves.groupby("run").apply(lambda v: (t_interval(v)[1] - t_interval(v)[0]) / 2)


def moved(name):
    return f"{wobble[name]:.1f} ± {wobble_half[name]:.1f}"


versus = {name: compare(everything, name, "constant rate") for name in SCHEDULES}
above = sum(c.differs and c.difference > 0 for c in versus.values())
below = sum(c.differs and c.difference < 0 for c in versus.values())
calmer = [name for name in SCHEDULES if wobble[name] < wobble["constant rate"] / 2]
finding(  # the finding on full and chapter; on quick, a box in its place
    "Final test accuracy against the constant rate:\n\n"
    + "\n".join(f"- {s[0].upper()}{s[1:]}." for s in sentences)
    + f"\n\nFrom epoch {half} on, the test accuracy moved by "
    + f"{moved('constant rate')} points per epoch on average at a constant rate (mean over "
    + "the seeds, with its 95% interval), against "
    + ", ".join(f"{moved(name)} with the {name}" for name in SCHEDULES)
    + ". (The plateau schedule trains on 80% of the training images.)"
    + f"\n\nOn {EPOCHS} epochs, then, {len(calmer)} of the {len(SCHEDULES)} schedules"
    + (f" ({', '.join(calmer)})" if calmer else "")
    + " moved the late test accuracy by less than half as much per epoch as the constant rate,"
    + f" and {above or 'none'} ended above it by more than the noise"
    + (f" ({below} below it)." if below else "."),
    needs="tell the schedules apart from the seed-to-seed noise",
)

# %% [markdown]
# Rankings between close runs move with the seeds, which is why every comparison comes with
# its interval: a schedule "wins" only when the interval of its difference from the constant
# rate lies wholly above zero. The table below is the chapter's summary of experience with many more runs and
# datasets than this page can afford, not a finding of these runs:
#
# | | Exponential decay | Step drops | Cosine annealing | Plateau |
# |---|---|---|---|---|
# | **Good** | very consistent; little to tune | consistent; little to tune | often the most accurate; cheap ensembles | uses evidence; often accurate in fewer epochs |
# | **Bad** | can cost some final accuracy | pays off mostly for long runs (100+ epochs) | needs the number of dips chosen; less stable | needs a validation split (less training data); can overfit the validation set |
# | **Use when** | runs with different seeds end far apart | you want a better final model for little work | you can afford a few extra runs to squeeze out accuracy | you have plenty of data |
#
# No schedule wins everywhere; that depends on the data, and you find out by training. A sound
# habit is to start without a schedule, look at the curves, and then add the one whose
# weakness your run does not have.
#
# ## What we did
#
# - Chose one floor, $\eta_{min} = \eta_0/100$, for every schedule, and computed $\gamma$ for
#   exponential decay from it; reused the same formula for the step drops.
# - Saw that `CosineAnnealingLR` with a whole $T_{max}$ can end mid-climb, and used
#   `cosine_schedule`, whose last dip always falls on the last epoch.
# - Drew every schedule from the real scheduler object, stepped as the training loop steps it.
# - Trained the baseline with each of four schedules over several seeds; the plateau schedule,
#   with a threshold and patience scaled to the run, decided on a validation set split off the
#   training data, never on the test set.
# - Compared each schedule with the constant rate, seed by seed, with a confidence interval.
