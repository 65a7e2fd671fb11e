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
            "idlmam[tune]==0.5.2",
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
import pandas as pd
from matplotlib.colors import ListedColormap
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
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is noise on a page
# Optuna marks its matplotlib plots as experimental and warns on every call; the plots are
# exactly what we want here, so the warning would only clutter the page.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
TOY_TRIALS = BUDGET.studies.toy_trials  # the toy function costs microseconds per trial
TRIALS = BUDGET.studies.trials  # trials of the network search (10 in the chapter)
PRUNE_TRIALS = BUDGET.studies.prune_trials  # trials of the search with pruning (20 in the chapter)
TRIAL_EPOCHS = BUDGET.studies.epochs  # epochs inside each trial (10 in the chapter)
SEED = 0  # seeds the sampler, the split and the weights
SCORE = "validation accuracy"  # what each trial returns, as the plots name it
SMALL_IMAGES = 3_000  # the first, hand-written search: a few training images, on every budget
DEVICE = get_device()
# the search's images, split by chapter_loaders: a trial trains on one part, is scored on the other
train_loader, val_loader = chapter_loaders(BUDGET, seed=SEED, device=DEVICE)
N_TRAIN, N_VAL = train_loader.n_examples, val_loader.n_examples


SEARCH_SIZES = (  # the budget's studies, and how the search splits their images
    f"{BUDGET.studies.describe()}: each trial trains on {N_TRAIN / (N_TRAIN + N_VAL):.0%} of "
    f"them ({N_TRAIN:,}) and is scored on the other {N_VAL / (N_TRAIN + N_VAL):.0%} "
    f"({N_VAL:,}); the first, hand-written search uses {SMALL_IMAGES:,} of them"
)
budget_banner(BUDGET, SEARCH_SIZES)
print(f"budget={BUDGET.name}: {TRIALS} and {PRUNE_TRIALS} trials of {TRIAL_EPOCHS} epochs")

# %% [markdown]
# ## Why not a grid?
#
# The classic search tries every combination on a grid. Its cost multiplies with every
# hyperparameter: five values of three hyperparameters are 125 trainings, and most of them sit in
# regions a glance at the first few results would rule out. Optuna instead treats the search as
# a learning problem of its own. Its default sampler, the Tree-structured Parzen Estimator
# (TPE) {cite:p}`bergstra2011algorithms`, does not model how the score depends on the
# hyperparameters. After a first batch of random trials, it splits the trials so far into the
# best few and the rest and fits a density over the hyperparameters to each group: $l(x)$ to the
# good settings, $g(x)$ to the others. It draws candidates from $l(x)$ and proposes the one with
# the largest ratio $l(x)/g(x)$, where good settings are dense and the others sparse. Both
# densities mix in a wide prior over the whole range, so the sampler keeps trying regions it
# knows little about.
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
# covers {glue:text}`toy_even:.0%` of the square: after its first, random trials, the sampler
# spent its effort where the function is small and little in the far corners. That is two
# hyperparameters on a toy. Whether the same focus pays with more of them, on a real network, is
# not something one study can show: the comparison of samplers on the
# [next page](04b_search_since.ipynb) measures it.
#
# ## Searching the network's shape and learning rate
#
# Now the real thing: how many neurons per hidden layer (16 to 256), how many hidden layers
# (1 to 6) and which AdamW learning rate ($10^{-5}$ to $10^{-2}$). Three things matter:
#
# 1. **Never touch the test set.** Every trial is scored on a *validation* split carved out of
#    the training data: here {glue:text}`n_val:,` of the {glue:text}`n_search:,` images the
#    search draws, the trial training on the other {glue:text}`n_train:,`. Hundreds of trials
#    tuned on the test set would fit it, and the final test score would flatter the model.
# 2. **Suggest each kind of value the right way.** Neurons and layers are integers
#    (`suggest_int`: 2.5 layers mean nothing); the learning rate matters by orders of magnitude,
#    so it is drawn on a log scale (`suggest_float(..., log=True)`), which gives each power of
#    ten of the range, 0.0001 to 0.001 as much as 0.001 to 0.01, the same share of its random
#    draws.
# 3. **Build the network from the suggestions.** The number of layers is a plain argument of the
#    model builder, which stacks that many hidden layers in a loop:
#
# ```{literalinclude} ../idlmam/models.py
# :pyobject: mlp
# ```
#
# Width and depth change the size of the network very differently: most of the weights sit in
# the first layer, which connects the 784 pixels to the first hidden layer, so a wide network
# costs more than a deep, narrow one:

# %%
print(f"4 hidden layers of 64: {count_parameters(mlp(hidden=64, layers=4)):,} parameters")
print(f"1 hidden layer of 256: {count_parameters(mlp(hidden=256, layers=1)):,} parameters")
glue("n_train", N_TRAIN, display=False)
glue("n_val", N_VAL, display=False)
glue("n_search", N_TRAIN + N_VAL, display=False)

# %% [markdown]
# ### The objective, written out
#
# The objective is a function of the trial. It asks the trial for the three values, builds the
# network, trains it epoch by epoch and returns its validation accuracy. After every epoch it
# also tells Optuna the score so far, `trial.report(score, step)`, with the epoch's index as the
# step (0 after the first epoch), and asks whether the study's *pruner* wants the trial stopped,
# `trial.should_prune()`; raising `optuna.TrialPruned` ends it there (more on pruning below).
# Every trial starts from the same seed, which sets the initial weights and the batch order
# (`idlmam.utils.seed_run`), so trials differ only by their hyperparameters. The recipe is the
# chapter's: AdamW, with half a cosine from the trial's learning rate down to a hundredth of it
# in the last epoch (`idlmam.tune.adamw_cosine`, shown below). Written out:


# %% tags=["lesson"]
import optuna
import torch
from torch import nn

from idlmam.models import mlp
from idlmam.tune import adamw_cosine
from idlmam.utils import seed_run


def objective_for(train_loader, val_loader, *, epochs, device="cpu", seed=0):
    """An Optuna objective: each trial trains one network and returns its validation accuracy."""

    def objective(trial):
        # 1. the trial suggests the hyperparameters, each in its range
        neurons = trial.suggest_int("neurons_per_layer", 16, 256)
        layers = trial.suggest_int("hidden_layers", 1, 6)
        lr = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
        # 2. build the network and its recipe, from the same seed in every trial
        seed_run(seed, train_loader)  # the initial weights and the batch order
        model, optimizer, schedule = adamw_cosine(mlp(hidden=neurons, layers=layers), lr, epochs)
        model.to(device)
        loss_func = nn.CrossEntropyLoss()
        for epoch in range(epochs):
            # 3. train one epoch: an AdamW step per batch, a schedule step per epoch
            model.train()
            for x, y in train_loader:
                optimizer.zero_grad()
                loss_func(model(x.to(device)), y.to(device)).backward()
                optimizer.step()
            if schedule is not None:  # a trial of one epoch has no schedule
                schedule.step()
            # 4. score it on the validation split
            model.eval()
            right, seen = 0, 0
            with torch.no_grad():
                for x, y in val_loader:
                    right += (model(x.to(device)).argmax(dim=1) == y.to(device)).sum().item()
                    seen += len(y)
            score = right / seen
            # 5. report the score after this epoch (step = epoch, from 0); stop if it is hopeless
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    return objective


# %% [markdown]
# Run it once, small: {glue:text}`small_trials` trials of {glue:text}`small_epochs` epochs,
# training on {glue:text}`small_train:,` images and scoring each trial on {glue:text}`small_val:,`
# others, in a study with Optuna's median pruner (explained in the section on pruning), which may
# stop a trial once {glue:text}`small_startup` trials have completed:

# %% tags=["nbval-ignore-output"]
SMALL_TRIALS, SMALL_EPOCHS, SMALL_STARTUP = 6, 3, 2
small_train, small_val = chapter_loaders(BUDGET, seed=SEED, device=DEVICE, train_size=SMALL_IMAGES)
small = optuna.create_study(
    direction="maximize",
    sampler=optuna.samplers.TPESampler(seed=SEED),
    pruner=optuna.pruners.MedianPruner(n_startup_trials=SMALL_STARTUP),
)
small.optimize(
    objective_for(small_train, small_val, epochs=SMALL_EPOCHS, device=DEVICE, seed=SEED),
    n_trials=SMALL_TRIALS,
)
ended = trial_outcomes(small)
print(
    f"{plural(ended.complete, 'trial')} ran all {SMALL_EPOCHS} epochs, the pruner stopped "
    f"{ended.pruned}; the best reached a validation accuracy of {small.best_value:.3f}"
)
glue("small_trials", SMALL_TRIALS, display=False)
glue("small_epochs", SMALL_EPOCHS, display=False)
glue("small_startup", SMALL_STARTUP, display=False)
glue("small_train", small_train.n_examples, display=False)
glue("small_val", small_val.n_examples, display=False)

# %% [markdown]
# Optuna keeps what `trial.report` received, and `plot_intermediate_values` draws it: one line
# per trial, the validation accuracy after each epoch, up to the epoch where the trial ended.

# %% mystnb={"figure": {"caption": "Optuna's intermediate-values plot of the small study run with the objective written out above: each trial's validation accuracy after each epoch, as trial.report received it (step 0 is the first epoch, drawn at 1), up to the epoch where the trial ended.", "name": "fig-small-intermediate"}, "image": {"alt": "Validation accuracy (y) against epochs trained (x, 1 to 3), one coloured line per trial of the small study, labelled in a legend on the right with the trial's number and how it ended: the completed trials run to the last epoch, the pruned ones stop early."}} tags=["nbval-ignore-output"]
with plt.rc_context():  # Optuna's plot switches to ggplot's grey style: for this figure only
    ax = optuna_plots.plot_intermediate_values(small)
    ended_as = {t.number: trial_outcome(t) for t in small.trials}
    for line, colour in zip(ax.get_lines(), plt.get_cmap("tab10").colors):
        number = int(line.get_label().removeprefix("Trial"))
        line.set(color=colour, label=f"trial {number}: {ended_as[number]}")
    steps = range(SMALL_EPOCHS)
    ax.set_xticks(steps, [str(step + 1) for step in steps])  # step s reports epoch s + 1
    ax.set(xlabel="epochs trained", ylabel="validation accuracy")
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", borderaxespad=0)
    ax.figure.set_size_inches(7, 3.5)
    plt.show()

# %% [markdown]
# The searches below train longer, on more images, with more trials, so they use the package's
# version of this objective, `idlmam.tune.make_objective`, which `tests/book/test_04_optuna.py`
# holds to the function above: given the same trials and data, the two report the same
# validation accuracies after every epoch, the pruner stops the same trials, and they return the
# same scores. Around the same loop, `make_objective` adds what a long search needs: it stops a
# run whose training diverges, writes down who stopped each trial (below), and searches any other
# network through a *builder*, a function that makes the model, its optimizer and its schedule
# of a trial. Its default builder, `mlp_search`, is this search: it asks for the three values,
# builds `mlp(hidden=n, layers=k)`, and pairs it with AdamW and half a cosine over the trial's
# epochs (`adamw_cosine`), from the trial's learning rate down to a hundredth of it in the last
# epoch: the floor of the chapter's schedules, which step once per epoch, so that a last epoch at
# a rate of 0 would change no weight (the schedules page explains the choice; the per-batch
# schedules of the page on schedules since the chapter do end at 0). Any other network is
# searched by handing `make_objective` another builder (`build=`); the exercises search a CNN.
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

# %% tags=["nbval-ignore-output"]
objective = make_objective(train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED)
study = create_study(seed=SEED, direction="maximize")  # in memory; see the note below for disks
study.optimize(objective, n_trials=TRIALS)
best = study.best_params
print(
    f"best trial: {plural(best['hidden_layers'], 'hidden layer')} of "
    f"{best['neurons_per_layer']} neurons, learning rate {best['learning_rate']:.2g}: "
    f"validation accuracy {study.best_value:.3f}"
)
glue("best_val", study.best_value, display=False)
glue("n_trials", TRIALS, display=False)

