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
# # Making better use of gradients
#
# The schedule sets the speed for the whole journey; the optimizer $G$ steers around the
# potholes, batch by batch. This page builds momentum, Nesterov momentum and Adam from their
# update rules, trains the baseline network with each (and with AdamW's relatives NAdam and
# AdaMax), combines the best of them with cosine annealing, and ends with gradient clipping.

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
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import run
from idlmam.models import clamp_gradients
from idlmam.notebook import glue, setup
from idlmam.optim import clip_grad_norm_on_step, cosine_t_max
from idlmam.plotting import final_scores, plot_runs
from idlmam.utils import get_device

setup()

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.epochs  # epochs per run
SEEDS = range(BUDGET.seeds)  # each run is repeated with these seeds
BATCH_SIZE = 256  # B
ETA_0 = 0.1  # SGD's learning rate, as on the previous pages
MU = 0.9  # momentum weight
CLIP = 5.0  # z, the gradient clipping threshold
DEVICE = get_device()
print(f"budget={BUDGET.name}, epochs={EPOCHS}, seeds={len(SEEDS)}")

# %% tags=["nbval-ignore-output"]
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.train_size)
train = dict(loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS)  # shared by every run
sgd = run("SGD", lambda p: torch.optim.SGD(p, lr=ETA_0), **train)

# %% [markdown]
# ## Momentum: trust a direction that keeps coming back
#
# Each parameter $j$ gets its own gradient $g^t_j$ at every step. If it points the same way
# batch after batch, $g^t_j \approx g^{t-1}_j \approx g^{t-2}_j \approx \dots$, we could afford a
# bigger step along $j$ alone, without raising the global rate for parameters whose gradients
# wander. Momentum does this with a *velocity* $v$ that keeps a fraction $\mu \in (0, 1)$ of
# the previous step:
#
# $$v^{t+1} = \mu \cdot v^t + \eta \cdot g^t \qquad \Theta^{t+1} = \Theta^t - v^{t+1}$$
#
# Unroll it and every past gradient is still in there, each weighted by a power of $\mu$:
#
# $$v^{t+1} = \eta \left(g^t + \mu\, g^{t-1} + \mu^2 g^{t-2} + \dots\right)$$
#
# The weights shrink fast, which is the point: momentum remembers, and then it forgets.

# %%
weights = pd.Series({k: MU**k for k in (0, 1, 2, 5, 10, 20, 40)}, name="weight of g^(t-k)")
forget = next(k for k in range(1, 1000) if MU**k < 1e-4)
print(weights.round(4).to_string())
print(f"with mu = {MU}, a gradient counts less than 0.01% after {forget} updates")

# %% [markdown]
# So with $\mu = 0.9$ a gradient 40 steps old still weighs about 1.5% and one
# 88 steps old less than 0.01%. An epoch of Fashion-MNIST at batch 256 has 235 steps: momentum is
# a short memory. In a direction where the gradients agree, the steps add up to as much as
# $1 / (1 - \mu) = 10$ times a plain step; in a direction where they alternate, they cancel.
#
# ### Nesterov momentum: look before you leap
#
# After a long run in one direction, momentum carries the weights past a turn in the valley and
# needs several steps to come back. Nesterov momentum first moves by the velocity alone, takes
# the gradient *there*, and corrects with it:
#
# $$\Theta^{t'} = \Theta^t - \mu\, v^t \qquad v^{t+1} = \mu\, v^t + \eta\, \nabla \ell\big(f_{\Theta^{t'}}(x), y\big) \qquad \Theta^{t+1} = \Theta^t - v^{t+1}$$
#
# If the velocity was about to overshoot, the gradient at the look-ahead point already pushes
# back, so the turn happens a step sooner. Rearranged, it costs no more than plain momentum.
# In PyTorch both are options of `SGD`.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Momentum vs Nesterov vs SGD: test accuracy.", "name": "fig-momentum-nesterov"}}
momentum = run("SGD w/ Momentum", lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU), **train)
nesterov = run(
    "SGD w/ Nesterov", lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU, nesterov=True), **train
)
plot_runs(pd.concat([sgd, momentum, nesterov]), title="SGD, momentum and Nesterov momentum")
plt.show()

# %% tags=["nbval-ignore-output"]
finals = final_scores(pd.concat([sgd, momentum, nesterov]))
for name, key in (("SGD", "sgd"), ("SGD w/ Momentum", "momentum"), ("SGD w/ Nesterov", "nesterov")):
    glue(f"{key}_acc", finals[name], display=False)
finals.to_frame("final test accuracy")

