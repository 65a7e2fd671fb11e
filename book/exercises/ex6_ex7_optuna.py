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
            "idlmam[tune]==0.5.2",
        ],
        check=True,
    )

# %%
import warnings

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
    trial_outcomes,
)
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is too much for a page

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
TRIALS = BUDGET.studies.trials  # trials per study
TRIAL_EPOCHS = BUDGET.studies.epochs  # epochs per trial, and for the final training
# training images searched and retrained on (None: all 60,000)
TRAIN_SIZE = BUDGET.exercises.train_size
VAL_FRACTION = 0.2  # the share of them chapter_loaders holds out to score the trials on
# exercise 7's search range: filters per convolution, convolutions, pooling rounds, rates
CHANNELS = {"quick": (4, 8), "full": (4, 16), "chapter": (8, 64)}[BUDGET.name]
CONV_LAYERS = (1, 2) if BUDGET.name == "quick" else (1, 3)
POOL_ROUNDS = (0, 3)
LEARNING_RATES = (1e-5, 1e-2)
SEED = 0  # seeds the samplers, the weights and the batch order
DEVICE = get_device()


searched = f"{TRAIN_SIZE:,}" if TRAIN_SIZE else "all 60,000"
SEARCHES = (  # what the budget box says this page runs: two studies without a pruner, on a split
    f"two studies of {plural(TRIALS, 'trial')} of {plural(TRIAL_EPOCHS, 'epoch')} each, "
    f"with no pruner; every trial trains on {1 - VAL_FRACTION:.0%} of {searched} training "
    f"images and is scored on the other {VAL_FRACTION:.0%}, and each study's best network "
    "is retrained on all of them"
)

budget_banner(BUDGET, SEARCHES)

# %% [markdown]
# Three sets, each with one job. The search trains on {glue:text}`train_share:.0%` of the
# training images and scores each trial on the other {glue:text}`val_share:.0%` (the validation
# split). The final model trains on all of those images together. The test set is used once per
# exercise, at the very end. On the `full` budget the training images are a seeded subset of
# {glue:text}`full_images`, so that the convolutional search takes minutes on a CPU (`chapter`:
# all of them).

