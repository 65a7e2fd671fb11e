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
# # Pictures of optimization
#
# The chapter explains schedules and optimizers with hand-drawn sketches: a point rolling down
# a loss surface, bouncing, overshooting, getting stuck. This page redraws each sketch from
# code. The surfaces are small functions of two parameters, and every path on them is traced by
# a real PyTorch optimizer, learning-rate scheduler or clipping call, the same objects that
# train the network on the other pages. Nothing is trained on data here; every picture takes
# milliseconds.

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
import tempfile
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image
from matplotlib.animation import FuncAnimation, PillowWriter
from torch.optim.lr_scheduler import CosineAnnealingLR

from idlmam import optim as scratch
from idlmam.budget import get_budget
from idlmam.landscapes import (
    CURVED_VALLEY_MIN,
    TWO_MINIMA_BAD,
    TWO_MINIMA_GOOD,
    bowl,
    curved_valley,
    curved_valley_floor,
    narrow_valley,
    optimizer_path,
    plateau,
    plot_paths,
    quartic_bowl,
    steps_to_reach,
    two_minima,
)
from idlmam.notebook import budget_banner, glue, setup
from idlmam.optim import eta_min_for, schedule_lrs
from idlmam.stats import compare, final_scores

setup(threads=1)
budget_banner(trains="no network on data, only optimizers stepping on two-parameter surfaces")

# %%
BUDGET = get_budget()  # every budget draws the same pictures: they cost milliseconds
MU = 0.9  # the chapter's momentum
CLIP_Z = 5.0  # the chapter's clipping threshold z
NOISE = 1.0  # standard deviation of the noise added to each gradient coordinate
TOL = 0.1  # "reached" a point: stayed within this distance of it from then on
print(f"budget={BUDGET.name}: the pictures are the same on every budget")


# %% [markdown]
# ## How to read these pictures
#
# Each picture after the first is a map of a loss $f(\theta_1, \theta_2)$ over two parameters, coloured like the
# chapter's sketches: red is a high loss, dark green a low one, and a gold star marks a minimum.
# A path is the sequence of parameters an optimizer visits, one dot per update, starting at the
# hollow circle. `optimizer_path` makes one: it puts the two numbers in an `nn.Parameter`, and on
# every step asks autograd for the gradient, optionally adds noise or clips it, and calls
# `optimizer.step()` (and `lr_schedule.step()`, when there is one).
#
# :::{dropdown} The source of `optimizer_path`
# ```{literalinclude} ../idlmam/landscapes.py
# :pyobject: optimizer_path
# :language: python
# ```
# :::
#
# A network has millions of parameters, not two, so these are cartoons of the real thing. But
# the update rules are the real ones, applied to surfaces built to have one feature each: a
# narrow valley, a bend, a cliff, a flat plain, a trap.

# %% [markdown]
# ## Figure 5.1: many minima, and where descent ends
#
# The chapter's first sketch is a one-dimensional loss with several minima: a global one, two
# shallower local ones, and a bad one. We build such a curve from four Gaussian dips in a
# gentle bowl, then let plain gradient descent start from 60 evenly spaced points and see where
# each one ends. The 60 starting values form one tensor, so one optimizer runs all 60 at once.

# %%
CENTRES, DEPTHS, WIDTHS = [-6.0, -2.5, 1.0, 4.5], [0.5, 1.6, 2.0, 1.7], [0.6, 0.8, 0.9, 0.8]


def wavy_loss(theta):  # (N,) -> (N,): each theta on its own
    dips = sum(
        d * torch.exp(-((theta - c) ** 2) / (2 * w**2)) for c, d, w in zip(CENTRES, DEPTHS, WIDTHS)
    )
    return 0.02 * theta**2 - dips


theta = torch.nn.Parameter(torch.linspace(-8, 8, 60))
optimizer = torch.optim.SGD([theta], lr=0.1)
for _ in range(500):
    optimizer.zero_grad()
    wavy_loss(theta).sum().backward()  # the sum's gradient is each theta's own gradient
    optimizer.step()

# %%
ends = pd.Series(theta.detach().round(decimals=2).numpy()).value_counts().sort_index()
minima = pd.DataFrame(
    {
        "theta": ends.index,
        "starts ending here": ends.values,
        "loss": wavy_loss(torch.tensor(ends.index.values)).numpy().round(3),
    }
)
global_share = minima.loc[minima["loss"].idxmin(), "starts ending here"] / len(theta)
glue("global_share", float(100 * global_share), display=False)
minima

