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
# subset of the training images for fewer epochs than the chapter's pages; the box below says
# how many. Tables give each run's final test accuracy as the mean over the seeds and the
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
            "idlmam[tune]==0.5.1",
        ],
        check=True,
    )

# %%
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts, OneCycleLR

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import branch_runs, run
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
from idlmam.plotting import RUN_COLOURS, plot_runs
from idlmam.stats import compare_pairs, final_scores
from idlmam.text import plural
from idlmam.utils import get_device

setup()

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter or quick
RUNS = BUDGET.since  # this page's sizes: epochs, seeds, training images
budget_banner(BUDGET, RUNS)
EPOCHS = RUNS.epochs  # T, in epochs
SEEDS = range(RUNS.seeds)  # every run is repeated with these seeds
BATCH_SIZE = 256  # B, as in the chapter
PEAK = 0.01  # eta_max: the top of every schedule below (AdamW's default is 0.001)
PEAKS = (0.01, 0.03, 0.07)  # the warmup experiment: up to 70 times AdamW's default
COOLDOWN = 0.2  # the share of a WSD run spent decaying (rounded to whole epochs)
DEVICE = get_device()
COLOURS = RUN_COLOURS  # one colour per schedule, the same in every figure of the book

loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=RUNS.train_size)
STEPS = len(loaders["train"])  # optimizer steps (batches) per epoch
TOTAL = EPOCHS * STEPS  # steps of a whole run
WARMUP = STEPS  # one epoch of warmup
train = dict(loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS)
glue("steps", STEPS, display=False)
glue("total", TOTAL, display=False)
print(f"{STEPS} steps per epoch, {TOTAL} steps per run of {EPOCHS} epochs, {len(SEEDS)} seeds")


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


def one_cycle(o):
    return OneCycleLR(o, max_lr=PEAK, total_steps=TOTAL)


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

# %% mystnb={"figure": {"caption": "The learning rate at every optimizer step of the six schedules on this page, read off the real scheduler objects; the x axis counts epochs trained, and each schedule has the colour it keeps in the figures below.", "name": "fig-batch-schedules"}, "image": {"alt": "Six small panels, one per schedule, each showing the learning rate against epochs trained at every batch: a warmup followed by a constant rate; a warmup followed by a cosine decay to zero; a warmup followed by a straight line to zero; a warmup, a long constant stretch and a short drop to zero at the end (WSD); one-cycle, rising for about a third of the run and then falling far below its start; and warm restarts, two cosine decays to zero, the first starting at the peak without warmup and the second starting again from the peak."}} tags=["nbval-ignore-output"]
fig, axes = plt.subplots(2, 3, figsize=(11, 5), sharex=True, sharey=True, layout="constrained")
for ax, (name, make) in zip(axes.flat, SCHEDULES.items()):
    rates = schedule_lrs(make, TOTAL, PEAK)
    ax.plot([(t + 1) / STEPS for t in range(TOTAL)], rates, color=COLOURS[name])
    ax.set_title(name if name != "constant" else "constant (after warmup)", fontsize=10)
for ax in axes[1]:
    ax.set_xlabel("epochs trained")
for ax in axes[:, 0]:
    ax.set_ylabel("learning rate")
fig.suptitle(f"Six schedules stepped every batch, peak {PEAK:g}, {EPOCHS} epochs")
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
# cosine, linear and WSD runs below all start with one epoch of warmup, at the smallest of
# the three peaks, {glue:text}`peak_low`, ten times AdamW's default; one-cycle has its own
# longer warmup, and warm restarts, as PyTorch defines them, have none.
#
# ## Decay to zero: cosine or a straight line
#
# The chapter's cosine stopped at a floor $\eta_{min} = \eta_0 / 100$. Newer results say the
# floor should be zero, and that a straight line down to zero matches or beats a cosine:
# {cite:t}`defazio2023optimal` derive the linear shape from the theory of the last
# iterate and find it at least as good in practice, and {cite:t}`bergsma2025straight`
# find the same for language models. Both decays against a constant rate,
# all three with the same warmup and peak:

# %% mystnb={"figure": {"caption": "Test accuracy after each epoch of AdamW at a constant rate, with a cosine decay to zero, and with a linear decay to zero, all after the same warmup; mean over seeds with a 95% band.", "name": "fig-decay-to-zero"}, "image": {"alt": "Test accuracy against epochs trained for three schedules, each a mean line with a shaded 95% band over seeds: a constant rate (blue), a cosine decay to zero (orange) and a linear decay to zero (green)."}} tags=["nbval-ignore-output"]
base = adamw_at(PEAK)
decays = pd.concat(
    [
        run("constant", base, constant, lr_schedule_every="batch", **train),
        run("cosine to zero", base, cosine_to_zero, lr_schedule_every="batch", **train),
        warmup_runs[warmup_runs["run"] == f"{low} with warmup"].assign(run="linear to zero"),
    ],
    ignore_index=True,
)
by_epochs_trained(decays, "A constant rate against two decays to zero (mean, 95% CI)")
plt.show()

