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
            "idlmam[tune]==0.5.2",
        ],
        check=True,
    )

# %%
import math
from functools import partial

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
from matplotlib.transforms import blended_transform_factory

from idlmam.budget import get_budget
from idlmam.data import ResidentLoader, book_loaders
from idlmam.experiments import run
from idlmam.models import count_parameters, mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import cosine_schedule, eta_min_for
from idlmam.plotting import run_colours, run_dashes
from idlmam.stats import compare, final_scores, last_epochs
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


def listed(items):
    """'4', '4 and 32', '4, 32 and 64'."""
    items = [str(item) for item in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]


print(
    f"Exercise 2 trains at batch sizes {listed(BATCH_SIZES)}; exercise 3 trains networks of "
    f"{listed(DEPTHS)} hidden layers of {WIDTH} neurons."
)

# %% [markdown]
# The exercises are costlier than the chapter's runs, so each budget sizes them on its own (on
# `full`, fewer epochs than the chapter, on a sample of the training images): the box above says
# how many epochs, seeds and images the numbers on this page come from, the line below it which
# batch sizes and depths.
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


tools = {  # the book's run names: each keeps its colour on every page
    "AdamW": (lambda p: torch.optim.AdamW(p), None),
    "SGD w/ Nesterov": (
        lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=0.9, nesterov=True),
        None,
    ),
    "SGD+CosineLR": (lambda p: torch.optim.SGD(p, lr=ETA_0), sgd_cosine),
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
pd.DataFrame(
    {f"B = {B}": [f"{steps[B]:,}"] for B in BATCH_SIZES}, index=["optimizer steps per epoch"]
)

# %% tags=["hide-input", "nbval-ignore-output"]
CHANCE = 0.1  # ten balanced classes: what guessing, or one class for every image, scores
NEAR_CHANCE = 0.15  # a seed whose final test accuracy is below this learned next to nothing
GUESS_LOSS = math.log(10)  # the cross-entropy of an even guess over ten classes


def at_chance(frame):
    """Per run: its seeds, and how many ended below NEAR_CHANCE (a diverged seed: neither)."""
    last = last_epochs(frame, "test Accuracy", sort=False).dropna(subset=["test Accuracy"])
    low = last["test Accuracy"] < NEAR_CHANCE
    return pd.DataFrame(
        {"seeds": last.groupby("run", sort=False).size(), "low": low.groupby(last["run"]).sum()}
    ).reindex(last["run"].unique())  # in the order the runs were trained


def score_cell(score, chance):
    """'0.846 ± 0.008', and how many of its seeds ended at chance."""
    text = f"{score['mean']:.3f}"
    if not math.isnan(score["half_width"]):
        text += f" ± {score['half_width']:.3f}"
    if chance["low"] == chance["seeds"]:
        return text + " (at chance)"
    if chance["low"]:
        return text + f" ({chance['low']} of {plural(chance['seeds'], 'seed')} at chance)"
    return text


def seeds_said(chance):
    """'all 3 seeds', '1 of 3 seeds'."""
    n, low = int(chance["seeds"]), int(chance["low"])
    return f"all {plural(n, 'seed')}" if low == n else f"{low} of {plural(n, 'seed')}"