# %% mystnb={"figure": {"caption": "Figure 5.1 redrawn: a one-dimensional loss with four minima, and how many of 60 evenly spaced starts plain gradient descent leads into each.", "name": "fig-pictures-minima"}, "image": {"alt": "A wavy black loss curve over theta from -8 to 8 with four dips. The bad local minimum (red dot, left) is highest; two local minima and the global minimum (green dots) are lower. Each dot is labelled with how many of the 60 starts ended there; the starts spread over all four dips."}}
fig, ax = plt.subplots(figsize=(8, 3.2))
grid = torch.linspace(-8, 8, 400)
ax.plot(grid, wavy_loss(grid), color="k", lw=1.5)
names = {0: "bad local minimum", 1: "local minimum", 2: "global minimum", 3: "local minimum"}
for i, row in minima.iterrows():
    ax.plot(row["theta"], row["loss"], "o", color="tab:red" if i == 0 else "tab:green", ms=8)
    ax.annotate(
        f"{names[i]}\n{int(row['starts ending here'])} of {len(theta)} starts",
        (row["theta"], row["loss"]),
        xytext=(0, -34),
        textcoords="offset points",
        ha="center",
        fontsize=8,
    )
ax.set(
    xlabel="$\\theta$",
    ylabel="loss",
    ylim=(-3.1, 1.5),
    title="Figure 5.1, from code: where gradient descent ends, by starting point",
)
plt.show()

# %% [markdown]
# Only {glue:text}`global_share:.0f`% of the starts end in the global minimum; every other start
# is stopped by whichever dip is nearest downhill, and nothing in the gradient says how good that
# dip is. Descent only ever sees the slope where it stands.

# %% [markdown]
# ## Figure 5.2: ideal, noisy, exploding and vanishing gradients
#
# The chapter's second sketch shows four ways a run of gradient descent can look. Here they are
# with plain SGD, each from the same starting point:
#
# - **ideal**: a round bowl, where every gradient points straight at the minimum;
# - **noisy**: the same bowl, but each gradient has random noise added, as a mini-batch gradient
#   does (standard deviation `NOISE` per coordinate);
# - **exploding**: a bowl that steepens with the cube of the distance, so one step that
#   overshoots lands where the gradient is larger still;
# - **vanishing**: a well in a flat plain, where the slope points the right way but is tiny.

# %%
START = (-3.0, 2.5)
cases = {  # title: (surface, learning rate, noise)
    "ideal": (bowl, 0.1, 0.0),
    "noisy": (bowl, 0.1, NOISE),
    "exploding": (quartic_bowl, 0.15, 0.0),
    "vanishing": (plateau, 0.1, 0.0),
}
four = {
    name: optimizer_path(f, START, lambda ps, lr=lr: torch.optim.SGD(ps, lr=lr), 40, noise=noise)
    for name, (f, lr, noise) in cases.items()
}
steps = [steps_to_reach(p, (0, 0), TOL) for p in four.values()]
distances = [p[-1].norm().item() for p in four.values()]
summary = pd.DataFrame(
    {
        "steps to reach the minimum": ["not reached" if n is None else n for n in steps],
        "distance left after 40 steps": [
            round(d, 3) if math.isfinite(d) else "not finite" for d in distances
        ],
    },
    index=list(four),
)
summary

# %% mystnb={"figure": {"caption": "Figure 5.2 redrawn: 40 steps of plain SGD from the same start on four surfaces, each with its distance from the minimum after 40 steps.", "name": "fig-pictures-four-gradients"}, "image": {"alt": "Four contour maps, green low and red high, each with an SGD path from the hollow circle at the upper left. Ideal: a straight line of shrinking steps into the star at the centre. Noisy: the same direction but wandering, then jittering around the star. Exploding: one long line that leaves the picture on the first step. Vanishing: the path stays at its start on a flat red plain far from the green well."}}
fig, axes = plt.subplots(2, 2, figsize=(9, 7.5), constrained_layout=True)
for ax, (name, path) in zip(axes.flat, four.items()):
    f, lr, noise = cases[name]
    plot_paths(
        f,
        {f"SGD, lr={lr}": path},
        xlim=(-4, 4),
        ylim=(-3.5, 3.5),
        ax=ax,
        title=name,
        minima=[(0, 0)],
    )
    left = summary.loc[name, "distance left after 40 steps"]
    ax.text(
        0.03,
        0.04,
        "after 40 steps: "
        + ("diverged" if left == "not finite" else f"{left:.2f} from the minimum"),
        transform=ax.transAxes,
        fontsize=9,
        bbox=dict(facecolor="white", alpha=0.8, lw=0),
    )
fig.suptitle("Figure 5.2, from code: four kinds of gradients")
plt.show()

# %%
diverged_at = int(torch.isnan(four["exploding"][:, 0]).nonzero()[0])
glue("ideal_steps", int(summary.loc["ideal", "steps to reach the minimum"]), display=False)
glue("noisy_left", float(summary.loc["noisy", "distance left after 40 steps"]), display=False)
glue("exploding_steps", diverged_at, display=False)
glue("vanishing_moved", (four["vanishing"][-1] - four["vanishing"][0]).norm().item(), display=False)
print(
    f"ideal: {summary.loc['ideal', 'steps to reach the minimum']} steps; "
    f"exploding: not a finite number from step {diverged_at} on"
)

