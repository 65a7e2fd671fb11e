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
# # Exercises 2 and 3: batch size and depth
#
# The chapter compared its tools on one setting: the three-hidden-layer network with batches
# of 256. These two exercises move that setting. Exercise 2 changes the batch size and asks
# whether AdamW, Nesterov momentum and cosine annealing keep their advantages; exercise 3 makes
# the network deeper and asks whether the new tools make deep fully connected networks
# trainable where plain SGD struggles. Both train on Fashion-MNIST.

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
from functools import partial

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

from idlmam.budget import get_budget
from idlmam.data import ResidentLoader, book_loaders
from idlmam.experiments import run
from idlmam.models import count_parameters, mlp
from idlmam.notebook import glue, setup
from idlmam.optim import cosine_t_max
from idlmam.plotting import final_scores
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.exercise_epochs  # T, the same for every run: equal passes over the data
TRAIN_SIZE = BUDGET.exercise_train_size  # training images (None: all 60,000)
QUICK = BUDGET.name == "quick"
BATCH_SIZES = (128, 512) if QUICK else (4, 32, 64, 128)  # exercise 2 (B = 1 is left out: see below)
DEPTHS = (1, 6) if QUICK else (1, 6, 12, 24)  # exercise 3: hidden layers
WIDTH = 256  # exercise 3: neurons per hidden layer
ETA_0 = 0.1  # SGD's rate, as in the chapter (AdamW keeps its default 0.001)
DIPS = 2  # cosine annealing: two dips, ending on the second
DEVICE = get_device()
print(
    f"budget={BUDGET.name}, epochs={EPOCHS}, training images={TRAIN_SIZE or 60_000}, "
    f"batch sizes={BATCH_SIZES}, depths={DEPTHS}"
)

# %% [markdown]
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
# Nesterov momentum $\mu = 0.9$, and plain SGD with a cosine schedule of two dips. Every run
# makes the same number of passes over the data, so a smaller batch takes *more* steps: on the
# full training set, 60,000 per epoch at $B = 1$ and 469 at $B = 128$. That is also why $B = 1$
# is not in the list: on a CPU it would cost more than the rest of the page. Add `1` to
# `BATCH_SIZES` to see it; expect SGD at $\eta = 0.1$ to be very noisy there. The `full`
# budget trains these sweeps for 8 epochs on a seeded subset of 12,000 training images
# (`chapter`: 50 epochs on all 60,000), so that the page takes minutes on a CPU.
#
# The training data is decoded once; each batch size gets a new loader over the same tensors.
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
base = book_loaders(256, device=DEVICE, train_size=TRAIN_SIZE)
tools = {
    "AdamW": (lambda p: torch.optim.AdamW(p), None),
    "SGD+Nesterov": (lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=0.9, nesterov=True), None),
    "SGD+cosine": (
        lambda p: torch.optim.SGD(p, lr=ETA_0),
        lambda opt: CosineAnnealingLR(opt, cosine_t_max(EPOCHS, DIPS), eta_min=1e-4),
    ),
}
frames = []
for B in BATCH_SIZES:
    train = ResidentLoader(base["train"].X, base["train"].y, B, shuffle=True, device=DEVICE)
    for name, (make_optimizer, make_schedule) in tools.items():
        frame = run(
            name,
            make_optimizer,
            make_schedule,
            loaders={"train": train, "test": base["test"]},
            epochs=EPOCHS,
            device=DEVICE,
        )
        frames.append(frame.assign(B=B))
by_batch = pd.concat(frames, ignore_index=True)

# %% tags=["hide-input", "nbval-ignore-output"]
last = by_batch[by_batch["epoch"] == by_batch["epoch"].max()]
table = last.pivot(index="B", columns="run", values="test Accuracy")
fig, (ax_b, ax_t) = plt.subplots(1, 2, figsize=(11, 3.8))
table.plot(ax=ax_b, marker="o", logx=True, title="Final test accuracy by batch size")
ax_b.set(xlabel="batch size B", ylabel="test accuracy")
ax_b.set_xticks(BATCH_SIZES, [str(B) for B in BATCH_SIZES], minor=False)
ax_b.minorticks_off()
for (name, B), frame in by_batch.groupby(["run", "B"]):
    ax_t.plot(
        frame["total time"],
        frame["test Accuracy"],
        label=f"{name}, B={B}",
        ls="-" if min(BATCH_SIZES) == B else "--",
        color=f"C{list(tools).index(name)}",
    )
ax_t.set(
    xlabel="training seconds", ylabel="test accuracy", title="Accuracy against wall-clock time"
)
ax_t.legend(fontsize=8)
table.round(4)

# %% tags=["hide-input", "nbval-ignore-output"]
small, large = min(BATCH_SIZES), max(BATCH_SIZES)
glue("b_small", small, display=False)
glue("b_large", large, display=False)
for name in tools:
    key = name.replace("+", "_")
    glue(f"b_small_{key}", table.loc[small, name], display=False)
    glue(f"b_large_{key}", table.loc[large, name], display=False)
seconds = last.groupby("B")["total time"].mean()
glue("b_time_ratio", seconds[small] / seconds[large], display=False)
print(f"training seconds per run: {seconds.round(1).to_dict()}")

