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
# # Preconditioners, from scratch: Shampoo, SOAP and where Muon comes from
#
# Every optimizer in this book moves the weights by $-\eta P g$: the gradient $g$, turned by a
# matrix $P$, the *preconditioner*, and scaled by the rate $\eta$. Plain SGD takes $P = I$.
# AdaGrad and Adam take a diagonal $P$, one number per weight. Newton's method would take the
# inverse of the curvature, which no network can afford. The optimizer that won the external
# tuning track of AlgoPerf's first round, Distributed Shampoo, sits in between: a preconditioner
# with one small matrix per side of each weight matrix. SOAP runs Adam in the coordinates
# Shampoo's matrices find; Muon, on the optimizers page, turns out to be Shampoo without its
# memory.
#
# This page builds the idea up on two-dimensional surfaces first, where every path can be drawn,
# then writes Shampoo and SOAP in a few dozen lines each (in `idlmam.optim`, tested against an
# independent implementation), and measures what a step costs. How they train the network,
# against the other optimizers and under the same fair protocol, is on the
# [optimizers page](03c_optimizers_since.ipynb).

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

from idlmam.experiments.race import step_costs
from idlmam.landscapes import narrow_valley, optimizer_path, plot_paths, steps_to_reach
from idlmam.models import mlp
from idlmam.notebook import budget_banner, glue, setup
from idlmam.optim import SOAP, MuonWithAdamW, Shampoo, muon_param_groups
from idlmam.plotting import run_colours
from idlmam.text import plural, times_ten

setup(threads=1)  # one CPU thread: the timings below are per thread
budget_banner(
    trains="no network on data, only small test problems (two-parameter valleys, an 8 x 6 "
    "least-squares problem) and timed steps, whose seconds depend on the machine and its load, "
    "not on the budget"
)

# %%
START = (-2.0, -1.0)  # where every path on the diagonal valley starts
STEPS = 100  # steps per path
TOL = 0.05  # "reached" the minimum: stayed within this distance of it from then on
RATES = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]  # each optimizer's rate is the best of these
COLOURS = run_colours(  # the book's colour for SGD, Shampoo, SOAP and Muon; the others spare ones
    [
        "SGD",
        "AdaGrad (diagonal)",
        "Adam (diagonal)",
        "AdaGrad (full matrix)",
        "Shampoo",
        "SOAP",
        "Muon",
    ]
)

# %% [markdown]
# ## A diagonal preconditioner sees only the axes
#
# Take the narrow valley of the [pictures page](05_pictures.ipynb): a quadratic whose curvature
# is 100 times larger across the valley than along it, with the valley running diagonally. Beside
# it, the same valley turned so that it runs along the first axis, with the starting point
# turned with it, so that the two are one problem written in two sets of coordinates:
#
# $$f_\text{aligned}(\theta) = \tfrac{1}{2}\left(0.2\,\theta_1^2 + 20\,\theta_2^2\right)$$


# %%
def aligned_valley(p, a=0.2, b=20.0):
    """narrow_valley turned by 45 degrees: the floor runs along theta_1."""
    return 0.5 * (a * p[..., 0] ** 2 + b * p[..., 1] ** 2)


def turned(point):
    """A point of narrow_valley in aligned_valley's coordinates (along, across the floor)."""
    x, y = point
    return ((x + y) / math.sqrt(2), (y - x) / math.sqrt(2))


STARTS = {"aligned valley": turned(START), "diagonal valley": START}


# %% [markdown]
# AdaGrad {cite:p}`duchi2011adaptive` divides each coordinate of the gradient by the root of
# the sum of its past squares. That is a diagonal $P$: on the aligned valley it shrinks the steep
# coordinate and stretches the flat one, exactly what the valley needs. On the diagonal valley
# every gradient has both coordinates large, so the diagonal cannot tell the steep direction from
# the flat one.
#
# *Full-matrix* AdaGrad keeps the sum of the outer products of the gradients instead,
# $H_t = \sum_{s \le t} g_s g_s^\top$, and steps by $-\eta\, H_t^{-1/2} g_t$. Turning the
# surface turns $H_t$ with it, so the path is the same in any coordinates. The whole optimizer,
# with the inverse root from an eigendecomposition:


# %%
class FullMatrixAdaGrad(torch.optim.Optimizer):
    """AdaGrad with the whole matrix of gradient outer products: theta -= lr * H^(-1/2) g."""

    def __init__(self, params, lr=0.1, eps=1e-8):
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad.reshape(-1)
                state = self.state[p]
                if not state:
                    state["H"] = torch.zeros(g.numel(), g.numel(), dtype=g.dtype)
                state["H"] += torch.outer(g, g)
                values, vectors = torch.linalg.eigh(state["H"])  # H = V diag(values) V^T
                inverse_root = vectors @ torch.diag((values + group["eps"]) ** -0.5) @ vectors.T
                p -= group["lr"] * (inverse_root @ g).reshape(p.shape)


