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
# # Making better use of gradients
#
# The schedule sets the speed for the whole journey; the optimizer $G$ steers around the
# potholes, batch by batch. This page builds momentum, Nesterov momentum and Adam from their
# update rules, trains the baseline network with each (and with AdamW's relatives NAdam and
# AdaMax), combines two of them with cosine annealing, and ends with gradient clipping, on a
# run whose gradients explode without it.

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
from itertools import islice

import matplotlib.pyplot as plt
import pandas as pd
import torch

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import run
from idlmam.models import clamp_gradients
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import clip_grad_norm_on_step, cosine_schedule, eta_min_for, record_grad_norms
from idlmam.plotting import plot_runs
from idlmam.stats import compare, compare_pairs, final_scores, last_epochs
from idlmam.utils import get_device

setup()
banner = budget_banner()  # says which budget made this page's numbers

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.chapter.epochs  # epochs per run
SEEDS = range(BUDGET.chapter.seeds)  # each run is repeated with these seeds
BATCH_SIZE = 256  # B
ETA_0 = 0.1  # SGD's learning rate, as on the previous pages
MU = 0.9  # momentum weight
DIPS = 2  # cosine annealing: two dips, the second on the last epoch
ETA_HIGH = 5 * ETA_0  # the clipping experiment: a rate five times too large
CLIP = 1.0  # z, the gradient clipping threshold
DEVICE = get_device()
print(f"budget={BUDGET.name}, epochs={EPOCHS}, seeds={len(SEEDS)}")

# %% tags=["nbval-ignore-output"]
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.chapter.train_size)
train = dict(loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS)  # shared by every run
sgd = run("SGD", lambda p: torch.optim.SGD(p, lr=ETA_0), **train)

# %% [markdown]
# ## Momentum: trust a direction that keeps coming back
#
# Each parameter $j$ gets its own gradient $g^t_j$ at every step. If it points the same way
# batch after batch, $g^t_j \approx g^{t-1}_j \approx g^{t-2}_j \approx \dots$, we could afford a
# bigger step along $j$ alone, without raising the global rate for parameters whose gradients
# wander. Momentum does this with a *velocity* $v$ that adds the new gradient to a fraction
# $\mu \in (0, 1)$ of the old velocity, and steps along it:
#
# $$v^{t+1} = \mu \cdot v^t + g^t \qquad \Theta^{t+1} = \Theta^t - \eta \cdot v^{t+1}$$
#
# This is PyTorch's way of writing it (and page 05's). Some texts put $\eta$ inside the velocity,
# $v^{t+1} = \mu v^t + \eta g^t$ and $\Theta^{t+1} = \Theta^t - v^{t+1}$: with a constant rate
# the two take the same steps; with a schedule, PyTorch's form applies a new rate to the whole
# velocity at once. Unroll it and every past gradient is still in there, each weighted by a
# power of $\mu$:
#
# $$\Theta^{t+1} = \Theta^t - \eta \left(g^t + \mu\, g^{t-1} + \mu^2 g^{t-2} + \dots\right)$$
#
# The weights shrink fast, which is the point: momentum remembers, and then it forgets.

# %%
weights = pd.Series({k: MU**k for k in (0, 1, 2, 5, 10, 20, 40)}, name="weight of g^(t-k)")
forget = next(k for k in range(1, 1000) if MU**k < 1e-4)
glue("weight_40", MU**40, display=False)
glue("forget", forget, display=False)
glue("steps_per_epoch", math.ceil(60_000 / BATCH_SIZE), display=False)
print(weights.round(4).to_string())
print(f"with mu = {MU}, a gradient counts less than 0.01% after {forget} updates")

