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
# # Exercises 6 and 7: a complete search with Optuna
#
# The chapter's Optuna study stops at `study.best_params`. These two exercises finish the job:
# tune on a validation split cut from the training data, rebuild the best network, train it on
# all the training images, validation split included, and score it once on the test set, which
# nothing before has touched.
# Exercise 6 does this for a fully connected network, exercise 7 for a convolutional one whose
# number of max-pooling rounds is one of the hyperparameters. Both search Fashion-MNIST.

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
import warnings
from dataclasses import replace

from tqdm import TqdmWarning

# optuna's tqdm.auto warns without ipywidgets
warnings.filterwarnings("ignore", category=TqdmWarning)

import matplotlib.pyplot as plt
import optuna
import pandas as pd

from idlmam.budget import get_budget
from idlmam.models import cnn
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.text import plural
from idlmam.tune import (
    adamw_cosine,
    chapter_loaders,
    create_study,
    make_objective,
    retrain_and_test,
)
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly
budget_banner(sizes=replace(get_budget().studies, train_size=get_budget().exercises.train_size))
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is too much for a page

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
TRIALS = BUDGET.studies.trials  # trials per study
TRIAL_EPOCHS = BUDGET.studies.epochs  # epochs per trial, and for the final training
# training images searched and retrained on (None: all 60,000)
TRAIN_SIZE = BUDGET.exercises.train_size
# exercise 7: filters per convolution
CHANNELS = {"quick": (4, 8), "full": (4, 16), "chapter": (8, 64)}[BUDGET.name]
CONV_LAYERS = (1, 2) if BUDGET.name == "quick" else (1, 3)  # exercise 7: convolutions
SEED = 0  # seeds the samplers, the weights and the batch order
DEVICE = get_device()
print(f"budget={BUDGET.name}, trials={TRIALS}, epochs per trial={TRIAL_EPOCHS}")

# %% [markdown]
# Three sets, each with one job. The search trains on 80% of the training images and scores
# each trial on the other 20% (the validation split). The final model trains on all of those
# images together. The test set is used once per exercise, at the very end. On the `full`
# budget the training images are a seeded subset of 12,000, so that the convolutional search
# takes minutes on a CPU (`chapter`: all 60,000).

# %%
train_loader, val_loader = chapter_loaders(BUDGET, seed=SEED, device=DEVICE, train_size=TRAIN_SIZE)
print(
    f"search: {train_loader.n_examples} train / {val_loader.n_examples} validation; "
    f"final: all {train_loader.n_examples + val_loader.n_examples} to train on, then the test set"
)

# %% [markdown]
# ## Exercise 6: tune, retrain, test
#
# Write a function that uses Optuna to tune a fully connected network. When the search is
# done, build a new network with the best hyperparameters, train it on all the training data
# and evaluate it on the held-out test set. What accuracy do you get on Fashion-MNIST, and how
# close was Optuna's estimate (the best validation accuracy) to the test accuracy?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: the objective
# The objective is the chapter's, and lives in the package: `make_objective` trains whatever
# its *builder* makes of a trial and returns the last epoch's validation accuracy. The default
# builder, `mlp_search`, suggests the neurons per layer (`suggest_int`), the number of hidden
# layers (`suggest_int`) and the learning rate (`suggest_float(..., log=True)`, since rates
# differ by orders of magnitude), builds `mlp`, and pairs it with AdamW and a cosine schedule
# (`adamw_cosine`). Every trial starts from the same seed, so trials differ only in their
# hyperparameters.
#
# ```{literalinclude} ../../idlmam/tune/objective.py
# :pyobject: mlp_search
# :language: python
# ```
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
fc_study = create_study(seed=SEED)  # in memory, TPE sampler seeded with SEED
fc_study.optimize(
    make_objective(train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED),
    n_trials=TRIALS,
)
print(f"best validation accuracy {fc_study.best_value:.4f} with {fc_study.best_params}")

# %% [markdown]
# :::{dropdown} Solution: retrain and test
# The search's networks were trained on 80% of the images; the final one trains on all of them,
# for the same number of epochs and with the same optimizer and schedule as in a trial, so that
# the validation accuracy stays a fair estimate. The package's `retrain_and_test` does this for
# any network: it hands the study's best parameters to the builder the search used (here the
# default, `mlp_search`), so the network, optimizer, schedule and seed are the best trial's;
# trains it on the search's training and validation images together; and only then loads the
# test set and scores it, once. Exercise 7 reuses it with its own builder.
#
# ```{literalinclude} ../../idlmam/tune/recipe.py
# :pyobject: retrain_and_test
# :language: python
# ```
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
fc_final = retrain_and_test(
    fc_study, train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED
)
fc_test = fc_final.test_accuracy