# %% [markdown]
# Both kinds of momentum end above plain SGD here ({glue:text}`momentum_acc:.3f` and
# {glue:text}`nesterov_acc:.3f` against {glue:text}`sgd_acc:.3f`). Which of the two is ahead
# changes from run to run; when one is clearly better it is usually Nesterov, which is why it
# is the flavour to reach for.
#
# ## Adam: momentum, scaled by how noisy each gradient is
#
# Adam renames the velocity to $m$ and $\mu$ to $\beta_1$, and turns the sum into an average by
# weighting the new gradient with $(1 - \beta_1)$: an *exponential moving average*. Next to it
# it keeps a moving average of the squared gradients, a rough measure of each parameter's
# variance ($\odot$ is the elementwise product):
#
# $$m^t = \beta_1 m^{t-1} + (1 - \beta_1)\, g^t \qquad v^t = \beta_2 v^{t-1} + (1 - \beta_2)\, g^t \odot g^t$$
#
# Both start at zero, so their first values are too small. Dividing by $1 - \beta^t$ corrects
# that bias, and the step divides the average direction by the typical size:
#
# $$\hat m = \frac{m^t}{1 - \beta_1^t} \qquad \hat v = \frac{v^t}{1 - \beta_2^t} \qquad \Theta_{t+1} = \Theta_t - \eta \frac{\hat m}{\sqrt{\hat v} + \epsilon}$$
#
# A parameter whose gradient swings wildly gets small steps; a steady one gets steps near
# $\eta$. One update by hand, checked against `torch.optim.Adam` (its defaults are the ones the
# authors proposed: $\eta = 0.001$, $\beta_1 = 0.9$, $\beta_2 = 0.999$, $\epsilon = 10^{-8}$):

# %%
eta, beta1, beta2, eps, g = 0.001, 0.9, 0.999, 1e-8, 3.0
m, v = (1 - beta1) * g, (1 - beta2) * g * g  # t = 1, from zero
m_hat, v_hat = m / (1 - beta1), v / (1 - beta2)  # the bias correction undoes the (1 - beta)
by_hand = 1.0 - eta * m_hat / (math.sqrt(v_hat) + eps)
theta = torch.nn.Parameter(torch.tensor([1.0]))
adam = torch.optim.Adam([theta])
theta.grad = torch.tensor([g])
adam.step()
print(f"m = {m:.3f}, m_hat = {m_hat:.3f}; by hand {by_hand:.6f}, torch {theta.item():.6f}")

# %% [markdown]
# On the first step $\hat m / \sqrt{\hat v}$ is exactly 1 whatever the gradient's size, so Adam
# moves every parameter by $\eta$: its steps are bounded by the learning rate, not by the
# gradient. That is one reason its defaults work on most problems without tuning.
#
# ### AdamW, NAdam and AdaMax
#
# The original Adam folded weight decay into the gradient, where the division by $\sqrt{\hat v}$
# distorts it; **AdamW** applies the decay to the weights directly, and is the default
# optimizer of `train_network` and of this book. **NAdam** puts Nesterov's look-ahead into
# Adam's momentum. **AdaMax** replaces the average of squares by a running maximum, which is
# numerically steadier. We keep each at its default learning rate.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "AdamW, NAdam and AdaMax against the SGD family.", "name": "fig-adamw"}}
adamw = run("AdamW", lambda p: torch.optim.AdamW(p), **train)
nadam = run("NAdam", lambda p: torch.optim.NAdam(p), **train)
adamax = run("AdaMax", lambda p: torch.optim.Adamax(p), **train)
plot_runs(
    pd.concat([sgd, momentum, nesterov, adamw, nadam, adamax]),
    title="The SGD family against the Adam family",
)
plt.show()

# %% tags=["nbval-ignore-output"]
glue("adamw_acc", final_scores(adamw).iloc[0], display=False)
final_scores(pd.concat([sgd, momentum, nesterov, adamw, nadam, adamax])).to_frame(
    "final test accuracy"
)

# %% [markdown]
# AdamW ends at {glue:text}`adamw_acc:.3f`, in the same league as the momentum methods, at
# its default learning rate and without any tuning. That is its appeal: spend your time on the
# architecture, and tune the optimizer last.
#
# ## Optimizers and schedules together
#
# $G$ and $L$ work on different clocks, so they combine. Here AdamW and SGD with Nesterov
# momentum each get a cosine schedule with two dips:

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Cosine combinations: Nesterov and AdamW with and without CosineLR.", "name": "fig-cosine-combinations"}}
t_max = cosine_t_max(EPOCHS, 2)