# %%
train_loader, val_loader = chapter_loaders(BUDGET, seed=SEED, device=DEVICE, train_size=TRAIN_SIZE)
n_images = train_loader.n_examples + val_loader.n_examples
assert val_loader.n_examples == round(VAL_FRACTION * n_images)  # the split the box states
glue("train_share", train_loader.n_examples / n_images, display=False)
glue("val_share", val_loader.n_examples / n_images, display=False)
glue("full_images", f"{get_budget('full').exercises.train_size:,}", display=False)
print(
    f"search: {train_loader.n_examples:,} to train on, {val_loader.n_examples:,} to validate on; "
    f"final: all {n_images:,} to train on, then the test set"
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


# %% tags=["hide-input"]
def trials_table(study, headings):
    """Each trial of ``study``: its hyperparameters (``headings``: name -> column) and score."""
    frame = study.trials_dataframe().set_index("number").rename_axis("trial")
    table = pd.DataFrame({column: frame[f"params_{name}"] for name, column in headings.items()})
    table["learning rate"] = frame["params_learning_rate"].map(lambda rate: f"{rate:.2e}")
    table["validation accuracy"] = frame["value"].map(
        lambda v: "-" if pd.isna(v) else f"{v:.3f}"  # a trial stopped early has no score
    )
    return table


# %% tags=["hide-input", "nbval-ignore-output"]
fc_study = create_study(seed=SEED)  # in memory, TPE sampler seeded with SEED
fc_study.optimize(
    make_objective(train_loader, val_loader, epochs=TRIAL_EPOCHS, device=DEVICE, seed=SEED),
    n_trials=TRIALS,
)
fc_best = fc_study.best_params
layers = plural(fc_best["hidden_layers"], "hidden layer")
print(
    f"best validation accuracy {fc_study.best_value:.4f}: {layers} of "
    f"{fc_best['neurons_per_layer']} neurons, learning rate {fc_best['learning_rate']:.2e}"
)

# %% tags=["hide-input", "nbval-ignore-output"]
trials_table(fc_study, {"hidden_layers": "hidden layers", "neurons_per_layer": "neurons per layer"})

# %% [markdown]
# :::{dropdown} Solution: retrain and test
# The search's networks were trained on {glue:text}`train_share:.0%` of the images; the final
# one trains on all of them, for the same number of epochs and with the same optimizer and
# schedule as in a trial, so that the validation accuracy stays a fair estimate. The package's
# `retrain_and_test` does this for any network: it hands the study's best parameters to the
# builder the search used (here the default, `mlp_search`), so the network, optimizer, schedule
# and seed are the best trial's; trains it on the search's training and validation images
# together; and only then loads the test set and scores it, once. Exercise 7 reuses it with its
# own builder.
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
glue("trials_each", plural(TRIALS, "trial"), display=False)
glue("trial_epochs", plural(TRIAL_EPOCHS, "epoch"), display=False)
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
# validation score is the *maximum* over {glue:text}`trials_each`, and a maximum of noisy
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
    pool_rounds = trial.suggest_int("pool_rounds", *POOL_ROUNDS)
    learning_rate = trial.suggest_float("learning_rate", *LEARNING_RATES, log=True)
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
print(
    f"best trial: {plural(best['conv_layers'], 'convolution')} of {best['channels']} filters, "
    f"{plural(best['pool_rounds'], 'pooling round')}, learning rate {best['learning_rate']:.2e}; "
    f"Optuna's estimate {cnn_study.best_value:.4f}, test accuracy {cnn_test:.4f}"
)

# %% tags=["hide-input", "nbval-ignore-output"]
trials_table(
    cnn_study,
    {"channels": "filters", "conv_layers": "convolutions", "pool_rounds": "pooling rounds"},
)

# %% tags=["hide-input", "nbval-ignore-output"]
RANGES = {  # each integer hyperparameter: what it counts, and its search range
    "channels": ("filter", CHANNELS),
    "conv_layers": ("convolution", CONV_LAYERS),
    "pool_rounds": ("pooling round", POOL_ROUNDS),
}
edges = [
    f"{plural(value, what)}, the {'fewest' if value == low else 'most'} it allowed"
    for key, (what, (low, high)) in RANGES.items()
    if (value := best[key]) in (low, high)
]
near = 2  # a rate within this factor of a bound of its range counts as at the edge
if best["learning_rate"] < near * LEARNING_RATES[0]:
    edges.append(f"a learning rate within a factor of {near} of the lowest it allowed")
if best["learning_rate"] > LEARNING_RATES[1] / near:
    edges.append(f"a learning rate within a factor of {near} of the highest it allowed")
glue(
    "cnn_edges",
    f"sits at an edge of the search range: {'; '.join(edges)}. A better network may lie beyond "
    "that edge, where this search could not look"
    if edges
    else "sits inside the search range on every hyperparameter, at no edge of it",
    display=False,
)
outcomes = [trial_outcomes(study) for study in (fc_study, cnn_study)]
glue("all_trials", plural(sum(o.total for o in outcomes), "trial"), display=False)
pruned = sum(o.pruned for o in outcomes)
glue("pruned", f"{plural(pruned, 'trial')} {'was' if pruned == 1 else 'were'}", display=False)
glue("diverged", plural(sum(o.diverged for o in outcomes), "trial"), display=False)
glue("lr_low", f"{LEARNING_RATES[0]:g}", display=False)
print(f"the best CNN {'is at an edge: ' + '; '.join(edges) if edges else 'is at no edge'}")
for name, counts in zip(("fully connected", "convolutional"), outcomes):
    print(f"{name} study, {plural(counts.total, 'trial')}: {counts.summary()}")

# %% mystnb={"figure": {"caption": "The two searches of exercises 6 and 7, the fully connected network on the left in blue, the convolutional one on the right in orange: each trial's validation accuracy (dots), the best validation accuracy so far (solid steps), and the test accuracy of the best network retrained on all the training images (dashed line).", "name": "fig-two-searches"}, "image": {"alt": "Two panels sharing an accuracy axis, against the trial number. Left, in blue, the fully connected search; right, in orange, the convolutional search. In each, dots for the trials' validation accuracies, a solid step line for the best validation accuracy so far, and a dashed horizontal line at the test accuracy of the retrained best network; where the dashed line lies against the level the step line ends at shows how far the test score is from the search's estimate."}} tags=["hide-input", "nbval-ignore-output"]
searches = {"fully connected": (fc_study, fc_test), "convolutional": (cnn_study, cnn_test)}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True, layout="constrained")
scores = []  # every accuracy drawn, to give the shared axis room above and below
for i, (ax, (name, (study, test))) in enumerate(zip(axes, searches.items())):
    trials = study.trials_dataframe()
    ax.plot(trials["number"], trials["value"], "o", color=f"C{i}")
    ax.plot(trials["number"], trials["value"].cummax(), drawstyle="steps-post", color=f"C{i}")
    ax.axhline(test, color=f"C{i}", ls="--")
    ax.set(xlabel="trial (in the order Optuna ran them)", ylabel="accuracy", title=f"{name} search")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.label_outer()  # only the left panel labels the shared accuracy axis
    scores += [*trials["value"].dropna(), test]
