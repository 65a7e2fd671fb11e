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
# # Hyperparameter search with Optuna
#
# Gradients tune the weights, but not the numbers we choose before training: how many layers,
# how many neurons, which learning rate. This page searches for them with Optuna, first on a
# toy function whose answer we know, then on the chapter's network with a variable number of
# layers, reads the search through its plots, prunes hopeless trials early, and finally trains
# the chosen network on all the training images the search used and scores it once on the test
# set.

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
import warnings

# Optuna imports tqdm.auto, which warns that no Jupyter widgets are installed; nothing here uses
# its progress bars, so the warning would only clutter the page.
warnings.filterwarnings("ignore", message="IProgress not found")
import matplotlib.pyplot as plt
import optuna
from matplotlib.ticker import NullFormatter
from optuna.visualization import matplotlib as optuna_plots

from idlmam.budget import get_budget
from idlmam.models import count_parameters, mlp
from idlmam.notebook import glue, setup
from idlmam.tuning import (
    chapter_loaders,
    create_study,
    make_objective,
    outcomes_frame,
    retrain_and_test,
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
TOY_TRIALS = BUDGET.toy_trials  # the toy function costs microseconds per trial
TRIALS = BUDGET.trials  # trials of the network search (10 in the chapter)
PRUNE_TRIALS = BUDGET.prune_trials  # trials of the search with pruning (20)
TRIAL_EPOCHS = BUDGET.trial_epochs  # epochs inside each trial (10)
SEED = 0  # seeds the sampler, the split and the weights
DEVICE = get_device()
print(f"budget={BUDGET.name}: {TRIALS} and {PRUNE_TRIALS} trials of {TRIAL_EPOCHS} epochs")

# %% [markdown]
# ## Why not a grid?
#
# The classic search tries every combination on a grid. Its cost multiplies with every
# hyperparameter: five values of three hyperparameters are 125 trainings, and most of them sit in
# regions a glance at the first few results would rule out. Optuna instead treats the search as
# a learning problem of its own. After each trial it models how the score depends on the
# hyperparameters (by default with a Tree-structured Parzen Estimator, TPE) and proposes the
# next trial where that model expects a good score, while still exploring regions it knows
# little about.
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
print(toy.best_params, toy.best_value)

# %% [markdown]
# The best trial reached $f = ${glue:text}`toy_best:.2g` at $x = ${glue:text}`toy_x:.3f`,
# $y = ${glue:text}`toy_y:.3f`: on or next to one of the two lines of zeros. The contour plot
# shows where the trials went (each dot is one):

# %% mystnb={"figure": {"caption": "Optuna contour plot of the toy function |(x-3)(y+2)|.", "name": "fig-toy-contour"}}
optuna_plots.plot_contour(toy)
plt.gcf().set_size_inches(6, 5)
plt.title(f"{TOY_TRIALS} trials on |(x-3)(y+2)|")
plt.show()

# %% [markdown]
# Most of the effort went near the lines of zeros and little into the far corners, where a few
# early trials were enough to show there is nothing to find. That focus is what lets Optuna
# handle more than two hyperparameters.
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
# The objective, `idlmam.tuning.make_objective`, trains whatever a *builder* makes of each
# trial and returns the last epoch's validation accuracy. Its default builder, `mlp_search`, is
# this search: it asks for the three values, builds `mlp(hidden=n, layers=k)`, and pairs it with
# AdamW and a cosine schedule over the trial's epochs (`adamw_cosine`). Any other network is
# searched by handing `make_objective` another builder (`build=`); the exercises search a CNN.
#
# ````{dropdown} The search space: the builder the objective uses
# ```{literalinclude} ../idlmam/tuning/objective.py
# :pyobject: mlp_search
# ```
#
# ```{literalinclude} ../idlmam/tuning/objective.py
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
glue("best_layers", best["hidden_layers"], display=False)
glue("best_lr", best["learning_rate"], display=False)
glue("best_val", study.best_value, display=False)
best

# %% [markdown]
# The best of {glue:text}`best_layers` hidden layer(s) of {glue:text}`best_neurons` neurons,
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
# The *optimization history* plots each trial's score and the best so far. If the best is still
# climbing at the end, more trials will pay; if it went flat long ago, fewer will do next time.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Optuna optimization history of the network search.", "name": "fig-optimization-history"}}
optuna_plots.plot_optimization_history(study)
plt.gcf().set_size_inches(7, 4)
plt.show()

# %% [markdown]
# The *slice plot* shows the score against each hyperparameter on its own, coloured by trial
# number: a tight band of good scores narrows the range for the next search; no pattern at all
# suggests that hyperparameter hardly matters here.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Optuna slice plot: score against each hyperparameter.", "name": "fig-slice"}}
optuna_plots.plot_slice(study)
plt.gcf().set_size_inches(10, 3.5)
for ax in plt.gcf().axes:
    ax.xaxis.set_minor_formatter(NullFormatter())  # keep the log axis readable

# %% [markdown]
# Two plots show how hyperparameters *interact*. The *contour plot* maps the score over every
# pair; the *parallel-coordinate plot* draws each trial as a line through all its values. Both
# need many trials to say much: with a handful they mostly show where the search has been.

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Optuna contour plot: learning rate against neurons per layer.", "name": "fig-contour"}}
optuna_plots.plot_contour(study, params=["learning_rate", "neurons_per_layer"])
plt.gcf().set_size_inches(6, 5)
plt.show()

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Optuna parallel-coordinate plot of every trial.", "name": "fig-parallel-coordinate"}}
optuna_plots.plot_parallel_coordinate(study)
plt.gcf().set_size_inches(8, 4)
plt.show()

# %% [markdown]
# ## Pruning hopeless trials
#
# A network trains for several epochs, and its first epochs already say a lot: one that is far
# behind the others after an epoch or two rarely ends up the best. With `prune=True` the
# objective reports the validation accuracy after every epoch (`trial.report`) and asks whether
# to go on (`trial.should_prune`). Optuna's default *median pruner* stops a trial whose score is
# below the median of earlier trials at the same epoch. It needs finished trials to compare
# with, so the first ones always run to the end.
#
# To give it work, we widen the ranges on purpose: layers as narrow as **one** neuron and
# learning rates up to **100**. Some of those trials do not just learn badly, they *diverge*:
# the loss becomes infinite or NaN, or climbs far above the $\ln 10 \approx 2.3$ of guessing
# among ten classes. The objective stops those at once and records why. With few trials we also
# let the pruner start judging sooner than its default of five finished trials.
#
# Two different things can now stop a trial early, and Optuna files both under the same state,
# PRUNED: the *pruner*, which judged a healthy trial hopeless, and the *divergence guard*, which
# stopped a run that had blown up and wrote why into the trial's `stop_reason`. Only the first
# is pruning, so we count them apart: `idlmam.tuning.trial_outcomes` reads each trial's Optuna
# state and its `stop_reason`, and the table's `outcome` column says which stopped each trial.

# %% tags=["nbval-ignore-output"]
prunable = make_objective(
    train_loader,
    val_loader,
    epochs=TRIAL_EPOCHS,
    device=DEVICE,
    seed=SEED,
    prune=True,
    neurons=(1, 256),
    learning_rate=(1e-5, 100.0),
    max_train_loss=2 * math.log(10),  # twice the loss of a blind guess
)
pruner = optuna.pruners.MedianPruner(n_startup_trials=max(2, PRUNE_TRIALS // 4))
study2 = create_study(seed=SEED, direction="maximize", pruner=pruner)
study2.optimize(prunable, n_trials=PRUNE_TRIALS)
outcomes = trial_outcomes(study2)  # complete / pruned by the pruner / diverged / ...
glue("n_prune_trials", outcomes.total, display=False)
glue("n_complete", outcomes.complete, display=False)
glue("n_pruned", outcomes.pruned, display=False)  # stopped by the median pruner
glue("n_diverged", outcomes.diverged, display=False)  # stopped by the divergence guard
glue("trial_epochs", TRIAL_EPOCHS, display=False)
print(outcomes)
outcomes_frame(study2)  # one row per trial: its outcome, score, epochs trained, stop_reason

# %% [markdown]
# Of {glue:text}`n_prune_trials` trials, {glue:text}`n_complete` ran all
# {glue:text}`trial_epochs` epochs, the median pruner stopped {glue:text}`n_pruned`, and the
# divergence guard stopped {glue:text}`n_diverged` whose loss ran away. The
# *intermediate-values plot* draws each trial's validation accuracy epoch by epoch, so you can
# see where each one stopped (a trial that diverged in its first epoch has no point at all):

# %% tags=["nbval-ignore-output"] mystnb={"figure": {"caption": "Optuna intermediate-values plot: validation accuracy per epoch of every trial of the pruning study.", "name": "fig-intermediate-values"}}
optuna_plots.plot_intermediate_values(study2)
plt.gcf().set_size_inches(7, 4)
plt.legend([], frameon=False)
plt.show()

# %% [markdown]
# Pruning is judged against the trials seen *so far*. Early on, poor trials run to the end
# because nothing better is known yet; later, a trial that is merely mediocre gets stopped
# because good ones now set the bar. The median pruner only compares with trials that
# *finished*: diverged ones give it nothing to compare with, so a short study in which many
# trials diverge may leave it nothing to stop at all. It does not remove every bad trial, but
# where it does stop one, it saves the epochs that trial would have cost.
#
# ## The final model: every training image, one look at the test set
#
# The search used a validation split to *choose*. To *measure*, we train the chosen network on
# all the training images the search used, its validation split included, with the same recipe
# as a trial (the same builder, optimizer, schedule, epochs and seed), and score it on the test
# set exactly once. That number is the one to report; the validation score of the best trial
# was picked as the maximum of many and is biased upward. `idlmam.tuning.retrain_and_test` is
# that recipe: it takes the study's best parameters and loads the test set only once training
# is over.

# %% tags=["nbval-ignore-output"]
final = retrain_and_test(
    study, train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED
)
glue("test_acc", final.test_accuracy, display=False)
glue("n_final", final.n_train, display=False)
print(
    f"validation (best trial): {study.best_value:.3f}   "
    f"test (once, after training on {final.n_train} images): {final.test_accuracy:.3f}"
)

# %% [markdown]
# Trained on all {glue:text}`n_final` training images the search used, the chosen network
# scores {glue:text}`test_acc:.3f` on the test set, against {glue:text}`best_val:.3f` for its
# trial on the validation split.
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
