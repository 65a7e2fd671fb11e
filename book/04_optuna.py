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
# # Hyperparameter search with Optuna
#
# Gradients tune the weights, but not the numbers we choose before training: how many layers,
# how many neurons, which learning rate. This page searches for them with Optuna
# {cite:p}`akiba2019optuna`, first on a toy function whose answer we know, then on the chapter's
# network with a variable number of layers, reads the search through its plots, prunes hopeless
# trials early, and finally trains the chosen network on all the training images the search used and
# scores it once on the test set.

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
            "idlmam[tune]==0.5.0",
        ],
        check=True,
    )

# %%
import math
import warnings

# Optuna imports tqdm.auto, which warns that no Jupyter widgets are installed; nothing here uses
# its progress bars, so the warning would only clutter the page.
warnings.filterwarnings("ignore", message="IProgress not found")
import matplotlib.pyplot as plt
import numpy as np
import optuna
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter
from optuna.visualization import matplotlib as optuna_plots

from idlmam.budget import get_budget
from idlmam.models import count_parameters, mlp
from idlmam.notebook import budget_banner, glue, setup
from idlmam.text import plural
from idlmam.tune import (
    chapter_loaders,
    create_study,
    make_objective,
    outcomes_frame,
    retrain_and_test,
    trial_outcome,
    trial_outcomes,
)
from idlmam.utils import get_device

setup()
budget_banner(sizes=get_budget().studies)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is noise on a page
# Optuna marks its matplotlib plots as experimental and warns on every call; the plots are
# exactly what we want here, so the warning would only clutter the page.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
TOY_TRIALS = BUDGET.studies.toy_trials  # the toy function costs microseconds per trial
TRIALS = BUDGET.studies.trials  # trials of the network search (10 in the chapter)
PRUNE_TRIALS = BUDGET.studies.prune_trials  # trials of the search with pruning (20)
TRIAL_EPOCHS = BUDGET.studies.epochs  # epochs inside each trial (10)
SEED = 0  # seeds the sampler, the split and the weights
SCORE = "validation accuracy"  # what each trial returns, as the plots name it
DEVICE = get_device()
print(f"budget={BUDGET.name}: {TRIALS} and {PRUNE_TRIALS} trials of {TRIAL_EPOCHS} epochs")

# %% [markdown]
# ## Why not a grid?
#
# The classic search tries every combination on a grid. Its cost multiplies with every
# hyperparameter: five values of three hyperparameters are 125 trainings, and most of them sit in
# regions a glance at the first few results would rule out. Optuna instead treats the search as
# a learning problem of its own. Its default sampler, the Tree-structured Parzen Estimator
# (TPE), splits the finished trials into the good and the rest and models, after each trial, the
# density of each group over the hyperparameters; it proposes the next trial where good
# settings are dense and the rest are sparse, while its models stay wide enough to keep
# exploring regions it knows little about.
#
# You describe the search as a Python function that takes a `trial`, asks it for each
# hyperparameter with a range (`trial.suggest_float`, `trial.suggest_int`, ...) and returns the
# score. Optuna calls it as many times as you allow. The range is part of the question: Optuna
# never proposes outside it.
#
# ## A toy function first
#
# $f(x, y) = |(x - 3)(y + 2)|$ is zero along the lines $x = 3$ and $y = -2$ and grows away from
# them. Can Optuna find a zero, searching $x, y \in [-10, 10]$?


# %%
def toy_function(trial):
    x = trial.suggest_float("x", -10.0, 10.0)  # x ~ U(-10, 10)
    y = trial.suggest_float("y", -10.0, 10.0)  # y ~ U(-10, 10)
    return abs((x - 3) * (y + 2))


toy = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=SEED))
toy.optimize(toy_function, n_trials=TOY_TRIALS)
x, y = toy.best_params["x"], toy.best_params["y"]
print(
    f"{TOY_TRIALS} trials; best value below 0.1: {toy.best_value < 0.1}; "
    f"near a zero line (|x-3| < 0.5 or |y+2| < 0.5): {abs(x - 3) < 0.5 or abs(y + 2) < 0.5}"
)