# %% [markdown]
# The ideal path reaches the minimum in {glue:text}`ideal_steps` steps in a straight line. The noisy
# one heads the same way but wanders, and once near the minimum it keeps jittering around it,
# because the noise never stops: after 40 steps it is still {glue:text}`noisy_left:.2f` away. The
# exploding one jumps out of the picture on its first step and is no longer a finite number from
# step {glue:text}`exploding_steps` on. The vanishing one, pointed the right way the whole time,
# moved {glue:text}`vanishing_moved:.3f` in 40 steps.

# %% [markdown]
# ## Figures 5.12 and 5.13: momentum in a narrow valley
#
# Figure 5.12 sketches the problem momentum solves: a long, narrow valley. The surface is steep
# across the valley and almost flat along it. A learning rate large enough to make progress
# along the floor is nearly too large for the walls, so plain SGD bounces from wall to wall
# (top-left, bottom-right, and back) and creeps towards the minimum. The velocity of momentum,
# $v^t = \mu \cdot v^{t-1} + g^t$, adds up the gradients: the across-valley parts alternate in
# sign and cancel, the along-valley parts agree and accumulate.

# %%
VALLEY_START, VALLEY_LR = (-4.0, -2.5), 0.09
valley = {
    "SGD": optimizer_path(
        narrow_valley, VALLEY_START, lambda ps: torch.optim.SGD(ps, lr=VALLEY_LR), 300
    ),
    "momentum 0.7": optimizer_path(
        narrow_valley, VALLEY_START, lambda ps: torch.optim.SGD(ps, lr=VALLEY_LR, momentum=0.7), 300
    ),
    f"momentum {MU}": optimizer_path(
        narrow_valley, VALLEY_START, lambda ps: torch.optim.SGD(ps, lr=VALLEY_LR, momentum=MU), 300
    ),
}
valley_steps = {name: steps_to_reach(path, (0, 0), TOL) for name, path in valley.items()}
for name, steps in valley_steps.items():
    glue(
        "valley_" + name.split()[-1].replace(".", ""), steps, display=False
    )  # valley_SGD, valley_07, ...
print("steps to reach the minimum:", ", ".join(f"{n} {k}" for n, k in valley_steps.items()))

# %% mystnb={"figure": {"caption": "Figures 5.12 and 5.13 redrawn: the first 60 steps of plain SGD and of SGD with momentum 0.7 (left) and 0.9 (right) in a long, narrow valley, all at the same learning rate.", "name": "fig-pictures-narrow-valley"}, "image": {"alt": "Two contour maps of a narrow diagonal valley rising from the lower left to a star at the origin. In both, plain SGD (black) zig-zags from wall to wall and creeps along the floor, still far from the star after 60 steps. Momentum 0.7 (blue, left) swings across the valley at first, wider than SGD, in swings that shrink as it runs along the floor to the star; momentum 0.9 (blue, right) swings in wide loops across the valley but reaches the star's neighbourhood."}}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
shown = 60  # the first 60 steps of each path
plot_paths(
    narrow_valley,
    {"SGD": valley["SGD"][:shown], "momentum 0.7": valley["momentum 0.7"][:shown]},
    xlim=(-4.5, 1.5),
    ylim=(-4, 2),
    ax=axes[0],
    minima=[(0, 0)],
    title="SGD and momentum 0.7",
)
plot_paths(
    narrow_valley,
    {"SGD": valley["SGD"][:shown], f"momentum {MU}": valley[f"momentum {MU}"][:shown]},
    xlim=(-4.5, 1.5),
    ylim=(-4, 2),
    ax=axes[1],
    minima=[(0, 0)],
    title=f"SGD and momentum {MU}",
)
fig.suptitle(
    f"Figures 5.12 and 5.13, from code: the first {shown} steps in a narrow valley, lr = {VALLEY_LR}"
)
plt.show()

# %% [markdown]
# With the same learning rate, plain SGD needs {glue:text}`valley_SGD` steps to settle within
# 0.1 of the minimum. With momentum 0.7 the path still crosses the valley at first, in swings
# wider than SGD's, but they shrink as it runs along the floor, and it arrives after
# {glue:text}`valley_07` steps. The chapter's
# $\mu = 0.9$ (right) arrives after {glue:text}`valley_09`, and shows the other side of figure
# 5.13: the oscillation does not disappear, since a velocity that remembers 90% of its past
# also remembers the bounces, but the path still reaches the minimum in far fewer steps than
# SGD. Momentum and learning rate are tuned together; a smaller $\mu$ suits a rate this close
# to the walls' limit.

# %% [markdown]
# ## Figures 5.14 and 5.15: Nesterov turns sooner
#
# Figure 5.14 shows momentum's weakness: after a long straight run it has built up speed, and
# when the valley bends it keeps going and swerves wide of the floor before the gradient, a
# little at a time, turns it. Nesterov momentum first moves with the velocity and only then
# looks at the gradient, at the point where the velocity would take it (figure 5.15). If that
# point is up the wall, the gradient there already pushes back, so the turn starts one step
# earlier. Our valley runs straight along $\theta_2 = 0$ and then bends up steeply.