def cosine(opt):
    return CosineAnnealingLR(opt, t_max)


adamw_cos = run("AdamW+CosineLR", lambda p: torch.optim.AdamW(p), cosine, **train)
nesterov_cos = run(
    "SGD w/ Nesterov+CosineLR",
    lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU, nesterov=True),
    cosine,
    **train,
)
plot_runs(
    pd.concat([nesterov, nesterov_cos, adamw, adamw_cos]),
    title="Nesterov and AdamW, with and without cosine annealing",
)
plt.show()

# %% tags=["nbval-ignore-output"]
combined = final_scores(pd.concat([nesterov, nesterov_cos, adamw, adamw_cos]))
glue("best_combo", combined.index[0], display=False)
glue("best_combo_acc", combined.iloc[0], display=False)
combined.to_frame("final test accuracy")

# %% [markdown]
# The best of the four in this run is **{glue:text}`best_combo`** at
# {glue:text}`best_combo_acc:.3f`. Each line is labelled by the optimizer *and* the schedule
# it really ran with.
#
# ## Gradient clipping: a cap on exploding gradients
#
# The last trick works with any optimizer and schedule. If a gradient value is larger in size
# than a threshold $z$, set it to $\pm z$: its sign still says which way to go, but the distance
# becomes sane. With $z = 5$:

# %%
g = torch.tensor([1.0, -2.0, 1000.0, 3.0, -7.0])
print("clamped:       ", g.clamp(-CLIP, CLIP).tolist())
print("norm-clipped:  ", [round(x, 4) for x in (g * CLIP / g.norm()).tolist()])

# %% [markdown]
# The first line clamps each value on its own; the second is the alternative,
# `torch.nn.utils.clip_grad_norm_`, which shrinks the whole vector until its length is $z$ and
# so keeps its direction (here almost all of it points along the third value). Clamping is added
# to a model with a hook on every parameter that rewrites its gradient as it is computed:
#
# ```{literalinclude} ../idlmam/models.py
# :pyobject: clamp_gradients
# ```
#
# Hooks stay attached until removed, and would silently clip every later experiment on the same
# model; `run` removes them after its run, and `weight_reset` removes any that are left. We can
# check that on a small layer:

# %%
layer = torch.nn.Linear(1, 1, bias=False)
handles = clamp_gradients(layer, CLIP)
layer(torch.tensor([[1000.0]])).sum().backward()
print("with the hook:   ", layer.weight.grad.item())
for handle in handles:
    handle.remove()
layer.weight.grad = None
layer(torch.tensor([[1000.0]])).sum().backward()
print("hook removed:    ", layer.weight.grad.item())

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Gradient clipping: AdamW+CosineLR with clamping and norm clipping.", "name": "fig-clipping"}}
adamw_cos_clamp = run(
    "AdamW+CosineLR+Clamp", lambda p: torch.optim.AdamW(p), cosine, clip_value=CLIP, **train
)
adamw_cos_norm = run(
    "AdamW+CosineLR+NormClip",
    lambda p: clip_grad_norm_on_step(torch.optim.AdamW(p), CLIP),
    cosine,
    **train,
)
plot_runs(
    pd.concat([adamw_cos, adamw_cos_clamp, adamw_cos_norm]),
    title="AdamW with cosine annealing, with and without clipping",
)
plt.show()

# %% tags=["nbval-ignore-output"]
clipped = final_scores(pd.concat([adamw_cos, adamw_cos_clamp, adamw_cos_norm]))
glue("clip_gap", clipped["AdamW+CosineLR+Clamp"] - clipped["AdamW+CosineLR"], display=False)
clipped.to_frame("final test accuracy")

# %% [markdown]
# Clipping moved the final accuracy by {glue:text}`clip_gap:+.3f`: next to nothing, as expected.
# This network and data have no exploding gradients, so there is nothing to cap. Clipping is
# the remedy for a model that does not learn at all, and a habit for recurrent networks, whose
# gradients explode easily; $z$ of 5 or 10 works for most problems.
#
# ## What we did
#
# - Built momentum from its update rule and computed how fast it forgets: under 0.01% after 88
#   steps at $\mu = 0.9$; then Nesterov's look-ahead version.
# - Checked one step of Adam, bias correction included, against PyTorch by hand.
# - Trained SGD, momentum, Nesterov, AdamW, NAdam and AdaMax on the same data and seeds.
# - Combined AdamW and Nesterov momentum with cosine annealing.
# - Clipped gradients by value (with hooks that we removed afterwards) and by norm.