# %% [markdown]
# So with $\mu = 0.9$ a gradient 40 steps old still weighs {glue:text}`weight_40:.1%` and one
# {glue:text}`forget` steps old less than 0.01%. An epoch of all of Fashion-MNIST at batch 256
# has {glue:text}`steps_per_epoch` steps: momentum is a short memory. In a direction where the
# gradients agree, the steps add up to as much as $1 / (1 - \mu) = 10$ times a plain step; in a
# direction where they alternate, they cancel.
#
# ### Nesterov momentum: look before you leap
#
# After a long run in one direction, momentum carries the weights past a turn in the valley and
# needs several steps to come back. Nesterov momentum {cite:p}`sutskever2013importance` first moves
# by the velocity alone, takes the gradient *there*, and corrects with it:
#
# $$\Theta^{t'} = \Theta^t - \eta \mu\, v^t \qquad v^{t+1} = \mu\, v^t + \nabla \ell\big(f_{\Theta^{t'}}(x), y\big) \qquad \Theta^{t+1} = \Theta^t - \eta\, v^{t+1}$$
#
# If the velocity was about to overshoot, the gradient at the look-ahead point already pushes
# back, so the turn happens a step sooner. Rearranged so that the gradient is the one at the
# weights the network holds, it costs no more than plain momentum: keep the velocity
# $v^{t+1} = \mu v^t + g^t$ as before and step along $g^t + \mu\, v^{t+1}$ instead of $v^{t+1}$.
# Both rules fit in a few lines:


# %% tags=["lesson"]
@torch.no_grad()
def momentum_step(params, velocities, lr, mu, nesterov=False):
    """One step of SGD with momentum (or Nesterov momentum) on params whose .grad is set."""
    for p, v in zip(params, velocities):
        v.mul_(mu).add_(p.grad)  # v = mu * v + g
        p.sub_(lr * (p.grad + mu * v if nesterov else v))  # Nesterov steps along g + mu * v


# %% [markdown]
# In PyTorch both are options of `SGD` (`momentum=`, `nesterov=True`). Twenty steps of each on a
# small network and a few batches, by hand and with `torch.optim.SGD` from the same weights,
# end at the same place (not bit for bit: PyTorch adds the scaled step in one fused operation,
# which rounds the last digit differently from our multiply-then-subtract):


# %% tags=["nbval-ignore-output"]
batches = list(islice(loaders["train"], 20))  # the same twenty batches for every run


def small_net():
    torch.manual_seed(0)  # the same initial weights every time
    layers = [torch.nn.Flatten(), torch.nn.Linear(28 * 28, 32), torch.nn.Tanh()]
    return torch.nn.Sequential(*layers, torch.nn.Linear(32, 10)).to(DEVICE)


def twenty_steps(nesterov, by_hand):
    net = small_net()
    params = list(net.parameters())
    velocities = [torch.zeros_like(p) for p in params]
    sgd_torch = torch.optim.SGD(params, lr=ETA_0, momentum=MU, nesterov=nesterov)
    for x, y in batches:
        net.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        if by_hand:
            momentum_step(params, velocities, ETA_0, MU, nesterov)
        else:
            sgd_torch.step()
    return torch.cat([p.detach().flatten() for p in params])


for nesterov in (False, True):
    gap = (twenty_steps(nesterov, True) - twenty_steps(nesterov, False)).abs().max().item()
    name = "Nesterov" if nesterov else "momentum"
    print(f"{name}: largest weight difference {gap:.0e}, below 1e-6: {gap < 1e-6}")

# %% [markdown]
# The book's runs use `torch.optim.SGD`, trained with every seed by `run` (page 01).

# %% mystnb={"figure": {"caption": "Plain SGD, SGD with momentum and SGD with Nesterov momentum at the same rate: test accuracy per epoch, mean over seeds with a 95% band.", "name": "fig-momentum-nesterov"}, "image": {"alt": "Test accuracy against epoch for plain SGD, SGD with momentum and SGD with Nesterov momentum, each a mean line with a shaded 95% band over seeds; the bands show how far apart the runs are compared with the seed-to-seed noise."}} tags=["nbval-ignore-output"]
momentum = run("SGD w/ Momentum", lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU), **train)
nesterov = run(
    "SGD w/ Nesterov", lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU, nesterov=True), **train
)
sgd_family = pd.concat([sgd, momentum, nesterov], ignore_index=True)
plot_runs(sgd_family, title="SGD, momentum and Nesterov momentum (mean and 95% CI over seeds)")
plt.show()