# %%
BEND_START, BEND_LR = (-5.0, 0.0), 0.1
bend = {
    name: optimizer_path(
        curved_valley,
        BEND_START,
        lambda ps, n=nesterov: torch.optim.SGD(ps, lr=BEND_LR, momentum=MU, nesterov=n),
        150,
    )
    for name, nesterov in [("momentum", False), ("Nesterov", True)]
}
xs = torch.linspace(-6, 4, 4001, dtype=torch.float64)
floor = torch.stack([xs, curved_valley_floor(xs)], dim=1)  # (4001, 2) points on the floor
off_floor = {
    name: torch.cdist(path, floor).min(dim=1).values for name, path in bend.items()
}  # (151,)
bend_table = pd.DataFrame(
    {
        "farthest from the floor": {n: round(d.max().item(), 3) for n, d in off_floor.items()},
        "steps more than 0.1 off the floor": {
            n: int((d > 0.1).sum()) for n, d in off_floor.items()
        },
        "steps to reach the minimum": {
            n: steps_to_reach(p, CURVED_VALLEY_MIN, TOL) for n, p in bend.items()
        },
    }
)
# the prose below reads these: Nesterov stays nearer the floor, momentum settles first
assert bend_table["farthest from the floor"].idxmin() == "Nesterov"
assert bend_table["steps to reach the minimum"].idxmin() == "momentum"
bend_table

# %% mystnb={"figure": {"caption": "Figures 5.14 and 5.15 redrawn: the first 60 steps of momentum and of Nesterov momentum (both 0.9) along a valley that runs straight, then bends up.", "name": "fig-pictures-bend"}, "image": {"alt": "Contour map with a dotted orange valley floor that runs flat along theta_2 = 0 and bends upward after theta_1 = 0. Both paths come along the flat part with evenly spaced dots. At the bend the blue momentum path overshoots far to the right of the floor and loops back across it before settling around the star; the purple Nesterov path stays close to the floor as it turns and climbs to the star."}}
fig, ax = plt.subplots(figsize=(6.5, 5))
plot_paths(
    curved_valley,
    {name: path[:60] for name, path in bend.items()},
    xlim=(-5.5, 2.5),
    ylim=(-1.5, 3.5),
    ax=ax,
    minima=[CURVED_VALLEY_MIN],
    colors=("tab:blue", "tab:purple"),  # momentum blue, as in the narrow valley
    title=f"Figures 5.14 and 5.15, from code: a bend, momentum {MU}, lr = {BEND_LR}",
)
ax.plot(xs, curved_valley_floor(xs), ":", color="tab:orange", lw=1.2, label="valley floor")
ax.legend(fontsize=8)
plt.show()
for column, name in [
    ("steps more than 0.1 off the floor", "off"),
    ("farthest from the floor", "far"),
    ("steps to reach the minimum", "steps"),
]:
    for run_name, value in zip(
        bend_table.index, bend_table[column].tolist()
    ):  # plain Python numbers
        glue(f"bend_{name}_{run_name}", value, display=False)

# %% [markdown]
# Both paths come down the straight part at about the same speed. Plain momentum swings out to
# {glue:text}`bend_far_momentum:.2f` from the floor, loops back across it, and spends
# {glue:text}`bend_off_momentum` steps more than 0.1 away from it. Nesterov swings out only
# {glue:text}`bend_far_Nesterov:.2f` and is off the floor for {glue:text}`bend_off_Nesterov` steps.
# That is the chapter's point, and so is the table's last column: plain momentum does correct itself
# eventually, and on this surface it even settles first (after {glue:text}`bend_steps_momentum`
# steps, Nesterov after {glue:text}`bend_steps_Nesterov`), because the same look-ahead that turns
# Nesterov sooner also brakes it on the way in. Which of the two trains a real network better is a
# question for experiments like those of the gradients page, not for a cartoon.

# %% [markdown]
# ### One step, up close
#
# Figure 5.15 zooms in on the step where it happens. Take plain momentum at the moment it
# reaches the bend, with the velocity it has built. Both rules first let the velocity carry the
# point on ($\mu$ times the last step, grey). Momentum adds the gradient from where the point
# *was*, on the flat floor, which has little to say about the bend. Nesterov adds the gradient
# from where the velocity *took* it, already up the outer wall, which pushes back hard. (PyTorch
# computes the same Nesterov step with the terms rearranged, so that it needs only one gradient
# per step.)

# %%
path = bend["momentum"]
k = int((path[:, 0] > 0).nonzero()[0])  # the first step past the bend
theta, last_step = path[k], path[k] - path[k - 1]


def gradient(point):  # (2,) -> (2,)
    point = point.clone().requires_grad_(True)
    curved_valley(point).backward()
    return point.grad