low, high = min(scores), max(scores)
axes[0].set_ylim(low - 0.08 * (high - low), high + 0.08 * (high - low))
keys = [  # one legend for both panels, in black: each panel has its own colour
    plt.Line2D([], [], ls="", marker="o", color="black", label="each trial (validation)"),
    plt.Line2D([], [], drawstyle="steps-post", color="black", label="best so far (validation)"),
    plt.Line2D([], [], ls="--", color="black", label="retrained best (test)"),
]
fig.legend(handles=keys, loc="outside lower center", ncol=3, fontsize=8)
fig.suptitle("Two searches: each trial, the best so far, and the final test")
plt.show()


# %% tags=["hide-input"]
finding(  # what the page states: the finding, or the box in its place
    f"On this budget the convolutional network scores {cnn_test:.3f} on the test set, "
    f"{apart(cnn_test, fc_test, f'the fully connected network ({fc_test:.3f})')}. Each score "
    "comes from one search and one retraining with one seed, so it has no interval: this page "
    "cannot say how much of the difference another seed would change. And each search was "
    f"held to its range and its {plural(TRIALS, 'trial')}, so the difference says how these two "
    "searches did, not how much convolutions can help.",
    needs="compare a convolutional with a fully connected network",
    sizes=SEARCHES,
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
# leave too little of the image ($1 \times 1$ after four).
#
# These two searches are not enough to measure that advantage. The convolutional search's best trial
# {glue:text}`cnn_edges`. Each search had {glue:text}`trials_each` of {glue:text}`trial_epochs`, and
# with so few, and the small filter counts a CPU can afford, a search can miss the good region
# altogether (a learning rate near the range's lowest, {glue:text}`lr_low`, barely moves the weights
# in so few epochs). So the scores compare two searches, each held to its range and its budget, not
# what the two kinds of network can reach: before concluding how much convolutions help, widen the
# range where the best trial sits at its edge, and run more trials of more epochs. The `chapter`
# budget, with more filters and all the training images, is meant for a GPU.
#
# Neither study has a pruner (the chapter's pruned study is on its search page), so every trial
# trained for all its epochs: of the two studies' {glue:text}`all_trials`, {glue:text}`pruned`
# pruned, and {glue:text}`diverged` stopped because the loss diverged.
# :::
#
# ## What we did
#
# - Ran the chapter's Optuna study for a fully connected network, rebuilt its best network,
#   trained it on all the training images, validation split included, and scored it once on
#   the test set.
# - Wrote a builder for a CNN whose depth and number of max-pooling rounds are hyperparameters,
#   and handed it to the same objective, retraining and test.
# - Compared each search's estimate with its test score, and the two searches' best networks,
#   checking whether the best convolutional network sits at an edge of its search range.