# %% tags=["nbval-ignore-output"]
final_scores(sgd_family)[["seeds", "mean", "half_width"]].round(4)

# %% [markdown]
# The table gives each run's final test accuracy: the mean over the seeds, and the half-width of
# its 95% interval. On smooth, convex problems with exact gradients, Nesterov's look-ahead comes
# with a provably faster rate of convergence; a network trained on noisy batches is neither, so
# we ask the runs. Here is what they show, each difference with its interval over the seeds. Read the
# three lines together: momentum and Nesterov can each stand apart from SGD, or one can and the
# other not, and still not differ from each other (the third line). Each interval comes from its
# own pair's seed-to-seed differences, so a pair whose seeds disagree more gets a wider one.

# %% tags=["nbval-ignore-output"]
finding(  # the finding on full and chapter; on quick, a box in its place
    compare_pairs(
        sgd_family,
        [
            ("SGD w/ Momentum", "SGD"),
            ("SGD w/ Nesterov", "SGD"),
            ("SGD w/ Nesterov", "SGD w/ Momentum"),
        ],
    ),
    needs="tell momentum, Nesterov momentum and plain SGD apart",
)

# %% [markdown]
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
# On the first step the bias corrections make $\hat m = g$ and $\sqrt{\hat v} = |g|$, so the
# step is $\eta\, g / (|g| + \epsilon)$: $\pm\eta$ for every parameter whose gradient is much
# larger than $\epsilon = 10^{-8}$, whatever its size (a gradient of exactly 0 does not move). After that the ratio is an average gradient over a
# root-mean-square one, and it depends on the gradients' history. A noisy gradient, whose
# average is smaller than its typical size, gets steps below $\eta$. But the ratio can exceed
# 1: a gradient that appears after a quiet spell moves its parameter by up to
# $\eta\,(1 - \beta_1) / \sqrt{1 - \beta_2}$ (the bound stated in Adam's paper,
# {cite:alp}`kingma2015adam`), and one that keeps growing by the factor $\beta_2 / \beta_1$ per step
# pushes it further, up to $\eta\,(1 - \beta_1) / \sqrt{(1 - \beta_2)(1 - \beta_1^2 / \beta_2)}$
# (the Cauchy-Schwarz inequality on the two averages gives this ceiling). With the defaults, by hand
# and measured on `torch.optim.Adam`:

# %%
jump = (1 - beta1) / math.sqrt(1 - beta2)  # a gradient after a quiet spell
most = jump / math.sqrt(1 - beta1**2 / beta2)  # a gradient growing by beta2 / beta1 a step


def adam_steps(grads):
    """|step| / eta of torch.optim.Adam (defaults) on one parameter fed these gradients."""
    theta = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    adam, ratios = torch.optim.Adam([theta]), []
    for g in grads:
        before = theta.item()
        theta.grad = torch.tensor([float(g)], dtype=torch.float64)
        adam.step()
        ratios.append(abs(theta.item() - before) / eta)
    return torch.tensor(ratios)


quiet = [0.0] * 3000  # a long spell without gradient
noisy = torch.randn(3000, generator=torch.Generator().manual_seed(0)) + 0.1  # mean 0.1, std 1
growing = [(beta2 / beta1) ** k for k in range(200)]
print(f"closed forms: after a quiet spell {jump:.2f}, growing gradients {most:.2f} (x eta)")
print(f"quiet, then one gradient of 1: {adam_steps(quiet + [1.0])[-1]:.2f} x eta")
print(f"quiet, then growing gradients: {adam_steps(quiet + growing).max():.2f} x eta at most")
print(f"noisy gradients: median {adam_steps(noisy).median():.2f} x eta")

