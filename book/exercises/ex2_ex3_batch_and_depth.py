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
# # Exercises 2 and 3: batch size and depth
#
# The chapter compared its tools on one setting: the three-hidden-layer network with batches
# of 256. These two exercises move that setting. Exercise 2 changes the batch size and asks
# whether AdamW, Nesterov momentum and cosine annealing keep their advantages; exercise 3 makes
# the network deeper and asks whether the new tools make deep fully connected networks
# trainable where plain SGD struggles. Both train on Fashion-MNIST.

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
import math
from functools import partial

import matplotlib.pyplot as plt
import pandas as pd
import torch

from idlmam.budget import get_budget
from idlmam.data import ResidentLoader, book_loaders
from idlmam.experiments import run
from idlmam.models import count_parameters, mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import cosine_schedule, eta_min_for
from idlmam.stats import compare, final_scores
from idlmam.text import plural
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.exercises.epochs  # T, the same for every run: equal passes over the data
TRAIN_SIZE = BUDGET.exercises.train_size  # training images (None: all 60,000)
SEEDS = range(BUDGET.exercises.seeds)  # every run is repeated with these seeds
QUICK = BUDGET.name == "quick"
budget_banner(BUDGET, BUDGET.exercises)
BATCH_SIZES = (128, 512) if QUICK else (4, 32, 64, 128)  # exercise 2 (B = 1 is left out: see below)
DEPTHS = (1, 6) if QUICK else (1, 6, 12, 24)  # exercise 3: hidden layers
WIDTH = 256  # exercise 3: neurons per hidden layer
ETA_0 = 0.1  # SGD's rate, as in the chapter (AdamW keeps its default 0.001)
DIPS = 2  # cosine annealing: two dips, ending on the second, on the last epoch
DEVICE = get_device()
print(
    f"this page's sweeps: {EPOCHS} epochs per run on {TRAIN_SIZE or 60_000:,} training images, "
    f"{len(SEEDS)} seeds; batch sizes {BATCH_SIZES}, depths {DEPTHS}"
)

# %% [markdown]
# The exercises are costlier than the chapter's runs, so every budget gives them their own,
# smaller sweep: the line above says how many epochs and images the numbers on this page come
# from.
#
# ## Exercise 2: the batch size
#
# Rerun the chapter's AdamW, SGD with Nesterov momentum and cosine annealing experiments with
# batch sizes $B = 1, 4, 32, 64, 128$. How does the batch size change how much each tool helps,
# and the accuracy they reach?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: the setup
# The three tools are the chapter's: `AdamW` with its defaults, SGD with $\eta_0 = 0.1$ and
# Nesterov momentum $\mu = 0.9$, and plain SGD with a cosine schedule of two dips whose second
# dip is the last epoch (`idlmam.optim.cosine_schedule`), with the book's floor
# $\eta_{min} = \eta_0 / 100$ (never 0, since an epoch at a rate of 0 learns nothing). Every run
# makes the same number of passes over the data, so a smaller batch takes *more* steps; the
# table below counts them. That is also why $B = 1$ is not in the list: on a CPU it would cost
# more than the rest of the page. Add `1` to `BATCH_SIZES` to see it; expect SGD at
# $\eta = 0.1$ to be very noisy there.
#
# The training data is decoded once; each batch size gets a new loader over the same tensors.
# Each tool and batch size is trained once per seed.
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
base = book_loaders(256, device=DEVICE, train_size=TRAIN_SIZE)


def sgd_cosine(opt):
    return cosine_schedule(opt, EPOCHS, DIPS, eta_min=eta_min_for(ETA_0))


tools = {
    "AdamW": (lambda p: torch.optim.AdamW(p), None),
    "SGD+Nesterov": (lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=0.9, nesterov=True), None),
    "SGD+cosine": (lambda p: torch.optim.SGD(p, lr=ETA_0), sgd_cosine),
}
frames, steps = [], {}
for B in BATCH_SIZES:
    train = ResidentLoader(base["train"].X, base["train"].y, B, shuffle=True, device=DEVICE)
    steps[B] = len(train)
    for name, (make_optimizer, make_schedule) in tools.items():
        frame = run(
            name,
            make_optimizer,
            make_schedule,
            loaders={"train": train, "test": base["test"]},
            epochs=EPOCHS,
            device=DEVICE,
            seeds=SEEDS,
        )
        frames.append(frame.assign(B=B))
