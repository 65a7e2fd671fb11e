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
# # Exercises 4 and 5: optimizers and clipping for a recurrent network
#
# Recurrent networks apply the same weights at every time step, so their gradients are
# products of many similar factors: they can vanish or explode far more readily than those of
# a fully connected network. These two exercises retrain a three-layer bidirectional RNN, first
# with each of the chapter's optimizers, then with gradient clipping added, and finally on a
# variant of the network whose gradients do explode. The sequences come from a small task the
# package generates on the spot, a stand-in for the previous chapter's names-by-language data.

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
import warnings
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import torch
from matplotlib.colors import to_rgb
from torch import nn

from idlmam.budget import get_budget
from idlmam.experiments import run
from idlmam.models import BiRNN, count_parameters
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import clip_grad_norm_on_step, cosine_schedule, eta_min_for, record_grad_norms
from idlmam.plotting import run_colours, run_dashes
from idlmam.sequences import bayes_accuracy, markov_task, sequence_loaders
from idlmam.stats import compare, final_scores, last_epochs
from idlmam.text import plural
from idlmam.train import DivergenceWarning
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.exercises.epochs  # T
SEEDS = range(BUDGET.exercises.seeds)  # every run is repeated with these seeds
N_TRAIN = 2048 if BUDGET.name == "quick" else 4096  # training sequences
RUNS = replace(BUDGET.exercises, train_size=N_TRAIN, items="synthetic training sequences")
budget_banner(BUDGET, RUNS)  # what this page trains
N_TEST = 2000  # test sequences
SHARED = 0.3  # share of each chain's probabilities common to all classes
BATCH_SIZE = 64  # B
EMBED = 16  # size of each token's embedding
HIDDEN = 32  # hidden units per direction and layer
ETA_0 = 0.1  # SGD's rate (AdamW keeps its default 0.001)
MU = 0.9  # Nesterov momentum
DIPS = 1  # AdamW's cosine schedule: one dip, on the last epoch
CLIP_QUANTILE = 0.99  # exercise 5: clip at this quantile of the norms Nesterov met in exercise 4
DEVICE = get_device()
print(f"epochs={EPOCHS}, seeds={len(SEEDS)}, training sequences={N_TRAIN:,}, batch={BATCH_SIZE}")

# %% [markdown]
# The exercises get their own, smaller runs on every budget: the box above says how many epochs,
# seeds and sequences the numbers on this page come from.
#
# ## The task and the network
#
# Each of the {glue:text}`classes` is a "language": a Markov chain over an alphabet of
# {glue:text}`vocab` tokens, with its own probabilities for the first token and for each token
# that follows another. A sequence of {glue:text}`length` tokens is drawn from one of them, and
# the network must say which. The chains share {glue:text}`shared:.0%` of their probabilities,
# so short or unlucky sequences are ambiguous. Because the chains are known, so is the best any
# classifier can do: pick the chain under which the sequence is most likely. That ceiling is
# computed exactly, below, on the test set; guessing gets {glue:text}`guessing:.0%` of the
# sequences right.

# %%
task = markov_task(classes=4, vocab=10, length=16, shared=SHARED, seed=0)
loaders = sequence_loaders(BATCH_SIZE, task=task, n_train=N_TRAIN, n_test=N_TEST, device=DEVICE)
ceiling = bayes_accuracy(task, loaders["test"].X.cpu(), loaders["test"].y.cpu())
glue("shared", SHARED, display=False)
glue("ceiling", ceiling, display=False)
glue("classes", plural(task.classes, "class", "classes"), display=False)
glue("vocab", f"{task.vocab:,}", display=False)
glue("length", f"{task.length:,}", display=False)
glue("guessing", 1 / task.classes, display=False)
print(f"best possible test accuracy (Bayes' rule on the true chains): {ceiling:.4f}")

# %% [markdown]
# The network has the previous chapter's shape: an embedding per token, three stacked
# bidirectional `nn.RNN` layers (tanh units), and a linear layer on the last hidden state of
# each direction (the forward one ends on the last token, the backward one on the first).