ahead = theta + MU * last_step  # where the velocity alone carries it
momentum_next = ahead - BEND_LR * gradient(theta)  # + the gradient where it stood
nesterov_next = ahead - BEND_LR * gradient(ahead)  # + the gradient where it is going
assert torch.allclose(momentum_next, path[k + 1])  # the momentum step is the real run's next step
glue("anatomy_step", k, display=False)
glue("anatomy_next", k + 1, display=False)
print(
    f"step {k + 1}: momentum lands at {momentum_next.numpy().round(3)}, "
    f"Nesterov at {nesterov_next.numpy().round(3)}"
)

# %% mystnb={"figure": {"caption": "Figure 5.15 redrawn: one step at the bend. Both rules carry the point on by mu times the last step (grey); momentum then adds the gradient where the point stood (blue), Nesterov the gradient where the velocity took it (purple).", "name": "fig-pictures-nesterov-step"}, "image": {"alt": "Close-up of the bend: the momentum path so far runs along the flat floor to just past the bend. A grey arrow continues straight on. From its tip, a short blue arrow barely changes direction and ends far out on the wall; a longer purple arrow points back up-left towards the dotted valley floor."}}
fig, ax = plt.subplots(figsize=(6, 4.5))
plot_paths(
    curved_valley,
    {"momentum, so far": path[: k + 1]},
    xlim=(-0.8, 1.4),
    ylim=(-0.4, 1.2),
    ax=ax,
    colors=("tab:blue",),
)
ax.plot(xs, curved_valley_floor(xs), ":", color="tab:orange", lw=1.2, label="valley floor")
arrow = dict(angles="xy", scale_units="xy", scale=1, width=0.007)
ax.quiver(*theta, *(ahead - theta), color="grey", label="$\\mu$ times the last step", **arrow)
ax.quiver(
    *ahead, *(momentum_next - ahead), color="tab:blue", label="gradient where it stood", **arrow
)
ax.quiver(
    *ahead,
    *(nesterov_next - ahead),
    color="tab:purple",
    label="gradient where it is going",
    **arrow,
)
ax.plot(*momentum_next, "o", color="tab:blue", ms=7)
ax.plot(*nesterov_next, "o", color="tab:purple", ms=7)
ax.set_title(f"Figure 5.15, from code: step {k + 1}, momentum and Nesterov")
ax.legend(fontsize=8, loc="upper left")
plt.show()

# %% [markdown]
# After step {glue:text}`anatomy_step` plain momentum is just past the bend and moving fast along
# the old direction. For step {glue:text}`anatomy_next` its gradient, taken on the flat floor,
# barely bends the step (the short blue arrow), so it lands far out on the wall. The gradient at
# the look-ahead point, taken on the wall, turns the step back toward the floor (purple): the turn
# begins one step sooner.

# %% [markdown]
# ## Exploding gradients, tamed by clipping
#
# Back to the exploding panel of figure 5.2. Clipping the gradient's norm at $z$ (the chapter's
# picture uses $z = 5$; the network of the gradients page clips at $z = 1$: the threshold is set
# against the size of the gradients of the problem at hand) does not change its direction, only caps its length, so no step can be longer
# than $\eta \cdot z$. Far out, where the gradient is huge, the path walks in at that fixed
# stride; close in, where the gradient is small, clipping does nothing and SGD finishes as usual.

# %%
wild = four["exploding"]
tamed = optimizer_path(
    quartic_bowl, START, lambda ps: torch.optim.SGD(ps, lr=0.15), 40, clip=CLIP_Z
)
step_lengths = tamed.diff(dim=0).norm(dim=1)  # (40,)
glue("clip_longest", step_lengths.max().item(), display=False)
glue("clip_cap", 0.15 * CLIP_Z, display=False)
glue("clip_left", tamed[-1].norm().item(), display=False)
print(
    f"longest clipped step {step_lengths.max():.3f} (cap {0.15 * CLIP_Z:.3f}); "
    f"{tamed[-1].norm():.3f} from the minimum after 40 steps"
)

# %% mystnb={"figure": {"caption": "The exploding gradient of figure 5.2 with and without clipping the gradient norm at z = 5, same learning rate and start.", "name": "fig-pictures-clipping"}, "image": {"alt": "Contour map of an oval bowl with a star at the centre. The unclipped SGD path (black) is a straight line that leaves the picture on its first step. The clipped path (blue) walks from the start towards the centre in short, equal steps and ends just short of the star."}}
fig, ax = plt.subplots(figsize=(5.5, 4.5))
plot_paths(
    quartic_bowl,
    {"SGD, lr=0.15": wild, f"SGD, lr=0.15, clip z={CLIP_Z:g}": tamed},
    xlim=(-4, 4),
    ylim=(-3.5, 3.5),
    ax=ax,
    minima=[(0, 0)],
    title="The exploding gradient of figure 5.2, clipped",
)
plt.show()

# %% [markdown]
# Unclipped, the first step already leaves the picture. Clipped, the longest step is
# {glue:text}`clip_longest:.2f` long, the cap $\eta z$ itself: the first steps point the same way
# as the unclipped one but stop at the cap, and after 40 steps the path
# is {glue:text}`clip_left:.2f` from the minimum. The same learning rate, the same surface: only
# the size of the worst steps changed. (Close in, this surface is very flat, so the last stretch
# is slow: the vanishing gradient again.)