# %% [markdown]
# So Adam's steps are not bounded by $\eta$, but by a few times $\eta$, whatever the gradient's
# scale: a gradient a thousand times larger than the ones before it still moves its parameter
# by a few $\eta$ at most. The learning rate sets the scale of the steps, not the gradient,
# which is why one default $\eta$ can serve networks whose gradients differ by orders of
# magnitude.
#
# ### AdamW, NAdam and AdaMax
#
# The Adam paper {cite:p}`kingma2015adam` has no weight decay; libraries added it the way SGD takes
# it, as an L2 term folded into the gradient, where the division by $\sqrt{\hat v}$ distorts it.
# **AdamW** {cite:p}`loshchilov2019decoupled` applies the decay to the weights directly, and is
# the default optimizer of `train_network` and of this book. **NAdam**
# {cite:p}`dozat2016incorporating` puts Nesterov's look-ahead into Adam's momentum. **AdaMax**
# replaces the root mean square by a running maximum of the gradients' size (the Adam paper's
# second proposal). We keep each at its default learning rate, untuned, while the SGD family runs
# at the chapter's $\eta_0 = 0.1$.

# %% mystnb={"figure": {"caption": "AdamW, NAdam and AdaMax at their default rates against the SGD family: test accuracy per epoch, mean over seeds with a 95% band.", "name": "fig-adamw"}, "image": {"alt": "Two panels of test accuracy against epoch sharing one accuracy axis. Left: plain SGD, SGD with momentum and SGD with Nesterov momentum, with AdamW for reference. Right: AdamW, NAdam and AdaMax, with SGD with Nesterov momentum for reference. Each run is a mean line with a shaded 95% band over seeds, in the same colour in both panels."}} tags=["nbval-ignore-output"]
adamw = run("AdamW", lambda p: torch.optim.AdamW(p), **train)
nadam = run("NAdam", lambda p: torch.optim.NAdam(p), **train)
adamax = run("AdaMax", lambda p: torch.optim.Adamax(p), **train)
both_families = pd.concat([sgd_family, adamw, nadam, adamax], ignore_index=True)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, names, title in (
    (left, ["SGD", "SGD w/ Momentum", "SGD w/ Nesterov", "AdamW"], "The SGD family, and AdamW"),
    (right, ["AdamW", "NAdam", "AdaMax", "SGD w/ Nesterov"], "The Adam family, and Nesterov"),
):
    plot_runs(both_families[both_families["run"].isin(names)], ax=ax, title=title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
fig.suptitle("Test accuracy per epoch (mean and 95% interval over seeds)")
plt.show()

# %% tags=["nbval-ignore-output"]
final_scores(both_families)[["seeds", "mean", "half_width"]].round(4)

# %% [markdown]
# AdamW ran at its default learning rate, without any tuning. How it and its relatives fare
# against the SGD family, each difference with its interval over the seeds:

# %% tags=["nbval-ignore-output"]
finding(  # the finding on full and chapter; on quick, a box in its place
    compare_pairs(
        both_families,
        [
            ("AdamW", "SGD"),
            ("AdamW", "SGD w/ Nesterov"),
            ("NAdam", "AdamW"),
            ("AdaMax", "AdamW"),
        ],
    ),
    needs="rank the Adam family against the SGD family",
)

# %% [markdown]
# Whatever the ranking, AdamW got there without a search for its learning rate. That is its
# appeal. Whether the ranking would survive a search of every optimizer's rate is another
# question, which the [optimizers page](03c_optimizers_since.ipynb) asks, with a search of the
# rate for each.
#
# ## Optimizers and schedules together
#
# $G$ and $L$ work on different clocks, so they combine. Here AdamW and SGD with Nesterov
# momentum each get a cosine schedule with two dips, the second on the last epoch
# (`cosine_schedule`, from the [schedules page](02_schedules.ipynb)). Each decays from its own
# $\eta_0$ to the book's floor $\eta_{min} = \eta_0 / 100$: never 0, since an epoch at a rate of
# 0 changes no weight.


# %% mystnb={"figure": {"caption": "Nesterov momentum and AdamW, each with and without a cosine schedule of two dips that ends on the last epoch: test accuracy per epoch, mean over seeds with a 95% band.", "name": "fig-cosine-combinations"}, "image": {"alt": "Test accuracy against epoch for SGD with Nesterov momentum and AdamW, each with a constant rate and with cosine annealing, as mean lines with shaded 95% bands over seeds; the constant-rate and the cosine run of each optimizer can be compared epoch by epoch."}} tags=["nbval-ignore-output"]
def cosine(optimizer):
    eta_0 = optimizer.param_groups[0]["lr"]  # each optimizer's own starting rate
    return cosine_schedule(optimizer, EPOCHS, DIPS, eta_min=eta_min_for(eta_0))


adamw_cos = run("AdamW+CosineLR", lambda p: torch.optim.AdamW(p), cosine, **train)
nesterov_cos = run(
    "SGD w/ Nesterov+CosineLR",
    lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=MU, nesterov=True),
    cosine,
    **train,
)
combined = pd.concat([nesterov, nesterov_cos, adamw, adamw_cos], ignore_index=True)
ax = plot_runs(
    combined, title="Nesterov and AdamW, with and without cosine annealing (mean, 95% CI)"
)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axis: no band hidden
plt.show()