# %% tags=["nbval-ignore-output"]
finding(
    compare_pairs(
        decays,
        [
            ("cosine to zero", "constant"),
            ("linear to zero", "constant"),
            ("linear to zero", "cosine to zero"),
        ],
    ),
    needs="tell the two decays apart from each other and from a constant rate",
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
# Three lengths, each as a branch off one trunk and as a cosine run planned for that length:

# %% tags=["nbval-ignore-output"]
glue("cooldown_share", COOLDOWN, display=False)
lengths = sorted({max(2, EPOCHS // 2), max(2, round(0.7 * EPOCHS)), EPOCHS})
branches = {L - cooldown_epochs(L): cooldown_epochs(L) for L in lengths}  # start: epochs
anytime = branch_runs(
    "constant (trunk)",
    base,
    constant,
    lambda o, n: cooldown_schedule(o, n * STEPS),
    at=branches,
    loaders=loaders,
    epochs=EPOCHS,
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
        base,
        lambda o, L=L: cosine_to_zero(o, L),
        lr_schedule_every="batch",
        **{**train, "epochs": L},
    )
    for L in lengths
]
lengths_frame = pd.concat([anytime, *planned], ignore_index=True)
needed = max(branches) * len(SEEDS)  # the trunk up to its last branch point
glue("wsd_epochs", needed + sum(branches.values()) * len(SEEDS), display=False)
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

# %% mystnb={"figure": {"caption": "One constant-rate trunk (blue) with a WSD cooldown branched off it for each length (solid), against a cosine run planned for each length (dashed); the numbers at the ends give each run's length in epochs. Test accuracy, mean over seeds.", "name": "fig-wsd-anytime"}, "image": {"alt": "Test accuracy against epochs trained. A blue line is the constant-rate trunk. Short solid pink lines leave it at the branch points and climb: the cooldowns. Dashed orange lines are cosine runs planned for the same lengths. Each run's end is marked with a dot and labelled with its length in epochs, so each WSD branch can be compared with the cosine run of its length."}} tags=["nbval-ignore-output"]
means = lengths_frame.groupby(["run", "epoch"])["test Accuracy"].mean()
means.index = means.index.set_levels(means.index.levels[1] + 1, level="epoch")  # epochs done
trunk = means["constant (trunk)"]
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(trunk, color=COLOURS["constant"], lw=2, label="constant (the trunk)")
for i, L in enumerate(lengths):
    branch = means[f"WSD, {L} epochs"]
    start = branch.index[0] - 1  # the branch leaves the trunk after this epoch
    branch = pd.concat([trunk.loc[[start]], branch])
    cosine = means[f"cosine, {L} epochs"]
    for name, curve, colour, style in (
        ("WSD branch", branch, COLOURS["WSD"], "-"),
        ("cosine planned for the length", cosine, COLOURS["cosine to zero"], "--"),
    ):
        ax.plot(curve.index, curve, ls=style, color=colour, label=name if i == 0 else None)
        ax.plot(curve.index[-1], curve.iloc[-1], "o", color=colour)
        ax.annotate(
            f"{L}",
            (curve.index[-1], curve.iloc[-1]),
            xytext=(4, -3 if style == "-" else 3),
            textcoords="offset points",
            color=colour,
            fontsize=9,
        )
ax.set(xlabel="epochs trained", ylabel="test accuracy (mean over seeds)")
ax.set_title("WSD branched off one run against cosine runs planned per length")
ax.legend(fontsize=9, loc="lower right")
plt.show()

# %% [markdown]
# The cooldowns last {glue:text}`cooldowns` epochs. All the WSD runs together need
# {glue:text}`wsd_epochs` epochs of training (the trunk up to its last branch point, epoch
# {glue:text}`trunk_end`, and the cooldowns, over all seeds; the trunk trained on to the full
# length to serve as the constant run); the cosine runs of the same lengths need
# {glue:text}`cosine_epochs`. The saving grows with the number of lengths: each new length
# costs WSD one cooldown, and a planned schedule a whole run. How each branch ends against
# the cosine run of its length:

# %% tags=["nbval-ignore-output"]
finding(
    compare_pairs(lengths_frame, [(f"WSD, {L} epochs", f"cosine, {L} epochs") for L in lengths]),
    needs="tell a WSD branch from a cosine run of the same length",
    sizes=RUNS,
)

# %% tags=["nbval-ignore-output"]
ends = final_scores(pd.concat([anytime, decays]))["mean"]
for name, run_name in [("trunk_final", "constant (trunk)"), ("constant_final", "constant")]:
    glue(name, ends[run_name], display=False)

# %% [markdown]
# The trunk is the constant-rate recipe of the previous section, trained again one seed at a
# time (to write its checkpoints), while `run` trained the three seeds side by side as one
# stacked model. The two compute the same sums in a different order, so their results differ
# in the last bits; over hundreds of steps at a large rate such differences grow, and the two
# constant runs end at a mean test accuracy of {glue:text}`trunk_final:.4f` (the trunk) and
# {glue:text}`constant_final:.4f`. That gap is noise of the same kind as the seeds', which is
# one more reason every comparison here rests on several seeds.
#
# ## One-cycle and warm restarts
#
# The two schedules from the chapter's era that change the rate every batch, against the
# linear decay to zero:

# %% mystnb={"figure": {"caption": "Test accuracy after each epoch of one-cycle and of cosine warm restarts (two cycles) against warmup with a linear decay to zero; mean over seeds with a 95% band.", "name": "fig-one-cycle-restarts"}, "image": {"alt": "Test accuracy against epochs trained for three schedules with shaded 95% bands over seeds: the linear decay to zero (green), one-cycle (red) and warm restarts (purple), whose rate goes back to the peak halfway through."}} tags=["nbval-ignore-output"]
cycles = pd.concat(
    [
        decays[decays["run"] == "linear to zero"],
        run("one-cycle", base, one_cycle, lr_schedule_every="batch", **train),
        run("warm restarts", base, restarts, lr_schedule_every="batch", **train),
    ],
    ignore_index=True,
)
by_epochs_trained(cycles, "One-cycle and warm restarts against a linear decay (mean, 95% CI)")
plt.show()

# %% tags=["nbval-ignore-output"]
finding(
    compare_pairs(cycles, [("one-cycle", "linear to zero"), ("warm restarts", "linear to zero")]),
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

# %% mystnb={"figure": {"caption": "Test accuracy after each epoch of AdamW at a constant rate, of the same recipe evaluated at the moving average of its weights (EMA, horizon one epoch), and of warmup with a linear decay to zero; mean over seeds with a 95% band.", "name": "fig-ema"}, "image": {"alt": "Test accuracy against epochs trained with shaded 95% bands over seeds for three runs: a constant rate (blue), the same constant rate evaluated at the exponential moving average of its weights (brown), and a linear decay to zero (green)."}} tags=["nbval-ignore-output"]
decay_ema = ema_decay_for(STEPS)
glue("ema_decay", decay_ema, display=False)
averaged = pd.concat(
    [
        decays[decays["run"].isin(["constant", "linear to zero"])],
        run(
            "constant + EMA",
            lambda p: WeightEMA(torch.optim.AdamW(p, lr=PEAK), decay_ema),
            constant,
            lr_schedule_every="batch",
            **train,
        ),
    ],
    ignore_index=True,
)
by_epochs_trained(averaged, "A constant rate, its weight average, and a decay (mean, 95% CI)")
plt.show()

# %% tags=["nbval-ignore-output"]
finding(
    compare_pairs(averaged, [("constant + EMA", "constant"), ("constant + EMA", "linear to zero")]),
    needs="tell the weight average from the constant rate and from a decay",
    sizes=RUNS,
)

# %% [markdown]
# The average's decay (not Adam's $\beta$s) is $1 - 1/H$ = {glue:text}`ema_decay:.4f`, set
# from the horizon in steps by `ema_decay_for`; because $H$ is tied to the epoch, the average
# keeps a one-epoch reach if the batch size changes. Whether the average can stand in for the
# decay here, the comparison above says. Elsewhere the evidence is mixed: in the MLCommons
# AlgoPerf benchmark, the submissions that averaged the weights on top of NAdamW with a
# decaying schedule scored below that schedule alone {cite:p}`kasimbeg2025accelerating`,
# while {cite:t}`ajroldi2025when` find
# averaging combined with a decay best.
#
# ## What to take away

# %%
glue("steps_per_run", STEPS * EPOCHS, display=False)
glue("warmup_steps", STEPS, display=False)
glue("weights", count_parameters(mlp()), display=False)  # the chapter's network

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
# - **When the length of the run is not known in advance**, train at a constant rate after the
#   warmup and branch a short decay off a checkpoint when you stop (WSD): one long run then
#   serves every length, for the price of one cooldown per length {cite:p}`hu2024minicpm`.
# - **Tune the peak with the schedule.** Every schedule here ran at one peak,
#   {glue:text}`peak_low`, ten times AdamW's default, chosen and not searched: some of what a
#   decay gains over a constant rate may be the repair of a peak too high to hold for a whole
#   run, and this page never set a decay to zero against a decay to a floor.
# - **Scale.** Each run here takes {glue:text}`steps_per_run:,` optimizer steps on a network
#   of about 135,000 weights; the studies behind the recipe trained for $10^4$ to $10^5$ steps
#   and more, on networks thousands of times larger. Where the intervals above cannot tell two
#   schedules apart, the recipe rests on those studies, not on these runs.
# ```
#
# ## What we did
#
# - Stepped schedules every batch with `lr_schedule_every="batch"`, and drew six of them from
#   their scheduler objects.
# - Trained three peak rates with and without one epoch of warmup.
# - Compared a constant rate with a cosine and a linear decay to zero.
# - Branched WSD cooldowns off one constant-rate run's checkpoints and set each against a
#   cosine run planned for its length, for fewer epochs of training.
# - Trained one-cycle and warm restarts, and an exponential moving average of the weights
#   at a constant rate, against the linear decay to zero.