# %% [markdown]
# ## Figures 5.8 and 5.9: a cosine schedule escapes a bad minimum
#
# Figure 5.8 shows a run that slides into a poor, narrow minimum on its way to a better, wide
# one, and stays: once the learning rate is small, nothing pulls it out. Figure 5.9 shows the
# cure the chapter gives cosine annealing: raise the learning rate again. A narrow minimum is
# steep-sided, and a step size that suits a wide minimum is too large for a narrow one, so at a
# high rate the run cannot stay in it. `CosineAnnealingLR` does that by itself: the rate falls to
# `eta_min` over `T_max` steps, then rises back over the next `T_max`, then falls again. We
# compare it with a small constant rate, stepping the schedule once per update (an update plays
# the part of an epoch here). The floor is the book's $\eta_{min} = \eta_0 / 100$: never 0,
# since a step at a rate of 0 moves nothing, and 100 times below the start, the far end of the
# chapter's rule of 10 to 100 times. The run lasts three half-periods, so it ends on its second
# dip, and a whole `T_max` fits it exactly.

# %%
TRAP_START, T_MAX, TRAP_STEPS = (-3.0, 2.0), 40, 120
TRAP_LR = 0.5  # the top of the cosine schedule
TRAP_MIN = eta_min_for(TRAP_LR)  # its floor, the book's eta_0 / 100
COSINE = f"cosine, lr {TRAP_LR} to {TRAP_MIN:g}"
assert TRAP_STEPS % (2 * T_MAX) == T_MAX  # three half-periods: it ends on a dip


def cosine(opt):
    return CosineAnnealingLR(opt, T_max=T_MAX, eta_min=TRAP_MIN)


trap = {
    "constant lr=0.1": optimizer_path(
        two_minima, TRAP_START, lambda ps: torch.optim.SGD(ps, lr=0.1), TRAP_STEPS
    ),
    COSINE: optimizer_path(
        two_minima,
        TRAP_START,
        lambda ps: torch.optim.SGD(ps, lr=TRAP_LR),
        TRAP_STEPS,
        make_schedule=cosine,
    ),
}
losses = pd.DataFrame({name: two_minima(path).numpy() for name, path in trap.items()})  # (121, 2)
final = losses.iloc[-1].round(3)
glue("trap_constant", float(final.iloc[0]), display=False)
glue("trap_cosine", float(final.iloc[1]), display=False)
final.rename_axis("run").to_frame(f"loss after {TRAP_STEPS} steps")

# %%
lrs = schedule_lrs(cosine, TRAP_STEPS + 1, TRAP_LR)
bad = torch.tensor(TWO_MINIMA_BAD, dtype=torch.float64)
in_bad = (trap[COSINE] - bad).norm(dim=1) < TOL  # (121,)
assert in_bad[: T_MAX + 1].any() and (trap["constant lr=0.1"][-1] - bad).norm() < TOL
escape = int(in_bad.nonzero()[-1]) + 1  # the first step outside the bad minimum, for good
glue("escape_step", escape, display=False)
glue("escape_lr", lrs[escape - 1], display=False)
large = optimizer_path(
    two_minima, TRAP_START, lambda ps: torch.optim.SGD(ps, lr=TRAP_LR), TRAP_STEPS
)
glue("large_steps", steps_to_reach(large, TWO_MINIMA_GOOD, TOL), display=False)
print(f"leaves the narrow minimum for good at step {escape}, learning rate {lrs[escape - 1]:.3f}")