# %%
def make_rnn():
    return BiRNN(task.vocab, task.classes, embed_dim=EMBED, hidden=HIDDEN, layers=3)


print(make_rnn())
print(f"{count_parameters(make_rnn()):,} parameters")

# %% [markdown]
# ## Exercise 4: the chapter's optimizers
#
# Retrain the three-layer bidirectional RNN from the previous chapter with each of the new
# optimizers of this one. How do they change the results?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: the runs
# Four runs, each over the same seeds and data: plain SGD ($\eta$ = {glue:text}`eta_0`), SGD
# with Nesterov momentum ($\mu$ = {glue:text}`mu`), AdamW with its defaults, and AdamW with a
# cosine schedule that reaches its floor on the last epoch (`cosine_schedule`, with the book's floor
# $\eta_{min} = \eta_0 / 100$: never 0, since an epoch at a rate of 0 learns nothing). `run`
# builds a fresh network for each seed, so no run starts from another's weights. Each
# optimizer also gets `record_grad_norms`, a step pre-hook that writes down the gradient's norm
# before every step: exercise 5 needs those numbers.
# :::

# %% tags=["hide-input"]
norms: dict[str, list[list[float]]] = {}  # run -> one list per seed: each step's gradient norm
NAMES = ["SGD", "SGD w/ Nesterov", "AdamW", "AdamW+CosineLR"]  # exercise 4, the book's names
NAMES += ["SGD w/ Nesterov+clip", "IRNN, SGD", "IRNN, SGD+clip"]  # exercise 5
LINES = {name: (0, dash) if dash else "-" for name, dash in run_dashes(NAMES).items()}
COLOURS = {  # one colour per run on every figure of the page; a variant's darker than its base's
    name: tuple(np.array(to_rgb(colour)) * (0.55 if LINES[name] != "-" else 1))
    for name, colour in run_colours(NAMES).items()
}
glue("eta_0", ETA_0, display=False)
glue("mu", MU, display=False)
glue("momentum_gain", 1 / (1 - MU), display=False)


def train(name, make_optimizer, make_schedule=None, *, max_norm=None, make_model=make_rnn):
    """Run ``name`` over SEEDS, recording the gradient norms (before clipping, if ``max_norm``)."""
    norms[name] = []

    def build(params):
        optimizer = record_grad_norms(make_optimizer(params), norms[name])  # record, then clip
        return optimizer if max_norm is None else clip_grad_norm_on_step(optimizer, max_norm)

    return run(
        name,
        build,
        make_schedule,
        loaders=loaders,
        epochs=EPOCHS,
        device=DEVICE,
        seeds=SEEDS,
        make_model=make_model,
    )


# %% tags=["hide-input", "nbval-ignore-output"]
def cosine(optimizer):
    eta_0 = optimizer.param_groups[0]["lr"]
    return cosine_schedule(optimizer, EPOCHS, DIPS, eta_min=eta_min_for(eta_0))


optimizers = {  # the book's run names: each keeps its colour on every page
    "SGD": (lambda p: torch.optim.SGD(p, lr=ETA_0), None),
    "SGD w/ Nesterov": (lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU, nesterov=True), None),
    "AdamW": (lambda p: torch.optim.AdamW(p), None),
    "AdamW+CosineLR": (lambda p: torch.optim.AdamW(p), cosine),
}
plain = pd.concat(
    [train(name, make, schedule) for name, (make, schedule) in optimizers.items()],
    ignore_index=True,
)
scores = final_scores(plain)
pd.DataFrame(
    {
        "seeds": scores["seeds"],
        "final test accuracy (mean ± 95% half-width)": [
            f"{row['mean']:.3f} ± {row['half_width']:.3f}" for _, row in scores.iterrows()
        ],
    }
).rename_axis("run")