# %% tags=["nbval-ignore-output"]
final_scores(combined)[["seeds", "mean", "half_width"]].round(4)

# %% [markdown]
# Each line is labelled by the optimizer *and* the schedule it really ran with. What the
# schedule did for each optimizer:

# %% tags=["nbval-ignore-output"]
finding(  # the finding on full and chapter; on quick, a box in its place
    compare_pairs(
        combined,
        [
            ("SGD w/ Nesterov+CosineLR", "SGD w/ Nesterov"),
            ("AdamW+CosineLR", "AdamW"),
            ("AdamW+CosineLR", "SGD w/ Nesterov+CosineLR"),
        ],
    ),
    needs="tell whether cosine annealing helped either optimizer",
)

# %% [markdown]
# ## Gradient clipping: a cap on exploding gradients
#
# The last trick works with any optimizer and schedule. If a gradient value is larger in size
# than a threshold $z$, set it to $\pm z$: its sign still says which way to go, but the distance
# becomes sane. With $z$ = {glue:text}`clip`:

# %%
glue("clip", CLIP, display=False)
g = torch.tensor([1.0, -2.0, 1000.0, 3.0, -7.0])
print("clamped:       ", g.clamp(-CLIP, CLIP).tolist())
print("norm-clipped:  ", [round(x, 4) for x in (g * CLIP / g.norm()).tolist()])

# %% [markdown]
# The first line clamps each value on its own, which can turn the vector: here the 1000 no
# longer stands out. The second is the alternative {cite:p}`pascanu2013difficulty`,
# `torch.nn.utils.clip_grad_norm_`, which shrinks the whole vector until its length is $z$ and so
# keeps its direction (here almost all of it points along the third value). In a training loop
# it goes between `backward()`, which makes the gradient, and `step()`, which uses it:


# %% tags=["lesson"]
def clipped_step(model, loss_func, x, y, optimizer, max_norm):
    """One training step with the gradient's norm clipped to max_norm; returns the norm before."""
    optimizer.zero_grad()
    loss_func(model(x), y).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # shrink, keep direction
    optimizer.step()
    return norm.item()


# %% [markdown]
# The package's `idlmam.optim.clip_grad_norm_on_step` does the same from inside the optimizer,
# as a hook that runs before every `step()`, so that any loop, `run` included, clips without a
# change. Twenty steps at five times the chapter's rate, once with the lines above and once with
# the hook, from the same weights:


# %%
def twenty_clipped(by_hand):
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=5 * ETA_0, momentum=MU, nesterov=True)
    if not by_hand:
        optimizer = clip_grad_norm_on_step(optimizer, CLIP)
    loss_func = torch.nn.functional.cross_entropy
    for x, y in batches:
        if by_hand:
            clipped_step(net, loss_func, x, y, optimizer, CLIP)
        else:
            optimizer.zero_grad()
            loss_func(net(x), y).backward()
            optimizer.step()  # the hook clips first
    return torch.cat([p.detach().flatten() for p in net.parameters()])


gap = (twenty_clipped(True) - twenty_clipped(False)).abs().max().item()
print(f"clipping by hand against the hook: largest weight difference {gap:.1g}")

# %% [markdown]
# Clamping is
# added to a model with a hook on every parameter that rewrites its gradient as it is computed:
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