by_batch = pd.concat(frames, ignore_index=True)
pd.Series(steps, name="optimizer steps per epoch").rename_axis("B").to_frame().T

# %% mystnb={"figure": {"caption": "Exercise 2: left, the final test accuracy of each tool against the batch size (mean over seeds, bars: 95% interval); right, test accuracy against training seconds, one line per tool (colour) and batch size (line style), mean over seeds.", "name": "fig-ex2-batch-size"}, "image": {"alt": "Two panels. Left: final test accuracy against batch size on a log axis, one line with error bars for each of AdamW, SGD with Nesterov momentum and SGD with cosine annealing. Right: test accuracy against training time in seconds, one curve per tool and batch size; the curves of smaller batches stretch further to the right, since their epochs take longer."}} tags=["hide-input", "nbval-ignore-output"]
labelled = by_batch.assign(run=by_batch["run"] + " at B=" + by_batch["B"].astype(str))
finals = final_scores(labelled)
fig, (ax_b, ax_t) = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
styles = dict(zip(BATCH_SIZES, ["-", "--", "-.", ":"]))
for i, name in enumerate(tools):
    rows = finals.loc[[f"{name} at B={B}" for B in BATCH_SIZES]]
    ax_b.errorbar(
        BATCH_SIZES,
        rows["mean"],
        yerr=rows["half_width"],
        marker="o",
        capsize=3,
        color=f"C{i}",
        label=name,
    )
    for B in BATCH_SIZES:
        curve = (
            by_batch[(by_batch["run"] == name) & (by_batch["B"] == B)]
            .groupby("epoch")
            .mean(numeric_only=True)
        )
        ax_t.plot(
            curve["total time"],
            curve["test Accuracy"],
            ls=styles[B],
            color=f"C{i}",
            label=f"{name}, B={B}",
        )
ax_b.set(
    xscale="log",
    xlabel="batch size B",
    ylabel="final test accuracy",
    title="Final test accuracy by batch size",
)
ax_b.set_xticks(BATCH_SIZES, [str(B) for B in BATCH_SIZES], minor=False)
ax_b.minorticks_off()
ax_b.legend(fontsize=8)
ax_t.set(
    xscale="log",
    xlabel="training seconds (log scale)",
    ylabel="test accuracy",
    title="Accuracy against wall-clock time",
)
fig.legend(
    *ax_t.get_legend_handles_labels(), loc="outside lower center", ncol=len(tools), fontsize=8
)
plt.show()

# %% tags=["hide-input", "nbval-ignore-output"]
small, large = min(BATCH_SIZES), max(BATCH_SIZES)
glue("b_small", small, display=False)
glue("b_large", large, display=False)
glue("b_steps_small", steps[small], display=False)
glue("b_steps_large", steps[large], display=False)
seconds = by_batch[by_batch["epoch"] == EPOCHS - 1].groupby("B")["total time"].mean()
glue("b_time_ratio", seconds[small] / seconds[large], display=False)
finals[["seeds", "mean", "half_width"]].round(4)

# %% [markdown]
# :::{dropdown} Solution: what changes with the batch size
# A batch of $B = $ {glue:text}`b_small` takes {glue:text}`b_steps_small` optimizer steps per
# epoch here, a batch of {glue:text}`b_large` only {glue:text}`b_steps_large`; on this machine
# the smallest batch took {glue:text}`b_time_ratio:.1f` times as long to train as the largest.
# What the runs say about accuracy, each difference with its interval over the seeds:
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
lines = []
for name in tools:
    moved = compare(labelled, f"{name} at B={small}", f"{name} at B={large}")
    lines.append(f"- **{name}**, the batch size alone: {moved.sentence()}.")
for B in (small, large):
    for name in ("AdamW", "SGD+cosine"):
        against = compare(labelled, f"{name} at B={B}", f"SGD+Nesterov at B={B}")
        lines.append(f"- {against.sentence()}.")
finding(
    "\n".join(lines),
    sizes=BUDGET.exercises,
    needs="tell how the batch size changes what each tool reaches",
)