# %% [markdown]
# :::{dropdown} Solution: what to expect from each optimizer
# The table gives each run's final test accuracy, the mean over the seeds with the half-width of
# its 95% interval, against a ceiling of {glue:text}`ceiling:.3f`. With only
# {glue:text}`seeds`, those intervals are wide (the widest is ±{glue:text}`widest:.0f` points):
# Student's t interval multiplies the seeds' standard error by {glue:text}`t_factor:.1f` at
# that count, so even a moderate spread between seeds gives a wide interval. The table ranks
# the runs only where the intervals say so, and the figure below draws each seed rather than a
# band, which with so few seeds can reach past accuracy 1. What to look for:
#
# - **Plain SGD** takes a fixed step along the gradient. The gradients that reach the embeddings
#   and the lower layers pass back through many time steps and can shrink on the way, and a
#   fixed step does little with a small gradient.
# - **Nesterov momentum** makes the effective step up to $1/(1 - \mu)$ =
#   {glue:text}`momentum_gain:.0f` times larger where the gradients agree, which can speed up
#   the first epochs; but momentum also piles up the occasional large gradient, so its accuracy
#   may jump up and down from one epoch to the next.
# - **AdamW** divides every parameter's step by the size of its recent gradients, so small and
#   large gradients alike give steps near $\eta$.
# - **The cosine schedule** shrinks AdamW's steps towards the end of the run.
#
# What these runs show, each difference with its interval over the seeds (halfway: after
# {glue:text}`halfway` of the {glue:text}`epochs` epochs):
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
halfway = EPOCHS // 2  # epochs trained at the halfway mark
glue("halfway", halfway, display=False)
glue("epochs", EPOCHS, display=False)
glue("seeds", plural(len(SEEDS), "seed"), display=False)
glue("widest", 100 * scores["half_width"].max(), display=False)
glue("t_factor", scipy.stats.t.ppf(0.975, len(SEEDS) - 1), display=False)  # the 95% t quantile
early = plain[plain["epoch"] < halfway]
lines = [
    f"- At the end: {compare(plain, name, 'SGD').sentence()}." for name in list(optimizers)[1:]
]
lines += [f"- Halfway: {compare(early, name, 'SGD').sentence()}." for name in list(optimizers)[1:]]
lines.append(f"- At the end: {compare(plain, 'AdamW+CosineLR', 'AdamW').sentence()}.")
drops = plain.groupby(["run", "seed"], sort=False)["test Accuracy"].apply(
    lambda acc: max(0.0, -acc.diff().min())  # the largest fall from one epoch to the next
)
drops = drops.groupby("run", sort=False).mean()
lines.append(
    "- The largest fall of test accuracy from one epoch to the next, mean over seeds: "
    + ", ".join(  # none: accuracy never fell on any seed
        f"{name} {f'{100 * drop:.1f} points' if drop > 0 else 'none'}"
        for name, drop in drops.items()
    )
    + "."
)
finding("\n".join(lines), needs="rank the optimizers on this recurrent network", sizes=RUNS)


# %% tags=["hide-input"]
def plot_seeds(frame, ax, title):
    """Each run's test accuracy per epoch: one thin line per seed, a thick one for their mean.

    A variant ("<base>+<x>", dashed, in a darker shade of its base's colour) has longer dashes
    on its thin lines, so that its seeds stand apart from the base's.
    """
    for name, rows in frame.groupby("run", sort=False):
        colour = COLOURS[name]
        thin = (0, (6, 3)) if LINES[name] != "-" else "-"  # dashes that stay dashes when thin
        for _, seed in rows.groupby("seed"):
            ax.plot(seed["epoch"], seed["test Accuracy"], color=colour, ls=thin, lw=0.8, alpha=0.6)
        mean = rows.groupby("epoch")["test Accuracy"].mean()
        ax.plot(
            mean.index, mean.to_numpy(), color=colour, ls=LINES[name], lw=2.2, label=f"{name}: mean"
        )
    ax.plot([], [], color="gray", lw=0.8, alpha=0.6, label="thin: one seed")
    ax.axhline(ceiling, color="gray", ls=":", label="best possible")
    ax.axhline(1 / task.classes, color="black", ls=":", lw=0.8, label="guessing")
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title=title)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="lower right")
    ax.label_outer()  # with panels side by side, only the left one labels the accuracy axis