# %% [markdown]
# Each trial, with the hyperparameters it tried and its validation accuracy after its last
# epoch:


# %%
def trials_table(study, outcomes=False):
    """A study's trials, one row each, rounded and named in words (with how each ended)."""
    frame = outcomes_frame(study)
    table = pd.DataFrame(
        {
            "trial": frame["number"],
            "outcome": frame["outcome"].replace({"complete": "completed"}),
            "epochs trained": frame["epochs_trained"],
            "val. accuracy": [("–" if pd.isna(v) else f"{v:.3f}") for v in frame["value"]],
            "layers": frame["params_hidden_layers"],
            "neurons": frame["params_neurons_per_layer"],
            "learning rate": [f"{lr:.2g}" for lr in frame["params_learning_rate"]],
        }
    ).set_index("trial")
    table = table.rename_axis(index=None, columns="trial")  # "trial" in the corner: one header row
    return table if outcomes else table.drop(columns=["outcome", "epochs trained"])


# %% tags=["nbval-ignore-output"]
trials_table(study)

# %% [markdown]
# With {glue:text}`n_trials` trials the best is a rough answer: the history of the search, the
# first plot below, shows whether more trials would still pay.
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
# otherwise calls "Objective Value". Most of the matplotlib ones switch matplotlib to its grey
# `ggplot` style, for good: each cell below draws its plot inside `plt.rc_context()`, which puts
# the settings back when the plot is done, so that the book's own figures keep their style.

# %% [markdown]
# The *optimization history* plots each trial's score and the best so far. If the best is still
# climbing at the end, more trials are likely to pay; if it went flat long ago, fewer will do
# next time.

