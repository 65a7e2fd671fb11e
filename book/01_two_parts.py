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
# # Gradient descent in two parts
#
# Every training run in this book updates the weights with one rule, and that rule has exactly
# two knobs: *how far* to step (the learning rate, set by a schedule $L$) and *which way* to step
# (the gradient, processed by an optimizer $G$). This page separates the two, shows the training
# loop that gives each its own argument, and trains the baseline every later page improves on:
# plain SGD with $\eta_0 = 0.1$ on Fashion-MNIST.

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
import time

import matplotlib.pyplot as plt
import torch
from torch import nn

from idlmam.budget import get_budget
from idlmam.data import book_loaders, classic_loader, fashion_mnist, resident_loader, subset
from idlmam.experiments import run
from idlmam.models import count_parameters, mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.plotting import plot_runs
from idlmam.stats import final_scores, last_epochs
from idlmam.train import train_network
from idlmam.utils import get_device, seed_run

setup()
budget_banner()

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (the source's 50 epochs) or quick
EPOCHS = BUDGET.chapter.epochs  # passes over the training data per run
SEEDS = range(BUDGET.chapter.seeds)  # the baseline is repeated with these seeds
BATCH_SIZE = 256  # B, a respectable batch size
ETA_0 = 0.1  # the initial learning rate: large on purpose, to make schedules visible
DEVICE = get_device()  # the GPU when there is one
print(f"budget={BUDGET.name}, epochs={EPOCHS}, seeds={len(SEEDS)}, device={DEVICE.type}")

# %% [markdown]
# ## One update, two parts
#
# Gradient descent treats the network as one big function $f_\Theta$ and moves the parameters
# $\Theta$ against the gradient of the loss $\ell$ on the current batch:
#
# $$\Theta_{t+1} = \Theta_t - \eta \cdot \underbrace{\nabla_{\Theta_t} \ell\big(f_{\Theta_t}(x), y\big)}_{g^t}$$
#
# We call that gradient $g^t$: a new one arrives with every batch, so learning consumes a
# *sequence* of gradients. Written this way, the rule has only two parts we can change, the
# learning rate $\eta$ and the gradient $g^t$:
#
# $$\Theta_{t+1} = \Theta_t - \eta \cdot g^t$$
#
# **The schedule $L$.** One fixed $\eta$ for the whole run is a strange demand: a train does not
# arrive at full speed and stop dead at the platform; it slows down as the station nears. So we
# let the rate depend on how far training has come, $L(\eta_0, t)$, starting from an initial
# rate $\eta_0$.
#
# **The optimizer $G$.** Gradients computed on noisy batches can point the wrong way, can be far
# too large (*exploding*, $\lVert g^t \rVert_2 \to \infty$) or far too small (*vanishing*,
# $\lVert g^t \rVert_2 \to 0$). A function $G$ that looks at the gradient, and at the gradients
# before it, can make them better behaved. Together:
#
# $$\Theta_{t+1} = \Theta_t - L(\eta_0, t) \cdot G(g^t)$$
#
# The two act on different clocks. $G$ runs on every batch: on this page, with batches of
# $B = 256$, that is {glue:text}`batches_per_epoch` times per epoch and
# {glue:text}`updates_per_run:,` times in a run of {glue:text}`epochs` epochs. $L$ runs once per
# epoch, {glue:text}`epochs` times per run. (A smaller batch or a larger data set multiplies the
# first number; the second stays the number of epochs.) One is the short-term steering, the other
# the long-term speed limit, and good training uses both.

# %% [markdown]
# ## A training loop with both
#
# PyTorch has a class for each part: a `torch.optim.Optimizer` is $G$ (its `step()` runs after
# every batch) and a `torch.optim.lr_scheduler` object is $L$ (its `step()` runs after every
# epoch, and it changes the learning rate stored inside the optimizer). Written out, the whole
# loop is a few lines:


# %% tags=["lesson"]
def train_by_hand(model, loss_func, loader, optimizer, schedule, epochs):
    """Train `model` for `epochs` passes: G steps after every batch, L after every epoch."""
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()  # forget the last batch's gradient
            loss = loss_func(model(x), y)
            loss.backward()  # g^t, the gradient of this batch's loss
            optimizer.step()  # G: one update of the weights
        schedule.step()  # L: the rate of the next epoch
    return model


# %% [markdown]
# Run it on a small slice of the data (2,000 training images, two epochs, a rate halved after
# each epoch) and, from the same seed, run the package's `train_network` on the same slice with
# an optimizer and a schedule built the same way. The two networks end with the same weights:


# %%
def halving(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)


def trained(by_hand, loader, epochs=2):
    seed_run(0, loader)  # the same initial weights and batch order for both
    net = mlp().to(DEVICE)
    optimizer = torch.optim.SGD(net.parameters(), lr=ETA_0)
    if by_hand:
        return train_by_hand(
            net, nn.CrossEntropyLoss(), loader, optimizer, halving(optimizer), epochs
        )
    train_network(
        net,
        nn.CrossEntropyLoss(),
        loader,
        epochs=epochs,
        device=DEVICE,
        optimizer=optimizer,
        lr_schedule=halving(optimizer),
    )
    return net


small = resident_loader(
    subset(fashion_mnist(train=True), 2_000, seed=0), BATCH_SIZE, shuffle=True, device=DEVICE
)
pairs = zip(trained(True, small).parameters(), trained(False, small).parameters())
gap = max((a - b).abs().max().item() for a, b in pairs)
print(f"largest difference between the two networks' weights: {gap:.1g}")

# %% [markdown]
# `train_network` is that loop with what every experiment of the book needs around it: it
# takes the optimizer as `optimizer=` and the schedule as `lr_schedule=`, with no optimizer it
# uses AdamW, a good default we meet on the gradients page, and with no schedule the rate stays
# at $\eta_0$. It checks its arguments and pushes one batch through before training (so a
# mistake stops the run in a second), evaluates every epoch, writes a checkpoint it can resume
# from, stops a model whose loss becomes NaN, and feeds `ReduceLROnPlateau` the validation loss
# it needs. Its phases are numbered in the source:
#
# ````{dropdown} The source of the loop behind train_network (fit, in idlmam/train/loop.py)
# ```{literalinclude} ../idlmam/train/loop.py
# :pyobject: fit
# :language: python
# ```
# ````
#
# It returns a pandas DataFrame with one row per epoch: the learning rate used (`lr`), the
# losses, and a score column such as `test Accuracy` for every score function we pass.

# %% [markdown]
# ## The data, kept where the model trains
#
# We use Fashion-MNIST {cite:p}`xiao2017fashion`: 60,000 training and 10,000 test images of clothing
# in 10 classes, the same size as MNIST but harder. The usual way to feed it is a `DataLoader` over
# torchvision's dataset with `ToTensor()`, which turns every image into a PIL image and back into a
# tensor, every epoch. Our loaders decode the whole split *once* into one tensor on the training
# device (the values are bitwise the same) and draw each epoch's batches from a seeded shuffle.

# %%
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.chapter.train_size)
batches_per_epoch = len(loaders["train"])  # ceil(training images / B): G's steps per epoch
glue("batches_per_epoch", batches_per_epoch, display=False)
glue("updates_per_run", batches_per_epoch * EPOCHS, display=False)
glue("epochs", EPOCHS, display=False)
print(", ".join(f"{loader.n_examples:,} {name} images" for name, loader in loaders.items()))
print(
    f"{batches_per_epoch:,} batches of {BATCH_SIZE} per epoch, {batches_per_epoch * EPOCHS:,} per run"
)