# %% mystnb={"figure": {"caption": "Exercise 4: test accuracy per epoch of the bidirectional RNN with four optimizers, plain SGD and Nesterov momentum on the left, AdamW with and without a cosine schedule on the right: each seed a thin line, the mean over seeds a thick one, against the best possible accuracy and guessing. The cosine variant is dashed, in a darker shade of AdamW's colour, so that its seeds stand apart.", "name": "fig-ex4-optimizers"}, "image": {"alt": "Two panels of test accuracy from 0 to 1 against epoch. Left: plain SGD in blue and SGD with Nesterov momentum in green; right: AdamW in red and AdamW with a cosine schedule dashed in dark red. Each run has one thin line per seed and a thick line for the mean over seeds; a dotted grey line marks the best possible accuracy computed from the true chains, and a thin dotted black line the accuracy of guessing, one in four."}} tags=["hide-input", "nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True, layout="constrained")
plot_seeds(plain[plain["run"].str.startswith("SGD")], axes[0], "SGD, with and without Nesterov")
plot_seeds(plain[plain["run"].str.startswith("AdamW")], axes[1], "AdamW, with and without cosine")
fig.suptitle("Bidirectional RNN, four optimizers: each seed and the mean over seeds")
plt.show()

# %% [markdown]
# ## Exercise 5: gradient clipping
#
# Add gradient clipping to the experiments of exercise 4. Does it help the RNN or hurt it?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: look first, then clip
# Clipping the *norm* of the whole gradient (`clip_grad_norm_on_step`) rescales a gradient
# longer than a threshold $z$ down to length $z$ and keeps its direction (the chapter's value
# clamping, `run(..., clip_value=z)`, can turn it). It only acts on steps whose gradient is
# longer than $z$, so the first question is how long the gradients of exercise 4 were. The
# figure shows every norm the four runs met, before any clipping. We take $z$ from the runs
# themselves: the {glue:text}`clip_quantile:.0%` quantile of the norms Nesterov met, so that
# clipping would have touched only the longest {glue:text}`clip_top:.0%` of that run's steps.
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
z = float(np.quantile(np.concatenate(norms["SGD w/ Nesterov"]), CLIP_QUANTILE))
every_norm = {name: np.concatenate(norms[name]) for name in optimizers}  # all seeds, all steps
spikes = pd.DataFrame(
    {
        name: {
            "median norm": np.median(seen),
            "largest norm": np.max(seen),
            "largest / median": np.max(seen) / np.median(seen),
            f"steps above z = {z:.2f}": np.mean(seen > z),
        }
        for name, seen in every_norm.items()
    }
).T
glue("clip_quantile", CLIP_QUANTILE, display=False)
glue("clip_top", 1 - CLIP_QUANTILE, display=False)
glue("z", z, display=False)
glue("spike_ratio_max", spikes["largest / median"].max(), display=False)
shown = spikes.map(lambda v: f"{v:.2f}").rename_axis("run")  # the frame, as the page shows it
shown[f"steps above z = {z:.2f}"] = spikes[f"steps above z = {z:.2f}"].map(lambda v: f"{v:.1%}")
shown

# %% mystnb={"figure": {"caption": "Exercise 5: histogram of the gradient norms of every step of exercise 4's runs (all seeds, no clipping), with the clipping threshold z.", "name": "fig-ex5-norm-histogram"}, "image": {"alt": "Histogram of gradient norms on a logarithmic x-axis, one outline per optimizer of exercise 4 (SGD blue, SGD with Nesterov green, AdamW red, AdamW with a cosine schedule dashed red), with a dashed black vertical line at the clipping threshold z read off the Nesterov run's norms; the table above gives each run's share of steps beyond it."}} tags=["hide-input", "nbval-ignore-output"]
ax = plt.subplots(figsize=(7, 3.8))[1]
every = np.concatenate(list(every_norm.values()))
bins = np.geomspace(every.min(), every.max(), 50)
for name, seen in every_norm.items():
    ax.hist(
        seen, bins=bins, histtype="step", lw=1.5, color=COLOURS[name], ls=LINES[name], label=name
    )