# %% mystnb={"figure": {"caption": "Optuna's optimization history of the network search: each trial's validation accuracy, and the best so far.", "name": "fig-optimization-history"}, "image": {"alt": "Validation accuracy (y) against trial number (x): one blue dot per trial and a red line for the best score found so far, which rises to each new best and stays flat in between."}} tags=["nbval-ignore-output"]
with plt.rc_context():  # the ggplot style Optuna switches to stays in this figure
    ax = optuna_plots.plot_optimization_history(study, target_name=SCORE)
    ax.figure.set_size_inches(7, 4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
    plt.show()

# %% [markdown]
# The *slice plot* shows the score against each hyperparameter on its own, coloured by trial
# number: a tight band of good scores narrows the range for the next search; no pattern at all
# suggests that hyperparameter hardly matters here.

# %% mystnb={"figure": {"caption": "Optuna's slice plot: the validation accuracy of every trial against each hyperparameter on its own (the learning rate on a log axis), coloured by trial number.", "name": "fig-slice"}, "image": {"alt": "Three panels sharing a y axis of validation accuracy: against hidden layers, against the learning rate on a log scale, and against neurons per layer. Each trial is a dark-outlined dot in every panel, shaded from light blue (early trials) to dark blue (late ones)."}} tags=["nbval-ignore-output"]
with plt.rc_context():
    optuna_plots.plot_slice(study, target_name=SCORE)
    fig = plt.gcf()
    fig.set_size_inches(10, 3.5)
    blues = ListedColormap(plt.get_cmap("Blues")(np.linspace(0.3, 1, 256)))  # no white end
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
            continue
        ax.xaxis.set_minor_formatter(NullFormatter())  # a log axis's minor labels overlap
        for dots in ax.collections:  # the trials, coloured by number (and the colour bar's)
            if dots.get_array() is not None:
                dots.set_cmap(blues)
                dots.set_edgecolor("0.25")  # a dark outline: even the lightest dot shows
    plt.show()

# %% [markdown]
# Two plots show how hyperparameters *interact*. The *contour plot* maps the score over a pair
# of them: the dots are the trials, and the colours between them are Optuna's interpolation,
# not measurements. The *parallel-coordinate plot* draws each trial as a line through all its
# values. Both need many trials to say much: with a handful they mostly show where the search
# has been.

# %% mystnb={"figure": {"caption": "Optuna's contour plot of the validation accuracy over the learning rate (log axis) and the neurons per layer: the dots are trials, the colours Optuna's interpolation between them.", "name": "fig-contour"}, "image": {"alt": "Filled contour map with the learning rate on a logarithmic x axis and neurons per layer on the y axis, shaded from light (low validation accuracy) to dark blue (high); the trials are small dots, and the shading between them is interpolated."}} tags=["nbval-ignore-output"]
with plt.rc_context():
    ax = optuna_plots.plot_contour(
        study, params=["learning_rate", "neurons_per_layer"], target_name=SCORE
    )
    ax.figure.set_size_inches(6, 5)
    ax.xaxis.set_minor_formatter(NullFormatter())  # the log axis's minor labels would overlap
    plt.show()

# %% mystnb={"figure": {"caption": "Optuna's parallel-coordinate plot: every trial as one line through its validation accuracy and its three hyperparameters, coloured by the accuracy.", "name": "fig-parallel-coordinate"}, "image": {"alt": "Four vertical axes side by side: validation accuracy, hidden layers, learning rate (log scale) and neurons per layer. Each trial is a line crossing all four at its values, darker blue for a higher validation accuracy."}} tags=["nbval-ignore-output"]
with plt.style.context("ggplot"):  # this one keeps the style: the look of the others
    ax = optuna_plots.plot_parallel_coordinate(study, target_name=SCORE)
    blues = plt.get_cmap("Blues")(np.linspace(0.3, 1, 256))  # Blues without its white end
    ax.collections[0].set_cmap(ListedColormap(blues))  # the lines (and their colour bar)
    names = [tick.get_text().replace("_", " ") for tick in ax.get_xticklabels()]
    ax.set_xticks(ax.get_xticks(), [name.replace(" ", "\n", 1) for name in names], rotation=0)
    ax.set_title("")  # the caption says what it is
    for other in ax.figure.axes[1:]:  # the colour bar, then one axes per hyperparameter
        if other.get_label() != "<colorbar>" and other.get_yscale() == "linear":  # whole numbers
            other.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.figure.set_size_inches(8, 4)
    plt.show()

# %% [markdown]
# ## Pruning hopeless trials
#
# A network trains for several epochs, and its first epochs already say a lot: one that is far
# behind the others after an epoch or two rarely ends up the best. The objective written out
# above reports the validation accuracy after every epoch (`trial.report`) and asks whether to
# go on (`trial.should_prune`); `make_objective` reports too, and asks when given `prune=True`.
# Optuna's *median pruner* answers: it stops a trial when the best score the trial has reported
# so far is below the median of the scores the *completed* trials reported at the same step.
# Two settings fit it to a study: `n_startup_trials`, how many trials must have completed before
# it judges at all (default 5; pruned trials do not count), and `n_warmup_steps`, how many steps
# of each trial, here epochs, it lets pass before judging (default 0: judged from the first
# epoch on). We let it judge once a quarter of the study's trials have completed (at least two),
# and let the first quarter of each trial's epochs (rounded down) pass before judging it:

# %%
STARTUP = max(2, PRUNE_TRIALS // 4)  # completed trials before the pruner judges
WARMUP = TRIAL_EPOCHS // 4  # epochs of each trial before it is judged (0: judged from the first)
glue("prune_startup", STARTUP, display=False)
print(
    f"{PRUNE_TRIALS} trials of {TRIAL_EPOCHS} epochs, judged once {STARTUP} have completed, "
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
# a pruned trial (TPE ranks it below the completed ones), while it ignores a failed one and would
# propose the same rates again. So that the two kinds of PRUNED trial are not mixed up, the
# objective writes who stopped each one into its user attribute `stopped_by`: `"pruner"` or
# `"divergence"`. `idlmam.tune.trial_outcomes` counts from Optuna's states and that attribute;
# the table's `outcome` column says how each trial ended, and a stopped trial's accuracy is the
# last one it reported.

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
trials_table(study2, outcomes=True)

# %% tags=["nbval-ignore-output"]
outcomes = trial_outcomes(study2)  # from Optuna's states and each trial's stopped_by
table = outcomes_frame(study2)  # one row per trial: outcome, score, epochs trained, parameters
pruned = table[table["outcome"] == "pruned"]
trained = pruned["epochs_trained"].sum()
counts = (
    f"Of the {plural(outcomes.total, 'trial')}, {outcomes.complete} ran to the end and the "
    f"pruner stopped {outcomes.pruned}."
)
if len(pruned):
    saved = (
        f"The pruned trials trained {plural(trained, 'epoch')} between them instead of "
        f"{len(pruned) * TRIAL_EPOCHS:,}: the pruner saved {len(pruned) * TRIAL_EPOCHS - trained:,} "
        f"of the study's {PRUNE_TRIALS * TRIAL_EPOCHS:,} epochs."
    )
else:
    saved = "The pruner stopped no trial in this study, so it saved no epoch."
if outcomes.diverged:
    rates = table.loc[table["outcome"] == "diverged", "params_learning_rate"]
    diverged = (
        f"The guard, not the pruner, stopped the {plural(outcomes.diverged, 'trial')} that "
        f"diverged, with learning rates between {rates.min():.2g} and {rates.max():.2g}."
    )
else:
    diverged = "No trial diverged in this range: the guard had nothing to stop."
print(counts, saved, diverged)

# %% [markdown]
# The figure shows where each trial stopped. On the left, each trial's validation accuracy
# epoch by epoch, coloured by how it ended (a trial that diverged in its first epoch reported no
# score and has no line); on the right, the last accuracy each trial reported, in the order the
# study ran them:

# %% mystnb={"figure": {"caption": "The pruning study. Left: each trial's validation accuracy after each epoch it trained, blue for trials that ran to the end, orange (ending in a cross) for those the median pruner stopped, and purple for any that diverged (the legend lists the endings that occurred). Right: the last validation accuracy each trial reported, against its number; the pruner judged no trial in the shaded ones, run before enough trials had completed.", "name": "fig-intermediate-values"}, "image": {"alt": "Two panels sharing a y axis of validation accuracy from 0 to 1. Left: one line per trial against epochs trained; blue lines run the whole length of the trial, orange ones stop early in a cross, most of them below the blue ones at the same epoch. Right: one marker per trial against the trial number, a blue dot for a completed trial and an orange cross for a pruned one; the first trials, in a shaded band, all ran to the end."}} tags=["nbval-ignore-output"]
ENDED = {  # how a trial ended: its colour, its marker and its name in the legend
    "complete": ("#0072B2", "o", "ran to the end"),
    "pruned": ("#E69F00", "x", "stopped by the pruner"),
    "diverged": ("#CC79A7", "s", "diverged"),
}
fig, (curves, last) = plt.subplots(1, 2, figsize=(10, 4), sharey=True, width_ratios=(3, 2))
for trial in study2.trials:
    colour, marker, _ = ENDED[trial_outcome(trial)]
    steps = sorted(trial.intermediate_values)
    epochs = [step + 1 for step in steps]  # trial.report(value, step) after epoch step + 1
    values = [trial.intermediate_values[step] for step in steps]
    curves.plot(epochs, values, "-", color=colour, lw=1.2, alpha=0.7)
    if steps:
        curves.plot(epochs[-1], values[-1], marker, color=colour, ms=6, mew=2)
        last.plot(trial.number, values[-1], marker, color=colour, ms=7, mew=2)
done = np.cumsum([trial_outcome(t) == "complete" for t in study2.trials])  # completed so far
judged = int(np.argmax(done >= STARTUP)) + 1 if done[-1] >= STARTUP else len(done)
last.axvspan(-0.5, judged - 0.5, color="0.9", zorder=0)  # trials run before the pruner judged
last.text((judged - 1) / 2, 0.03, "not judged", ha="center", fontsize=8, color="0.35")
curves.set(xlabel="epochs trained", ylabel="validation accuracy", ylim=(0, 1))
last.set(xlabel="trial number (the order the study ran them)", xlim=(-0.5, len(done) - 0.5))
for ax in (curves, last):
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
kinds = [k for k in ENDED if getattr(outcomes, k)]  # only the endings this study had
fig.legend(
    handles=[
        Line2D([], [], color=ENDED[k][0], marker=ENDED[k][1], mew=2, label=ENDED[k][2])
        for k in kinds
    ],
    loc="upper center",
    ncol=len(kinds),
    frameon=False,
)
fig.tight_layout(rect=(0, 0, 1, 0.92))
plt.show()

# %% [markdown]
# Pruning is judged against the trials seen *so far*. The first trials run to the end whatever
# their score: the pruner judges nothing until {glue:text}`prune_startup` trials have completed
# (the shaded band). After that a trial is stopped as soon as its best score falls below the
# median of the completed trials at the same epoch, a bar that moves with every trial that
# completes.
# A pruned trial might have caught up had it run on: the pruner bets that it would not, and the
# epochs it saves pay for more trials. Only *completed* trials set the bar: a pruned or diverged
# trial gives the pruner nothing to compare with, nor does it count towards its
# {glue:text}`prune_startup` start-up trials.
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
gap = final.test_accuracy - study.best_value
# each accuracy is a share of a finite set of images: its binomial standard error, and the
# gap's, the two sets being disjoint (95%: 1.96 of them). This is the noise of which images each
# set holds, not of the choice of the best of the trials, nor of the training's seed.
shares = ((study.best_value, N_VAL), (final.test_accuracy, final.n_test))  # (accuracy, images)
errors = [math.sqrt(p * (1 - p) / n) for p, n in shares]
gap_half = 1.96 * math.hypot(*errors)
glue("test_gap", gap, display=False)
glue("n_test", final.n_test, display=False)
glue("gap_low", gap - gap_half, display=False)
glue("gap_high", gap + gap_half, display=False)
glue("gap_noise", "within" if abs(gap) <= gap_half else "larger than", display=False)
print(
    f"validation (best trial): {study.best_value:.3f}   "
    f"test (once, after training on {final.n_train:,} images): {final.test_accuracy:.3f}"
)

# %% [markdown]
# Trained on all {glue:text}`n_final:,` training images the search used, the chosen network
# scores {glue:text}`test_acc:.3f` on the test set, against {glue:text}`best_val:.3f` for its
# trial on the validation split, a difference of {glue:text}`test_gap:+.3f`. Both scores are
# shares of a finite set of images ({glue:text}`n_val:,` for validation, {glue:text}`n_test:,`
# for test), so each carries the chance of which images its set holds: from the binomial
# standard error of each accuracy on its set's size, the difference has a 95% interval of
# {glue:text}`gap_low:+.3f` to {glue:text}`gap_high:+.3f`, and the difference is
# {glue:text}`gap_noise` that noise. Two effects pull it opposite ways as well: the final network
# trained on {glue:text}`more_images:.0%` more images than the trial, which helps it, while the
# validation score was the best of {glue:text}`n_trials` and so flatters its trial. One study
# cannot tell how much each contributed.
#
# ## What we did
#
# - Minimised a toy function with Optuna and saw the search concentrate near the answer.
# - Wrote an objective by hand (suggest, build, train, `trial.report`, `trial.should_prune`),
#   ran it on a small study, and used the package's tested equivalent, `make_objective`, for
#   the searches.
# - Searched the network's width, depth and learning rate with `suggest_int` and
#   `suggest_float(..., log=True)`, scoring on a validation split of the training data.
# - Read the search through the history, slice, contour and parallel-coordinate plots.
# - Pruned trials with `trial.report` / `should_prune`, and counted the trials the pruner
#   stopped apart from those whose training diverged.
# - Retrained the best configuration on every training image the search used, validation split
#   included, and scored it once on the test set.