# %% tags=["nbval-ignore-output"]
glue("toy_best", toy.best_value, display=False)
glue("toy_x", x, display=False)
glue("toy_y", y, display=False)
glue("toy_gap", min(abs(x - 3), abs(y + 2)), display=False)  # to the nearest line of zeros
print(toy.best_params, toy.best_value)

# %% [markdown]
# The best trial reached $f =$ {glue:text}`toy_best:.2g` at $x =$ {glue:text}`toy_x:.3f`,
# $y =$ {glue:text}`toy_y:.3f`, {glue:text}`toy_gap:.2g` away from the nearest line of zeros.
# Where did the other trials go? Each dot below is one trial, on the contours of the function
# itself:

# %% mystnb={"figure": {"caption": "Where the toy study's trials went: every trial as a dot coloured by its number, on the contour lines of f(x, y) = |(x-3)(y+2)|; the dashed lines are its zeros, x = 3 and y = -2.", "name": "fig-toy-contour"}, "image": {"alt": "Square plot of x against y, both from -10 to 10, with grey contour lines of |(x-3)(y+2)| and two dashed lines at x = 3 and y = -2. The trials, coloured from early (dark) to late (yellow), cluster along and around the two dashed lines, most densely near their crossing; only a few early trials lie in the far corners."}}
grid = np.linspace(-10, 10, 201)
gx, gy = np.meshgrid(grid, grid)
trials = toy.trials_dataframe()
fig, ax = plt.subplots(figsize=(6, 5))
lines = ax.contour(gx, gy, np.abs((gx - 3) * (gy + 2)), levels=[1, 5, 20, 50, 100], colors="0.6")
ax.clabel(lines, fontsize=7)  # the value of f along each line
ax.axvline(3, color="k", ls="--", lw=1)
ax.axhline(-2, color="k", ls="--", lw=1)
dots = ax.scatter(trials["params_x"], trials["params_y"], c=trials["number"], s=16)
fig.colorbar(dots, ax=ax, label="trial number")
ax.set(xlabel="x", ylabel="y", title=f"{TOY_TRIALS} trials on |(x-3)(y+2)|")
plt.show()

# %%
near = ((trials["params_x"] - 3).abs() < 1) | ((trials["params_y"] + 2).abs() < 1)
even = 1 - (1 - 2 / 20) ** 2  # the share of the square within 1 of a line: two bands of width 2
glue("toy_near", near.mean(), display=False)
glue("toy_even", even, display=False)
print(f"within 1 of a line of zeros: {near.mean():.0%} of the trials; an even spread: {even:.0%}")

# %% [markdown]
# {glue:text}`toy_near:.0%` of the trials landed within 1 of a line of zeros, a band that
# covers {glue:text}`toy_even:.0%` of the square: after its first few random trials, the
# sampler spent its effort where the function is small and little in the far corners. That is
# two hyperparameters on a toy; whether the same focus pays with more of them, on a real
# network, is what the search below and the comparison of samplers on the
# [next page](04b_search_since.ipynb) measure.
#
# ## Searching the network's shape and learning rate
#
# Now the real thing: how many neurons per hidden layer (16 to 256), how many hidden layers
# (1 to 6) and which AdamW learning rate ($10^{-5}$ to $10^{-2}$). Three things matter:
#
# 1. **Never touch the test set.** Every trial is scored on a *validation* split carved out of
#    the training data. Hundreds of trials tuned on the test set would fit it, and the final
#    test score would flatter the model.
# 2. **Suggest each kind of value the right way.** Neurons and layers are integers
#    (`suggest_int`: 2.5 layers mean nothing); the learning rate matters by orders of magnitude,
#    so it is drawn on a log scale (`suggest_float(..., log=True)`), which tries 0.0001 as
#    often as 0.001.
# 3. **Build the network from the suggestions.** The number of layers is a plain argument of the
#    model builder, which stacks that many hidden layers in a loop:
#
# ```{literalinclude} ../idlmam/models.py
# :pyobject: mlp
# ```
#
# The objective, `idlmam.tune.make_objective`, trains whatever a *builder* makes of each
# trial and returns the last epoch's validation accuracy. Its default builder, `mlp_search`, is
# this search: it asks for the three values, builds `mlp(hidden=n, layers=k)`, and pairs it with
# AdamW and half a cosine over the trial's epochs (`adamw_cosine`), from the trial's learning
# rate down to a hundredth of it in the last epoch: the floor of the chapter's schedules, which
# step once per epoch, so that a last epoch at a rate of 0 would change no weight (the schedules
# page explains the choice; the per-batch schedules of the page on schedules since the chapter
# do end at 0). Any other network is searched by handing `make_objective` another
# builder (`build=`); the exercises search a CNN.
#
# ````{dropdown} The search space: the builder the objective uses
# ```{literalinclude} ../idlmam/tune/objective.py
# :pyobject: mlp_search
# ```
#
# ```{literalinclude} ../idlmam/tune/objective.py
# :pyobject: adamw_cosine
# ```
# ````