def chance_story(frame, chance):
    """Which runs of ``frame`` ended at chance, on how many seeds, and their training loss."""
    low = chance[chance["low"] > 0]
    if low.empty:
        return f"No seed of any run ended below {NEAR_CHANCE:.0%}: every run learned"
    if len(low) == 1:
        story = f"{low.index[0]} learned nothing: it ended at chance on {seeds_said(low.iloc[0])}"
    else:
        parts = [f"{name} ({seeds_said(row)})" for name, row in low.iterrows()]
        story = f"Some runs learned nothing: {listed(parts)} ended at chance"
    every = [name for name, row in low.iterrows() if row["low"] == row["seeds"]]
    if not every:
        return story
    curves = [frame[frame["run"] == name].groupby("epoch")["train loss"].mean() for name in every]
    first = [curve.iloc[0] for curve in curves]
    last = [curve.iloc[-1] for curve in curves]

    def span(values):
        low, high = f"{min(values):.2f}", f"{max(values):.2f}"
        return low if low == high else f"{low} to {high}"

    story += (
        f". {'Its' if len(low) == 1 else 'Their' if len(every) == len(low) else 'Where every seed did, their'} training loss was "
        f"{span(first)} in the first epoch and {span(last)} in the last (mean over seeds), "
        f"against {GUESS_LOSS:.2f} for an even guess over the ten classes"
    )
    if min(last) > 2 * GUESS_LOSS:
        story += ": confidently wrong, not undecided"
    elif max(abs(v - GUESS_LOSS) for v in first + last) < 0.05:
        story += ": an even guess from the first epoch to the last"
    return story


def chance_axis(ax):
    """Where a run at chance is drawn: x in data, y on the axis' bottom edge."""
    return blended_transform_factory(ax.transData, ax.transAxes)


labelled = by_batch.assign(run=by_batch["run"] + " at B=" + by_batch["B"].astype(str))
finals = final_scores(labelled)
chance = at_chance(labelled)
failed = {  # (tool, B) at chance on every seed
    (name, B)
    for name in tools
    for B in BATCH_SIZES
    if chance.loc[f"{name} at B={B}", "low"] == chance.loc[f"{name} at B={B}", "seeds"]
}
colours, dashes = run_colours(tools), run_dashes(tools)
styles = {name: (0, dashes[name]) if dashes[name] else "-" for name in tools}


def chance_style(name):
    """How a run at chance on every seed is drawn: a cross in its colour."""
    return dict(marker="X", ms=10, ls="none", color=colours[name], zorder=5)


glue("chance_pct", f"{CHANCE:.0%}", display=False)
glue("near_chance_pct", f"{NEAR_CHANCE:.0%}", display=False)
glue("test_per_class", f"{base['test'].n_examples // 10:,}", display=False)
# the legend's cross: in the colour it is drawn in when one colour has crosses; in grey,
# labelled as standing for any run's colour, when several have
cross_colours = {colours[name] for name, _ in failed}
one_colour = len(cross_colours) == 1
chance_marker = Line2D(
    [],
    [],
    marker="X",
    ms=9,
    ls="none",
    color=next(iter(cross_colours)) if one_colour else "0.4",
    label="at chance on every seed (below the axis)"
    if one_colour
    else "at chance on every seed (a cross in its run's colour, below the axis)",
)

# %% [markdown]
# A network that has learned nothing scores {glue:text}`chance_pct` on the test set: it has ten
# classes of {glue:text}`test_per_class` images each, so giving every image the same class gets
# one in ten right. Below, a seed whose final test accuracy is under
# {glue:text}`near_chance_pct` counts as *at chance*, and a run at chance on every seed is
# drawn as a cross on the bottom edge of the axis, below the range shown, so that it does not
# squash the others.

# %% mystnb={"figure": {"caption": "Exercise 2: the final test accuracy of each tool against the batch size (mean over seeds, bars: 95% interval). A cross on the bottom edge marks a run that ended at chance on every seed, far below the axis.", "name": "fig-ex2-batch-size"}, "image": {"alt": "Final test accuracy against batch size on a log axis, one line with error bars for each tool in its book colour: AdamW red, SGD with Nesterov momentum green, SGD with cosine annealing blue and dashed. A run that ended at chance on every seed has no point on its line; a cross in its colour sits on the bottom edge of the axis at its batch size instead, and the legend says it is below the axis."}} tags=["hide-input", "nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(8.5, 4.2), layout="constrained")
for name in tools:
    names = [f"{name} at B={B}" for B in BATCH_SIZES]
    shown = finals.loc[names, ["mean", "half_width"]].copy()
    shown.loc[[f"{name} at B={B}" for B in BATCH_SIZES if (name, B) in failed]] = math.nan
    ax.errorbar(
        BATCH_SIZES,
        shown["mean"],
        yerr=shown["half_width"],
        marker="o",
        capsize=3,
        color=colours[name],
        ls=styles[name],
        label=name,
    )
    out = [B for B in BATCH_SIZES if (name, B) in failed]
    ax.plot(out, [0] * len(out), transform=chance_axis(ax), clip_on=False, **chance_style(name))