# %% mystnb={"figure": {"caption": "Figures 5.8 and 5.9 redrawn: a small constant rate and a cosine schedule on a surface with a narrow, shallow minimum on the way to a wide, deep one. Left: the paths; right: the loss per step, with the cosine learning rate on the right axis.", "name": "fig-pictures-cosine-escape"}, "image": {"alt": "Left: contour map with two stars, a narrow shallow minimum at the upper left and a wide deep one at the lower right. Both paths run from the upper-left start into the narrow minimum; the black constant-rate path stays there, the blue cosine path leaves it and ends in the wide minimum. Right: loss against step. Both losses fall to the narrow minimum's level; the black one stays there. The blue one stays there while the dotted grey learning rate falls and climbs again, jumps up near the top of the climb (grey vertical line), then drops to the wide minimum's lower loss as the rate falls again."}}
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
plot_paths(
    two_minima,
    trap,
    xlim=(-3.5, 4),
    ylim=(-3, 2.5),
    ax=axes[0],
    colors=("black", "tab:blue"),
    minima=[TWO_MINIMA_BAD, TWO_MINIMA_GOOD],
    title="the paths",
)
losses.plot(ax=axes[1], color=["black", "tab:blue"], legend=False)
axes[1].set(
    xlabel="step", ylabel="loss", title="loss (left axis) and the cosine learning rate (right)"
)
axes[1].axvline(escape, color="grey", lw=0.8, label="leaves the narrow minimum")
twin = axes[1].twinx()
twin.plot(lrs, color="grey", ls=":", label="cosine learning rate")
twin.set(ylabel="learning rate")
twin.grid(False)
handles = axes[1].get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
axes[1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
fig.suptitle("Figures 5.8 and 5.9, from code: a narrow minimum on the way to a wide one")
plt.show()

# %% [markdown]
# Both runs first fall into the narrow minimum. The constant rate stays there, ending at a loss
# of {glue:text}`trap_constant:.3f`. The cosine run settles there too while its rate is small,
# but as the rate climbs back it is thrown out (it leaves for good at step
# {glue:text}`escape_step`, the grey line, at a rate of {glue:text}`escape_lr:.2f`), crosses to
# the wide minimum, and, as the rate falls again, settles at a loss of
# {glue:text}`trap_cosine:.3f`.
#
# Why not simply keep the rate large? On this smooth surface a constant rate of 0.5 also finds
# the wide minimum (it stays within 0.1 of it from step {glue:text}`large_steps` on). But real
# gradients are noisy, and a large rate keeps every noisy step large, so the run never settles
# (figure 5.5 of the chapter). Add noise to every gradient, as in figure 5.2, and compare where
# three runs end, each repeated with {glue:text}`noise_seeds` noise seeds:

# %%
TRAP_NOISE = 0.5  # standard deviation of the noise added to each gradient coordinate
NOISE_SEEDS = range(10)  # one noisy path per seed
noisy_runs = {
    "constant lr=0.1": (0.1, None),
    "constant lr=0.5": (TRAP_LR, None),
    COSINE: (TRAP_LR, cosine),
}
good = torch.tensor(TWO_MINIMA_GOOD, dtype=torch.float64)
rows = []
for name, (lr, schedule) in noisy_runs.items():
    for seed in NOISE_SEEDS:
        end = optimizer_path(
            two_minima,
            TRAP_START,
            lambda ps, lr=lr: torch.optim.SGD(ps, lr=lr),
            TRAP_STEPS,
            noise=TRAP_NOISE,
            seed=seed,
            make_schedule=schedule,
        )[-1]
        rows.append(
            {"run": name, "seed": seed, "epoch": TRAP_STEPS, "distance": (end - good).norm().item()}
        )
noisy = final_scores(pd.DataFrame(rows), "distance")  # mean and 95% interval over the seeds
glue("noise_seeds", len(NOISE_SEEDS), display=False)
# rounded: the last digits of a float64 sum differ between processors, and the text shows three
for key, name in zip(["noisy_small", "noisy_large", "noisy_cosine"], noisy_runs):
    glue(key, round(noisy.loc[name, "mean"], 6), display=False)
    glue(key + "_hw", round(noisy.loc[name, "half_width"], 6), display=False)
closer = compare(pd.DataFrame(rows), COSINE, "constant lr=0.5", "distance", scale=1, unit="units")
glue("noisy_compare", closer.sentence(), display=False)
noisy[["seeds", "mean", "half_width"]].rename(
    columns={"mean": "mean distance from the wide minimum", "half_width": "± (95% interval)"}
).round(3)

# %% [markdown]
# The small constant rate is still stuck in the narrow minimum,
# {glue:text}`noisy_small:.2f` ± {glue:text}`noisy_small_hw:.2f` away. The large constant rate
# reaches the wide one but keeps bouncing around it and ends {glue:text}`noisy_large:.2f` ±
# {glue:text}`noisy_large_hw:.2f` away. The cosine run ends {glue:text}`noisy_cosine:.2f` ±
# {glue:text}`noisy_cosine_hw:.2f` away: large steps while its rate is high, to explore; small
# steps once it falls, to settle. In distance from the wide minimum at the end (smaller is
# closer), {glue:text}`noisy_compare`.

# %% [markdown]
# The same run as an animation: watch the point sit in the narrow minimum while the rate climbs,
# and leave it near the top of the climb.


# %%
def escape_animation(path, lrs, frames):
    """An animation of `path` on `two_minima` beside the learning rate, one frame per step in `frames`."""
    fig, (ax, ax_lr) = plt.subplots(
        1, 2, figsize=(8, 3.2), dpi=70, width_ratios=[1.2, 1], constrained_layout=True
    )
    plot_paths(
        two_minima,
        {},
        xlim=(-3.5, 4),
        ylim=(-3, 2.5),
        ax=ax,
        minima=[TWO_MINIMA_BAD, TWO_MINIMA_GOOD],
    )
    ax_lr.plot(lrs, color="grey", ls=":")
    ax_lr.set(xlabel="step", ylabel="learning rate", title="cosine schedule")
    (trail,) = ax.plot([], [], "-", color="tab:blue", lw=1)
    (dot,) = ax.plot([], [], "o", color="tab:blue", mec="k", ms=7)
    (now,) = ax_lr.plot([], [], "o", color="tab:blue", mec="k", ms=7)

    def draw_frame(t):
        trail.set_data(path[: t + 1, 0], path[: t + 1, 1])
        dot.set_data([path[t, 0]], [path[t, 1]])
        now.set_data([t], [lrs[t]])
        ax.set_title(f"step {t}")

    fig.canvas.draw()
    fig.set_layout_engine(None)  # keep this layout: re-planning it for every frame is the slow part
    return fig, FuncAnimation(fig, draw_frame, frames=frames)


# %% mystnb={"figure": {"caption": "Animation of the cosine run of figures 5.8 and 5.9: the point on the surface (left) and the learning rate at that step (right), one frame every three steps.", "name": "fig-pictures-escape-animation"}, "image": {"alt": "Animated GIF. Left: the blue point moves from the upper-left start into the narrow minimum and sits there while the learning rate on the right falls and climbs again; near the top of the climb it is thrown out, crosses to the wide minimum at the lower right and settles there as the rate falls."}} tags=["nbval-ignore-output"]
fig, animation = escape_animation(trap[COSINE], lrs, frames=range(0, TRAP_STEPS + 1, 3))
with tempfile.TemporaryDirectory() as folder:
    gif = Path(folder) / "cosine_escape.gif"
    animation.save(gif, writer=PillowWriter(fps=8))
    gif_bytes = gif.read_bytes()
plt.close(fig)
Image(data=gif_bytes)

# %% [markdown]
# ## The update rules from scratch, on the same surfaces
#
# `idlmam.optim` has SGD (with momentum, Nesterov and weight decay), Adam and AdamW written out
# in a few lines each, as the chapter writes the equations, with PyTorch's conventions (the
# velocity is $v^t = \mu v^{t-1} + g^t$ and the step $\eta v^t$, so a schedule can change
# $\eta$ without rescaling the velocity). They are `torch.optim.Optimizer` subclasses, so they
# plug into `optimizer_path`, `train_network` and every scheduler.
#
# :::{dropdown} The source of `idlmam.optim.SGD` and `idlmam.optim.Adam`
# ```{literalinclude} ../idlmam/optim/scratch.py
# :pyobject: SGD
# :language: python
# ```
# ```{literalinclude} ../idlmam/optim/scratch.py
# :pyobject: Adam
# :language: python
# ```
# :::
#
# If they are right, they must trace the very same paths as `torch.optim`:

# %%
rules = {
    "SGD": ("SGD", dict(lr=0.1)),
    "momentum": ("SGD", dict(lr=0.1, momentum=MU)),
    "Nesterov": ("SGD", dict(lr=0.1, momentum=MU, nesterov=True)),
    "Adam": ("Adam", dict(lr=0.1)),
    "AdamW": ("AdamW", dict(lr=0.1, weight_decay=0.1)),
}
rows = {}
for label, (name, kwargs) in rules.items():
    paths = [
        optimizer_path(curved_valley, BEND_START, partial(getattr(module, name), **kwargs), 150)
        for module in (torch.optim, scratch)
    ]
    rows[label] = {
        "steps (torch.optim)": steps_to_reach(paths[0], CURVED_VALLEY_MIN, TOL),
        "steps (from scratch)": steps_to_reach(paths[1], CURVED_VALLEY_MIN, TOL),
        "same path (within 1e-10)": torch.allclose(*paths, atol=1e-10, rtol=0),
    }
pd.DataFrame(rows).T.map(lambda v: "not reached" if pd.isna(v) else v)

# %% [markdown]
# The last column says whether each from-scratch rule follows its `torch.optim` namesake step for
# step ("not reached" means the run had not settled within 0.1 of the minimum after 150 steps;
# AdamW's weight decay pulls the point back towards the origin at every step). The tests in `tests/optim/test_scratch.py` check the same thing on a small network,
# parameter for parameter, with and without learning-rate schedules.
#
# ## What we did
#
# - Drew each of the chapter's hand-drawn figures from code, with real PyTorch optimizers,
#   schedulers and clipping moving two parameters over surfaces built for one lesson each.
# - Figure 5.1: descent ends in whichever minimum is nearest downhill.
# - Figure 5.2: ideal, noisy, exploding and vanishing gradients; then clipping, which caps the
#   length of each step and tames the explosion.
# - Figures 5.12 and 5.13: in a narrow valley, momentum reaches the minimum in fewer steps
#   than SGD, its swings across the valley shrinking (0.7) or lasting (0.9).
# - Figures 5.14 and 5.15: at a bend, Nesterov momentum turns sooner than plain momentum,
#   because its gradient is taken where the velocity is about to carry it.
# - Figures 5.8 and 5.9: a cosine schedule that raises the rate again escapes a narrow minimum
#   that holds a small constant rate (and watched it happen, in an animation).
# - Checked that SGD, Adam and AdamW written from the chapter's equations trace the same paths
#   as `torch.optim`.