# %%
print("4 hidden layers of 64:", count_parameters(mlp(hidden=64, layers=4)), "parameters")
print("1 hidden layer of 256:", count_parameters(mlp(hidden=256, layers=1)), "parameters")

# %% tags=["nbval-ignore-output"]
train_loader, val_loader = chapter_loaders(BUDGET, seed=SEED, device=DEVICE)
objective = make_objective(train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED)
study = create_study(seed=SEED, direction="maximize")  # in memory; see the note below for disks
study.optimize(objective, n_trials=TRIALS)
study.trials_dataframe(attrs=("number", "value", "params"))

# %% tags=["nbval-ignore-output"]
best = study.best_params
glue("best_neurons", best["neurons_per_layer"], display=False)
glue("best_layers", plural(best["hidden_layers"], "hidden layer"), display=False)
glue("best_lr", best["learning_rate"], display=False)
glue("best_val", study.best_value, display=False)
print("study.best_params:", ", ".join(f"{name} = {value:.3g}" for name, value in best.items()))

# %% [markdown]
# The best of {glue:text}`best_layers` of {glue:text}`best_neurons` neurons,
# trained with a learning rate of {glue:text}`best_lr:.2e`, reached a validation accuracy of
# {glue:text}`best_val:.3f`. With this few trials that is a rough answer; 50 to 100 trials are
# more usual when the time is there.
#
# ```{tip}
# A search of hundreds of trials should survive a crash and use every core you have. Pass a
# storage to `create_study`: a SQLite file (`sqlite:///search.db`) resumes where it stopped;
# a journal file (`journal:///search.log`) lets several processes on one machine share one
# study; a PostgreSQL URL lets several machines share it. `python -m idlmam.tune --storage URL
# --study NAME --n-trials N` is such a worker (see the README). A seeded search like this one is
# reproducible; one run by parallel workers is not, because what each worker proposes depends
# on which trials the others happened to have finished.
# ```
#
# ## Reading the search
#
# Optuna draws a study in a few standard plots (`optuna.visualization` with plotly, or
# `optuna.visualization.matplotlib` as here). Each takes a `target_name` for the score, which it
# otherwise calls "Objective Value".

# %% [markdown]
# The *optimization history* plots each trial's score and the best so far. If the best is still
# climbing at the end, more trials will pay; if it went flat long ago, fewer will do next time.

# %% mystnb={"figure": {"caption": "Optuna's optimization history of the network search: each trial's validation accuracy, and the best so far.", "name": "fig-optimization-history"}, "image": {"alt": "Validation accuracy (y) against trial number (x): one blue dot per trial and a red line for the best score found so far, which rises to each new best and stays flat in between."}} tags=["nbval-ignore-output"]
ax = optuna_plots.plot_optimization_history(study, target_name=SCORE)
ax.figure.set_size_inches(7, 4)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
plt.show()