# %% [markdown]
# Four optimizers on both valleys, each at the best of {glue:text}`n_rates` from
# {glue:text}`rate_low:g` to {glue:text}`rate_high:g` (the fewest steps to stay within
# {glue:text}`tol` of the minimum, or the closest after {glue:text}`steps` steps):

# %%
glue("tol", TOL, display=False)
glue("steps", STEPS, display=False)
glue("n_rates", plural(len(RATES), "rate"), display=False)
glue("rate_low", min(RATES), display=False)
glue("rate_high", max(RATES), display=False)
OPTIMIZERS = {
    "SGD": torch.optim.SGD,
    "AdaGrad (diagonal)": torch.optim.Adagrad,
    "Adam (diagonal)": torch.optim.Adam,
    "AdaGrad (full matrix)": FullMatrixAdaGrad,
}
SURFACES = {"aligned valley": aligned_valley, "diagonal valley": narrow_valley}


def best_path(surface, start, optimizer):
    """The path at the rate that reaches the minimum soonest (or ends closest to it)."""
    paths = [
        optimizer_path(surface, start, lambda ps, lr=lr: optimizer(ps, lr=lr), STEPS)
        for lr in RATES
    ]

    def score(path):
        reached = steps_to_reach(path, (0.0, 0.0), TOL)
        distance = torch.nan_to_num(path[-1].norm(), nan=math.inf).item()  # NaN: diverged
        return (0, reached) if reached is not None else (1, distance)

    best = min(range(len(RATES)), key=lambda i: score(paths[i]))
    return RATES[best], paths[best]


best = {
    (where, name): best_path(surface, STARTS[where], optimizer)
    for where, surface in SURFACES.items()
    for name, optimizer in OPTIMIZERS.items()
}
reached = {key: steps_to_reach(path, (0.0, 0.0), TOL) for key, (_, path) in best.items()}


def cell(key):
    """One entry of the table: the steps to the minimum, at which rate."""
    rate, steps = best[key][0], reached[key]
    if steps is None:
        return f"not reached (rate {rate:g})"
    return f"{steps} steps at rate {rate:g}"


pd.DataFrame({where: {name: cell((where, name)) for name in OPTIMIZERS} for where in SURFACES})

# %% [markdown]
# "Not reached" means not within {glue:text}`tol` after {glue:text}`steps` steps at any of the
# rates; the rate shown is then the one that ended closest. The paths, and what turning the valley
# did to each optimizer:


# %%
SHORT = {  # the names in a sentence
    "SGD": "SGD",
    "AdaGrad (diagonal)": "diagonal AdaGrad",
    "Adam (diagonal)": "Adam",
    "AdaGrad (full matrix)": "full-matrix AdaGrad",
}


def turning(name):
    """What turning the valley did to ``name``'s steps to the minimum, in a few words."""
    a, d = reached["aligned valley", name], reached["diagonal valley", name]
    if a is None:
        return f"{SHORT[name]} reaches neither" if d is None else f"helps {SHORT[name]}"
    if d is None:
        return f"stops {SHORT[name]}"
    if a == d:
        return f"leaves {SHORT[name]} unchanged ({d} steps)"
    return f"{'slows' if d > a else 'speeds up'} {SHORT[name]} ({a} to {d} steps)"


# %% mystnb={"figure": {"caption": "The four optimizers of the table on the two valleys, each at its best rate, one panel each. Top row: the valley runs along the first axis; bottom row: the same valley turned by 45 degrees. Every path starts at the hollow circle; the gold star is the minimum. SGD's path, which crosses the valley at every step, is a thin line with a dot every few steps (its legend says how many). Each panel's title gives the steps the path took to stay within the tolerance of the minimum, or says it did not within the steps allowed; the figure's title says what turning the valley did to each preconditioner.", "name": "fig-precond-valleys"}, "image": {"alt": "Eight small contour maps in two rows of four, one column per optimizer: SGD, diagonal AdaGrad, Adam and full-matrix AdaGrad. Top row, a horizontal valley; bottom row, the same valley running diagonally. Each panel shows one path from a hollow circle at the left towards a gold star at the origin. SGD's path, a thin line, zigzags from wall to wall so densely that it fills a band, with dots every few steps along one wall creeping ever more slowly towards the star, which it does not reach on either valley. Diagonal AdaGrad reaches the star in a few steps on the horizontal valley, but on the diagonal one runs along a straight line and stops short of it. Adam reaches the star on both, with a wavy path along the diagonal floor. Full-matrix AdaGrad reaches it in a few steps on both, its path the same up to the turn."}}
EVERY = 10  # SGD's path: a dot every EVERY steps
fig, axes = plt.subplots(2, 4, figsize=(12, 6), sharex=True, sharey=True)
for row, (where, surface) in zip(axes, SURFACES.items()):
    for ax, name in zip(row, OPTIMIZERS):
        rate, path = best[where, name]
        steps = reached[where, name]
        plot_paths(
            surface,
            {f"rate {rate:g}": path},
            xlim=(-2.5, 1.0),
            ylim=(-2.0, 1.5),
            ax=ax,
            title=f"{name}\n{where}: " + ("not reached" if steps is None else f"{steps} steps"),
            colors=(COLOURS[name],),
            markersize=2,
            minima=[(0.0, 0.0)],
        )
        if name == "SGD":  # a zigzag from wall to wall at every step (see below): drawn thin,
            ax.lines[0].set(lw=0.4, marker="")  # with a dot every EVERY steps to show the creep
            dots = path.detach()[::EVERY].numpy()
            ax.plot(*dots.T, "o", color=COLOURS[name], ms=4, mec="k", mew=0.5)
            labels = [f"rate {rate:g}", f"a dot every {EVERY} steps"]
            ax.legend([ax.lines[0], ax.lines[-1]], labels, fontsize=8, framealpha=0.8)
        ax.title.set_fontsize(9)
        ax.label_outer()  # axis labels on the outer panels only