# %% [markdown]
# How much that saves is easy to measure: one training pass of the same model, with the same
# loop, over the same 5,000 images, fed each way.


# %% tags=["nbval-ignore-output"]
def seconds_per_pass(loader):
    model = mlp()
    start = time.perf_counter()
    train_network(
        model,
        nn.CrossEntropyLoss(),
        loader,
        epochs=1,
        device=DEVICE,
        optimizer=torch.optim.SGD(model.parameters(), lr=ETA_0),
    )
    return time.perf_counter() - start


images = subset(fashion_mnist(train=True), 5_000, seed=0)
classic_s = seconds_per_pass(classic_loader(images, BATCH_SIZE, shuffle=True))
fast = resident_loader(images, BATCH_SIZE, shuffle=True, device=DEVICE)
resident_s = min(seconds_per_pass(fast) for _ in range(3))  # the first call also warms up torch
glue("speedup", classic_s / resident_s, display=False)
print(
    f"DataLoader: {classic_s:.2f} s, resident: {resident_s:.3f} s, {classic_s / resident_s:.0f}x faster"
)

# %% [markdown]
# ```{note}
# On the machine that built this page the resident loader was
# {glue:text}`speedup:.0f` times faster for the same pass. Almost all of the classic path's time
# goes into converting images one by one, not into the network. That difference is what lets
# every experiment on these pages train for real instead of asking you to wait.
# ```