# %% [markdown]
# The *slice plot* shows the score against each hyperparameter on its own, coloured by trial
# number: a tight band of good scores narrows the range for the next search; no pattern at all
# suggests that hyperparameter hardly matters here.

# %% mystnb={"figure": {"caption": "Optuna's slice plot: the validation accuracy of every trial against each hyperparameter on its own (the learning rate on a log axis), coloured by trial number.", "name": "fig-slice"}, "image": {"alt": "Three panels sharing a y axis of validation accuracy: against hidden layers, against the learning rate on a log scale, and against neurons per layer. Each trial is a dot in every panel, shaded from light (early trials) to dark blue (late ones)."}} tags=["nbval-ignore-output"]
optuna_plots.plot_slice(study, target_name=SCORE)
plt.gcf().set_size_inches(10, 3.5)
plt.show()

# %% [markdown]
# Two plots show how hyperparameters *interact*. The *contour plot* maps the score over a pair
# of them: the dots are the trials, and the colours between them are Optuna's interpolation,
# not measurements. The *parallel-coordinate plot* draws each trial as a line through all its
# values. Both need many trials to say much: with a handful they mostly show where the search
# has been.

# %% mystnb={"figure": {"caption": "Optuna's contour plot of the validation accuracy over the learning rate (log axis) and the neurons per layer: the dots are trials, the colours Optuna's interpolation between them.", "name": "fig-contour"}, "image": {"alt": "Filled contour map with the learning rate on a logarithmic x axis and neurons per layer on the y axis, shaded from light (low validation accuracy) to dark blue (high); the trials are small dots, and the shading between them is interpolated."}} tags=["nbval-ignore-output"]
ax = optuna_plots.plot_contour(
    study, params=["learning_rate", "neurons_per_layer"], target_name=SCORE
)
ax.figure.set_size_inches(6, 5)
ax.xaxis.set_minor_formatter(NullFormatter())  # the log axis's minor labels would overlap
plt.show()

# %% mystnb={"figure": {"caption": "Optuna's parallel-coordinate plot: every trial as one line through its validation accuracy and its three hyperparameters, coloured by the accuracy.", "name": "fig-parallel-coordinate"}, "image": {"alt": "Four vertical axes side by side: validation accuracy, hidden layers, learning rate (log scale) and neurons per layer. Each trial is a line crossing all four at its values, darker blue for a higher validation accuracy."}} tags=["nbval-ignore-output"]
optuna_plots.plot_parallel_coordinate(study, target_name=SCORE)
plt.gcf().set_size_inches(8, 4)
plt.show()

# %% [markdown]
# ## Pruning hopeless trials
#
# A network trains for several epochs, and its first epochs already say a lot: one that is far
# behind the others after an epoch or two rarely ends up the best. With `prune=True` the
# objective reports the validation accuracy after every epoch (`trial.report`) and asks whether
# to go on (`trial.should_prune`). Optuna's *median pruner* then stops a trial whose best score
# so far is below the median of the *finished* trials' scores at the same epoch. Two settings fit
# it to a study: `n_startup_trials`, how many trials must have finished before it judges at all
# (default 5), and `n_warmup_steps`, how many epochs of each trial it lets pass before judging
# (default 0). We let it judge once a quarter of the study's trials have finished (at least two),
# and let the first quarter of each trial's epochs (rounded down) pass before judging it:

# %%
STARTUP = max(2, PRUNE_TRIALS // 4)  # finished trials before the pruner judges
WARMUP = TRIAL_EPOCHS // 4  # epochs of each trial before it is judged (0: judged from the first)
glue("prune_startup", STARTUP, display=False)
print(
    f"{PRUNE_TRIALS} trials of {TRIAL_EPOCHS} epochs, judged once {STARTUP} have finished, "
    f"each after {plural(WARMUP + 1, 'epoch')} at the earliest"
)

# %% [markdown]
# The pruner needs hopeless trials to stop, and a search whose ranges someone chose without
# knowing the answer has them. This one keeps the widths and depths of the first search but
# draws the learning rate from $10^{-5}$ to $10^{-1}$, the range of Optuna's own PyTorch example:
# what one picks before knowing where AdamW's good rates lie. Its bottom end learns too slowly
# for a few epochs, its top end may learn nothing at all.
#
# A rate that makes training *diverge* is another matter: the loss turns NaN or infinite, or
# climbs far above the $\ln 10 \approx 2.3$ of guessing among ten classes. The objective stops
# such a run at once, whatever the pruner thinks (`max_train_loss`, here twice that). Optuna has
# no state of its own for it: the objective files it as PRUNED, because the sampler learns from
# a pruned trial (TPE ranks it below the finished ones), while it ignores a failed one and would
# propose the same rates again. So that the two kinds of PRUNED trial are not mixed up, the
# objective writes who stopped each one into its user attribute `stopped_by`: `"pruner"` or
# `"divergence"` (and the why into `stop_reason`). `idlmam.tune.trial_outcomes` counts from
# Optuna's states and that attribute; the table's `outcome` column says how each trial ended.

# %% tags=["nbval-ignore-output"]
prunable = make_objective(
    train_loader,
    val_loader,
    epochs=TRIAL_EPOCHS,
    device=DEVICE,
    seed=SEED,
    prune=True,
    learning_rate=(1e-5, 1e-1),  # neurons (16 to 256) and layers (1 to 6) as before
    max_train_loss=2 * math.log(10),  # twice the loss of a blind guess: diverged
)
pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP, n_warmup_steps=WARMUP)
study2 = create_study(seed=SEED, direction="maximize", pruner=pruner)
study2.optimize(prunable, n_trials=PRUNE_TRIALS)
outcomes = trial_outcomes(study2)  # from Optuna's states and each trial's stopped_by
table = outcomes_frame(study2)  # one row per trial: outcome, score, epochs trained, reason
print(outcomes.summary())
table

# %% tags=["nbval-ignore-output"]
pruned = table[table["outcome"] == "pruned"]
spared = len(pruned) * TRIAL_EPOCHS - pruned["epochs_trained"].sum()
if len(pruned):
    saved = (
        f"The {len(pruned)} pruned trials trained {pruned['epochs_trained'].sum()} epochs "
        f"between them instead of {len(pruned) * TRIAL_EPOCHS}: the pruner saved {spared} "
        f"of the study's {PRUNE_TRIALS * TRIAL_EPOCHS} epochs."
    )
else:
    saved = "The pruner stopped no trial in this study, so it saved no epoch."
if outcomes.diverged:
    rates = table.loc[table["outcome"] == "diverged", "params_learning_rate"]
    diverged = (
        f"The guard, not the pruner, stopped the {plural(outcomes.diverged, 'trial')} that diverged, "
        f"with learning rates between {rates.min():.2g} and {rates.max():.2g}."
    )
else:
    diverged = "No trial diverged in this range: the guard had nothing to stop."
glue("n_prune_trials", outcomes.total, display=False)
glue("prune_summary", outcomes.summary(), display=False)
glue("prune_saved", saved, display=False)
glue("prune_diverged", diverged, display=False)
print(saved, diverged)

# %% [markdown]
# Of the {glue:text}`n_prune_trials` trials, counted from their Optuna states and `stopped_by`:
# {glue:text}`prune_summary`. {glue:text}`prune_saved` {glue:text}`prune_diverged` The plot
# draws each trial's validation accuracy epoch by epoch, coloured by how it ended, so you can
# see where each one stopped (a trial that diverged in its first epoch has no score to draw):