ax.axvline(z, color="black", ls="--", label=f"z = {z:.2f}")
ax.set(xscale="log", xlabel="gradient norm before the step (log scale)", ylabel="steps")
ax.set_title("Exercise 4's gradient norms, all seeds")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# :::{dropdown} Solution: clipping the tanh network
# In exercise 4 the largest gradient of any run was at most {glue:text}`spike_ratio_max:.1f`
# times that run's median: the tanh units keep every hidden state in $(-1, 1)$, and their slope
# is at most 1, so they never amplify the gradient on its way back through the sequence (only
# the recurrent weights can). Nesterov momentum
# has the most to lose from a large gradient (it keeps adding it into the next steps), so we
# rerun it with its gradients clipped at $z$ = {glue:text}`z:.2f`, same seeds and data:
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
nesterov = optimizers["SGD w/ Nesterov"][0]
clipped = train("SGD w/ Nesterov+clip", nesterov, max_norm=z)
tanh_runs = pd.concat([plain[plain["run"] == "SGD w/ Nesterov"], clipped], ignore_index=True)
glue("tanh_clip_share", np.mean(np.concatenate(norms["SGD w/ Nesterov+clip"]) > z), display=False)
comparison = compare(tanh_runs, "SGD w/ Nesterov+clip", "SGD w/ Nesterov").sentence()
finding(  # the finding on full and chapter; on quick, a box in its place
    f"With the tanh network: {comparison}.",
    needs="tell whether clipping changed what Nesterov momentum reaches on this network",
    sizes=RUNS,
)

# %% [markdown]
# :::{dropdown} Solution: a recurrent network whose gradients explode
# To see clipping do what it is for, give the network unbounded units: replace tanh by ReLU
# and start every recurrent weight matrix at the identity, so that each hidden state begins as
# a running sum of its inputs (the IRNN of {cite:alp}`le2015simple`). Nothing now limits how
# large the states, and with them the gradients, can grow along the sequence. Train it with
# plain SGD, the gentlest optimizer of exercise 4, with and without clipping at the same $z$.
# `run` stops a seed whose training loss becomes NaN or infinite, keeps its rows and marks it
# as diverged.
# :::


# %% tags=["hide-input"]
def make_irnn():
    """The same network with ReLU units and identity recurrent weights: an IRNN."""
    model = make_rnn()
    model.rnn = nn.RNN(
        EMBED, HIDDEN, num_layers=3, batch_first=True, bidirectional=True, nonlinearity="relu"
    )
    with torch.no_grad():
        for name, weight in model.rnn.named_parameters():
            if name.startswith("weight_hh"):
                weight.copy_(torch.eye(HIDDEN))
    return model


# %% tags=["hide-input", "nbval-ignore-output"]
sgd = optimizers["SGD"][0]
with warnings.catch_warnings(record=True) as caught:  # the divergence is the point: say it once
    warnings.simplefilter("always", DivergenceWarning)
    irnn = pd.concat(
        [
            train("IRNN, SGD", sgd, make_model=make_irnn),
            train("IRNN, SGD+clip", sgd, max_norm=z, make_model=make_irnn),
        ],
        ignore_index=True,
    )
for warning in caught:
    print(f"{warning.category.__name__}: {str(warning.message).split(':')[0]}")


def outcome(frame):
    """Per run: seeds, how many the loop stopped (NaN or infinite loss), final accuracy."""
    last = last_epochs(frame, "train loss", ["epoch"])
    stopped = ~np.isfinite(last["train loss"].to_numpy(dtype=float))
    return (
        last.assign(diverged=stopped, epochs=last["epoch"] + 1)
        .groupby("run", sort=False)
        .agg(seeds=("seed", "size"), diverged=("diverged", "sum"), epochs=("epochs", "max"))
    )


irnn_outcome = outcome(irnn).join(final_scores(irnn)[["mean", "half_width"]])
pd.DataFrame(
    {
        "seeds": irnn_outcome["seeds"],
        "diverged": irnn_outcome["diverged"],
        "epochs trained": irnn_outcome["epochs"],
        "final test accuracy (mean ± 95% half-width)": [  # none where every seed diverged
            "-" if np.isnan(row["mean"]) else f"{row['mean']:.3f} ± {row['half_width']:.3f}"
            for _, row in irnn_outcome.iterrows()
        ],
    }
)