ax.set(
    xscale="log",
    xlabel="batch size B (log scale)",
    ylabel="final test accuracy",
    title="Final test accuracy by batch size",
)
ax.set_xticks(BATCH_SIZES, [str(B) for B in BATCH_SIZES], minor=False)
ax.minorticks_off()
handles = [  # drawn as the lines are: errorbar's own handles lose the dashes
    Line2D([], [], color=colours[n], ls=styles[n], marker="o", label=n) for n in tools
]
ax.legend(
    handles=handles + [chance_marker] * bool(failed),
    fontsize=8,
    loc="upper left",
    bbox_to_anchor=(1.01, 1),
    handlelength=3.5,  # long enough for a marker and the dashes on either side of it
)
plt.show()

# %% mystnb={"figure": {"caption": "Exercise 2: test accuracy against training seconds, one panel per batch size, one line per tool (mean over seeds). A cross on the bottom edge marks where a run at chance on every seed ended, far below the axis.", "name": "fig-ex2-time"}, "image": {"alt": "One panel per batch size, sharing both axes: test accuracy against training time in seconds on a log axis, one curve per tool in its book colour, AdamW red, SGD with Nesterov momentum green, SGD with cosine annealing blue and dashed. The curves of smaller batches stretch further to the right, since their epochs take longer. A run at chance on every seed is below the axis: a cross in its colour on the bottom edge marks its last epoch."}} tags=["hide-input", "nbval-ignore-output"]
fig, axes = plt.subplots(
    1,
    len(BATCH_SIZES),
    figsize=(2.9 * len(BATCH_SIZES) + 0.8, 3.8),
    sharex=True,
    sharey=True,
    layout="constrained",
    squeeze=False,
)
curves = by_batch.groupby(["run", "B", "epoch"]).mean(numeric_only=True)
for ax, B in zip(axes[0], BATCH_SIZES):
    for name in tools:
        curve = curves.loc[(name, B)]
        ax.plot(
            curve["total time"],
            curve["test Accuracy"],
            color=colours[name],
            ls=styles[name],
            label=name,
        )
        if (name, B) in failed:
            end = curve["total time"].iloc[-1]
            ax.plot([end], [0], transform=chance_axis(ax), clip_on=False, **chance_style(name))
    ax.set(title=f"B = {B}", xscale="log", xlabel="training seconds (log scale)")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # 0.5, 1, 2, 5, 10, ... seconds
    ax.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: f"{seconds:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
axes[0, 0].set_ylabel("test accuracy (mean over seeds)")
# the range of the runs that learned; a run at chance would squash it to a line
learned = curves.loc[[(r, b) not in failed for r, b, _ in curves.index], "test Accuracy"]
low, high = learned.min(), learned.max()
axes[0, 0].set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
handles, _ = axes[0, 0].get_legend_handles_labels()
fig.legend(
    handles=handles + [chance_marker] * bool(failed),
    loc="outside lower center",
    ncol=len(tools) + bool(failed) if len(BATCH_SIZES) > 2 else 2,
    fontsize=8,
    handlelength=3,  # long enough to show the dashes
)
plt.show()

# %% tags=["hide-input", "nbval-ignore-output"]
small, large = min(BATCH_SIZES), max(BATCH_SIZES)
glue("b_small", small, display=False)
glue("b_large", large, display=False)
glue("b_steps_small", f"{steps[small]:,}", display=False)
glue("b_steps_large", f"{steps[large]:,}", display=False)
seconds = by_batch[by_batch["epoch"] == EPOCHS - 1].groupby("B")["total time"].mean()
glue("b_time_ratio", seconds[small] / seconds[large], display=False)
glue("b_chance_story", chance_story(labelled, chance), display=False)
pd.DataFrame(
    {
        f"B = {B}": [
            score_cell(finals.loc[f"{n} at B={B}"], chance.loc[f"{n} at B={B}"]) for n in tools
        ]
        for B in BATCH_SIZES
    },
    index=list(tools),
).rename_axis("final test accuracy")