def apart(score: float, other: float, name: str) -> str:
    """Where ``score`` lands against ``other`` (called ``name``), in points of accuracy."""
    points = 100 * abs(score - other)
    if points < 0.05:  # would print as 0.0
        return f"level with {name} (within 0.05 points)"
    return f"{points:.1f} points {'above' if score > other else 'below'} {name}"


glue("fc_neurons", fc_study.best_params["neurons_per_layer"], display=False)
glue("fc_layers", plural(fc_study.best_params["hidden_layers"], "hidden layer"), display=False)
glue("fc_lr", fc_study.best_params["learning_rate"], display=False)
glue("fc_val", fc_study.best_value, display=False)
glue("fc_test", fc_test, display=False)
glue("fc_against", apart(fc_test, fc_study.best_value, "Optuna's estimate"), display=False)
glue("more_images", fc_final.n_train / train_loader.n_examples - 1, display=False)
glue("n_trials", TRIALS, display=False)
print(f"Optuna's estimate {fc_study.best_value:.4f}, test accuracy {fc_test:.4f}")

# %% [markdown]
# :::{dropdown} Solution: how good was Optuna's guess?
# The best trial, {glue:text}`fc_layers` of {glue:text}`fc_neurons` neurons
# trained at a learning rate of {glue:text}`fc_lr:.2e`, reached a validation accuracy of
# {glue:text}`fc_val:.3f`; retrained on all the training data, the same settings score
# {glue:text}`fc_test:.3f` on the test set, {glue:text}`fc_against`.
#
# Two effects pull in opposite directions. The final network sees
# {glue:text}`more_images:.0%` more images than the trials did, which helps it. But the best
# validation score is the *maximum* over {glue:text}`n_trials` trials, and a maximum of noisy
# scores is biased upwards: some of the winner's lead is luck on those particular validation
# images. The gap above is the sum of both, and one study cannot tell how much each
# contributed. The more trials a study runs, the more optimistic its best score becomes, which
# is why the test set must be kept out of the search.
# :::

# %% [markdown]
# ## Exercise 7: the same with convolutions
#
# Redo exercise 6 with convolutional hidden layers, and add a hyperparameter that sets how
# many rounds of max pooling the network performs. How does it compare with the fully connected
# network of exercise 6?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: a convolutional builder and its objective
# The builder lives in the package, `idlmam.models.cnn(channels, conv_layers, pool_rounds)`: the
# convolutions keep the image size, and the `pool_rounds` 2x2 max poolings are spread over them
# so each block of convolutions ends with one (with more rounds than convolutions, poolings
# follow each other). Each round halves the image, so the search space covers everything from
# no pooling ($28 \times 28$ features into the last layer) to three rounds ($3 \times 3$).
#
# ```{literalinclude} ../../idlmam/models.py
# :pyobject: cnn
# :language: python
# ```
#
# The builder below is all exercise 7 has to write. `make_objective(..., build=build_cnn)` turns
# it into the objective, with the same optimizer and schedule (`adamw_cosine`), seed and
# validation split as exercise 6, so the two searches differ only in the network; and
# `retrain_and_test(..., build=build_cnn)` retrains its best trial.
# :::


# %% tags=["hide-input"]
def build_cnn(trial: optuna.Trial, epochs: int):
    """A trial's CNN (filters, convolutions, pooling rounds) with AdamW and a cosine schedule."""
    channels = trial.suggest_int("channels", *CHANNELS, log=True)
    conv_layers = trial.suggest_int("conv_layers", *CONV_LAYERS)
    pool_rounds = trial.suggest_int("pool_rounds", 0, 3)
    learning_rate = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
    return adamw_cosine(cnn(channels, conv_layers, pool_rounds), learning_rate, epochs)