# %% tags=["hide-input", "nbval-ignore-output"]
for name, row in irnn_outcome.iterrows():
    key = "clip" if name.endswith("clip") else "none"
    glue(f"irnn_{key}_diverged", f"{int(row['diverged'])} of {int(row['seeds'])}", display=False)
clip_norms = np.concatenate(norms["IRNN, SGD+clip"])  # every step of every seed, before clipping
glue("irnn_clip_median", np.median(clip_norms), display=False)
glue("irnn_clip_largest", np.max(clip_norms), display=False)
glue("irnn_clip_share", np.mean(clip_norms > z), display=False)
glue("irnn_first_norm", np.mean([seed[0] for seed in norms["IRNN, SGD"]]), display=False)
finite = [int(np.isfinite(seed).cumprod().sum()) for seed in norms["IRNN, SGD"]]  # until inf/NaN
low, high = min(finite), max(finite)
glue(
    "irnn_none_finite", plural(high, "step") if low == high else f"{low} to {plural(high, 'step')}"
)
# the huge norms: how many first steps hold them all, in every seed
HUGE = 10  # a norm above HUGE * z counts as huge
huge = [np.flatnonzero(np.asarray(seed) > HUGE * z) for seed in norms["IRNN, SGD+clip"]]
glue("huge", HUGE, display=False)
burst = max(int(above.max(initial=-1)) + 1 for above in huge)
glue("irnn_burst", plural(burst, "step"), display=False)
glue("irnn_steps", f"{len(norms['IRNN, SGD+clip'][0]):,}", display=False)
burst_epochs = -(-burst // len(loaders["train"]))  # epochs those steps span, rounded up
glue(
    "irnn_burst_epochs",
    "its first epoch" if burst_epochs == 1 else f"its first {plural(burst_epochs, 'epoch')}",
    display=False,
)
print(
    f"IRNN with clipping: {np.mean(clip_norms > z):.0%} of its steps were clipped; "
    f"norms above {HUGE} × z = {HUGE * z:.1f} only in its first {plural(burst, 'step')}"
)

# %% mystnb={"figure": {"caption": "Exercise 5: the gradient norm of every step of the IRNN (ReLU units, identity recurrent weights) trained with plain SGD, without and with clipping, measured before clipping; one line per seed.", "name": "fig-ex5-irnn-norms"}, "image": {"alt": "Gradient norm on a logarithmic y-axis against the optimizer step. The unclipped runs, circles, start near a thousand and have no finite gradient after their first steps, where a dotted vertical line stands. The clipped runs, thin lines, start at the same height, fall by about two orders of magnitude over the first few tens of steps, and then cross the dashed line at the threshold z back and forth for the rest of the run."}} tags=["hide-input", "nbval-ignore-output"]
ax = plt.subplots(figsize=(7, 3.8))[1]
for i, seed in enumerate(norms["IRNN, SGD+clip"]):
    label = "IRNN, SGD+clip (before clipping)" if i == 0 else None
    ax.plot(seed, color=COLOURS["IRNN, SGD+clip"], lw=0.7, alpha=0.8, label=label)
for i, seed in enumerate(norms["IRNN, SGD"]):  # finite only for its first steps: draw them
    label = "IRNN, SGD (no clipping)" if i == 0 else None
    ax.plot(
        seed[: finite[i]], "o", color=COLOURS["IRNN, SGD"], ms=6, mfc="none", zorder=3, label=label
    )
ax.axvline(
    min(finite), color=COLOURS["IRNN, SGD"], ls=":", label="no clipping: gradient no longer finite"
)
ax.axhline(z, color="black", ls="--", label=f"z = {z:.2f}")
ax.set(yscale="log", xlabel="optimizer step", ylabel="gradient norm (log scale)")
ax.set_title("IRNN: gradient norms per step, one line per seed")
ax.legend(fontsize=8)
plt.show()

# %% mystnb={"figure": {"caption": "Exercise 5: test accuracy per epoch, each seed a thin line and the mean over seeds a thick one. Left: Nesterov momentum on the tanh network, without and with clipping (dashed, in a darker shade of the same colour, so that its seeds stand apart). Right: the IRNN trained with clipped SGD; the unclipped IRNN diverged and has no accuracy to draw.", "name": "fig-ex5-accuracy"}, "image": {"alt": "Two panels of test accuracy from 0 to 1 against epoch. Left: SGD with Nesterov momentum on the tanh network in solid green and the same clipped at z in dashed dark green. Right: the IRNN with clipped SGD. Each run has one thin line per seed and a thick line for the mean over seeds; a dotted grey line marks the best possible accuracy and a thin dotted black line guessing."}} tags=["hide-input", "nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True, layout="constrained")
plot_seeds(tanh_runs, axes[0], "tanh network: Nesterov, without and with clipping")
plot_seeds(irnn.dropna(subset=["test Accuracy"]), axes[1], "IRNN: SGD with clipping")
fig.suptitle("Clipping: each seed and the mean over seeds")
plt.show()

# %% [markdown]
# :::{dropdown} Solution: does clipping help?
# The IRNN's gradients explode: its first gradient was {glue:text}`irnn_first_norm:,.0f` long
# (mean over seeds), where Nesterov's gradients on the tanh network stayed under $z$ =
# {glue:text}`z:.2f` on {glue:text}`clip_quantile:.0%` of their steps. Without clipping,
# {glue:text}`irnn_none_diverged` seeds diverged: a step of $\eta$ times such a gradient throws
# the weights so far that the next gradients are no longer finite numbers (each seed's
# gradients stayed finite for {glue:text}`irnn_none_finite`), and the loop stopped those seeds
# at the end of that epoch (the table's `epochs trained` column says how many epochs each run
# trained). With clipping, {glue:text}`irnn_clip_diverged` seeds diverged: every step was at
# most $\eta z$ long, however large the gradient (before clipping its norm still reached
# {glue:text}`irnn_clip_largest:,.0f`, against a median of {glue:text}`irnn_clip_median:.2f`),
# and the table gives the accuracy those runs reached.
#
# Clipping did not only guard the IRNN against rare, very large gradients; the figure of its
# norms shows two phases. The huge gradients came first: every norm above {glue:text}`huge`
# times $z$ came in a seed's first {glue:text}`irnn_burst` (of {glue:text}`irnn_steps`; within
# {glue:text}`irnn_burst_epochs`), and capping those is what kept the weights finite. After
# that the norms are ordinary, and they sit around $z$, because the threshold was read off the
# tanh network: the norms cross the dashed line back and forth for the rest of the run, and
# {glue:text}`irnn_clip_share:.0%` of all the IRNN's steps were longer than $z$ and were
# shortened. On those steps clipping acts like a smaller learning rate, so it changed the
# training of the IRNN throughout, not only at its start. A threshold read off one network is
# not one for another.
#
# On the tanh network, where $z$ sat above {glue:text}`clip_quantile:.0%` of Nesterov's norms,
# clipping shortened {glue:text}`tanh_clip_share:.1%` of the clipped run's steps, and the
# sentence after those runs above says whether that changed the accuracy. Clipping does not make
# a network learn that fails for another reason: when the rate is too large on *every* step,
# capping the largest ones is not enough, and the remedy is a smaller $\eta$. For clipping to act
# only on the rare long steps, read its threshold off the network being trained, above that
# network's typical norm, as we did for the tanh network.
# :::
#
# ## What we did
#
# - Generated a sequence classification task with a known best possible accuracy, and trained
#   a three-layer bidirectional RNN on it over several seeds.
# - Compared plain SGD, Nesterov momentum, AdamW and AdamW with cosine annealing on that RNN,
#   each difference with its interval over the seeds.
# - Recorded the gradient norm of every step, chose a clipping threshold from them, and
#   clipped Nesterov momentum.
# - Made the gradients explode (ReLU units, identity recurrent weights) and counted the seeds
#   that diverged with and without clipping.