# %% [markdown]
# :::{dropdown} Solution: what changes with the batch size
# A batch of $B = $ {glue:text}`b_small` takes {glue:text}`b_steps_small` optimizer steps per
# epoch here, a batch of {glue:text}`b_large` only {glue:text}`b_steps_large`; on this machine
# the smallest batch took {glue:text}`b_time_ratio:.1f` times as long to train as the largest.
# {glue:text}`b_chance_story`. What the runs say about accuracy, each difference with its
# interval over the seeds:
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
lines = []
for name in tools:
    moved = compare(labelled, f"{name} at B={small}", f"{name} at B={large}")
    lines.append(f"- **{name}**, the batch size alone: {moved.sentence()}.")
for B in (small, large):
    for name in ("AdamW", "SGD+CosineLR"):
        against = compare(labelled, f"{name} at B={B}", f"SGD w/ Nesterov at B={B}")
        lines.append(f"- {against.sentence()}.")
finding(
    "\n".join(lines),
    sizes=BUDGET.exercises,
    needs="tell how the batch size changes what each tool reaches",
)

# %% [markdown]
# :::{dropdown} Solution: how to read it
# Three mechanisms explain what to look for in the table and the figures:
#
# - **Smaller batches mean more steps per epoch.** With the epoch count fixed, a small batch
#   makes many more, noisier updates. Whether that buys accuracy within the same number of
#   epochs is what the lines above measure; what it costs in time is in the figure of accuracy
#   against training seconds. On a GPU, where a batch of 128 takes little longer than
#   a batch of 4, each small-batch epoch costs more still in comparison.
# - **The learning rate was tuned for one batch size.** A batch of $B$ examples averages $B$
#   gradients, so the noise in a step shrinks like $1/\sqrt{B}$. SGD's $\eta = 0.1$ with
#   momentum $\mu = 0.9$ is aggressive at small $B$: momentum adds up the recent steps, so
#   along a steady direction the weights move about $1/(1-\mu) = 10$ times as far per step, as
#   with a rate of 1, while each gradient comes from only $B$ images. At $B = $
#   {glue:text}`b_small` an epoch is {glue:text}`b_steps_small` such steps, and nothing in SGD
#   shrinks a step because its gradient is noisy. Steps that large can throw the weights where
#   the $\tanh$ units saturate (outputs stuck near $\pm 1$, gradients near 0) and the outputs
#   are large: the network then gives every image much the same, confident answer, and the
#   small gradients that reach it cannot bring it back. That is how such a run can end at
#   chance with a training loss far above an even guess's. A common rule of thumb scales the
#   rate with the batch size (the linear scaling rule of {cite:t}`goyal2017accurate`).
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