# %% [markdown]
# :::{dropdown} Solution: what changes with the batch size
# At $B = $ {glue:text}`b_small` the three tools ended at {glue:text}`b_small_AdamW:.3f` (AdamW),
# {glue:text}`b_small_SGD_Nesterov:.3f` (Nesterov) and {glue:text}`b_small_SGD_cosine:.3f`
# (cosine); at $B = $ {glue:text}`b_large` at {glue:text}`b_large_AdamW:.3f`,
# {glue:text}`b_large_SGD_Nesterov:.3f` and {glue:text}`b_large_SGD_cosine:.3f`. The
# smallest batch took {glue:text}`b_time_ratio:.1f` times as long to train as the largest.
#
# Three things to take from the table and the plots:
#
# - **Smaller batches mean more steps per epoch.** With the epoch count fixed, a small batch
#   makes many more, noisier updates. For a while that helps: at the same number of epochs the
#   smaller batches are usually ahead. But each step is less efficient, so per *second* the
#   larger batches catch up (right panel), and on a GPU, which processes a batch of 128 about
#   as fast as a batch of 4, the difference is far larger.
# - **The learning rate was tuned for one batch size.** A batch of $B$ examples averages $B$
#   gradients, so the noise in a step shrinks like $1/\sqrt{B}$. SGD's $\eta = 0.1$ with
#   momentum 0.9 is aggressive at $B = 4$, and Nesterov momentum, which amplifies the steps by
#   about $1/(1-\mu) = 10$, suffers first. A common rule of thumb scales the rate with the
#   batch size.
# - **AdamW is the least sensitive**, because it divides each step by a running estimate of
#   the gradient's size: noisier gradients give proportionally smaller steps. That robustness
#   is one reason it is the default choice. Cosine annealing helps small batches in particular:
#   its dips shrink the steps just when the noise would keep the weights from settling.
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
        f"{depth:>2} hidden layer(s) of {WIDTH}: {count_parameters(mlp(hidden=WIDTH, layers=depth)):>9,} parameters"
    )

# %% tags=["hide-input", "nbval-ignore-output"]
optimizers = {
    "SGD": (lambda p: torch.optim.SGD(p, lr=ETA_0), None),
    "AdamW+cosine": (
        lambda p: torch.optim.AdamW(p),
        lambda opt: CosineAnnealingLR(opt, cosine_t_max(EPOCHS, DIPS), eta_min=1e-6),
    ),
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
            model_fn=partial(mlp, hidden=WIDTH, layers=depth),
        )
        frames.append(frame.assign(depth=depth))
by_depth = pd.concat(frames, ignore_index=True)

# %% tags=["hide-input", "nbval-ignore-output"]
fig, axes = plt.subplots(1, len(DEPTHS), figsize=(3.2 * len(DEPTHS), 3.2), sharey=True)
for ax, (depth, group) in zip(axes, by_depth.groupby("depth")):
    for name, frame in group.groupby("run"):
        ax.plot(frame["epoch"], frame["train loss"], label=name)
    ax.set(title=f"{depth} hidden layer{'s' if depth > 1 else ''}", xlabel="epoch", yscale="log")
axes[0].set_ylabel("training loss")
axes[0].legend()
depth_table = final_scores(
    by_depth.assign(run=by_depth["run"] + " / " + by_depth["depth"].astype(str))
)
for name in optimizers:
    for depth in (min(DEPTHS), max(DEPTHS)):
        glue(
            f"d_{name.replace('+', '_')}_{depth if depth == min(DEPTHS) else 'max'}",
            depth_table[f"{name} / {depth}"],
            display=False,
        )
deepest_sgd = by_depth[(by_depth["run"] == "SGD") & (by_depth["depth"] == max(DEPTHS))]
glue("d_max", max(DEPTHS), display=False)
glue("d_SGD_max_first_loss", deepest_sgd["train loss"].iloc[0], display=False)
glue("d_SGD_max_last_loss", deepest_sgd["train loss"].iloc[-1], display=False)
by_depth[by_depth["epoch"] == by_depth["epoch"].max()].pivot(
    index="depth", columns="run", values="test Accuracy"
).round(4)

# %% [markdown]
# :::{dropdown} Solution: what depth does to each optimizer
# With one hidden layer plain SGD reached {glue:text}`d_SGD_1:.3f` and AdamW with cosine
# annealing {glue:text}`d_AdamW_cosine_1:.3f`; with the deepest network, {glue:text}`d_max` hidden
# layers, {glue:text}`d_SGD_max:.3f` and {glue:text}`d_AdamW_cosine_max:.3f`.
#
# Deep stacks of $\tanh$ layers are hard for plain SGD: every layer multiplies the gradient by
# its weights and by $\tanh'$, which is at most 1, so the gradient reaching the first layers is
# small and SGD's fixed step leaves them nearly untrained. The training loss (log scale) shows
# it as a slow start that gets slower with depth: at {glue:text}`d_max` layers SGD's training loss
# went from {glue:text}`d_SGD_max_first_loss:.2f` in the first epoch to
# {glue:text}`d_SGD_max_last_loss:.2f` in the last, where guessing among ten classes costs
# $\ln 10 \approx 2.30$. AdamW rescales each parameter's step by its
# own gradient history, so small gradients still give steps of a useful size, and the cosine
# schedule lets it finish with small, precise steps. The gap between the two is what the
# chapter's tools buy, and it grows with depth. Depth alone does not buy accuracy here: a
# fully connected network on $28 \times 28$ images gains little beyond a few layers, while
# the deepest ones cost many times more per epoch.
# :::
#
# ## What we did
#
# - Retrained AdamW, Nesterov momentum and cosine annealing at several batch sizes, with the
#   number of epochs fixed, and read the result both per epoch and per second.
# - Built networks of 256 neurons per layer and up to {glue:text}`d_max` hidden layers, and compared
#   plain SGD with AdamW plus cosine annealing on them.