turned = [turning(name) for name in OPTIMIZERS if name != "SGD"]  # SGD: in the sentence after
fig.suptitle(f"Turning the valley {', '.join(turned[:-1])} and {turned[-1]}")
fig.tight_layout()
plt.show()


# %%
def in_steps(steps):
    return "not at all" if steps is None else f"in {steps} steps"


def on_both(name):
    """Where ``name`` reaches the minimum, in the words that follow "reaches the minimum"."""
    a, d = (reached[where, name] for where in SURFACES)
    if a is None and d is None:
        return "on neither valley"
    if a == d:
        return f"{in_steps(a)} on both valleys"
    return f"{in_steps(a)} on the aligned valley and {in_steps(d)} on the diagonal one"


for short, name in zip(("sgd", "diag", "adam", "full"), OPTIMIZERS):
    glue(f"{short}_reaches", on_both(name), display=False)
glue("diag_turned", turning("AdaGrad (diagonal)"), display=False)
glue("adam_turned", turning("Adam (diagonal)"), display=False)

# SGD's zigzag: on a quadratic, a step multiplies the distance along a direction of curvature h
# by 1 - rate * h. The valleys' curvatures: along the floor and across it
ALONG, ACROSS = aligned_valley.__defaults__  # narrow_valley's too, turned
sgd_rate = best["aligned valley", "SGD"][0]
assert sgd_rate == best["diagonal valley", "SGD"][0]  # one rate on both: the sentence says so
across = 1 - sgd_rate * ACROSS  # what a step does to the distance across the valley
if math.isclose(across, -1):
    jumps = "to the same distance on the other side of the floor, step after step"
elif across < -1:
    jumps = "further out on the other side of the floor at every step"
elif across < 0:
    jumps = "to the other side of the floor, a little closer at every step"
else:
    jumps = "towards the floor without crossing it"
glue("sgd_rate", sgd_rate, display=False)
glue("across", ACROSS, display=False)
glue("along", ALONG, display=False)
glue("sgd_edge", 2 / ACROSS, display=False)
if math.isclose(sgd_rate, 2 / ACROSS):
    edge_is = "exactly on that edge"
else:
    edge_is = "below that edge" if sgd_rate < 2 / ACROSS else "past that edge"
glue("sgd_edge_is", edge_is, display=False)
glue("sgd_across", across, display=False)
glue("sgd_jumps", jumps, display=False)
glue("sgd_along", sgd_rate * ALONG, display=False)
glue("sgd_left", (1 - sgd_rate * ALONG) ** STEPS, display=False)

# %% [markdown]
# Within {glue:text}`steps` steps, each at its best rate, diagonal AdaGrad reaches the minimum
# {glue:text}`diag_reaches`, and Adam, whose preconditioner is diagonal too, reaches it
# {glue:text}`adam_reaches`. Full-matrix AdaGrad reaches it {glue:text}`full_reaches`: its
# preconditioner turns with the surface, so it does not care which way the valley runs. Nor
# does plain SGD, whose $P = I$ is the same in any coordinates, but it has nothing to undo the
# valley's shape with, and reaches the minimum {glue:text}`sgd_reaches`. Its path fills a band
# in its panels because it crosses the valley at every step. On a quadratic, a step of gradient
# descent multiplies the distance along a direction of curvature $h$ by $1 - \eta h$: the path
# overshoots and zigzags once $\eta > 1/h$, and the zigzag grows once $\eta > 2/h$, the edge of
# stability. Across these valleys $h$ = {glue:text}`across:g`, so the edge is $2/h$ =
# {glue:text}`sgd_edge:g`, and SGD's best rate, {glue:text}`sgd_rate:g`, is
# {glue:text}`sgd_edge_is`: each step multiplies the distance across by
# {glue:text}`sgd_across:g`, throwing the path {glue:text}`sgd_jumps`. Along the floor, where
# $h$ = {glue:text}`along:g`, each step removes only {glue:text}`sgd_along:.0%` of the distance
# left, so after {glue:text}`steps` steps {glue:text}`sgd_left:.0%` of it remains (the dots, one
# every few steps, show that creep). A smaller rate would calm the zigzag but creep slower still;
# a larger one would make the zigzag grow. A diagonal
# preconditioner is only as good as the coordinates it is given: here the turn
# {glue:text}`diag_turned` and {glue:text}`adam_turned`. A network's coordinates, one per
# weight, have no reason to line up with its valleys.
#
# ## A full matrix does not fit
#
# For a weight matrix of $m \times n$ weights, full-matrix AdaGrad keeps a matrix of
# $(mn)^2$ numbers and decomposes it on every step. For the chapter's network:

# %%
shapes = [tuple(p.shape) for p in mlp().parameters() if p.ndim == 2]  # (out, in) of each layer
sizes = pd.DataFrame(
    {
        "weights": [m * n for m, n in shapes],
        "full matrix": [(m * n) ** 2 for m, n in shapes],
        "Shampoo: L and R": [m * m + n * n for m, n in shapes],
    },
    index=[f"{n} → {m}" for m, n in shapes],
)
sizes.loc["all four"] = sizes.sum()
full_gb = 4 * sizes.loc["all four", "full matrix"] / 1e9  # float32: 4 bytes a number
shampoo_mb = 4 * sizes.loc["all four", "Shampoo: L and R"] / 1e6
glue("full_gb", f"{full_gb:,.0f} GB", display=False)
glue("shampoo_mb", f"{shampoo_mb:.1f} MB", display=False)
glue("net_mb", f"{4 * sum(p.numel() for p in mlp().parameters()) / 1e6:.1f} MB", display=False)
sizes.map(lambda n: f"{n:,}")

# %% [markdown]
# The full matrices of the four layers would hold {glue:text}`full_gb` of numbers in single
# precision, for a network whose own weights and biases fit in {glue:text}`net_mb`. Shampoo
# {cite:p}`gupta2018shampoo` keeps one matrix per *side* of each weight matrix instead: for a
# gradient $G_t$ of shape $m \times n$,
#
# $$L_t = \sum_{s \le t} G_s G_s^\top \quad (m \times m), \qquad
#   R_t = \sum_{s \le t} G_s^\top G_s \quad (n \times n), \qquad
#   W_{t+1} = W_t - \eta\, L_t^{-1/4}\, G_t\, R_t^{-1/4}.$$
#
# For the whole network, the $L$ and $R$ of its four weight matrices hold
# {glue:text}`shampoo_mb`. $L$ gathers how the rows of the gradient vary together, $R$ how its
# columns do. {cite:t}`gupta2018shampoo` show that, for gradients of rank at
# most $r$, the Kronecker product $L_t^{1/2} \otimes R_t^{1/2}$ is an upper bound of
# $\tfrac{1}{r} H_t$, the sum full-matrix AdaGrad keeps for the flattened weights. Full-matrix
# AdaGrad steps by $H_t^{-1/2}$; Shampoo by
# $(L_t^{1/2} \otimes R_t^{1/2})^{-1/2} = L_t^{-1/4} \otimes R_t^{-1/4}$, which, applied to the
# flattened gradient, is $L_t^{-1/4} G_t R_t^{-1/4}$ on the matrix: hence the quarter powers.

# %% [markdown]
# ## Shampoo in a dozen lines
#
# Back to Shampoo, written as its paper's first algorithm states it for a matrix: both
# matrices start at $\epsilon I$, each step adds the new gradient's products, and the step is
# $L^{-1/4} G R^{-1/4}$, with the inverse roots from eigendecompositions:


# %%
def matrix_power(m, power):
    """m ** power for a symmetric positive definite m, through its eigendecomposition."""
    values, vectors = torch.linalg.eigh(m)
    return vectors @ torch.diag(values**power) @ vectors.T


class PlainShampoo(torch.optim.Optimizer):
    """Shampoo for weight matrices, as in its paper: W -= lr * L^(-1/4) G R^(-1/4)."""

    def __init__(self, params, lr=0.1, eps=1e-6):
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for w in group["params"]:
                g, state = w.grad, self.state[w]
                if not state:  # L_0 = eps I (m x m), R_0 = eps I (n x n)
                    state["L"] = group["eps"] * torch.eye(g.shape[0], dtype=g.dtype)
                    state["R"] = group["eps"] * torch.eye(g.shape[1], dtype=g.dtype)
                state["L"] += g @ g.T
                state["R"] += g.T @ g
                step = matrix_power(state["L"], -0.25) @ g @ matrix_power(state["R"], -0.25)
                w -= group["lr"] * step