optimizers = {  # the book's run names: SGD blue, AdamW+CosineLR dashed in AdamW's red
    "SGD": (lambda p: torch.optim.SGD(p, lr=ETA_0), None),
    "AdamW+CosineLR": (lambda p: torch.optim.AdamW(p, lr=ADAMW_ETA_0), adamw_cosine),
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


def deep(name, depth):
    """The run name of one optimizer at one depth: 'SGD with 6 hidden layers'."""
    return f"{name} with {plural(depth, 'hidden layer')}"


depth_runs = by_depth.assign(run=[deep(r, d) for r, d in zip(by_depth["run"], by_depth["depth"])])
depth_table = final_scores(depth_runs)
depth_chance = at_chance(depth_runs)
pd.DataFrame(
    {
        plural(depth, "hidden layer"): [
            score_cell(depth_table.loc[deep(n, depth)], depth_chance.loc[deep(n, depth)])
            for n in optimizers
        ]
        for depth in DEPTHS
    },
    index=list(optimizers),
).rename_axis("final test accuracy")

# %% mystnb={"figure": {"caption": "Exercise 3: training loss per epoch (log scale, mean over seeds) of plain SGD and of AdamW with cosine annealing, one panel per depth; the dotted line is the loss of an even guess over the ten classes.", "name": "fig-ex3-depth"}, "image": {"alt": "One panel per number of hidden layers, each with the training loss on a log axis against epoch for plain SGD (blue, solid) and for AdamW with cosine annealing (red, dashed), and a dotted grey line at ln 10, the loss of an even guess. The panels share the y-axis, so the deeper networks' curves can be compared with the shallow one; a curve that stays on the dotted line has not started to learn."}} tags=["hide-input", "nbval-ignore-output"]
depth_colours, depth_dashes = run_colours(optimizers), run_dashes(optimizers)
fig, axes = plt.subplots(
    1, len(DEPTHS), figsize=(3.2 * len(DEPTHS), 3.4), sharey=True, squeeze=False
)
for ax, (depth, group) in zip(axes[0], by_depth.groupby("depth")):
    for name in optimizers:
        curve = group[group["run"] == name].groupby("epoch")["train loss"].mean()
        dashes = depth_dashes[name]
        ax.plot(
            curve.index,
            curve,
            color=depth_colours[name],
            ls=(0, dashes) if dashes else "-",
            label=name,
        )
    ax.axhline(GUESS_LOSS, color="grey", ls=":", label="even guess (ln 10)", zorder=1)
    ax.set(title=plural(depth, "hidden layer"), xlabel="epoch", yscale="log")
low, high = axes[0, 0].get_ylim()
axes[0, 0].set_yticks([0.1, 0.2, 0.5, 1, 2], ["0.1", "0.2", "0.5", "1", "2"])
axes[0, 0].set_ylim(low, high)
axes[0, 0].minorticks_off()
axes[0, 0].set_ylabel("training loss (log scale)")
axes[0, 0].legend(fontsize=8)
plt.show()

# %% tags=["hide-input", "nbval-ignore-output"]
deepest, shallowest = max(DEPTHS), min(DEPTHS)
glue("d_max", deepest, display=False)
glue("depth_shallow", plural(shallowest, "hidden layer"), display=False)
glue("depth_deep", plural(deepest, "hidden layer"), display=False)
glue("d_chance_story", chance_story(depth_runs, depth_chance), display=False)
per_run = by_depth[by_depth["epoch"] == EPOCHS - 1].groupby("depth")["total time"].mean()
glue("d_time_ratio", per_run[deepest] / per_run[shallowest], display=False)
print(
    "Training seconds per run: "
    + ", ".join(f"{per_run[d]:.1f} with {plural(d, 'hidden layer')}" for d in DEPTHS)
    + "."
)

# %% [markdown]
# :::{dropdown} Solution: what depth does to each optimizer
# The table above gives each network's final test accuracy, the mean over the seeds with its
# 95% interval. {glue:text}`d_chance_story`. The deepest networks also cost more:
# {glue:text}`d_time_ratio:.1f` times the training time of the shallowest here.
#
# A curve that stays on the dotted line of the figure above, the loss of an
# even guess over the ten classes ($\ln 10 \approx 2.30$), has not started to learn. Why a deep
# stack of $\tanh$ layers can stay there is a matter of how its weights *start*, which the next
# cell measures on one batch of training images, before any training.
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
X, y = base["train"].X[:256], base["train"].y[:256]  # one batch of training images


def at_start(depth, init=None):
    """Before training: how much the last hidden layer's output varies from image to image
    (standard deviation over the batch, averaged over its neurons), and the size of the first
    layer's weight gradient relative to the output layer's."""
    torch.manual_seed(0)
    model = mlp(hidden=WIDTH, layers=depth)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for layer in linears if init else ():
        init(layer.weight, gain=torch.nn.init.calculate_gain("tanh"))
        torch.nn.init.zeros_(layer.bias)
    spread = model[:-1](X).std(dim=0).mean().item()
    torch.nn.functional.cross_entropy(model(X), y).backward()
    ratio = (linears[0].weight.grad.norm() / linears[-1].weight.grad.norm()).item()
    return spread, ratio


start = pd.DataFrame(
    {
        plural(d, "hidden layer"): [*at_start(d), *at_start(d, torch.nn.init.xavier_uniform_)]
        for d in DEPTHS
    },
    index=pd.MultiIndex.from_product(
        [
            ["PyTorch's default", "Glorot, tanh gain"],
            ["spread of the last hidden layer", "gradient, first layer / output layer"],
        ]
    ),
)
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def size(value):
    """Two significant digits: '0.15', '0.0088', '4.1 × 10⁻⁷'."""
    if value >= 0.001:
        return f"{value:.2g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa} × 10" + str(int(exponent)).translate(SUPERSCRIPT)


def span(row):
    """'between 0.38 and 0.6' across the depths."""
    return f"between {size(row.min())} and {size(row.max())}"


spread = "spread of the last hidden layer"
ratio = "gradient, first layer / output layer"
default, glorot = start.loc["PyTorch's default"], start.loc["Glorot, tanh gain"]
glue(
    "start_default",
    f"the spread of the last hidden layer's output from image to image falls from "
    f"{size(default.loc[spread].iloc[0])} with {plural(shallowest, 'hidden layer')} to "
    f"{size(default.loc[spread].iloc[-1])} with {plural(deepest, 'hidden layer')}, and the "
    "gradient of the first layer's weights, relative to the output layer's, from "
    f"{size(default.loc[ratio].iloc[0])} to {size(default.loc[ratio].iloc[-1])}",
    display=False,
)
glue(
    "start_glorot",
    f"the spread stays {span(glorot.loc[spread])} and the gradient ratio {span(glorot.loc[ratio])}",
    display=False,
)
start.map(size)

# %% [markdown]
# :::{dropdown} Solution: what a deep $\tanh$ network starts from
# PyTorch's default initialises a `Linear` layer with weights drawn uniformly from
# $\pm 1/\sqrt{n_{in}}$, a variance of $1/(3 n_{in})$: a third of what keeps a signal's size
# through a layer. Each layer therefore shrinks the signal, and $\tanh$, whose slope is at most
# 1, does not restore it. The table measures it before any training: with PyTorch's default,
# {glue:text}`start_default`. The deeper the stack, the less the last hidden layer's output
# depends on the image, and the more the gradient *vanishes* on its way back through the
# $\tanh$ layers, so that SGD's fixed step leaves the first layers nearly untrained. That is why
# a deep $\tanh$ network can stay at chance: the culprit is its initialisation, compounded by
# every layer. AdamW rescales each parameter's step by its own gradient history, so small
# gradients can still give steps of a useful size; but rescaling cannot restore a signal that
# the layers in between have washed out.
#
# With Glorot (Xavier) initialisation scaled by the gain that $\tanh$ needs (the last two rows),
# {glue:text}`start_glorot`: initialisation, not depth alone, decides whether a signal crosses
# the network at the start. This page does not train those networks; normalisation layers and
# skip connections are the other usual remedies, beyond this exercise. Whether the new tools
# pay off, and whether depth does, the runs answer with their intervals:
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
lines = [
    f"- **{plural(depth, 'hidden layer')}**: "
    + compare(depth_runs, deep("AdamW+CosineLR", depth), deep("SGD", depth)).sentence()
    + "."
    for depth in DEPTHS
]
for name in optimizers:
    deeper = compare(depth_runs, deep(name, deepest), deep(name, shallowest))
    lines.append(
        f"- **{name}, {plural(deepest, 'hidden layer')} against {shallowest}**: "
        f"{deeper.sentence()}."
    )
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