# %% [markdown]
# ## The baseline network
#
# The network is the fully connected one from earlier chapters: the $28 \times 28$ image
# flattened to 784 values, three hidden layers of 128 neurons with $\tanh$, and 10 outputs.

# %%
model = mlp(in_features=28 * 28, hidden=128, layers=3, classes=10)
print(model)
print(f"{count_parameters(model):,} parameters")

# %% [markdown]
# The baseline is plain SGD with no schedule. We set $\eta_0 = 0.1$ in the optimizer's
# constructor: that is where every schedule will later reach in to change it. The chapter
# chose 0.1 on purpose: it is on the large side (0.001, Adam's default, is a common first
# try), which makes the effect of each improvement easier to see. Like every comparison in the
# book, the baseline is trained once per seed; a seed fixes the initial weights and the order of
# the batches, so the spread between seeds is the noise any later difference must beat.
# `run`, from `idlmam.experiments`, does that for every page from here on: for each seed it
# seeds the weights and the batch order, as `seed_run` did above, trains with the loop of
# `train_network` (several seeds together in one stacked pass when the setup allows, which gives
# the same numbers), and returns one frame with a row per seed and epoch.

# %% tags=["nbval-ignore-output"]
sgd = run(
    "SGD",
    lambda params: torch.optim.SGD(params, lr=ETA_0),
    loaders=loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)
sgd.loc[sgd["epoch"] == EPOCHS - 1, ["seed", "epoch", "train loss", "test loss", "test Accuracy"]]

# %% mystnb={"figure": {"caption": "Plain SGD baseline, \u03b7\u2080 = 0.1: test accuracy per epoch, the mean over seeds with its 95% Student-t interval as a band.", "name": "fig-sgd-baseline"}, "image": {"alt": "Line plot of test accuracy against epoch for plain SGD with learning rate 0.1: a steep rise in the first epochs, then a slower, uneven climb, with a shaded band showing the spread over seeds."}} tags=["nbval-ignore-output"]
ax = plot_runs(
    sgd, "test Accuracy", title=r"Plain SGD, $\eta_0 = 0.1$ (mean and 95% band over seeds)"
)
ax.set_ylabel("test accuracy")
plt.show()

# %% tags=["nbval-ignore-output"]
baseline = final_scores(sgd).loc["SGD"]
per_seed = sgd.groupby("seed")["test Accuracy"]
drops = per_seed.apply(lambda acc: int((acc.diff() < 0).sum()))  # epochs that went down, per seed
glue("sgd_final", baseline["mean"], display=False)
glue("sgd_half", baseline["half_width"], display=False)
glue("sgd_seeds", int(baseline["seeds"]), display=False)
glue("sgd_best", per_seed.max().mean(), display=False)
glue("sgd_drops", drops.mean(), display=False)
glue("sgd_changes", EPOCHS - 1, display=False)
print(f"final test accuracy {baseline['mean']:.4f} ± {baseline['half_width']:.4f}")
print("epochs whose accuracy fell, per seed:", drops.to_dict())