# %% tags=["hide-input", "nbval-ignore-output"]
cnn_study = create_study(seed=SEED)
cnn_study.optimize(
    make_objective(
        train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED, build=build_cnn
    ),
    n_trials=TRIALS,
)
best = cnn_study.best_params
cnn_final = retrain_and_test(
    cnn_study,
    train_loader,
    val_loader,
    epochs=TRIAL_EPOCHS,
    build=build_cnn,
    device=DEVICE,
    seed=SEED,
)
cnn_test = cnn_final.test_accuracy
glue("cnn_val", cnn_study.best_value, display=False)
glue("cnn_test", cnn_test, display=False)
glue("cnn_against", apart(cnn_test, cnn_study.best_value, "Optuna's estimate"), display=False)
glue("cnn_channels", best["channels"], display=False)
glue("cnn_conv_layers", plural(best["conv_layers"], "convolution"), display=False)
glue("cnn_pool_rounds", plural(best["pool_rounds"], "pooling round"), display=False)
glue("cnn_lr", best["learning_rate"], display=False)
print(f"best {best}: Optuna's estimate {cnn_study.best_value:.4f}, test accuracy {cnn_test:.4f}")

# %% mystnb={"figure": {"caption": "The two searches of exercises 6 and 7: each trial's validation accuracy (dots), the best so far (solid line), and the test accuracy of the retrained best network (dashed line), blue for the fully connected network and orange for the convolutional one.", "name": "fig-two-searches"}, "image": {"alt": "Accuracy (y) against trial number (x) for two searches. Blue dots for the fully connected search's trials, a blue line for its best validation score so far, and a dashed blue line at the test accuracy of its retrained best network; the same in orange for the convolutional search. Where each dashed line lies against the level its solid line ends at shows how far the test score is from the search's estimate."}} tags=["hide-input", "nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(7, 3.8))
for i, (label, study, test) in enumerate(
    (("fully connected", fc_study, fc_test), ("convolutional", cnn_study, cnn_test))
):
    trials = study.trials_dataframe()
    ax.plot(
        trials["number"], trials["value"], "o", color=f"C{i}", label=f"{label}: trials (validation)"
    )
    ax.plot(
        trials["number"],
        trials["value"].cummax(),
        "-",
        color=f"C{i}",
        alpha=0.5,
        label=f"{label}: best so far",
    )
    ax.axhline(test, color=f"C{i}", ls="--", label=f"{label}: retrained, test")
ax.set(
    xlabel="trial",
    ylabel="accuracy",
    title="Two searches: each trial, the best so far, the final test",
)
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax.legend(fontsize=8)
plt.show()

# %% tags=["hide-input", "nbval-ignore-output"]
pd.DataFrame(
    {
        "fully connected": fc_study.trials_dataframe()["value"],
        "convolutional": cnn_study.trials_dataframe()["value"],
    }
).round(4)

# %% tags=["hide-input"]
finding(  # what the page states: the finding, or the box in its place
    f"On this budget the convolutional network scores {cnn_test:.3f} on the test set, "
    f"{apart(cnn_test, fc_test, f'the fully connected network ({fc_test:.3f})')}. Each score "
    "comes from one search and one retraining with one seed, so it has no interval: this page "
    "cannot say how much of the difference another seed would change.",
    needs="compare a convolutional with a fully connected network",
)

# %% [markdown]
# :::{dropdown} Solution: convolutions against fully connected layers
# The convolutional search's best trial, {glue:text}`cnn_conv_layers` of
# {glue:text}`cnn_channels` filters with {glue:text}`cnn_pool_rounds` and a
# learning rate of {glue:text}`cnn_lr:.2e`, reached {glue:text}`cnn_val:.3f` on the validation
# split and {glue:text}`cnn_test:.3f` on the test set after retraining,
# {glue:text}`cnn_against`.
#
# Convolutions suit images: a filter learns a small pattern once and finds it anywhere, and
# pooling makes the answer tolerant to small shifts; that is why convolutional networks hold
# the best results on Fashion-MNIST. Pooling also sets the cost: without it every convolution
# works on all $28 \times 28$ positions and the last layer gets $28 \cdot 28 \cdot C$ inputs,
# so each round makes the network both cheaper and more shift-tolerant, until too many rounds
# leave too little of the image ($1 \times 1$ after four). Whether these two searches show the
# difference depends on the budget: with a few trials of a few epochs, and the small filter
# counts a CPU can afford, a search can miss the good region altogether, and a learning rate
# near $10^{-5}$ barely moves the weights in a few epochs. The `chapter` budget, with more
# filters and all 60,000 images, is meant for a GPU.
# :::
#
# ## What we did
#
# - Ran the chapter's Optuna study for a fully connected network, rebuilt its best network,
#   trained it on all the training images, validation split included, and scored it once on
#   the test set.
# - Wrote a builder for a CNN whose depth and number of max-pooling rounds are hyperparameters,
#   and handed it to the same objective, retraining and test.
# - Compared each search's estimate with its test score, and the two kinds of network.