# %% [markdown]
# :::{dropdown} Solution: how to read it
# Three mechanisms explain what to look for in the table and the plots:
#
# - **Smaller batches mean more steps per epoch.** With the epoch count fixed, a small batch
#   makes many more, noisier updates. Whether that buys accuracy within the same number of
#   epochs is what the lines above measure; what it costs in time is in the right panel. On a
#   GPU, where a batch of 128 takes little longer than a batch of 4, each small-batch epoch
#   costs more still in comparison.
# - **The learning rate was tuned for one batch size.** A batch of $B$ examples averages $B$
#   gradients, so the noise in a step shrinks like $1/\sqrt{B}$. SGD's $\eta = 0.1$ with
#   momentum 0.9 is aggressive at small $B$: Nesterov momentum amplifies the steps by about
#   $1/(1-\mu) = 10$, which makes it the setting most exposed to that noise. A common rule of
#   thumb scales the rate with the batch size.
# - **AdamW divides each step by a running estimate of the gradient's size**, so noisier
#   gradients give proportionally smaller steps; that is the reason to expect it to move less
#   with $B$ than SGD does. Cosine annealing's dips shrink the steps at the end, just when the
#   noise would keep the weights from settling.
# :::

# %% [markdown]
# ## Exercise 3: deeper networks
#
# Write a function that builds a fully connected network with $n = 256$ neurons per hidden
# layer and an argument for the number of hidden layers. Train networks with 1, 6, 12 and 24
# hidden layers with plain SGD, and again with AdamW and cosine annealing. Do the new tools
# change how well deep networks learn?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: the builder
# The package's `mlp` is that function: one `Linear` plus $\tanh$ into the first hidden layer,
# `layers - 1` more, then the output layer, all collected in an `nn.Sequential`.
#
# ```{literalinclude} ../../idlmam/models.py
# :pyobject: mlp
# :language: python
# ```
# :::

# %% tags=["hide-input"]
for depth in DEPTHS:
    print(
        f"{plural(depth, 'hidden layer'):>16} of {WIDTH}: {count_parameters(mlp(hidden=WIDTH, layers=depth)):>9,} parameters"
    )

# %% tags=["hide-input", "nbval-ignore-output"]
ADAMW_ETA_0 = 1e-3  # AdamW's default rate, the top of its cosine schedule


def adamw_cosine(opt):
    return cosine_schedule(opt, EPOCHS, DIPS, eta_min=eta_min_for(ADAMW_ETA_0))


optimizers = {
    "SGD": (lambda p: torch.optim.SGD(p, lr=ETA_0), None),
    "AdamW+cosine": (lambda p: torch.optim.AdamW(p, lr=ADAMW_ETA_0), adamw_cosine),
}
frames = []
for depth in DEPTHS:
    for name, (make_optimizer, make_schedule) in optimizers.items():
        frame = run(
            name,
            make_optimizer,
            make_schedule,
            loaders=base,
            epochs=EPOCHS,
            device=DEVICE,
            seeds=SEEDS,
            make_model=partial(mlp, hidden=WIDTH, layers=depth),
        )
        frames.append(frame.assign(depth=depth))
by_depth = pd.concat(frames, ignore_index=True)
depth_runs = by_depth.assign(run=by_depth["run"] + " / " + by_depth["depth"].astype(str))
depth_table = final_scores(depth_runs)
depth_table[["seeds", "mean", "half_width"]].round(4)

# %% mystnb={"figure": {"caption": "Exercise 3: training loss per epoch (log scale, mean over seeds) of plain SGD and of AdamW with cosine annealing, one panel per depth.", "name": "fig-ex3-depth"}, "image": {"alt": "One panel per number of hidden layers, each with the training loss on a log axis against epoch for plain SGD and for AdamW with cosine annealing, and a dotted line at ln 10, the loss of guessing. The panels share the y-axis, so the deeper networks' curves can be compared with the shallow one."}} tags=["hide-input", "nbval-ignore-output"]
fig, axes = plt.subplots(1, len(DEPTHS), figsize=(3.2 * len(DEPTHS), 3.4), sharey=True)
for ax, (depth, group) in zip(axes, by_depth.groupby("depth")):
    for i, name in enumerate(optimizers):
        curve = group[group["run"] == name].groupby("epoch")["train loss"].mean()
        ax.plot(curve.index, curve, color=f"C{i}", label=name)
    ax.axhline(math.log(10), color="grey", ls=":", label="guessing (ln 10)")
    ax.set(title=f"{depth} hidden layer{'s' if depth > 1 else ''}", xlabel="epoch", yscale="log")