# %% [markdown]
# ### Clipping where the steps explode
#
# Clipping only acts on gradients longer than $z$, so to see what it does we need a run whose
# gradients grow out of hand. A learning rate that is too large makes one: Nesterov momentum at
# $\eta$ = {glue:text}`eta_high`, five times the chapter's rate, without and with norm clipping
# at $z$ = {glue:text}`clip`. Both optimizers also get `record_grad_norms`, a step pre-hook that
# writes down the length of the gradient before every step; it is added before the clipping
# hook, so it records the gradient as it came, not as it was clipped.

# %% tags=["nbval-ignore-output"]
glue("eta_high", ETA_HIGH, display=False)
norms = {"no clipping": [], "clipped": []}  # one list per seed: the norm before every step
reference = f"SGD w/ Nesterov, lr {ETA_0:g}"  # the run above (green), named by its rate here
too_fast = f"SGD w/ Nesterov, lr {ETA_HIGH:g}"
too_fast_clipped = f"{too_fast}, clipped at z={CLIP:g}"


def nesterov_high(params, log, clip=None):
    optimizer = record_grad_norms(
        torch.optim.SGD(params, lr=ETA_HIGH, momentum=MU, nesterov=True), log
    )
    return optimizer if clip is None else clip_grad_norm_on_step(optimizer, clip)


high = run(too_fast, lambda p: nesterov_high(p, norms["no clipping"]), **train)
high_clipped = run(too_fast_clipped, lambda p: nesterov_high(p, norms["clipped"], CLIP), **train)
clipping = pd.concat([nesterov.assign(run=reference), high, high_clipped], ignore_index=True)
CLIP_COLOURS = ("black", "tab:cyan")  # no clipping, clipped: in both figures below

# %% mystnb={"figure": {"caption": "Gradient norm before every step of Nesterov momentum at five times the chapter's rate, without clipping and with norm clipping at z; one line per seed, both axes logarithmic.", "name": "fig-clipping-norms"}, "image": {"alt": "Gradient norm against optimizer step, both on logarithmic axes, one thin line per seed. Both runs start with the same small gradients; without clipping the norms climb within the first few dozen steps to around ten and stay there, while with clipping they rise to a few times the dashed threshold line z in the first steps, where clipping shortens them, and then mostly stay below it."}} tags=["nbval-ignore-output"]
ax = plt.subplots(figsize=(7, 4))[1]
for (name, seeds), colour in zip(norms.items(), CLIP_COLOURS):
    for i, seed in enumerate(seeds):
        steps = range(1, len(seed) + 1)
        ax.plot(steps, seed, color=colour, lw=0.6, alpha=0.7, label=name if i == 0 else None)
ax.axhline(CLIP, color="black", ls="--", label=f"z = {CLIP:g}")
ax.set(xscale="log", yscale="log", xlabel="optimizer step (log scale)")
ax.set(ylabel="gradient norm before the step (log scale)")
ax.set_title(f"Nesterov momentum at lr {ETA_HIGH:g}: gradient norms, one line per seed")
ax.legend()
plt.show()

# %% mystnb={"figure": {"caption": "Test accuracy per epoch of Nesterov momentum at the chapter's rate, at five times that rate, and at five times that rate with norm clipping; mean over seeds with a 95% band.", "name": "fig-clipping"}, "image": {"alt": "Test accuracy against epoch for three runs of SGD with Nesterov momentum: at the chapter's rate, at five times that rate without clipping, and at five times that rate with norm clipping; mean lines with shaded 95% bands over seeds. The text below says where each ended."}} tags=["nbval-ignore-output"]
palette = dict(zip([too_fast, too_fast_clipped], CLIP_COLOURS), **{reference: "tab:green"})
plot_runs(
    clipping,
    title="Nesterov momentum: a rate too large, with and without clipping",
    palette=palette,
)
plt.show()