# %% [markdown]
# The network learns: over {glue:text}`sgd_seeds` seeds it ends at a test accuracy of
# {glue:text}`sgd_final:.3f` ± {glue:text}`sgd_half:.3f` (the mean and the half-width of its 95%
# interval), and each seed's best epoch reached {glue:text}`sgd_best:.3f` on average. The curve
# does not only rise: of the {glue:text}`sgd_changes` steps from one epoch to the next, on
# average {glue:text}`sgd_drops:.1f` per seed went *down*. The chapter blames a learning rate
# that is a little too large, which keeps kicking the weights past good solutions. That is a
# hypothesis, and the next two pages test it from both sides, first with schedules $L$, then
# with optimizers $G$: the schedules page says whether its remedies calmed the curve, and both
# say whether they ended higher.
#
# ## An external yardstick
#
# How good is this baseline? The Fashion-MNIST repository keeps a benchmark table of submitted
# results, and its fully connected entry, *MLP 256-128-100*, reports a test accuracy of
# 0.8833. Its submitter's own notes say how it was made: a Keras network with hidden layers of
# 256, 128 and 100 units and dropout of 0.4 after each, trained with SGD at a rate of 0.01 with
# Nesterov momentum 0.975 and a small decay, batches of 100, for 100 epochs, on the 80% of the
# training images left after holding out 20% for validation; the number is the best of 30 runs.
#
# Our baseline differs in almost every respect, so the two numbers are not a race:
#
# - **epochs**: {glue:text}`epochs` passes over the data instead of 100;
# - **optimizer and schedule**: plain SGD at a constant 0.1, no momentum and no decay, where
#   the table's run used Nesterov momentum and a slowly decaying rate (tools of the next pages);
# - **architecture**: three hidden layers of 128 $\tanh$ units and no dropout, about half the
#   table network's parameters;
# - **data**: the budget's training images, all of them on `full`, none held out;
# - **which number**: the mean of the final epoch over our seeds, with its interval, against the
#   best of 30 runs, which sits above a typical run by construction.
#
# Each of these moves the number, and these runs cannot say by how much each one does. With
# that said, here is where the baseline lands:

# %% tags=["nbval-ignore-output"]
TABLE_MLP = 0.8833  # Fashion-MNIST benchmark table, "MLP 256-128-100": best of 30 runs
gap = 100 * (baseline["mean"] - TABLE_MLP)  # points
ends = last_epochs(sgd, "test Accuracy")["test Accuracy"]  # each seed's final accuracy
if baseline["low"] <= TABLE_MLP <= baseline["high"]:
    side = "below" if (ends < TABLE_MLP).all() else "above" if (ends > TABLE_MLP).all() else None
    where = (
        "the table's 0.8833 lies inside that interval, so these seeds, whose last epochs move "
        "this much, cannot place the baseline above or below it"
        + (f", although each of the {len(ends)} seeds ended {side} it" if side else "")
    )
else:
    where = f"{abs(gap):.1f} points {'below' if gap < 0 else 'above'} the table's 0.8833"
finding(
    f"The `{BUDGET.name}` baseline ends at {baseline['mean']:.3f} ± "
    f"{baseline['half_width']:.3f} over {int(baseline['seeds'])} seeds ({EPOCHS} epochs of "
    f"plain SGD, against the table's best of 30 runs of 100 epochs): {where}.",
    needs="place the baseline against the published benchmark",
)

# %% [markdown]
# ## What we did
#
# - Split the gradient-descent update into a schedule $L(\eta_0, t)$, applied once per epoch,
#   and an optimizer $G(g^t)$, applied once per batch.
# - Met `train_network`, which takes `optimizer=` and `lr_schedule=` and returns one row per
#   epoch, the learning rate included.
# - Kept the data on the training device, and measured why.
# - Trained the baseline, plain SGD with $\eta_0 = 0.1$, over several seeds, that the next pages
#   improve on, and placed it against the published benchmark table.