low, high = axes[0].get_ylim()
axes[0].set_yticks([0.1, 0.2, 0.5, 1, 2], ["0.1", "0.2", "0.5", "1", "2"])
axes[0].set_ylim(low, high)
axes[0].minorticks_off()
axes[0].set_ylabel("training loss (log scale)")
axes[0].legend(fontsize=8)
plt.show()

# %% tags=["hide-input", "nbval-ignore-output"]
deepest = max(DEPTHS)
for name in optimizers:
    for depth in (min(DEPTHS), deepest):
        key = f"d_{name.replace('+', '_')}_{depth if depth == min(DEPTHS) else 'max'}"
        glue(key, depth_table.loc[f"{name} / {depth}", "mean"], display=False)
        glue(key + "_hw", depth_table.loc[f"{name} / {depth}", "half_width"], display=False)
deepest_sgd = by_depth[(by_depth["run"] == "SGD") & (by_depth["depth"] == deepest)]
first_last = deepest_sgd.groupby("epoch")["train loss"].mean()
glue("d_max", deepest, display=False)
glue("d_SGD_max_first_loss", first_last.iloc[0], display=False)
glue("d_SGD_max_last_loss", first_last.iloc[-1], display=False)
per_epoch = by_depth[by_depth["epoch"] == EPOCHS - 1].groupby("depth")["total time"].mean()
glue("d_time_ratio", per_epoch[deepest] / per_epoch[min(DEPTHS)], display=False)
print(f"training seconds per run, by depth: {per_epoch.round(1).to_dict()}")

# %% [markdown]
# :::{dropdown} Solution: what depth does to each optimizer
# With one hidden layer plain SGD reached {glue:text}`d_SGD_1:.3f` ±
# {glue:text}`d_SGD_1_hw:.3f` and AdamW with cosine annealing
# {glue:text}`d_AdamW_cosine_1:.3f` ± {glue:text}`d_AdamW_cosine_1_hw:.3f`; with the deepest
# network, {glue:text}`d_max` hidden layers, {glue:text}`d_SGD_max:.3f` ±
# {glue:text}`d_SGD_max_hw:.3f` and {glue:text}`d_AdamW_cosine_max:.3f` ±
# {glue:text}`d_AdamW_cosine_max_hw:.3f` (means over the seeds with their 95% intervals).
#
# Deep stacks of $\tanh$ layers are hard for plain SGD: every layer multiplies the gradient by
# its weights and by $\tanh'$, which is at most 1, so the gradient reaching the first layers can
# be small and SGD's fixed step leaves them nearly untrained. Look for it in the training loss
# (log scale): a curve that stays on the dotted line, the loss of guessing among ten classes
# ($\ln 10 \approx 2.30$), has not started to learn. At {glue:text}`d_max` layers SGD's
# training loss went from {glue:text}`d_SGD_max_first_loss:.2f` in the first epoch to
# {glue:text}`d_SGD_max_last_loss:.2f` in the last (mean over seeds). AdamW rescales each
# parameter's step by its own gradient history, so small gradients can still give steps of a
# useful size, and the cosine schedule lets it finish with small, precise steps; but rescaling
# cannot restore a signal that the many layers in between have washed out, so it can hit a
# depth limit too (normalisation layers and skip connections are the usual remedies, beyond
# this exercise). The deepest networks also cost more:
# {glue:text}`d_time_ratio:.1f` times the training time of one hidden layer here. Whether the
# new tools pay off, and whether depth does, the runs answer with their intervals:
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
lines = [
    f"- **{depth} hidden layer{'s' if depth > 1 else ''}**: "
    + compare(depth_runs, f"AdamW+cosine / {depth}", f"SGD / {depth}").sentence()
    + "."
    for depth in DEPTHS
]
for name in optimizers:
    deeper = compare(depth_runs, f"{name} / {deepest}", f"{name} / {min(DEPTHS)}")
    lines.append(f"- **{name}, {deepest} layers against 1**: {deeper.sentence()}.")
finding(
    "\n".join(lines),
    sizes=BUDGET.exercises,
    needs="tell whether the new tools or depth change the accuracy",
)

# %% [markdown]
# ## What we did
#
# - Retrained AdamW, Nesterov momentum and cosine annealing at several batch sizes, with the
#   number of epochs fixed, over several seeds, and read the result both per epoch and per
#   second.
# - Built networks of 256 neurons per layer and up to {glue:text}`d_max` hidden layers, and
#   compared plain SGD with AdamW plus cosine annealing on them, each difference with its
#   interval over the seeds.