# %% tags=["nbval-ignore-output"]
last = last_epochs(clipping, "train loss")  # where each seed ended
finite = last["train loss"].apply(math.isfinite)
outcome = (
    last.assign(stopped=~finite, above_guess=finite & (last["train loss"] > math.log(10)))
    .groupby("run", sort=False)
    .agg(seeds=("seed", "size"), stopped=("stopped", "sum"), above_guess=("above_guess", "sum"))
    .join(final_scores(clipping)[["mean", "half_width"]])
)
for key, name in (("none", too_fast), ("clip", too_fast_clipped)):
    row = outcome.loc[name]
    glue(f"{key}_above", f"{int(row['above_guess'])} of {int(row['seeds'])}", display=False)
    glue(f"{key}_stopped", f"{int(row['stopped'])}" if row["stopped"] else "none", display=False)
every = {name: torch.tensor([n for seed in seeds for n in seed]) for name, seeds in norms.items()}
first = torch.tensor([seed[0] for seeds in norms.values() for seed in seeds])
glue("first_norm", first.mean().item(), display=False)
glue("none_median", every["no clipping"].nanmedian().item(), display=False)
glue("clip_share", (every["clipped"] > CLIP).double().mean().item(), display=False)
glue("clip_vs_none", compare(clipping, too_fast_clipped, too_fast).sentence(), display=False)
outcome.rename(columns={"above_guess": "above ln 10", "half_width": "half-width"}).rename_axis(
    None
).round(4)

# %% [markdown]
# Without clipping, {glue:text}`none_above` seeds ended with a training loss above
# $\ln 10 \approx 2.30$, the loss of guessing uniformly among ten classes: they diverged. The
# figure shows how. Both runs start from gradients {glue:text}`first_norm:.2f` long (mean over
# seeds). Without clipping, each step of $\eta$ times a gradient that momentum keeps adding up
# overshoots, the next gradient is longer, and over the whole run the median norm was
# {glue:text}`none_median:.1f`. The training loop stops a seed only when its loss becomes NaN or
# infinite, and it stopped {glue:text}`none_stopped` of them: the tanh units keep every hidden
# value in $(-1, 1)$, so the loss can grow large and still stay finite.
#
# With clipping, {glue:text}`clip_above` seeds ended above $\ln 10$, and
# {glue:text}`clip_vs_none`. Clipping acted on {glue:text}`clip_share:.0%` of the steps: every
# gradient longer than $z$ was shortened to $z$, so no single step could throw the weights far.
# How close the clipped run at five times the rate comes to Nesterov momentum at the chapter's
# rate:

# %% tags=["nbval-ignore-output"]
finding(  # the finding on full and chapter; on quick, a box in its place
    f"{compare(clipping, too_fast_clipped, reference).sentence()}.",
    needs="tell how close the clipped run comes to the chapter's rate",
)

# %% [markdown]
# With SGD and its momentum, clipping bounds the size of a step: it guards against the rare,
# very large gradient (an exploding gradient, or a spike from an unlucky batch) that would
# otherwise throw the weights far from where they were. Adam-type optimizers divide by a running
# scale of the gradients, so their steps are bounded already, and clipping changes them far
# less. It does not repair a model that fails to learn for other reasons
# (an architecture that cannot fit the data, labels that carry no signal, a learning rate that
# is too small): all it does is shorten steps, and shorter steps fix none of those. And when $z$ is below the typical
# gradient, as it is for some steps here, it shortens ordinary steps too and acts like a smaller
# learning rate. Recurrent networks, whose gradients can grow along the sequence, are where
# clipping is a common default; exercise 5 shows one whose gradients explode.
#
# ## What we did
#
# - Built momentum from its update rule and computed how fast it forgets: under 0.01% after
#   {glue:text}`forget` steps at $\mu = 0.9$; then Nesterov's look-ahead version.
# - Checked one step of Adam, bias correction included, against PyTorch by hand, and measured
#   how far past $\eta$ its steps can go.
# - Trained SGD, momentum, Nesterov, AdamW, NAdam and AdaMax on the same data and seeds, and
#   compared them with intervals over the seeds.
# - Combined AdamW and Nesterov momentum with cosine annealing that ends on its last dip.
# - Clipped gradients by value (with hooks that we removed afterwards) and by norm, and ran
#   Nesterov momentum at five times the chapter's rate with and without clipping, against the
#   chapter's rate.