# %% [markdown]
# Where the Kronecker bound is tight is easy to build: a loss whose curvature is itself a
# Kronecker product. Least squares through two fixed matrices,
# $f(W) = \tfrac{1}{2}\lVert A W B - C \rVert^2$, has the Hessian $B B^\top \otimes A^\top A$
# for the flattened $W$. Give $A$ ($8 \times 8$) and $B$ ($6 \times 6$) a condition number of 10
# each, in coordinates turned at random, and the curvature spans a factor of $10^4$ with no axis
# lined up with it:

# %%
M, N = 8, 6  # W is M x N
generator = torch.Generator().manual_seed(0)


def conditioned(n, kappa):
    """A random n x n matrix with condition number kappa: Q1 diag(1 ... 1/kappa) Q2."""
    q1, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    spread = torch.logspace(0, -math.log10(kappa), n, dtype=torch.float64)
    return q1 @ torch.diag(spread) @ q2


A, B = conditioned(M, 10), conditioned(N, 10)
C = A @ torch.randn(M, N, generator=generator, dtype=torch.float64) @ B  # the minimum is 0


def least_squares(w):
    return 0.5 * ((A @ w @ B - C) ** 2).sum()


def loss_curve(make_optimizer, steps=200):
    """The loss after each of ``steps`` steps from W = 0."""
    w = torch.nn.Parameter(torch.zeros(M, N, dtype=torch.float64))
    optimizer, losses = make_optimizer([w]), [least_squares(w).item()]
    for _ in range(steps):
        optimizer.zero_grad()
        least_squares(w).backward()
        optimizer.step()
        losses.append(least_squares(w).item())
    return torch.tensor(losses)


# %% [markdown]
# Each optimizer gets the rate, out of {glue:text}`toy_rates` from {glue:text}`toy_low:g` to
# {glue:text}`toy_high:g`, that first brings the loss a million times below where it starts (or,
# if none does in 200 steps, the lowest final loss):

# %%
TOY_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]
glue("toy_rates", plural(len(TOY_RATES), "rate"), display=False)
glue("toy_low", min(TOY_RATES), display=False)
glue("toy_high", max(TOY_RATES), display=False)
TOY_OPTIMIZERS = {
    "SGD": torch.optim.SGD,
    "AdaGrad (diagonal)": torch.optim.Adagrad,
    "Adam (diagonal)": torch.optim.Adam,
    "AdaGrad (full matrix)": FullMatrixAdaGrad,
    "Shampoo (the dozen lines)": PlainShampoo,
    # Adam's betas, so that SOAP differs from Adam only in its coordinates; no weight decay
    "SOAP (Adam's betas)": partial(SOAP, betas=(0.9, 0.999), weight_decay=0.0),
}
COLOURS["Shampoo (the dozen lines)"] = COLOURS["Shampoo"]  # the book's colours for both
COLOURS["SOAP (Adam's betas)"] = COLOURS["SOAP"]


def steps_to_million(curve):
    """The first step whose loss is a million times below the start (None: never)."""
    below = (curve < 1e-6 * curve[0]).nonzero()
    return int(below[0]) if len(below) else None


def best_curve(optimizer):
    curves = {lr: loss_curve(lambda ps, lr=lr: optimizer(ps, lr=lr)) for lr in TOY_RATES}

    def score(lr):
        steps, last = steps_to_million(curves[lr]), curves[lr][-1].item()
        return (0, steps) if steps is not None else (1, last if math.isfinite(last) else math.inf)

    rate = min(TOY_RATES, key=score)
    return rate, curves[rate]


toy = {name: best_curve(optimizer) for name, optimizer in TOY_OPTIMIZERS.items()}
pd.DataFrame(
    {
        "rate": {name: f"{rate:g}" for name, (rate, _) in toy.items()},
        "steps to 10⁻⁶ of the start": {
            name: steps_to_million(curve) or f"not in {len(curve) - 1}"
            for name, (_, curve) in toy.items()
        },
        "loss after 200 steps": {name: times_ten(curve[-1], 2) for name, (_, curve) in toy.items()},
    }
)

# %% mystnb={"figure": {"caption": "The loss of the least-squares problem with Kronecker-structured curvature, against steps, for each optimizer at its best rate. Logarithmic loss axis.", "name": "fig-precond-kronecker"}, "image": {"alt": "Loss against steps on a logarithmic axis for six optimizers over 200 steps, each a line in its own colour: SGD, diagonal AdaGrad, Adam, full-matrix AdaGrad, the dozen-line Shampoo and SOAP, each labelled with its rate."}}
fig, ax = plt.subplots(figsize=(7.5, 4))
for name, (rate, curve) in toy.items():
    ax.plot(curve, color=COLOURS[name], label=f"{name}, rate {rate:g}")
ax.set(yscale="log", xlabel="step", ylabel="loss (log scale)")
ax.set_title("Least squares with Kronecker-structured curvature")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
plt.show()


