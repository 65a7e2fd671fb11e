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
# # Learning-rate schedules
#
# A schedule $L(\eta_0, t)$ changes the learning rate once per epoch. This page builds the four
# schedules every practitioner should know (exponential decay, step drops, cosine annealing and
# reduce-on-plateau), draws each one from the real PyTorch scheduler object, trains the
# baseline network with each on Fashion-MNIST, and compares them side by side.

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
import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, ReduceLROnPlateau, StepLR

from idlmam.budget import get_budget
from idlmam.data import book_loaders
from idlmam.experiments import run
from idlmam.notebook import glue, setup
from idlmam.optim import cosine_t_max, exponential_gamma
from idlmam.plotting import final_scores, plot_runs, plot_schedules
from idlmam.utils import get_device

setup()

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.epochs  # T, epochs per run
SEEDS = range(BUDGET.seeds)  # each run is repeated with these seeds
BATCH_SIZE = 256  # B
ETA_0 = 0.1  # initial learning rate, the same as the baseline's
ETA_MIN = 0.0001  # the smallest rate a schedule should reach
STEP_DROPS, STEP_GAMMA = 4, 0.3  # StepLR: four drops, each by a factor of 0.3
COSINE_DIPS = 2  # cosine annealing: two dips, ending on the second
PATIENCE = max(1, EPOCHS // 5)  # ReduceLROnPlateau: epochs without improvement (10 of 50)
DEVICE = get_device()
print(f"budget={BUDGET.name}, T={EPOCHS}, seeds={len(SEEDS)}, patience={PATIENCE}")

# %% [markdown]
# Every run below is the baseline of the previous page (the 3-hidden-layer tanh network, SGD,
# $\eta_0 = 0.1$, batch 256) with one change: the schedule. So we train the baseline again
# here, with the same seeds, to compare against.

# %% tags=["nbval-ignore-output"]
loaders = book_loaders(BATCH_SIZE, device=DEVICE, train_size=BUDGET.train_size)


def sgd(params):  # G stays plain SGD on this page
    return torch.optim.SGD(params, lr=ETA_0)


baseline = run("SGD", sgd, loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS)

# %% [markdown]
# ## Exponential decay: calmer training
#
# If accuracy jumps up and down from one epoch to the next, shrinking the learning rate a little
# every epoch calms it. Pick $0 < \gamma < 1$ and multiply:
#
# $$\eta_t = L_\gamma(\eta_0, t) = \eta_0 \cdot \gamma^t$$
#
# Guessing $\gamma$ is risky: over 50 epochs, 0.9 and 0.99 end a factor of 80 apart. Instead
# decide where the rate should *end*, $\eta_{min}$, after $T$ epochs, and solve for $\gamma$:
#
# $$\gamma = \sqrt[T]{\eta_{min} / \eta_0}$$
#
# A final rate 10 to 100 times below the start is the usual choice.

# %%
gamma = exponential_gamma(ETA_0, ETA_MIN, EPOCHS)
print(f"gamma = ({ETA_MIN} / {ETA_0}) ** (1 / {EPOCHS}) = {gamma:.5f}")
print(f"check: eta_0 * gamma**T = {ETA_0 * gamma**EPOCHS:.6f}")
print(
    f"eta_0 = 0.001 down to 0.0001 in 50 epochs needs gamma = {exponential_gamma(0.001, 0.0001, 50):.5f}"
)

# %% [markdown]
# The figure reads the rates off a real `ExponentialLR` object, stepped once per epoch exactly
# as `train_network` steps it, so what you see is what the training runs get.

# %% mystnb={"figure": {"caption": "Exponential decay schedule, read off a real ExponentialLR.", "name": "fig-exponential-schedule"}}
schedules = {
    "constant": lambda opt: StepLR(opt, step_size=EPOCHS + 1),
    "exponential": lambda opt: ExponentialLR(opt, gamma),
}
plot_schedules(schedules, EPOCHS, ETA_0).set_title("Exponential decay from eta_0 to eta_min")
plt.show()

# %% [markdown]
# Why it helps: far from a minimum a large step covers ground quickly, but near the minimum the
# same step overshoots it, back and forth, and the loss wobbles. Shrinking the step lets the
# weights settle into the minimum instead of circling it, like a train braking into a station.

# %% tags=["nbval-ignore-output"]
expo = run(
    "+Exponential decay",
    sgd,
    lambda opt: ExponentialLR(opt, gamma),
    loaders=loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)

# %% [markdown]
# ## Step drops: full speed, then brake hard
#
# Exponential decay starts braking in the first epoch, when we are still far from any minimum.
# The *step* schedule keeps $\eta_0$ for $S$ epochs, then drops it by a factor $\gamma$, and
# again every $S$ epochs:
#
# $$\eta_t = \eta_0 \cdot \gamma^{\lfloor t / S \rfloor}$$
#
# With $S = 1$ this *is* exponential decay; a larger $S$ means fewer but bigger drops. Values of
# $\gamma$ between 0.1 and 0.5, with two to four drops per run, are typical. We drop four times
# by 0.3:

# %%
step_size = max(1, EPOCHS // STEP_DROPS)
print(f"S = {step_size} epochs between drops")
for drops in (3, 4):
    print(f"after {drops} drops the rate is 1/{1 / STEP_GAMMA**drops:.0f} of eta_0")

# %% [markdown]
# Four drops are a reduction of about 123 times, but the fourth comes only in the last epochs,
# so most of the run happens at a 37-times reduction or less.

# %% mystnb={"figure": {"caption": "Step drop schedule (StepLR) against exponential decay.", "name": "fig-step-schedule"}}
schedules["step"] = lambda opt: StepLR(opt, step_size, gamma=STEP_GAMMA)
plot_schedules(schedules, EPOCHS, ETA_0).set_title("Step drops against exponential decay")
plt.show()

# %% tags=["nbval-ignore-output"]
step = run(
    "+StepLR", sgd, schedules["step"], loaders=loaders, epochs=EPOCHS, device=DEVICE, seeds=SEEDS
)

# %% [markdown]
# ## Cosine annealing: down, up, and down again
#
# The first two schedules only ever slow down. Cosine annealing swings the rate between
# $\eta_0$ and $\eta_{min}$ along a cosine, with a half-period of $T_{max}$ epochs:
#
# $$\eta_t = \eta_{min} + \frac{\eta_0 - \eta_{min}}{2}\left(1 + \cos\left(\frac{t}{T_{max}}\pi\right)\right)$$
#
# Why speed up again? A network's loss surface has many minima, and a run that has settled into
# a poor, narrow one stays there if the rate only shrinks. Raising the rate shakes it loose;
# lowering it again lets it settle, often in a wider and better basin. Two rules: always *end on
# a dip*, so the run finishes slowly, and keep the dips few (at most a quarter of the epochs).
# A run with $d$ dips has $2d - 1$ half-periods, so $T_{max} = T / (2d - 1)$:

# %% mystnb={"figure": {"caption": "Cosine annealing schedule (CosineAnnealingLR) against the others.", "name": "fig-cosine-schedule"}}
t_max = cosine_t_max(EPOCHS, COSINE_DIPS)
print(f"{COSINE_DIPS} dips in {EPOCHS} epochs: T_max = {t_max}")
schedules["cosine"] = lambda opt: CosineAnnealingLR(opt, t_max, eta_min=ETA_MIN)
plot_schedules(schedules, EPOCHS, ETA_0).set_title("Cosine annealing against the other schedules")
plt.show()

# %% tags=["nbval-ignore-output"]
cosine = run(
    "+CosineLR",
    sgd,
    schedules["cosine"],
    loaders=loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)

# %% [markdown]
# ```{admonition} Cosine's friends: snapshot ensembles and SWA
# Cosine annealing was first designed for *ensembles*. Averaging the predictions of many
# networks beats any one of them, but training 20 networks costs 20 runs. Instead, save a copy
# of the weights at every dip of one cosine run: $d$ dips give a $d$-model *snapshot ensemble*
# for the price of one run. *Stochastic weight averaging* (SWA, `torch.optim.swa_utils`) goes
# further and averages the weights themselves into a single model. Both are built and measured
# on the ensembles page.
# ```
#
# ## Reduce on plateau: let the validation loss decide
#
# The schedules so far follow a fixed plan, whatever the training does. The plateau schedule
# watches the loss instead. Look at the baseline's losses first:

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Baseline training and test loss: the test loss plateaus.", "name": "fig-plateau-losses"}}
ax = plot_runs(baseline, "train loss", title="Baseline SGD: training and test loss")
plot_runs(baseline.assign(run="SGD, test"), "test loss", ax=ax)
plt.show()

# %% [markdown]
# The training loss keeps falling, as it nearly always does: the network grows ever better at
# the examples it sees again and again. It tells us little. The loss on unseen data flattens
# out instead, and a plateau is a good moment to slow down. `ReduceLROnPlateau` multiplies the
# rate by `factor` once the loss has not improved by more than `threshold` (relative, 0.0001 by
# default) for `patience` epochs.
#
# The unseen data must not be the test set: choosing *when* to slow down by looking at the test
# loss is fitting to the test set, and the test score would flatter us. So we carve a
# validation set out of the *training* data, 80/20, train on the 80 only, and keep the test
# set for the final score. Each seed draws its own split: a seed is a whole repetition (initial
# weights, batch order, split), so the spread over seeds includes the luck of the split.


# %%
def split_loaders(seed):
    """The loaders of one seed: its own 80/20 split of the training images."""
    return book_loaders(
        BATCH_SIZE, device=DEVICE, train_size=BUDGET.train_size, val_fraction=0.2, seed=seed
    )


print({name: loader.n_examples for name, loader in split_loaders(0).items()})

# %% [markdown]
# ```{warning}
# A random split assumes the examples are independent. When several rows come from the same
# person, or when time matters (forecasting the weather from the future is cheating), split by
# person or by date instead, or the validation loss leaks and lies.
# ```

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Learning rates chosen by the ReduceLROnPlateau schedule.", "name": "fig-plateau-schedule"}}
plateau = run(
    "+Plateau",
    sgd,
    lambda opt: ReduceLROnPlateau(opt, mode="min", factor=0.2, patience=PATIENCE),
    loaders=split_loaders,
    epochs=EPOCHS,
    device=DEVICE,
    seeds=SEEDS,
)
fig, ax = plt.subplots(figsize=(7, 3))
for seed, runs_of_seed in plateau.groupby("seed"):  # one line per seed: each cuts on its own
    ax.step(runs_of_seed["epoch"], runs_of_seed["lr"], where="post", label=f"seed {seed}")
ax.set(xlabel="epoch", ylabel="learning rate", title="Rates chosen by the plateau schedule")
ax.legend()
plt.show()

# %% tags=["nbval-ignore-output"]
drops = plateau.groupby("seed")["lr"].apply(lambda lr: int((lr.diff() < 0).sum()))
low, high = drops.min(), drops.max()
glue("plateau_drops", f"{low}" if low == high else f"{low} to {high}", display=False)

# %% [markdown]
# Over the seeds, the plateau schedule cut the rate {glue:text}`plateau_drops` time(s) per run:
# it acts only on evidence, so with few epochs it may never act at all.
#
# ## Comparing the schedules

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Schedule comparison: test accuracy of SGD with each schedule.", "name": "fig-schedule-comparison"}}
everything = pd.concat([baseline, expo, step, cosine, plateau], ignore_index=True)
fig, ax = plt.subplots(figsize=(8, 4.5))
plot_runs(everything, "test Accuracy", ax=ax, title="Test accuracy with each schedule")
plt.show()

# %% tags=["nbval-ignore-output"]
finals = final_scores(everything)
glue("best_schedule", finals.index[0], display=False)
glue("best_schedule_acc", finals.iloc[0], display=False)
glue("baseline_acc", finals["SGD"], display=False)
finals.to_frame("final test accuracy")

# %% [markdown]
# In this run the best final accuracy came from **{glue:text}`best_schedule`**
# ({glue:text}`best_schedule_acc:.3f`, against {glue:text}`baseline_acc:.3f` for plain SGD).
# Rankings between close runs move with the seed; the full budget repeats every run with
# several seeds and draws the band around each mean, so look at whether the bands overlap before
# trusting an order. What holds across runs: the decaying schedules smooth out the epoch-to-epoch
# wobble of plain SGD, cosine pays for its second rise with a dip in accuracy and recovers on
# the way down, and the plateau schedule trains on 20% less data but decides with evidence.
#
# | | Exponential decay | Step drops | Cosine annealing | Plateau |
# |---|---|---|---|---|
# | **Good** | very consistent; little to tune | consistent; little to tune | often the most accurate; cheap ensembles | uses evidence; often accurate in fewer epochs |
# | **Bad** | can cost some final accuracy | pays off mostly for long runs (100+ epochs) | needs tuning of $T_{max}$; less stable | needs a validation split (less training data); can overfit the validation set |
# | **Use when** | runs with different seeds end far apart | you want a better final model for little work | you can afford a few extra runs to squeeze out accuracy | you have plenty of data |
#
# No schedule wins everywhere; that depends on the data, and you find out by training. A sound
# habit is to start without a schedule, look at the curves, and then add the one whose
# weakness your run does not have.
#
# ## What we did
#
# - Computed $\gamma$ for exponential decay from where the rate should end, and $T_{max}$ for
#   cosine annealing from the number of dips, so that the run ends on a dip.
# - Drew every schedule from the real scheduler object, stepped as the training loop steps it.
# - Trained the baseline with each of four schedules; the plateau schedule decided on a
#   validation set split off the training data, never on the test set.
# - Compared them on one plot and summarised when to use which.
