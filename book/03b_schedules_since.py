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
# # Schedules since the chapter
#
# The chapter's schedules change the rate once per epoch and mostly stop short of zero. Today's
# recipes differ in four ways, all of which this page trains on Fashion-MNIST. Two are older
# than the chapter, only not used in it: the rate changes every *batch*, and it starts with a
# short *warmup* (both standard since 2017-18: {cite:alp}`goyal2017accurate,vaswani2017attention`;
# one-cycle, below). Two are newer: the rate ends by *decaying to
# zero*, and the decay is kept apart from the rest of the run so that one run can stop at any
# length (*warmup-stable-decay*). Two older ideas appear next to them (one-cycle, new to this
# book, and the chapter's warm restarts), and so does an alternative to decaying at all:
# averaging the weights.
#
# Every run here uses AdamW, the book's default optimizer (with its default weight decay,
# 0.01), on the chapter's network. The comparisons need many runs, so this page trains on a
# subset of the training images for fewer epochs than the chapter's pages, and holds a part of
# that subset out for validation, on which each schedule's peak rate is chosen; the box below
# says how many. Tables give each run's final test accuracy as the mean over the seeds and the
# `half_width` of its 95% interval.

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
from dataclasses import replace

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, OneCycleLR

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import branch_runs, run
from idlmam.experiments.race import next_rate
from idlmam.experiments.sweep import best_rates, lr_sweep, rate_grid, sweep_label, with_seeds
from idlmam.models import count_parameters, mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import (
    WeightEMA,
    cooldown_schedule,
    ema_decay_for,
    schedule_lrs,
    warmup_constant,
    warmup_cosine,
    warmup_linear_decay,
    wsd_schedule,
)
from idlmam.plotting import plot_runs, run_colours
from idlmam.stats import compare, compare_pairs, final_scores
from idlmam.text import plural
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: small networks gain little from more, and runs repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter or quick
RUNS = BUDGET.since  # this page's sizes: epochs, seeds, training images
VAL_FRACTION = 0.2  # the share of those images held out to choose each schedule's peak
budget_banner(BUDGET, replace(RUNS, items=f"training images, {VAL_FRACTION:.0%} held out"))
EPOCHS = RUNS.epochs  # T, in epochs
SEEDS = range(RUNS.seeds)  # every run is repeated with these seeds
BATCH_SIZE = 256  # B, as in the chapter
PEAKS = (0.01, 0.03, 0.07)  # the warmup experiment: up to 70 times AdamW's default
FACTOR = 2  # the ratio of neighbouring peaks in each schedule's search
GRID = rate_grid(0.005, factor=FACTOR)  # the peaks every schedule tries: 0.0025, 0.005, 0.01
FLOOR = 0.1  # the floor of the decay to a floor, as a share of the peak
COOLDOWN = 0.2  # the share of a WSD run spent decaying (rounded to whole epochs)
DEVICE = get_device()

loaders = book_loaders(
    BATCH_SIZE, device=DEVICE, train_size=RUNS.train_size, val_fraction=VAL_FRACTION
)
STEPS = len(loaders["train"])  # optimizer steps (batches) per epoch
TOTAL = EPOCHS * STEPS  # steps of a whole run
WARMUP = STEPS  # one epoch of warmup
train = dict(loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS)
glue("steps", STEPS, display=False)
glue("total", TOTAL, display=False)
print(
    f"{loaders['train'].n_examples:,} training and {loaders['val'].n_examples:,} validation "
    f"images; {STEPS} steps per epoch, {TOTAL} per run of {EPOCHS} epochs; {len(SEEDS)} seeds"
)


def by_epochs_trained(frame, title):
    """plot_runs with the x axis counting epochs trained (1, 2, ...), this page's convention."""
    ax = plot_runs(frame.assign(epoch=frame["epoch"] + 1), title=title)
    ax.set_xlabel("epochs trained")
    return ax


# %% [markdown]
# ## A schedule stepped every batch
#
# A run of {glue:text}`total` steps that changes its rate once per epoch changes it only a
# handful of times. The schedules on this page are defined per *step*: a warmup (hundreds to
# thousands of steps in published recipes: 4,000 in the Transformer of
# {cite:t}`vaswani2017attention`, 10,000 in BERT {cite:p}`devlin2018bert`, 2,000 in LLaMA
# {cite:p}`touvron2023llama`; here one epoch, {glue:text}`steps` steps), and a decay that reaches
# zero on the very last step. `run` and `train_network` take `lr_schedule_every="batch"` and then
# step the schedule after every optimizer step; the results frame's `lr` column still holds the rate
# at the start of each epoch, and `schedule_lrs` draws the whole curve by stepping the real
# scheduler object.
#
# With $W$ warmup steps, $T$ steps in all and the peak $\eta_{max}$, step $t$ (from 0) of a
# warmup trains at $\eta_{max} (t + 1) / W$, so the first step is small but not zero. After it,
# with $p$ the share of the decay done (0 at the peak, 1 on the last step), a linear decay
# trains at $\eta_{max} (1 - p)$ and a cosine at $\eta_{max} \tfrac{1}{2}(1 + \cos \pi p)$.
# So the package's decays train their last step at exactly zero (at $\eta_{min}$ when given a
# floor), and with a floor of zero that step moves no weight: AdamW's decay is scaled by the rate
# too. {cite:t}`defazio2023optimal` end one step earlier in the line, at
# $\eta_{max}/T$, so that every step moves. The package keeps one convention for every
# schedule, the last step at the floor, which with a floor above zero is the step that trains at
# it; with the floor at zero it costs one step in {glue:text}`total`.
# Warmup-stable-decay stays at $\eta_{max}$ until its last $D$ steps and then cools down as
# $\eta_{max} (1 - \sqrt{p})$, with $p$ the share of the cooldown done. Each is a `LambdaLR` of
# `idlmam.optim`; one-cycle and warm restarts are PyTorch's own classes. All six:


# %%
def constant(o):
    return warmup_constant(o, WARMUP)


def cosine_to_zero(o, epochs=EPOCHS):
    return warmup_cosine(o, epochs * STEPS, WARMUP)


def linear_to_zero(o):
    return warmup_linear_decay(o, TOTAL, WARMUP)


def cooldown_epochs(epochs):
    return max(1, round(COOLDOWN * epochs))


def wsd(o, epochs=EPOCHS):
    return wsd_schedule(o, epochs * STEPS, WARMUP, cooldown_epochs(epochs) * STEPS)


def one_cycle(o):  # its peak is the rate the optimizer was given
    return OneCycleLR(o, max_lr=o.param_groups[0]["lr"], total_steps=TOTAL)


def restarts(o):  # two cosine cycles, each ending at zero
    return CosineAnnealingWarmRestarts(o, T_0=(EPOCHS // 2) * STEPS)


SCHEDULES = {
    "constant": constant,
    "cosine to zero": cosine_to_zero,
    "linear to zero": linear_to_zero,
    "WSD": wsd,
    "one-cycle": one_cycle,
    "warm restarts": restarts,
}
COLOURS = run_colours([*SCHEDULES, "constant + EMA", f"linear to {FLOOR:.0%}", "without warmup"])

# %% mystnb={"figure": {"caption": "The learning rate at every optimizer step of the six schedules on this page, as a share of the schedule's peak (each schedule gets its own peak below), read off the real scheduler objects; the x axis counts epochs trained, and each schedule has the colour it keeps in the figures below.", "name": "fig-batch-schedules"}, "image": {"alt": "Six small panels, one per schedule, each showing the learning rate as a share of its peak against epochs trained at every batch: a warmup followed by a constant rate; a warmup followed by a cosine decay to zero; a warmup followed by a straight line to zero; a warmup, a long constant stretch and a short drop to zero at the end (WSD); one-cycle, rising for about a third of the run and then falling far below its start; and warm restarts, two cosine decays to zero, the first starting at the peak without warmup and the second starting again from the peak."}} tags=["nbval-ignore-output"]
fig, axes = plt.subplots(2, 3, figsize=(11, 5), sharex=True, sharey=True, layout="constrained")
for ax, (name, make) in zip(axes.flat, SCHEDULES.items()):
    rates = schedule_lrs(make, TOTAL, 1.0)  # a peak of 1: the share of the peak
    ax.plot([(t + 1) / STEPS for t in range(TOTAL)], rates, color=COLOURS[name])
    ax.set_title(name if name != "constant" else "constant (after warmup)", fontsize=10)
for ax in axes[1]:
    ax.set_xlabel("epochs trained")
for ax in axes[:, 0]:
    ax.set_ylabel("rate / peak")
fig.suptitle(f"Six schedules stepped every batch, {EPOCHS} epochs")
plt.show()

# %% [markdown]
# One-cycle here is PyTorch's `OneCycleLR` with its defaults, which follow fastai's version: two
# phases, a warmup over 30% of the run from a twenty-fifth of the peak, then a cosine down to
# $10^{-4}$ of that start. Smith and Topin's own policy {cite:yearpar}`smith2017superconvergence`
# has three: up and back down symmetrically to the start, then a short last phase far below it
# (`three_phase=True` in PyTorch). It also moves AdamW's $\beta_1$
# against the rate (`cycle_momentum=True`, its default: from 0.95 down to 0.85 while the rate
# climbs, and back), so it changes two knobs at once. Warm restarts (SGDR:
# {cite:alp}`loshchilov2017sgdr`) repeat a cosine decay, each cycle from the peak without any
# warmup; each cycle ends at a low rate, which is where the
# [snapshot ensembles](06_ensembles.ipynb) take their copies.
#
# ## Warmup: what it buys
#
# At the start of training the weights are random and Adam's estimate of each gradient's size
# rests on a few batches, so the first steps are the least reliable. A warmup climbs to the
# peak over the first steps, here one epoch. What it is said to buy is a larger peak that
# still trains {cite:p}`goyal2017accurate,kalra2024warmup`.
# So we train at three peaks, from {glue:text}`peak_low` to
# {glue:text}`peak_high`, each with and without warmup, and each followed by a linear decay
# to zero so that only the start differs.

# %% tags=["nbval-ignore-output"]
glue("peak_low", min(PEAKS), display=False)
glue("peak_high", max(PEAKS), display=False)


def adamw_at(peak):
    return lambda p: torch.optim.AdamW(p, lr=peak)


def warmed(warmup):
    return lambda o: warmup_linear_decay(o, TOTAL, warmup)


WARMUP_RUNS = {  # run name: (peak, warmup steps), in the order of the table
    f"peak {peak:g} {label}": (peak, w)
    for peak in PEAKS
    for label, w in (("without warmup", 0), ("with warmup", WARMUP))
}
warmup_runs = pd.concat(
    [
        run(name, adamw_at(peak), warmed(w), lr_schedule_every="batch", **train)
        for name, (peak, w) in WARMUP_RUNS.items()
    ],
    ignore_index=True,
)
final_scores(warmup_runs).loc[list(WARMUP_RUNS), ["seeds", "mean", "half_width"]].round(4)

# %% mystnb={"figure": {"caption": "Left: final test accuracy against the peak rate, with and without one epoch of warmup (mean over seeds, bars: 95% interval). Right: training loss per epoch at the largest peak, with and without warmup, one line per seed; the dotted line is ln 10, the loss of guessing among ten classes.", "name": "fig-warmup"}, "image": {"alt": "Left panel: final test accuracy against the peak learning rate on a log axis, two lines with error bars, green with warmup and grey without. Right panel: training loss against epochs trained at the largest peak, one thin line per seed, green with warmup and grey without, and a dotted horizontal line at ln 10."}} tags=["nbval-ignore-output"]
scores = final_scores(warmup_runs)
fig, (ax_peak, ax_loss) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for colour, label in (
    (COLOURS["without warmup"], "without warmup"),
    (COLOURS["linear to zero"], "with warmup"),
):
    rows = scores.loc[[f"peak {peak:g} {label}" for peak in PEAKS]]
    ax_peak.errorbar(
        PEAKS,
        rows["mean"],
        yerr=rows["half_width"],
        marker="o",
        capsize=3,
        color=colour,
        label=label,
    )
    at_top = warmup_runs[warmup_runs["run"] == f"peak {max(PEAKS):g} {label}"]
    for i, (_, seed) in enumerate(at_top.groupby("seed")):
        ax_loss.plot(
            seed["epoch"] + 1,
            seed["train loss"],
            color=colour,
            lw=1,
            label=label if i == 0 else None,
        )
ax_loss.axhline(math.log(10), color="black", ls=":", lw=1, label="guessing (ln 10)")
ax_peak.set(xscale="log", xlabel="peak learning rate (log scale)", ylabel="final test accuracy")
ax_peak.set_xticks(PEAKS, [f"{peak:g}" for peak in PEAKS])
ax_peak.minorticks_off()
ax_peak.set_title("Final accuracy by peak rate")
ax_peak.legend()
ax_loss.set(xlabel="epochs trained", ylabel="training loss (mean over the epoch)")
ax_loss.set_title(f"Training loss at peak {max(PEAKS):g}")
ax_loss.legend()
plt.show()

# %% [markdown]
# What warmup changed at the smallest and at the largest peak, and how the two larger peaks
# fared against the smallest, all three with warmup:

# %% tags=["nbval-ignore-output"]
top, low = f"peak {max(PEAKS):g}", f"peak {min(PEAKS):g}"
finding(
    compare_pairs(
        warmup_runs,
        [
            (f"{low} with warmup", f"{low} without warmup"),
            (f"{top} with warmup", f"{top} without warmup"),
            *[(f"peak {peak:g} with warmup", f"{low} with warmup") for peak in PEAKS[1:]],
        ],
    ),
    needs="tell whether warmup helps at a small or a large peak",
    sizes=RUNS,
)

# %% tags=["nbval-ignore-output"]
glue("n_seeds", len(SEEDS), display=False)
first = warmup_runs[warmup_runs["epoch"] == 0].groupby(["run", "seed"])["train loss"].first()
for label in ("with", "without"):
    seeds = first[f"{top} {label} warmup"]
    glue(f"first_loss_{label}", seeds.mean(), display=False)
    glue(f"first_worst_{label}", seeds.max(), display=False)
    glue(f"first_above_{label}", int((seeds > math.log(10)).sum()), display=False)

# %% [markdown]
# The right panel follows the training loss from the first epoch on. In the first epoch, at the
# largest peak, the training loss averaged {glue:text}`first_loss_without:.2f` without warmup (mean
# over the seeds; the worst seed {glue:text}`first_worst_without:.2f`, and
# {glue:text}`first_above_without` of {glue:text}`n_seeds` seeds above $\ln 10 \approx 2.30$,
# worse than guessing among ten classes), against {glue:text}`first_loss_with:.2f` with
# warmup (worst {glue:text}`first_worst_with:.2f`). The loss does not become infinite: Adam
# moves each weight by at most a few times the rate per step, and the $\tanh$ units cannot
# leave $(-1, 1)$. Most likely the full-size first steps drive many units into saturation,
# where their gradients vanish, and the rest of the run starts from there. The constant,
# cosine, linear and WSD runs below all start with one epoch of warmup; one-cycle has its own
# longer warmup, and warm restarts, as PyTorch defines them, have none.
#
# ## The peak: a search for each schedule
#
# A schedule and its peak work together. A decay spends most of its steps below the peak, so it
# can start from a peak that a constant rate could not hold for a whole run; compared at one
# peak, part of the gap between a decay and a constant rate may only mean that the peak is too
# high for the constant rate. So each schedule gets its own small search of the peak, the same
# for all, by one rule fixed before any run (the protocol of the
# [optimizers page](03c_optimizers_since.ipynb), with `idlmam.experiments.sweep`):
#
# - **The peaks** {glue:text}`grid_text`: a log grid with a factor of {glue:text}`factor`
#   between neighbours, around {glue:text}`grid_centre`, {glue:text}`grid_times` times AdamW's
#   default. Its top is the peak this page used for every schedule before it searched, and the
#   smallest peak of the warmup experiment, whose run with warmup is the linear decay's trial
#   there; its bottom leaves room for the constant rate, which has to hold its peak to the end.
#   The factor is small because the differences between schedules are small: any peak in the
#   grid's range lies within a factor of $\sqrt 2$ of a peak tried.
# - **One seed per trial**, scored by its final accuracy on the validation split, the
#   {glue:text}`val_share:.0%` of the training images held out from training. The choice reads
#   nothing else: the trials record test scores too, but the test set plays no part in it.
# - **Where the best peak is an end of the grid**, the schedule tries one more peak past that
#   end, once (the grid's smallest divided by the factor, or its largest times it: the rule of
#   the [optimizers page](03c_optimizers_since.ipynb), `idlmam.experiments.race.next_rate`,
#   applied once rather than twice to keep this page short); a best still at an end is flagged
#   below, as a result that a wider search might move.
# - **The chosen peak is then trained with every seed**, and those runs are scored on the test
#   set. Seed 0's run is the trial itself, chosen for scoring well on validation, which biases
#   each tuned result slightly upward; every schedule shares that bias. WSD and the cosine are
#   searched at the run's full length, and keep their peaks for the shorter lengths of the WSD
#   section.
#
# The weight average at the end of the page is searched the same way, and so is a decay that
# stops at a floor of {glue:text}`floor_share:.0%` of its peak instead of zero, for the
# comparison after the next.

# %%
glue("grid_text", ", ".join(f"{peak:g}" for peak in GRID), display=False)
glue("factor", FACTOR, display=False)
glue("grid_centre", GRID[len(GRID) // 2], display=False)
glue("grid_times", round(GRID[len(GRID) // 2] / 0.001), display=False)  # AdamW's default rate
glue("val_share", VAL_FRACTION, display=False)
glue("floor_share", FLOOR, display=False)
FLOORED = f"linear to {FLOOR:.0%}"  # the decay to a floor
low = f"peak {min(PEAKS):g}"
assert min(PEAKS) in GRID  # the warmup experiment's run at that peak is a trial of the search


def adamw(params, lr):
    return torch.optim.AdamW(params, lr=float(lr))  # a plain float: checkpoints store it


def adamw_ema(params, lr):  # evaluated at the moving average of its weights (see the end)
    return WeightEMA(torch.optim.AdamW(params, lr=float(lr)), ema_decay_for(STEPS))


def linear_to_floor(o):
    return warmup_linear_decay(o, TOTAL, WARMUP, eta_min=FLOOR * o.param_groups[0]["lr"])


SEARCHED = {  # schedule: (make_schedule, optimizer_at), in the order of the tables
    "constant": (constant, adamw),
    "cosine to zero": (cosine_to_zero, adamw),
    "linear to zero": (linear_to_zero, adamw),
    FLOORED: (linear_to_floor, adamw),
    "WSD": (wsd, adamw),
    "one-cycle": (one_cycle, adamw),
    "warm restarts": (restarts, adamw),
    "constant + EMA": (constant, adamw_ema),
}
# what every run of a search passes to lr_sweep and with_seeds (which take the seeds apart)
per_batch = dict(loaders=loaders, epochs=EPOCHS, device=DEVICE, lr_schedule_every="batch")


def search(name, make_schedule, optimizer_at, done=None, every_seed=True):
    """The rule above for schedule ``name``: its trials, and its chosen peak with every seed.

    ``done`` maps a peak to runs of this schedule made already (all seeds), reused.
    """
    done = {peak: f.assign(optimizer=name, rate=peak) for peak, f in (done or {}).items()}
    kwargs = dict(make_schedule=make_schedule, **per_batch)

    def trials_at(peaks):
        new = [peak for peak in peaks if peak not in done]
        frames = [lr_sweep(name, optimizer_at, new, **kwargs)] if new else []
        return frames + [done[peak].query("seed == 0") for peak in peaks if peak in done]

    trials = pd.concat(trials_at(GRID), ignore_index=True)
    beyond = next_rate(trials, name, FACTOR)  # the optimizers page's rule, applied once here
    if beyond is not None:  # the best is at an end: one more peak past it
        trials = pd.concat([trials, *trials_at([beyond])], ignore_index=True)
    trials["run"] = [sweep_label(name, peak) for peak in trials["rate"]]
    if not every_seed:
        return trials, None
    peak = best_rates(trials).loc[name, "rate"]
    tuned = with_seeds(
        pd.concat([trials, *done.values()]), name, optimizer_at, peak, SEEDS, **kwargs
    )
    return trials, tuned.assign(run=name)


# %% [markdown]
# The searches, the longest cell of the page (the WSD runs with every seed come from the
# branches of the WSD section):

# %% tags=["nbval-ignore-output"]
searches = {
    name: search(
        name,
        make,
        optimizer_at,
        done={min(PEAKS): warmup_runs[warmup_runs["run"] == f"{low} with warmup"]}
        if name == "linear to zero"
        else None,
        every_seed=name != "WSD",
    )
    for name, (make, optimizer_at) in SEARCHED.items()
}
trials = pd.concat([t for t, _ in searches.values()], ignore_index=True)
tuned = pd.concat([s for _, s in searches.values() if s is not None], ignore_index=True)
chosen = best_rates(trials)  # on the final validation accuracy of seed 0, nothing else
tried = trials.groupby("optimizer", sort=False)["rate"]
chosen["edge"] = [
    "-" if not edge else "bottom" if rate == tried.min()[name] else "top"
    for name, rate, edge in zip(chosen.index, chosen["rate"], chosen["at_edge"])
]
PEAK_OF = chosen["rate"]  # each schedule's chosen peak
pd.DataFrame(
    {
        "peaks tried": tried.apply(lambda r: ", ".join(f"{x:g}" for x in sorted(set(r)))),
        "chosen peak": PEAK_OF.map("{:g}".format),
        "edge": chosen["edge"],
        "validation accuracy": chosen["score"].round(4),
    }
)

# %%
at_edge = chosen[chosen["edge"] != "-"]
glue(
    "edge_note",
    "No chosen peak lies at an end of the peaks its schedule tried."
    if at_edge.empty
    else "At an end of the peaks tried: "
    + "; ".join(f"{n} ({PEAK_OF[n]:g}, the {e})" for n, e in at_edge["edge"].items())
    + ". A peak past that end might do better still: such a schedule's result here may "
    "understate what a wider search could give it.",
    display=False,
)


def edge_words(names):
    """A sentence for the runs of ``names`` whose chosen peak lies at an end of their search."""
    names = [n for n in names if n in at_edge.index]
    return "".join(
        f" The peak of {n}, {PEAK_OF[n]:g}, is the {at_edge.loc[n, 'edge']} of the peaks it "
        "tried: a wider search might move its result."
        for n in names
    )


def peaks_of(names):
    """``"constant at 0.0025, cosine to zero at 0.005"``: each run at its chosen peak."""
    return ", ".join(f"{n} at {PEAK_OF[n]:g}" for n in names)


PAIRED_FIRST = (  # the first finding says what pairing means; the later ones only name it
    "paired by seed (a seed gives both runs the same initial weights and the same batch order, "
    "so each difference is taken seed by seed), with its 95% interval"
)
PAIRED = "paired by seed as above, with its 95% interval"


# %% [markdown]
# `edge` says whether the chosen peak is the smallest (`bottom`) or the largest (`top`) that its
# schedule tried. {glue:text}`edge_note`
#
# The search, trial by trial:

# %% mystnb={"figure": {"caption": "Each schedule's search of its peak: the final validation accuracy of its trial (seed 0) at each peak it tried, on a log axis; a ring marks the peak it keeps. The constant rate appears in both panels, for reference.", "name": "fig-peak-search"}, "image": {"alt": "Two panels of final validation accuracy against the peak learning rate on a log axis, one line with markers per schedule and a ring around each schedule's chosen peak. Left: the constant rate, the cosine and linear decays to zero, the linear decay to a floor and WSD. Right: the constant rate, one-cycle, warm restarts and the constant rate evaluated at its weight average."}} tags=["nbval-ignore-output"]
final = trials.loc[trials.groupby("run")["epoch"].idxmax()]  # each trial's last epoch
panels = {
    "Constant and the decays to the end": ["constant", "cosine to zero", "linear to zero"]
    + [FLOORED, "WSD"],
    "Constant, the cycles and the weight average": ["constant", "one-cycle", "warm restarts"]
    + ["constant + EMA"],
}
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True, layout="constrained")
for ax, (title, names) in zip(axes, panels.items()):
    for name in names:
        mine = final[final["optimizer"] == name].sort_values("rate")
        ax.plot(mine["rate"], mine["val Accuracy"], "o-", color=COLOURS[name], label=name)
        best = chosen.loc[name]
        ax.plot(best["rate"], best["score"], "o", ms=12, mfc="none", color=COLOURS[name])
    peaks = sorted(set(final["rate"]))
    ax.set(xscale="log", xlabel="peak learning rate (log scale)", title=title)
    ax.set_xticks(peaks, [f"{peak:g}" for peak in peaks])
    ax.minorticks_off()
    ax.legend(fontsize=8)
axes[0].set_ylabel("final validation accuracy (seed 0)")
plt.show()


# %% [markdown]
# ## Decay to zero: cosine or a straight line
#
# The chapter's cosine stopped at a floor $\eta_{min} = \eta_0 / 100$. Newer results say the
# floor should be zero, and that a straight line down to zero matches or beats a cosine:
# {cite:t}`defazio2023optimal` derive the linear shape from the theory of the last
# iterate and find it at least as good in practice, and {cite:t}`bergsma2025straight`
# find the same for language models. Both decays against a constant rate, all three with the
# same warmup, each at the peak its search chose:

# %% mystnb={"figure": {"caption": "Test accuracy after each epoch of AdamW at a constant rate, with a cosine decay to zero, and with a linear decay to zero, all after the same warmup, each at the peak its search chose; mean over seeds with a 95% band.", "name": "fig-decay-to-zero"}, "image": {"alt": "Test accuracy against epochs trained for three schedules, each a mean line with a shaded 95% band over seeds: a constant rate (blue), a cosine decay to zero (orange) and a linear decay to zero (green)."}} tags=["nbval-ignore-output"]
DECAYS = ["constant", "cosine to zero", "linear to zero"]
decays = tuned[tuned["run"].isin(DECAYS)]
by_epochs_trained(decays, "A constant rate against two decays to zero, each at its peak")
plt.show()

# %% [markdown]
# How the three ended, and, beside them, the linear decay against the constant rate at one
# shared peak, {glue:text}`shared_peak`, the top of the grid and the peak every schedule of this
# page used before it searched (the constant rate's trial there, with the other seeds added, and
# the warmup experiment's runs):

# %% tags=["nbval-ignore-output"]
SHARED = min(PEAKS)  # the top of the grid
glue("shared_peak", SHARED, display=False)
shared = pd.concat(
    [
        with_seeds(
            pd.concat([trials, tuned]),
            "constant",
            adamw,
            SHARED,
            SEEDS,
            make_schedule=constant,
            **per_batch,
        ).assign(run=f"constant at {SHARED:g}"),
        warmup_runs[warmup_runs["run"] == f"{low} with warmup"].assign(
            run=f"linear to zero at {SHARED:g}"
        ),
    ],
    ignore_index=True,
)
tuned_gap = compare(decays, "linear to zero", "constant")
shared_gap = compare(shared, f"linear to zero at {SHARED:g}", f"constant at {SHARED:g}")
assert tuned_gap.paired and shared_gap.paired  # the same seeds on both sides


def points(c):
    """A comparison's difference as ``"+1.0 ± 1.1 points"``, and whether it is in the noise."""
    text = f"{round(100 * c.difference, 1) + 0.0:+.1f} ± {100 * c.half_width:.1f} points"
    return text if c.differs else f"{text} (within the noise)"


tuning = (  # what searching each schedule's peak did to the decay's gap, said from the runs
    f"The linear decay's final accuracy minus the constant rate's went from "
    f"{points(shared_gap)} at one shared peak, {SHARED:g}, to {points(tuned_gap)} at each "
    "one's own peak."
)
if shared_gap.differs and not tuned_gap.differs:
    tuning += " The gap that one shared peak showed did not survive tuning each schedule's peak."
elif shared_gap.differs and tuned_gap.differs:
    tuning += " The decay's gain survived tuning each schedule's peak."
finding(
    f"Each at its own peak ({peaks_of(DECAYS)}), {PAIRED_FIRST}:\n\n"
    + compare_pairs(
        decays,
        [
            ("cosine to zero", "constant"),
            ("linear to zero", "constant"),
            ("linear to zero", "cosine to zero"),
        ],
    )
    + f"\n\nAt one shared peak, {SHARED:g}, paired the same way: {shared_gap.sentence()}. "
    + tuning
    + edge_words(DECAYS),
    needs="tell the two decays apart from each other and from a constant rate",
    sizes=RUNS,
)

# %% [markdown]
# ## Decay to zero, or to a floor
#
# The decays above end at zero. Many published runs stop short of it: LLaMA's cosine ends at a
# tenth of its peak {cite:p}`touvron2023llama`, and the chapter's at a hundredth. The linear decay
# to zero against the same line stopped at a floor of {glue:text}`floor_share:.0%` of its peak
# (`warmup_linear_decay(..., eta_min=...)`), with the same warmup, each at the peak its own
# search chose:

# %% tags=["nbval-ignore-output"]
FLOORS = ["linear to zero", FLOORED]
floors = tuned[tuned["run"].isin(FLOORS)]
final_scores(floors).assign(peak=PEAK_OF)[["peak", "seeds", "mean", "half_width"]].round(4)

# %% tags=["nbval-ignore-output"]
floor_gap = compare(floors, "linear to zero", FLOORED)
assert floor_gap.paired
finding(
    f"Each at its own peak ({peaks_of(FLOORS)}), {PAIRED}: {floor_gap.sentence()}."
    + edge_words(FLOORS),
    needs="tell a decay to zero from a decay to a floor",
    sizes=RUNS,
)

# %% [markdown]
# ## Warmup-stable-decay: a run that can stop at any length
#
# A cosine or linear decay needs the run's length in advance: its rate at step $t$ depends on
# $T$. To compare three lengths you train three runs, and a run cannot be extended once it
# has decayed. *Warmup-stable-decay* (WSD; {cite:alp}`hu2024minicpm`) keeps the rate
# constant after the warmup and decays only in a short *cooldown* at the end, about the last
# {glue:text}`cooldown_share:.0%` of the steps, in whole epochs here, with the
# $1 - \sqrt{p}$ shape that {cite:t}`hagele2024scaling` found better than a
# straight line. Until the cooldown, every WSD run is the same constant-rate run. So one
# constant run, checkpointed after every epoch, can be *branched*: load the checkpoint of the
# epoch where a cooldown would start, cool down from there, and keep training the trunk for
# the longer runs. `branch_runs` does this. On the CPU a branch is, bit for bit, the WSD run of
# its length trained from scratch (the package's tests check it).
#
# Three lengths, each as a branch off one trunk and as a cosine run planned for that length;
# the trunk and its branches at WSD's chosen peak, the cosine runs at the cosine's, both chosen
# at the full length:

# %% tags=["nbval-ignore-output"]
glue("cooldown_share", COOLDOWN, display=False)
lengths = sorted({max(2, EPOCHS // 2), max(2, round(0.7 * EPOCHS)), EPOCHS})
branches = {L - cooldown_epochs(L): cooldown_epochs(L) for L in lengths}  # start: epochs
anytime = branch_runs(
    "constant (trunk)",
    lambda p: adamw(p, PEAK_OF["WSD"]),
    constant,
    lambda o, n: cooldown_schedule(o, n * STEPS),
    at=branches,
    loaders=loaders,
    epochs=max(branches),  # the trunk up to its last branch point
    device=DEVICE,
    seeds=SEEDS,
)
anytime["run"] = anytime["run"].str.replace(
    r"constant \(trunk\), branch at (\d+)",
    lambda m: f"WSD, {int(m[1]) + branches[int(m[1])]} epochs",
    regex=True,
)
planned = [  # the whole run's cosine is the one above
    decays[decays["run"] == "cosine to zero"].assign(run=f"cosine, {L} epochs")
    if L == EPOCHS
    else run(
        f"cosine, {L} epochs",
        lambda p: adamw(p, PEAK_OF["cosine to zero"]),
        lambda o, L=L: cosine_to_zero(o, L),
        lr_schedule_every="batch",
        **{**train, "epochs": L},
    )
    for L in lengths
]
lengths_frame = pd.concat([anytime, *planned], ignore_index=True)
glue("wsd_epochs", (max(branches) + sum(branches.values())) * len(SEEDS), display=False)
glue("cosine_epochs", sum(lengths) * len(SEEDS), display=False)
glue(
    "cooldowns",
    ", ".join(f"{n} for {b + n}" for b, n in branches.items()),
    display=False,
)
glue("trunk_end", max(branches), display=False)
print(
    "branches: "
    + "; ".join(f"after epoch {b}, {plural(n, 'epoch')} of cooldown" for b, n in branches.items())
)
final_scores(lengths_frame)[["seeds", "mean", "half_width"]].round(4)

# %% mystnb={"figure": {"caption": "One panel per length: the constant-rate trunk (blue) with the WSD cooldown branched off it for that length (pink), against a cosine run planned for that length (dashed orange). Test accuracy, mean over seeds.", "name": "fig-wsd-anytime"}, "image": {"alt": "Three panels side by side, one per run length, sharing a test accuracy axis against epochs trained. In each, a blue line is the constant-rate trunk up to that length, a pink line leaves it at the branch point and climbs during the cooldown, and a dashed orange line is the cosine run planned for the same length, so each WSD branch can be compared with the cosine run of its length."}} tags=["nbval-ignore-output"]
means = lengths_frame.groupby(["run", "epoch"])["test Accuracy"].mean()
means.index = means.index.set_levels(means.index.levels[1] + 1, level="epoch")  # epochs done
trunk = means["constant (trunk)"]
fig, axes = plt.subplots(
    1, len(lengths), figsize=(11, 3.8), sharey=True, squeeze=False, layout="constrained"
)
for ax, L in zip(axes[0], lengths):
    branch = means[f"WSD, {L} epochs"]
    start = branch.index[0] - 1  # the branch leaves the trunk after this epoch
    ax.plot(trunk.loc[:L], color=COLOURS["constant"], lw=2, label="constant (the trunk)")
    ax.plot(pd.concat([trunk.loc[[start]], branch]), color=COLOURS["WSD"], label="WSD branch")
    cosine = means[f"cosine, {L} epochs"]
    ax.plot(cosine, ls="--", color=COLOURS["cosine to zero"], label="cosine planned for it")
    ax.set(xlabel="epochs trained", title=f"a run of {plural(L, 'epoch')}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0, 0].set_ylabel("test accuracy (mean over seeds)")
axes[0, 0].legend(fontsize=8, loc="lower right")
fig.suptitle("WSD branched off one run against cosine runs planned per length")
plt.show()

# %% [markdown]
# The cooldowns last {glue:text}`cooldowns` epochs. All the WSD runs together need
# {glue:text}`wsd_epochs` epochs of training (the trunk up to its last branch point, epoch
# {glue:text}`trunk_end`, and the cooldowns, over all seeds); the cosine runs of the same
# lengths need {glue:text}`cosine_epochs`. The saving grows with the number of lengths: each
# new length costs WSD one cooldown, and a planned schedule a whole run. How each branch ends
# against the cosine run of its length:

# %% tags=["nbval-ignore-output"]
finding(
    f"WSD at {PEAK_OF['WSD']:g} and the cosine at {PEAK_OF['cosine to zero']:g}, each the peak "
    f"its search chose at the full length; {PAIRED}:\n\n"
    + compare_pairs(lengths_frame, [(f"WSD, {L} epochs", f"cosine, {L} epochs") for L in lengths])
    + edge_words(["WSD", "cosine to zero"]),
    needs="tell a WSD branch from a cosine run of the same length",
    sizes=RUNS,
)

# %% [markdown]
# ## One-cycle and warm restarts
#
# The two schedules from the chapter's era that change the rate every batch, against the
# linear decay to zero, each at the peak its search chose:

# %% mystnb={"figure": {"caption": "Test accuracy after each epoch of one-cycle and of cosine warm restarts (two cycles) against warmup with a linear decay to zero, each at the peak its search chose; mean over seeds with a 95% band.", "name": "fig-one-cycle-restarts"}, "image": {"alt": "Test accuracy against epochs trained for three schedules with shaded 95% bands over seeds: the linear decay to zero (green), one-cycle (red) and warm restarts (purple), whose rate goes back to the peak halfway through."}} tags=["nbval-ignore-output"]
CYCLES = ["linear to zero", "one-cycle", "warm restarts"]
cycles = tuned[tuned["run"].isin(CYCLES)]
by_epochs_trained(cycles, "One-cycle and warm restarts against a linear decay, each at its peak")
plt.show()

# %% tags=["nbval-ignore-output"]
finding(
    f"Each at its own peak ({peaks_of(CYCLES)}), {PAIRED}:\n\n"
    + compare_pairs(cycles, [("one-cycle", "linear to zero"), ("warm restarts", "linear to zero")])
    + edge_words(CYCLES),
    needs="tell one-cycle and warm restarts from a linear decay",
    sizes=RUNS,
)
restart = EPOCHS // 2  # epochs trained when the rate jumps back to the peak
curve = cycles[cycles["run"] == "warm restarts"].groupby("epoch")["test Accuracy"].mean()
glue("restart_epoch", restart, display=False)
for name, epoch in [("before_restart", restart - 1), ("after_restart", restart)]:
    glue(name, curve[epoch], display=False)

# %% [markdown]
# The restart sends the rate back to the peak after epoch {glue:text}`restart_epoch`. The mean
# test accuracy of warm restarts was {glue:text}`before_restart:.3f` after that epoch and
# {glue:text}`after_restart:.3f` one epoch later; whether that change is more than the noise
# between seeds, one epoch's means cannot tell. What the restart does for certain is take steps
# as large as the first ones again, so the weights move on from where the first cycle ended. A
# snapshot ensemble wants that, a second model that differs from the first; a single model only
# needs the second cycle to settle again.
#
# ## Averaging the weights instead of decaying the rate
#
# At a constant rate the weights keep bouncing around the bottom of a valley; a decay lets
# them settle. Averaging the weights they visit is another way to land near the bottom,
# without lowering the rate. `WeightEMA` wraps any optimizer and keeps an exponential moving
# average of the weights, updated after every step with
# `torch.optim.swa_utils.get_ema_multi_avg_fn` (the update `AveragedModel` makes when given
# `multi_avg_fn=get_ema_multi_avg_fn(decay)`; by default it keeps an equal-weight average). The
# training loop evaluates the average and trains the live weights: it calls the optimizer's
# `eval()` before every evaluation, which swaps the average in, and `train()` before the next
# epoch, which swaps the live weights back (the same calls serve schedule-free AdamW on the
# [next page](03c_optimizers_since.ipynb)). The average has a horizon of $H$ = one epoch,
# {glue:text}`steps` steps: a weight $H$ steps old counts about $1/e$ as much as the newest.
# Its peak was searched like the others' (`adamw_ema` above), scored at the average.

# %% mystnb={"figure": {"caption": "Test accuracy after each epoch of AdamW at a constant rate, of the same recipe evaluated at the moving average of its weights (EMA, horizon one epoch), and of warmup with a linear decay to zero, each at the peak its search chose; mean over seeds with a 95% band.", "name": "fig-ema"}, "image": {"alt": "Test accuracy against epochs trained with shaded 95% bands over seeds for three runs: a constant rate (blue), the same constant rate evaluated at the exponential moving average of its weights (brown), and a linear decay to zero (green)."}} tags=["nbval-ignore-output"]
glue("ema_decay", ema_decay_for(STEPS), display=False)
AVERAGED = ["constant", "constant + EMA", "linear to zero"]
averaged = tuned[tuned["run"].isin(AVERAGED)]
by_epochs_trained(averaged, "A constant rate, its weight average, and a decay, each at its peak")
plt.show()

# %% tags=["nbval-ignore-output"]
ema_gap = compare(averaged, "constant + EMA", "linear to zero")
if not ema_gap.differs:
    low_end, high_end = (
        round(100 * (ema_gap.difference + sign * ema_gap.half_width), 1) + 0.0 for sign in (-1, 1)
    )
    verdict = (
        "So on these runs the average could stand in for the decay, to within the noise: the "
        f"interval of their difference, from {low_end:+.1f} to {high_end:+.1f} points, holds "
        "zero. That bounds the gap; it does not show the two equal."
    )
elif ema_gap.difference < 0:
    verdict = "So on these runs the average did not stand in for the decay: it ended below it."
else:
    verdict = "So on these runs the average stood in for the decay, and ended above it."
finding(
    f"Each at its own peak ({peaks_of(AVERAGED)}), {PAIRED}:\n\n"
    + compare_pairs(
        averaged, [("constant + EMA", "constant"), ("constant + EMA", "linear to zero")]
    )
    + f"\n\n{verdict}"
    + edge_words(AVERAGED),
    needs="tell the weight average from the constant rate and from a decay",
    sizes=RUNS,
)

# %% [markdown]
# The average's decay (not Adam's $\beta$s) is $1 - 1/H$ = {glue:text}`ema_decay:.4f`, set
# from the horizon in steps by `ema_decay_for`; because $H$ is tied to the epoch, the average
# keeps a one-epoch reach if the batch size changes. On other problems the evidence is mixed:
# in the MLCommons AlgoPerf benchmark, the submissions that averaged the weights on top of
# NAdamW with a decaying schedule scored below that schedule alone
# {cite:p}`kasimbeg2025accelerating`, while {cite:t}`ajroldi2025when` find averaging combined
# with a decay best.
#
# ## What to take away

# %%
glue("steps_per_run", STEPS * EPOCHS, display=False)
glue("warmup_steps", STEPS, display=False)
glue("weights", round(count_parameters(mlp()), -3), display=False)  # the chapter's network
glue("peak_choices", "; ".join(f"{n} {PEAK_OF[n]:g}" for n in SEARCHED), display=False)


def supported(text):
    """``text`` on a budget whose runs support findings; on ``quick``, that they cannot."""
    return text if BUDGET.findings else "The runs of this budget are too small to say."


def capital(sentence):
    return sentence[:1].upper() + sentence[1:]


glue(
    "tuned_gap",
    supported(f"{tuning} (Paired by seed, {plural(len(SEEDS), 'seed')}.)"),
    display=False,
)
if not floor_gap.differs:
    floor_text = (
        f"{capital(floor_gap.sentence())}, each at its own peak, paired by seed: these runs do "
        "not decide between zero and a floor, and the recipe's zero rests on the studies cited."
    )
else:
    side = "agree with" if floor_gap.difference > 0 else "go against"
    floor_text = (
        f"{capital(floor_gap.sentence())}, each at its own peak, paired by seed: these runs "
        f"{side} the recipe."
    )
glue("floor_verdict", supported(floor_text), display=False)

# %% [markdown]
# ```{admonition} A schedule recipe, and how far this page supports it
# :class: tip
# - **Step the schedule every batch**, start with a **linear warmup** and end with a
#   **decay to zero**, along a straight line or a cosine {cite:p}`defazio2023optimal,bergsma2025straight`.
#   That is the published practice; this page does not set per-batch against per-epoch steps,
#   and its warmup changed the first epoch more clearly than the final accuracy (the findings
#   above say by how much). Warmup here lasts one epoch, {glue:text}`warmup_steps` steps;
#   published recipes use hundreds to thousands of steps (4,000 in the Transformer, 10,000 in
#   BERT, 2,000 in LLaMA).
# - **Tune the peak with the schedule.** Each schedule here chose its own peak on validation:
#   {glue:text}`peak_choices`. {glue:text}`tuned_gap` The search was small (a few peaks a
#   factor of {glue:text}`factor` apart, one seed each), so a chosen peak can be a neighbour of
#   the best, and a comparison at one untuned peak can measure the peak as much as the
#   schedule.
# - **Decay to zero, or to a floor.** Linear decay to zero against the same line stopped at
#   {glue:text}`floor_share:.0%` of its peak: {glue:text}`floor_verdict`
# - **When the length of the run is not known in advance**, train at a constant rate after the
#   warmup and branch a short decay off a checkpoint when you stop (WSD): one long run then
#   serves every length, for the price of one cooldown per length {cite:p}`hu2024minicpm`.
# - **Scale.** Each run here takes {glue:text}`steps_per_run:,` optimizer steps on a network
#   of about {glue:text}`weights:,` weights; the studies behind the recipe trained for $10^4$
#   to $10^5$ steps and more, on networks thousands of times larger. Where the intervals above
#   cannot tell two schedules apart, the recipe rests on those studies, not on these runs.
# ```
#
# ## What we did
#
# - Stepped schedules every batch with `lr_schedule_every="batch"`, and drew six of them from
#   their scheduler objects.
# - Trained three peak rates with and without one epoch of warmup.
# - Searched each schedule's peak on a validation split (`idlmam.experiments.sweep`: a grid,
#   one seed per trial), then ran the chosen peak with every seed and scored it on the test set.
# - Compared a constant rate with a cosine and a linear decay to zero, each at its own peak and
#   at one shared peak, and a decay to zero with a decay to a floor.
# - Branched WSD cooldowns off one constant-rate run's checkpoints and set each against a
#   cosine run planned for its length, for fewer epochs of training.
# - Trained one-cycle and warm restarts, and an exponential moving average of the weights
#   at a constant rate, against the linear decay to zero.