# %% mystnb={"figure": {"caption": "The pruning study, trial by trial: validation accuracy after each epoch, blue for trials that ran to the end, orange (ending in a cross) for those the median pruner stopped, red for those that diverged; the title counts each kind.", "name": "fig-intermediate-values"}, "image": {"alt": "Validation accuracy from 0 to 1 (y) against epochs trained (x), one line per trial. Blue lines run the whole length of the trial; orange ones stop early, ending in a cross, most of them below the blue ones at the same epoch; red lines, if any, belong to trials that diverged. The title gives how many trials the pruner stopped, how many diverged and how many completed."}} tags=["nbval-ignore-output"]
colours = {"complete": "tab:blue", "pruned": "tab:orange", "diverged": "tab:red"}
fig, ax = plt.subplots(figsize=(7, 4))
for trial in study2.trials:
    kind = trial_outcome(trial)
    steps = sorted(trial.intermediate_values)
    epochs = [step + 1 for step in steps]  # trial.report(value, step) after epoch step + 1
    values = [trial.intermediate_values[step] for step in steps]
    ax.plot(epochs, values, "-o", color=colours[kind], lw=1.2, ms=3, alpha=0.8)
    if kind != "complete" and steps:
        ax.plot(epochs[-1], values[-1], "x", color=colours[kind], ms=9, mew=2)
ax.legend(
    handles=[
        Line2D([], [], color=c, marker="o", ms=3, label=f"{k} ({getattr(outcomes, k)})")
        for k, c in colours.items()
    ],
    loc="lower right",
)
ax.set(xlabel="epochs trained", ylabel="validation accuracy", ylim=(0, 1))
ax.set_title(outcomes.summary(), fontsize=10)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
plt.show()

# %% [markdown]
# Pruning is judged against the trials seen *so far*. Early on, poor trials run to the end
# because nothing better is known yet; later, a trial that is merely mediocre gets stopped
# because good ones now set the bar. A pruned trial might have caught up had it run on: the
# pruner bets that it would not, and the epochs it saves pay for more trials. Only *finished*
# trials set the bar: a diverged trial gives the pruner nothing to compare with, nor does it
# count towards its {glue:text}`prune_startup` start-up trials.
#
# ## The final model: every training image, one look at the test set
#
# The search used a validation split to *choose*. To *measure*, we train the chosen network on
# all the training images the search used, its validation split included, with the same recipe
# as a trial (the same builder, optimizer, schedule, epochs and seed), and score it on the test
# set exactly once. That number is the one to report; the validation score of the best trial
# was picked as the maximum of many and is biased upward. `idlmam.tune.retrain_and_test` is
# that recipe: it takes the study's best parameters and loads the test set only once training
# is over.

# %% tags=["nbval-ignore-output"]
final = retrain_and_test(
    study, train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED
)
glue("test_acc", final.test_accuracy, display=False)
glue("n_final", final.n_train, display=False)
glue("more_images", final.n_train / train_loader.n_examples - 1, display=False)
glue("test_gap", final.test_accuracy - study.best_value, display=False)
glue("n_trials", TRIALS, display=False)
print(
    f"validation (best trial): {study.best_value:.3f}   "
    f"test (once, after training on {final.n_train} images): {final.test_accuracy:.3f}"
)

# %% [markdown]
# Trained on all {glue:text}`n_final` training images the search used, the chosen network
# scores {glue:text}`test_acc:.3f` on the test set, against {glue:text}`best_val:.3f` for its
# trial on the validation split, a difference of {glue:text}`test_gap:+.3f`. Two effects make
# it up, pulling opposite ways: the final network trained on {glue:text}`more_images:.0%` more
# images than the trial, which helps it, while the validation score was the best of
# {glue:text}`n_trials` and so flatters its trial. One study cannot tell how much each
# contributed.
#
# ## What we did
#
# - Minimised a toy function with Optuna and saw the search concentrate near the answer.
# - Searched the network's width, depth and learning rate with `suggest_int` and
#   `suggest_float(..., log=True)`, scoring on a validation split of the training data.
# - Read the search through the history, slice, contour and parallel-coordinate plots.
# - Pruned trials with `trial.report` / `should_prune`, and counted the trials the pruner
#   stopped apart from those whose training diverged.
# - Retrained the best configuration on every training image the search used, validation split
#   included, and scored it once on the test set.