# %% [markdown]
# The table and the figure, in words:


# %%
def toy_text(name):
    steps = steps_to_million(toy[name][1])
    return f"{steps} steps" if steps is not None else f"more than {len(toy[name][1]) - 1} steps"


toy["SOAP (its defaults)"] = best_curve(partial(SOAP, weight_decay=0.0))  # betas 0.95, 0.95
for key, name in (
    ("toy_soap_default", "SOAP (its defaults)"),
    ("toy_adam", "Adam (diagonal)"),
    ("toy_full", "AdaGrad (full matrix)"),
    ("toy_shampoo", "Shampoo (the dozen lines)"),
    ("toy_soap", "SOAP (Adam's betas)"),
):
    glue(key, toy_text(name), display=False)

# %% [markdown]
# To bring the loss a million times down, Adam needs {glue:text}`toy_adam`, full-matrix
# AdaGrad {glue:text}`toy_full`, the dozen lines of Shampoo {glue:text}`toy_shampoo` and SOAP,
# given Adam's $\beta_1 = 0.9$ and $\beta_2 = 0.999$, {glue:text}`toy_soap`. With SOAP's own
# defaults, $\beta_1 = \beta_2 = 0.95$, chosen by its authors for training language models, it
# needs {glue:text}`toy_soap_default`: on this problem the averaging matters as much as the
# coordinates. This problem is built for Shampoo: its curvature is exactly a Kronecker
# product, the structure Shampoo assumes, and full-matrix AdaGrad, which assumes nothing, has
# $48^2$ numbers to learn instead of $8^2 + 6^2$. A network's curvature is only roughly of this
# form; how much of the gain survives there is what the optimizers page measures.
#
# ## Shampoo as it is used
#
# `idlmam.optim.Shampoo` is the dozen lines plus what made Shampoo practical
# {cite:p}`anil2020scalable`:
#
# - **An update interval.** The eigendecompositions are the cost, and $L$ and $R$ change slowly,
#   so the roots are recomputed only every $k$ steps (`update_interval`) and reused in between.
# - **Grafting** {cite:p}`agarwal2020disentangling`. Shampoo keeps its own *direction* but
#   takes the *size* of each tensor's step from a simpler optimizer, AdaGrad by default. A rate
#   tuned for AdaGrad then carries over, and the step stays sensible while $L$ and $R$ still rest
#   on few gradients.
# - **Momentum**, and optionally exponential averages instead of sums ($\beta_2 < 1$).
# - **Biases and other vectors** take the grafting optimizer's step; so do matrices too large
#   for their statistics (`max_preconditioner_dim`).
#
# With no momentum, no grafting and an interval of 1 it is the dozen lines above. On the
# least-squares problem, at the dozen lines' best rate:

# %%
plain_rate, plain_curve = toy["Shampoo (the dozen lines)"]
package_curve = loss_curve(
    lambda ps: Shampoo(ps, lr=plain_rate, momentum=0.0, grafting="none", update_interval=1)
)
same = torch.allclose(package_curve, plain_curve, rtol=1e-9, atol=1e-20)
print(f"idlmam.optim.Shampoo traces the dozen lines' losses (200 steps, to 1e-9): {same}")

# %% [markdown]
# ````{dropdown} The step of idlmam.optim.Shampoo, for one tensor
# ```{literalinclude} ../idlmam/optim/shampoo.py
# :pyobject: Shampoo._step_one
# ```
# ````
#
# Its tests compare it, step by step over 100 steps and in six settings, with the Shampoo of
# `pytorch-optimizer`, written independently; they agree to rounding.
#
# ## SOAP: Adam in Shampoo's coordinates
#
# The first section showed a diagonal preconditioner failing on a valley that runs across its
# axes, and succeeding once the valley is turned to lie along them. SOAP {cite:p}`vyas2024soap`
# turns the coordinates instead of the valley: it keeps Shampoo's $L$ and $R$
# (as moving averages), takes their eigenvectors $Q_L$ and $Q_R$, and runs Adam on the rotated
# gradient $Q_L^\top G\, Q_R$, rotating each step back with $Q_L \cdot Q_R^\top$. Adam's
# diagonal then works in the coordinates in which $L$ and $R$ are diagonal, and the
# eigenvectors, which change slowly, are refreshed only every 10 steps; between refreshes a
# step costs six matrix products for the rotations and two for the statistics.
# {cite:t}`vyas2024soap` show that an idealized Shampoo with the exponent $-1/2$ amounts to
# Adafactor run in the eigenbasis of Shampoo's matrices; SOAP runs Adam there instead.
#
# ````{dropdown} The step of idlmam.optim.SOAP, for one tensor
# ```{literalinclude} ../idlmam/optim/soap.py
# :pyobject: SOAP._step_one
# ```
# ````
#
# On the least-squares problem above, with Adam's betas, it took {glue:text}`toy_soap` against
# Adam's {glue:text}`toy_adam` in the original coordinates. Its tests compare it with
# `pytorch-optimizer`'s SOAP over 100 steps, and check that turning every gradient by fixed
# rotations turns SOAP's path the same way, which Adam's does not.
#
# ## What a step costs
#
# The price is the eigendecompositions, of an $m \times m$ and an $n \times n$ matrix per
# weight matrix; for the chapter's first layer, $128 \times 128$ and $784 \times 784$. A step
# of the chapter's network (batch 256, forward, backward and the optimizer's step) on one CPU
# thread of the machine that built this page, timed by `idlmam.experiments.race.step_costs`: five
# rounds of 30 steps, the optimizers taking turns within each round so that the machine's load
# falls on all of them alike, and the median over the rounds:

# %% tags=["nbval-ignore-output"]
COSTS = {
    "AdamW": torch.optim.AdamW,
    "Muon (with AdamW)": lambda p, lr: MuonWithAdamW(*muon_param_groups(p), lr=lr),
    "Shampoo, roots every step": partial(Shampoo, update_interval=1),
    "Shampoo, roots every 10 steps": partial(Shampoo, update_interval=10),
    "SOAP, bases every 10 steps": SOAP,
}
makers = {name: lambda p, make=make: make(p, lr=1e-3) for name, make in COSTS.items()}
costs = step_costs(makers, steps=30, rounds=5, reference="AdamW")
costs = costs[["ms per step", "x ref", "x min", "x max"]].rename(
    columns={"x ref": "× AdamW", "x min": "× AdamW, lowest", "x max": "× AdamW, highest"}
)
for key, name in (
    ("cost_shampoo_1", "Shampoo, roots every step"),
    ("cost_shampoo_10", "Shampoo, roots every 10 steps"),
    ("cost_soap", "SOAP, bases every 10 steps"),
    ("cost_muon", "Muon (with AdamW)"),
):
    glue(key, f"{costs.loc[name, '× AdamW']:.1f}", display=False)
costs.round(1)

# %% [markdown]
# On this machine a Shampoo step that recomputes its roots every time cost
# {glue:text}`cost_shampoo_1` times an AdamW step; every 10 steps, {glue:text}`cost_shampoo_10`
# times; SOAP {glue:text}`cost_soap` times, and Muon {glue:text}`cost_muon` times (the median
# ratio over the five rounds; the table gives the lowest and the highest). These are one
# machine's clock, on a network whose forward and backward passes are tiny: the decompositions'
# cost grows with the width of the layers and not with the batch, so with large batches and a
# GPU the share shrinks. Distributed Shampoo {cite:p}`shi2023distributed`, the version
# that won AlgoPerf's track, spreads the decompositions over the GPUs that train the model and
# recomputes them only every so many steps.


# %% [markdown]
# ## Muon: Shampoo without memory
#
# Drop the sums: let $L$ and $R$ hold only the current gradient, $L = G G^\top$ and
# $R = G^\top G$. Write the gradient by its singular values, $G = U \Sigma V^\top$. Then
# $L^{-1/4} = U \Sigma^{-1/2} U^\top$ and $R^{-1/4} = V \Sigma^{-1/2} V^\top$, and
#
# $$L^{-1/4}\, G\, R^{-1/4} = U \Sigma^{-1/2} \Sigma\, \Sigma^{-1/2} V^\top = U V^\top:$$
#
# every singular value set to one, the directions kept. That is the matrix Muon steps along
# (applied to its momentum rather than to the raw gradient), and it computes it without any
# decomposition: five iterations of a polynomial in $X X^\top$ that push every singular value
# towards one. The iteration, with the coefficients of Muon's authors (the ones
# `torch.optim.Muon` uses):


# %%
def newton_schulz(g, steps=5, a=3.4445, b=-4.7750, c=2.0315):
    """Muon's orthogonalization: about U V^T of g = U S V^T, by a quintic iteration."""
    x = g / (g.norm() + 1e-7)  # every singular value at most 1
    wide = x.shape[0] <= x.shape[1]
    x = x if wide else x.T  # work on the side with the smaller X X^T
    for _ in range(steps):
        xxt = x @ x.T
        x = a * x + (b * xxt + c * xxt @ xxt) @ x
    return x if wide else x.T


def shampoo_without_memory(g, eps=1e-12):
    """L^(-1/4) g R^(-1/4) with L = g g^T and R = g^T g: one gradient, no sums."""

    def inverse_fourth_root(m):
        values, vectors = torch.linalg.eigh(m)
        return vectors @ torch.diag((values.clamp_min(0) + eps) ** -0.25) @ vectors.T

    return inverse_fourth_root(g @ g.T) @ g @ inverse_fourth_root(g.T @ g)


# %% [markdown]
# A test matrix of a gradient's shape, $96 \times 64$, with singular values spread evenly, on a
# logarithmic scale, over three orders of magnitude:

# %%
generator = torch.Generator().manual_seed(0)
u, _ = torch.linalg.qr(torch.randn(96, 64, generator=generator, dtype=torch.float64))
v, _ = torch.linalg.qr(torch.randn(64, 64, generator=generator, dtype=torch.float64))
spread = torch.logspace(0, -3, 64, dtype=torch.float64)  # singular values 1 ... 0.001
g = u @ torch.diag(spread) @ v.T
polar = u @ v.T  # U V^T, the exact answer
directions = {
    "the gradient": g,
    "Shampoo without memory": shampoo_without_memory(g),
    "Newton-Schulz, 5 steps (Muon)": newton_schulz(g),
}
singular = {name: torch.linalg.svdvals(m) for name, m in directions.items()}
gap = (directions["Shampoo without memory"] - polar).abs().max().item()
ns = singular["Newton-Schulz, 5 steps (Muon)"]
glue("shampoo_gap", times_ten(gap), display=False)
glue("ns_low", f"{ns.min().item():.2f}", display=False)
glue("ns_high", f"{ns.max().item():.2f}", display=False)
near_one = int(((ns > 0.7) & (ns < 1.3)).sum())
glue("ns_near", f"{near_one} of the {len(ns)}", display=False)
print(f"largest |Shampoo without memory - U V^T|: {gap:.1e}")
print(f"Newton-Schulz's singular values: {ns.min().item():.3f} to {ns.max().item():.3f}")

# %% mystnb={"figure": {"caption": "The singular values of a test gradient (grey) and of the two ways of orthogonalizing it: Shampoo with only the current gradient in its matrices (dark blue, Shampoo's colour in the book), exactly one, and five Newton-Schulz iterations as in Muon (olive, Muon's colour): near one for most, lower for the directions the gradient hardly used. Logarithmic axis.", "name": "fig-precond-singular"}, "image": {"alt": "Singular values, from largest to smallest, on a logarithmic axis: the gradient's fall steadily from 1 to 0.001; Shampoo without memory is a flat line at exactly 1; Newton-Schulz's stay near 1 for most of the 64 and fall well below it for the smallest, the directions the gradient hardly used."}}
fig, ax = plt.subplots(figsize=(7, 3.8))
for (name, values), colour in zip(singular.items(), ("grey", COLOURS["Shampoo"], COLOURS["Muon"])):
    ax.plot(range(1, len(values) + 1), values, "o-", ms=3, color=colour, label=name)
ax.set(yscale="log", xlabel="singular value, largest first", ylabel="singular value")
ax.set_title("Orthogonalizing a gradient: the directions kept, the sizes pulled towards one")
ax.legend(loc="lower left", fontsize=9)
plt.show()

# %% [markdown]
# Shampoo without memory gives $U V^\top$ to within {glue:text}`shampoo_gap`. Newton-Schulz's
# five steps leave the singular values between {glue:text}`ns_low` and {glue:text}`ns_high`:
# {glue:text}`ns_near` lie between 0.7 and 1.3, and the directions the gradient hardly used at
# all are lifted only part of the way. That is the approximation Muon accepts, for fifteen
# matrix products (three an iteration) instead of two eigendecompositions. So Muon and Shampoo
# share the idea, a step that moves every direction of a weight matrix by about the same amount,
# and differ in what they remember: Shampoo sums every gradient into $L$ and $R$; Muon keeps a
# momentum of the gradients and orthogonalizes only that.

# %% [markdown]
# ## On the network
#
# Shampoo and SOAP run in the fair comparison of the [optimizers page](03c_optimizers_since.ipynb),
# with the same three-rate search on validation, their best rate with every seed, scored once on
# test, beside AdamW, Muon and the rest: Shampoo with AdaGrad's step size, momentum 0.9 and its
# roots every 10 steps; SOAP with its authors' defaults. What holds there across seeds, and what
# does not, is said there, from those runs.
#
# ## What to take away
#
# - A preconditioner is the matrix between the gradient and the step. A diagonal one (AdaGrad,
#   Adam) can only stretch the coordinates it is given; a full matrix turns with the problem but
#   costs the square of the number of weights.
# - Shampoo keeps one matrix per side of each weight matrix, $L^{-1/4} G R^{-1/4}$, for
#   $m^2 + n^2$ numbers instead of $(mn)^2$; in practice with grafting, momentum and roots
#   recomputed every few steps. SOAP runs Adam in the eigenbasis of the same two matrices.
# - Muon is Shampoo without memory: with only the current gradient in $L$ and $R$, the step is
#   the gradient's orthogonal part $U V^\top$, which Muon approximates with Newton-Schulz
#   iterations on its momentum.
# - Each costs eigendecompositions (Shampoo, SOAP) or matrix products (Muon) per step that grow
#   with the width of the layers, not with the batch: on this small network and a CPU they
#   multiply the cost of a step several times, and the larger the batch, the smaller their
#   share of a step.
