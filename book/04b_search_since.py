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
# # Searching like it is 2026, and finding the learning rate in one pass
#
# The Optuna page ran one study with one sampler and one pruner, and read it. This page treats
# the choices behind such a study as experiments of their own. It runs four of the samplers
# Optuna 5 ships (random search, TPE, a Gaussian process and CMA-ES) several times each on the
# chapter's search, compares four pruners by the training they save, asks which hyperparameter
# mattered, and measures a learning rate in a single pass with the *range test*, checking it
# against the rate the search found. It ends with the tools of a longer search: a dashboard to
# watch it live, and several worker processes sharing one study.

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
            "idlmam[tune]==0.5.1",
        ],
        check=True,
    )

# %%
import math
import tempfile
import time
import warnings

# Optuna imports tqdm.auto, which warns that no Jupyter widgets are installed; nothing here uses
# its progress bars, so the warning would only clutter the page.
warnings.filterwarnings("ignore", message="IProgress not found")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from optuna.trial import FixedTrial

from idlmam.budget import get_budget
from idlmam.data import split
from idlmam.experiments import lr_range_test
from idlmam.models import mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.plotting import plot_range_test, run_colours
from idlmam.stats import compare, final_scores, t_interval
from idlmam.text import plural
from idlmam.tune import (
    FOLDS_SCORED,
    Quadratic,
    best_by_epochs,
    best_so_far_band,
    chapter_loaders,
    combine_loaders,
    create_study,
    epochs_spent,
    kfold_loaders,
    make_fold_objective,
    make_objective,
    make_pruner,
    run_workers,
    savings_sentence,
)
from idlmam.utils import get_device, set_seed

setup(threads=1)  # one CPU thread: small networks gain little from more, and repeat exactly
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is noise on a page

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter or quick
SEARCH = BUDGET.search  # this page's sizes: trials, epochs and images of its studies
STUDIES = SEARCH.studies  # independent studies per sampler and per pruner (seeds 0, 1, ...)
TRIALS = SEARCH.trials  # trials per study of the sampler comparison
EPOCHS = SEARCH.epochs  # epochs per trial there (and per fold of cross-validation)
PRUNE_TRIALS = SEARCH.prune_trials  # trials per study of the pruner comparison
PRUNE_EPOCHS = SEARCH.prune_epochs  # epochs of a trial there that no pruner stops
SEEDS = BUDGET.chapter.seeds  # training seeds of the runs at a chosen rate, as in the chapter
FOLDS = 5  # folds of the cross-validated studies (why five: see the Wilcoxon pruner)
SEED = 0  # the split, and the weights and batch order every trial starts from
RANDOM_START = 10  # TPE's and GP's first trials, drawn at random (their n_startup_trials)
DEVICE = get_device()
SAMPLERS = {"random": "random search", "tpe": "TPE", "gp": "GP", "cmaes": "CMA-ES"}
PRUNER_NAMES = ["no pruning", "median", "successive halving", "Hyperband"]
RATE_NAMES = ["the suggested rate", "the searched rate", "the curve's minimum"]


# %%
# what the page trains, for the budget box: the images of chapter_loaders' 80/20 split (the
# search's, and the range test's: those of the Optuna page's search), the studies and the runs
N_TRAIN, N_VAL = (len(p) for p in split(range(SEARCH.train_size or 60_000), seed=SEED))
N_RANGE = len(split(range(BUDGET.studies.train_size or 60_000), seed=SEED)[0])
TRAINS = {
    "samplers": f"{plural(len(SAMPLERS) * STUDIES, 'study', 'studies')} of "
    f"{plural(TRIALS, 'trial')} of {plural(EPOCHS, 'epoch')}, {STUDIES} per sampler",
    "pruners": f"{plural(len(PRUNER_NAMES) * STUDIES, 'study', 'studies')} of "
    f"{plural(PRUNE_TRIALS, 'trial')} of up to {plural(PRUNE_EPOCHS, 'epoch')}, "
    f"{STUDIES} per pruner",
    "folds": f"{plural(2 * STUDIES, 'cross-validated study', 'cross-validated studies')} of "
    f"{plural(PRUNE_TRIALS, 'trial')}, each trial up to {FOLDS} trainings of "
    f"{plural(EPOCHS, 'epoch')} (one per fold), {STUDIES} with the Wilcoxon pruner and "
    f"{STUDIES} without",
    "rates": f"{plural(len(RATE_NAMES) * SEEDS, 'run')} of {plural(EPOCHS, 'epoch')} at chosen "
    f"rates, {len(RATE_NAMES)} rates with {plural(SEEDS, 'seed')} each",
}
budget_banner(
    BUDGET,
    (
        f"on {N_TRAIN + N_VAL:,} of the training set's images ({N_TRAIN:,} to train on, "
        f"{N_VAL:,} to validate; the cross-validation cuts all of them into {FOLDS} folds), "
        f"{TRAINS['samplers']}; "
        f"{TRAINS['pruners']}; {TRAINS['folds']}; and {TRAINS['rates']}. Besides, one "
        f"range-test pass of at most one epoch over {N_RANGE:,} training images. The study of "
        "the two workers trains no network"
    ),
)

# %% [markdown]
# Unless said otherwise, every study on this page searches the chapter's space (neurons per
# layer from 16 to 256, hidden layers from 1 to 6, AdamW's learning rate from $10^{-5}$ to
# $10^{-2}$ on a log scale) with the chapter's objective, `make_objective`, which trains each
# trial and returns its validation accuracy. Two sections say otherwise: the pruner studies
# widen the rate's range, and the Wilcoxon studies cross-validate each trial over folds.
# Repeating studies is what makes a comparison, and it is the expensive part, so each study
# here is small: a few epochs per trial, on a seeded subset of the training images split 80/20
# into {glue:text}`n_search_train:,` training and {glue:text}`n_search_val:,` validation
# images. A trial of the samplers' studies trains {glue:text}`trial_epochs` of
# {glue:text}`epoch_batches`: {glue:text}`trial_steps:,` optimizer steps in all, a small
# fraction of what a network of the chapter trains for. The test set is not loaded at all.

# %% tags=["nbval-ignore-output"]
train_loader, val_loader = chapter_loaders(
    BUDGET, seed=SEED, device=DEVICE, train_size=SEARCH.train_size
)
assert (train_loader.n_examples, val_loader.n_examples) == (N_TRAIN, N_VAL)  # the box's
glue("n_search_train", train_loader.n_examples, display=False)
glue("n_search_val", val_loader.n_examples, display=False)
STEPS = EPOCHS * len(train_loader)  # optimizer steps of one trial: one per batch
glue("trial_epochs", plural(EPOCHS, "epoch"), display=False)
glue("epoch_batches", plural(len(train_loader), "batch", "batches"), display=False)
glue("trial_steps", STEPS, display=False)
print(
    f"{train_loader.n_examples:,} training and {val_loader.n_examples:,} validation images; "
    f"a trial: {plural(STEPS, 'optimizer step')}"
)

# %% [markdown]
# ## Four samplers, each run several times
#
# A *sampler* proposes each trial's hyperparameters from the trials before it. Four of those
# Optuna 5 ships:
#
# - **random search** (`RandomSampler`): independent draws from the ranges; the baseline every
#   other sampler must beat {cite:p}`bergstra2012random`.
# - **TPE** (`TPESampler`, the default): splits the finished trials into good and bad ones, fits
#   a density to each, and proposes where good trials are dense and bad ones are not
#   ({cite:alp}`bergstra2011algorithms`; a tutorial: {cite:alp}`watanabe2023tree`). In
#   Optuna 5 it is *multivariate*: it models the hyperparameters jointly, so it can learn that a
#   deep network wants another rate than a shallow one.
# - **GP** (`GPSampler`): fits a Gaussian process to the scores and proposes the trial with the
#   largest expected improvement over the best so far {cite:p}`snoek2012practical`. Fitting
#   it costs more time with every trial.
# - **CMA-ES** (`CmaEsSampler`): moves and reshapes a Gaussian over the search space towards the
#   good trials, an evolution strategy {cite:p}`hansen2016cma`.
#
# `idlmam.tune.make_sampler` makes each by name, seeded. TPE and GP begin with
# {glue:text}`random_start` random trials (their `n_startup_trials`, Optuna's default) before
# their model proposes anything, and they draw them
# from a random sampler with the same seed: the first trials of random search, TPE and GP with
# one seed are the same trials. CMA-ES starts from its Gaussian after one random trial.
#
# One study is one draw: a sampler that was lucky once proves nothing. So each sampler runs
# {glue:text}`n_studies` independent studies, sampler seeds 0, 1, ..., of
# {glue:text}`n_trials` trials each, on the same objective (every trial trains from the same
# seed, so a setting always gets the same score, whichever study proposes it).

# %% tags=["nbval-ignore-output"]
objective = make_objective(train_loader, val_loader, epochs=EPOCHS, device=DEVICE, seed=SEED)
studies, seconds = {}, {}
for name in SAMPLERS:
    started = time.perf_counter()
    for seed in range(STUDIES):
        studies[name, seed] = create_study(seed=seed, sampler=name, study_name=f"{name}-{seed}")
        studies[name, seed].optimize(objective, n_trials=TRIALS)
    seconds[name] = time.perf_counter() - started
glue("n_studies", STUDIES, display=False)
glue("n_trials", TRIALS, display=False)
glue("random_start", RANDOM_START, display=False)
print("time per sampler:", ", ".join(f"{SAMPLERS[n]} {s:.1f} s" for n, s in seconds.items()))

# %% [markdown]
# The shared start, checked on the studies themselves: how many first trials each sampler's
# seed-0 study shares with random search's.


# %%
def shared_start(a, b):
    """How many first trials two studies proposed identically."""
    same = [x.params == y.params for x, y in zip(a.trials, b.trials)]
    return same.index(False) if False in same else len(same)


in_common = {n: shared_start(studies["random", 0], studies[n, 0]) for n in ("tpe", "gp", "cmaes")}
print(
    "first trials shared with random search:",
    ", ".join(f"{SAMPLERS[n]} {k}" for n, k in in_common.items()),
)

# %% [markdown]
# Below, each sampler's best validation accuracy so far after every trial: the line is the mean
# over its studies, the band a 95% t-interval of that mean. Up to the dash-dotted black line, random
# search, TPE and GP run the same trials, so their curves coincide (and only random search's
# band is drawn there). The first trials differ most and say least (a best of one or two
# trials), so the accuracy axis shows only the range the curves occupy from the fifth trial on;
# the first trials and the widest bands leave it at the bottom.

# %% mystnb={"figure": {"caption": "Best validation accuracy so far against the trials run, for four samplers: the mean over independent studies (sampler seeds), with a 95% t-interval band. The accuracy axis spans the curves from the fifth trial on, so the first trials and the widest bands are cut at the bottom. TPE and GP run the same random trials as random search up to the dash-dotted vertical line (the end of their random start): their lines coincide there, and their bands, random search's until then, are drawn from the last shared trial on.", "name": "fig-samplers"}, "image": {"alt": "Line chart of best validation accuracy so far (y, zoomed to the range of the curves from the fifth trial on) against trials run (x), with four coloured lines and light shaded bands with thin edges: random search (cyan, solid), TPE (olive, dashed), GP (grey, dotted) and CMA-ES (pink, solid), named in a legend to the right of the plot; the TPE and GP bands begin at the last trial of the random start. The random, TPE and GP lines lie on top of each other up to a black dash-dotted vertical line after that trial and may separate afterwards; CMA-ES follows its own path from the second trial. The earliest parts of the curves rise from below the bottom of the axis."}} tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
styles = ["-", "--", ":", "-"]  # random, TPE and GP coincide at first: dashes keep each visible
colours = run_colours(SAMPLERS.values())  # the book's colours for names it does not know
bands = {name: best_so_far_band([studies[name, s] for s in range(STUDIES)]) for name in SAMPLERS}
for (name, label), ls in zip(SAMPLERS.items(), styles):
    band, colour = bands[name], colours[label]
    x = band.index + 1  # trial number 0 is the first trial run
    ax.plot(x, band["mean"], ls=ls, label=label, lw=2, color=colour)
    # TPE's and GP's bands are random search's during the random start: drawn after it only
    shown = x >= (RANDOM_START if name in ("tpe", "gp") else 1)
    low, high = band["low"].clip(0, 1)[shown], band["high"].clip(0, 1)[shown]
    ax.fill_between(x[shown], low, high, color=colour, alpha=0.08, lw=0)
    for edge in (low, high):  # thin edges: overlapping bands stay apart
        ax.plot(x[shown], edge, ls=ls, lw=0.7, color=colour, alpha=0.6)
ax.axvline(RANDOM_START + 0.5, color="black", ls="-.", lw=1, label="end of the random start")
# the axis from the curves after the first few trials: their lowest mean at the fifth trial,
# and the highest band after it, each with a margin of a tenth of that range
fifth = min(4, TRIALS - 1)  # trial number 4 is the fifth trial run
low = min(band["mean"].iloc[fifth] for band in bands.values())
high = max(band[["mean", "high"]].iloc[fifth:].max().max() for band in bands.values())
margin = 0.1 * max(high - low, 0.01)
ax.set(
    xlabel="trials run",
    ylabel="best validation accuracy so far",
    ylim=(low - margin, min(1.0, high + margin)),
)
ax.set_title(f"{STUDIES} studies per sampler, mean and 95% interval", fontsize=10)
ax.xaxis.set_major_locator(MaxNLocator(integer=True))
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axis: it covers no curve
plt.show()

# %% [markdown]
# After the last trial, each study's best is one number; over the studies of a sampler they give
# a mean and an interval. Each sampler is then compared with random search, the baseline. TPE
# and GP share their first {glue:text}`random_start` trials with random search's study of the
# same seed, so they are compared with it seed by seed (a paired interval on the per-seed
# differences). CMA-ES shares only its first trial, so pairing it by seed would borrow a link
# the runs do not have: it is compared without pairing (Welch's interval on the difference of
# the two means; its seeds are relabelled so that `idlmam.stats.compare` does not pair them).
#
# Three comparisons make three chances to see a difference that is only noise: with three 95%
# intervals, the chance that at least one misses its true difference is up to three times 5%.
# So each interval is widened by Bonferroni's correction, a {glue:text}`sampler_confidence`
# interval (`compare(..., confidence=...)`), so that the three hold together with 95%
# confidence. The table gives each sampler's own mean and 95% interval, uncorrected: it
# describes the samplers one by one and compares none.

# %% tags=["nbval-ignore-output"]
best = pd.DataFrame(
    [
        {"run": SAMPLERS[name], "seed": seed, "epoch": 0, "best accuracy": study.best_value}
        for (name, seed), study in studies.items()
    ]
)
pairs = [(SAMPLERS[name], "random search") for name in ("tpe", "gp", "cmaes")]
unpaired = best["run"] == "CMA-ES"  # other seed labels: compare() pairs only matching seeds
welch = best.assign(seed=best["seed"].where(~unpaired, best["seed"] + STUDIES))
SAMPLER_CONFIDENCE = 1 - 0.05 / len(pairs)  # Bonferroni: 95% for the three together
sampler_sentences = "\n".join(
    "- " + compare(welch, a, b, "best accuracy", confidence=SAMPLER_CONFIDENCE).sentence() + "."
    for a, b in pairs
)
glue("sampler_confidence", f"{100 * SAMPLER_CONFIDENCE:.3g}%", display=False)
glue("gp_seconds", seconds["gp"] / seconds["random"], display=False)
scores = final_scores(best, "best accuracy")
scores.rename(columns={"seeds": "studies", "mean": "mean best accuracy"}).assign(
    **{"95% interval": scores["half_width"].map("± {:.4f}".format)}
)[["studies", "mean best accuracy", "95% interval"]].round(4)

# %%
finding(
    f"After {TRIALS} trials of {plural(STEPS, 'optimizer step')} each, over {STUDIES} studies "
    'per sampler ("seeds" are the samplers\' seeds; TPE and GP paired with random search by '
    f"seed, CMA-ES not; each interval a {100 * SAMPLER_CONFIDENCE:.3g}% one, Bonferroni's correction "
    f"for the three comparisons):\n\n{sampler_sentences}\n\nEach line compares one sampler "
    "with random search only: they do not order TPE, GP and CMA-ES among themselves.",
    needs="tell the samplers apart",
    sizes=f"on {N_TRAIN:,} training images, {TRAINS['samplers']}",
)

# %% [markdown]
# Two cautions about reading such a comparison. Its answer belongs to this search space, this
# objective and this number of trials, each a short training of {glue:text}`trial_steps:,`
# optimizer steps: of {glue:text}`n_trials` trials, TPE and GP proposed only those after the
# shared random start themselves, and a sampler that models the score can pull ahead only
# there. And the bands show how far apart two studies of one sampler can end: a
# comparison from one study of each would read that spread as a difference between samplers.
# Time matters too: here the GP studies took {glue:text}`gp_seconds:.1f` times as long as random
# search's, the same number of trainings (of other networks) plus the fitting of the Gaussian
# process before each proposal, one timing each.
#
# ## What mattered: parameter importances
#
# Which of the three hyperparameters decided the score? Optuna answers with
# `optuna.importance.get_param_importances(study, evaluator=...)`. We pass it the PED-ANOVA
# evaluator {cite:p}`watanabe2023ped`,
# `optuna.importance.PedAnovaImportanceEvaluator()`, explicitly: it is the default from Optuna
# 5 on, but older versions that the package still accepts default to fANOVA
# {cite:p}`hutter2014efficient`, a different measure. PED-ANOVA compares, for each hyperparameter,
# where the best trials (the top 10% by default) lie with where all the trials lie. A hyperparameter
# whose best trials crowd into a small part of the values the study tried is important; one whose
# best trials are spread like all the others is not. The importances of a study add up to 1.
#
# Optuna's documentation advises at least 5 trials in that top 10%, so about 50 trials in all.
# One TPE study here has {glue:text}`n_trials`, so its importances are a rough estimate. We
# therefore pool the trials of all the TPE studies into one study of {glue:text}`n_pooled`
# trials for the bars (not one longer search, but PED-ANOVA asks only where the good trials
# lie), and show each study's own importances as dots, to make their spread visible. Even
# pooled, the top 10% holds only {glue:text}`n_top` trials (the advice asks for at least 5).
#
# What the numbers measure matters too. PED-ANOVA compares the best trials with the trials the
# study ran, not with the whole search space, so it measures importance within the region the
# TPE studies explored: once TPE has settled on a range of rates, the rate may look less
# important than it would over the whole range from $10^{-5}$ to $10^{-2}$.

# %% tags=["nbval-ignore-output"]
tpe_trials = [t for s in range(STUDIES) for t in studies["tpe", s].trials]
pooled = optuna.create_study(direction="maximize")
pooled.add_trials(tpe_trials)
PED_ANOVA = optuna.importance.PedAnovaImportanceEvaluator()  # not left to the version's default
overall = pd.Series(
    optuna.importance.get_param_importances(pooled, evaluator=PED_ANOVA), name="pooled"
)
importances = pd.DataFrame(
    [
        optuna.importance.get_param_importances(studies["tpe", s], evaluator=PED_ANOVA)
        for s in range(STUDIES)
    ]
)[overall.index]  # the pooled order, the most important first
importances.index.name = "TPE study (seed)"
glue("n_pooled", len(tpe_trials), display=False)
# PED-ANOVA's top 10%: the trials at least as good as the ceil(0.1 n)-th best (ties included)
values = np.sort([t.value for t in tpe_trials if t.value is not None])[::-1]
n_top = int((values >= values[math.ceil(0.1 * len(values)) - 1]).sum())
glue("n_top", n_top, display=False)
pd.concat([importances, overall.to_frame().T]).round(3)

# %% mystnb={"figure": {"caption": "PED-ANOVA parameter importances (passed explicitly; Optuna 5's default evaluator) of the chapter's search: the bars from the pooled trials of all the TPE studies, each dot one study on its own.", "name": "fig-importances"}, "image": {"alt": "Horizontal bar chart with one bar per hyperparameter (the learning rate, hidden layers, neurons per layer), its length the importance from 0 to 1 computed on the pooled TPE trials, with one black dot per TPE study showing how much the single studies disagree."}} tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(7.5, 2.8), layout="constrained")
order = list(overall.index)[::-1]  # the most important at the top
ax.barh(order, overall[order], color="tab:blue", alpha=0.6, label="pooled trials")
for i, name in enumerate(order):
    dots = importances[name].to_numpy()
    label = "one study" if i == 0 else "_nolegend_"
    ax.plot(dots, np.full(len(dots), i), "o", color="black", ms=4, label=label)
ax.set(xlabel="importance (PED-ANOVA; a study's add up to 1)", xlim=(0, 1))
ax.set_title(f"What mattered: {len(tpe_trials)} TPE trials, {STUDIES} studies", fontsize=10)
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axis: no dot hidden
plt.show()

# %%
firsts = importances.idxmax(axis=1).value_counts()  # how often each came first in a study
ranking = ", ".join(f"`{name}` {value:.2f}" for name, value in overall.items())
if firsts.iloc[0] == STUDIES:
    same = "as the pooled trials do" if firsts.index[0] == overall.index[0] else "unlike the pool"
    agreement = f"Every study on its own put `{firsts.index[0]}` first, {same}."
else:
    places = ", ".join(f"`{name}` in {n}" for name, n in firsts.items())
    agreement = (
        f"Study by study, though, the first place went to {places} of the {STUDIES} studies: "
        f"{TRIALS} trials are too few to rank them from one study."
    )
first, second = overall.index[:2]
finding(
    f"Pooled, the importances are {ranking}. {agreement} Even pooled, the top 10% is only "
    f"{n_top} trials, so the order of the first two, `{first}` and `{second}`, is not firm.",
    needs="rank the hyperparameters",
    sizes=f"{STUDIES} TPE studies of {plural(TRIALS, 'trial')}, {len(tpe_trials)} pooled",
)

# %% [markdown]
# The dashboard (further down) draws the same importances for a study while it runs, with the
# same evaluator.
#
# ## The learning-rate range test
#
# A search spends many trainings to find a learning rate.
# Smith {cite:yearpar}`smith2015cyclical,smith2018disciplined` proposed to measure it in one short run instead,
# the *range test*: train for a few epochs while the rate grows linearly from far too small to far
# too large, and read the accuracy, which rises once the rate is large enough and falls apart when
# it is too large. The form most libraries use today, and the one used here, is fastai's `lr_find`
# {cite:p}`howard2020fastai`: a fixed number of batches (100 by default, over several epochs if an
# epoch is shorter), the rate growing exponentially batch after batch, the smoothed training loss
# recorded. The loss stays flat while the rate is too small to matter, falls steeply once the rate
# is large enough, bottoms out, and explodes when the rate is too large. fastai can read four
# suggestions off that curve (`minimum`, `steep`, `valley` and `slide`), and its default is
# `valley`, a rate inside the longest stretch over which the loss falls. The rule used here is its
# `minimum`: the rate at the minimum divided by ten, a rate on the steep descent about ten times
# below where the loss turns up.
#
# `idlmam.experiments.lr_range_test` runs that pass on a model and its optimizer, for at most one
# epoch (the package's own rule, not fastai's): batch $i$ of the
# $n$ batches of an epoch trains at $\eta_{min}(\eta_{max}/\eta_{min})^{i/(n-1)}$, the curve is
# a bias-corrected moving average of the batch losses, the pass stops early once that average
# passes four times its best, and the suggestion is the rate at the minimum of the curve
# divided by ten. Afterwards it puts back the weights, the optimizer's state and the random
# states, so the training that follows is the one that would have run without it.
#
# We test the network of the best trial of all the TPE studies, with the trials' optimizer
# (AdamW, its defaults) and batch size. One pass over the search's few training images would
# be too few batches for a curve, so the pass runs over the training split of the Optuna
# page's search, its {glue:text}`n_range_images:,` training images (still no test image):

# %% tags=["nbval-ignore-output"]
best_trial = max((studies["tpe", s].best_trial for s in range(STUDIES)), key=lambda t: t.value)
shape = {k: best_trial.params[k] for k in ("neurons_per_layer", "hidden_layers")}
range_loader, _ = chapter_loaders(BUDGET, seed=SEED, device=DEVICE)
set_seed(SEED)
model = mlp(hidden=shape["neurons_per_layer"], layers=shape["hidden_layers"]).to(DEVICE)
optimizer = torch.optim.AdamW(model.parameters())  # the trials' optimizer, at its defaults
started = time.perf_counter()
result = lr_range_test(
    model, optimizer, torch.nn.CrossEntropyLoss(), range_loader, lr_min=1e-6, lr_max=10.0,
    device=DEVICE,
)  # fmt: skip
range_seconds = time.perf_counter() - started
searched = best_trial.params["learning_rate"]
assert range_loader.n_examples == N_RANGE  # the images the budget box counts
glue("n_range_images", range_loader.n_examples, display=False)
if result.explodes_at is not None:  # the smoothed loss passed diverge_factor (4) times its best
    stop = (
        f"stopped early, after {len(result.lrs):,} of the epoch's {len(range_loader):,} "
        "batches, once the smoothed loss passed four times its best"
    )
else:
    stop = f"ran the whole epoch, all its {len(range_loader):,} batches"
glue("range_stop", stop, display=False)
glue("range_seconds", range_seconds, display=False)
glue("suggested_lr", result.suggestion, display=False)
glue("searched_lr", searched, display=False)
glue("lr_ratio", result.suggestion / searched, display=False)
print(
    f"{plural(shape['hidden_layers'], 'hidden layer')} of "
    f"{plural(shape['neurons_per_layer'], 'neuron')} each: the range test suggests "
    f"{result.suggestion:.3g}, the search found {searched:.3g}"
)

# %% mystnb={"figure": {"caption": "The learning-rate range test of the best TPE trial's network: the smoothed training loss against the rate (log axis) over the batches the pass trained, the minimum of the curve, the suggested rate ten times below it, and the rate the search found.", "name": "fig-range-test"}, "image": {"alt": "A curve of smoothed training loss (y) against the learning rate on a log axis (x): flat at small rates, falling steeply, reaching a minimum marked with a black dot, then rising steeply. An orange dashed vertical line marks the suggested rate a decade left of the minimum, and a green dotted line marks the rate the search found; a legend in the lower left names them."}} tags=["nbval-ignore-output"]
ax = plot_range_test(
    result, title=f"Range test: {len(result.lrs):,} of an epoch's {len(range_loader):,} batches"
)
ax.axvline(searched, color="tab:green", ls=":", lw=2, label=f"search found {searched:.3g}")
ax.legend(loc="lower left", fontsize=8)  # below the flat start, where the curve never goes
ax.figure.set_size_inches(7, 3.8)
plt.show()

# %% [markdown]
# The pass {glue:text}`range_stop`, and took {glue:text}`range_seconds:.1f` seconds.
# It suggests {glue:text}`suggested_lr:.2g`; the search settled on
# {glue:text}`searched_lr:.2g`, so the suggestion is {glue:text}`lr_ratio:.2g` times the
# searched rate. Which trains better? We train the same network with the trials' recipe
# (AdamW and half a cosine over {glue:text}`n_epochs` epochs, on the search's training
# images) at three rates: the suggested one, the searched one, and the minimum of the curve,
# ten times the suggestion. Each runs with {glue:text}`n_seeds` training seeds (the weights
# and the batch order), seeds 1 and up: the search scored its trials with seed 0, where the
# searched rate may have won partly by luck; on other seeds it has no such advantage.

# %% tags=["nbval-ignore-output"]
RATES = dict(zip(RATE_NAMES, [result.suggestion, searched, result.lr_at_min]))
rows = []
for seed in range(1, SEEDS + 1):
    trains = make_objective(
        train_loader, val_loader, epochs=EPOCHS, device=DEVICE, seed=seed,
        learning_rate=(1e-6, 10.0), max_train_loss=2 * math.log(10),
    )  # fmt: skip
    for run, rate in RATES.items():
        try:
            score = trains(FixedTrial({**shape, "learning_rate": rate}))
        except optuna.TrialPruned:  # the training diverged
            score = float("nan")
        rows.append({"run": run, "seed": seed, "epoch": 0, "val Accuracy": score})
at_rates = pd.DataFrame(rows)
glue("n_epochs", EPOCHS, display=False)
glue("n_seeds", SEEDS, display=False)
by_seed = at_rates.pivot(index="seed", columns="run", values="val Accuracy").round(4)
by_seed.astype(object).mask(by_seed.isna(), "diverged")

# %% [markdown]
# Each comparison below is paired by seed. Its interval says whether the mean difference stands
# out of the seed-to-seed noise (with Bonferroni's correction when there are two comparisons,
# as for the samplers); with few seeds it often does not, so each also says on how many seeds,
# and by how much, one rate did worse than the other.


# %%
def seed_by_seed(frame, a, b, column="val Accuracy", confidence=0.95):
    """``a`` against ``b``: the paired comparison, how often and by how much (in points) ``b``
    did worse or better on a seed where both trained, and which of the two trains better."""
    comparison = compare(frame, a, b, column, confidence=confidence)
    both = frame.pivot(index="seed", columns="run", values=column)[[a, b]].dropna()
    points = 100 * (both[a] - both[b])  # > 0: b did worse on that seed
    n, worse, better = len(points), points[points > 0], points[points < 0]

    def by(d):
        low, high = sorted((abs(d.min()), abs(d.max())))
        return f"by {low:.1f} points" if len(d) == 1 else f"by {low:.1f} to {high:.1f} points"

    parts = [f"worse on {len(worse)} of {n} ({by(worse)})" if len(worse) else ""]
    parts += [f"better on {len(better)} of {n} ({by(better)})" if len(better) else ""]
    ties = n - len(worse) - len(better)
    parts += [f"the same on {ties} of {n}" if ties else ""]
    said = ", ".join(p for p in parts if p) or "not train on a seed in common with it"
    sentence = comparison.sentence()
    bullet = f"- {sentence[:1].upper()}{sentence[1:]}; seed by seed, {b} did {said}."
    winner, loser = (a, b) if comparison.difference > 0 else (b, a)
    if comparison.differs:
        verdict = f"{winner} trains better than {loser}, beyond the noise of {n} seeds"
    elif n > 1 and (len(worse) == n or len(better) == n):
        verdict = (
            f"{winner} did better than {loser} on every seed, though with {n} seeds the mean "
            "difference stays within the noise"
        )
    else:
        verdict = f"{a} and {b} cannot be told apart on {n} seeds"
    return bullet, verdict


diverged = at_rates["val Accuracy"].isna().groupby(at_rates["run"], sort=False).sum()
trained = [run for run in RATES if diverged[run] < SEEDS]  # a run with a score to compare
confidence = 1 - 0.05 / max(1, len(trained) - 1)  # Bonferroni over the comparisons
readings = [seed_by_seed(at_rates, trained[0], run, confidence=confidence) for run in trained[1:]]
corrected = f", Bonferroni's correction for {len(readings)} comparisons" * (len(readings) > 1)
lines = [f"Each interval a {100 * confidence:.3g}% one{corrected}:\n"] if readings else []
lines += [bullet for bullet, _ in readings]
lines += [f"- At {run}, {n} of {SEEDS} runs diverged." for run, n in diverged.items() if n]
if readings:
    verdicts = "; ".join(verdict for _, verdict in readings)
    lines += [f"\nWhich trains better? {verdicts[:1].upper()}{verdicts[1:]}."]
finding("\n".join(lines), needs="compare the rates", sizes=TRAINS["rates"])

# %% [markdown]
# The range test costs one pass, a search many trainings; it answers a narrower question, though:
# one rate, for one network, at the start of training, while the search also chose the network
# and judged each rate by where a whole run ends. A range test is a cheap way to set the range
# a search explores, or the peak of a schedule; it is not the whole search.
#
# ## Pruners, by the epochs they save
#
# A pruner stops a trial whose learning curve looks hopeless, and the epochs it saves can pay for
# more trials. What it costs is the chance that a stopped trial would have caught up. So a pruner
# is measured by two numbers: the best accuracy its study reached, and the epochs all its trials
# trained in total. We compare, each with the same TPE sampler and seeds:
#
# - **no pruning**, the reference: every trial trains all its {glue:text}`n_prune_epochs` epochs
#   (unless it diverges);
# - **median** (`MedianPruner`): stops a trial whose best score so far is below the median of the
#   finished trials' scores at the same epoch (the Optuna page's pruner);
# - **successive halving** (`SuccessiveHalvingPruner`, asynchronous,
#   {cite:alp}`li2020system`): at each *rung* (here after {glue:text}`rungs`) a trial goes on
#   only if it is in the top third of the trials that have reached that rung;
# - **Hyperband** (`HyperbandPruner`, {cite:alp}`li2018hyperband`): several runs of successive
#   halving with different starting budgets, called *brackets* (their first rungs lie at
#   different epochs), each trial in one of them, so that no single choice of the first rung
#   has to suit every search.
#
# No pruner judges a trial before its second epoch: the median pruner from then on, once
# {glue:text}`prune_startup` trials have finished, and the halving pruners at their rungs. The
# learning-rate range is the wide one of the Optuna page's pruning study ($10^{-5}$ to
# $10^{-1}$), so that there are hopeless trials to stop, and a trial whose training diverges is
# stopped at once whatever the pruner (it counts its epochs too).

# %%
STARTUP = max(2, PRUNE_TRIALS // 4)  # finished trials before the median pruner judges
PRUNERS = {  # the name on the page: make_pruner's name and settings
    "no pruning": ("none", {}),
    "median": ("median", {"n_startup_trials": STARTUP, "n_warmup_steps": 1}),
    "successive halving": ("halving", {"min_resource": 1, "reduction_factor": 3}),
    "Hyperband": ("hyperband", {"min_resource": 1, "reduction_factor": 3}),
}
assert list(PRUNERS) == PRUNER_NAMES  # the pruners the budget box counts
# successive halving's rungs: steps 1, 3, 9, ... (a step is an epoch counted from 0)
rungs = [str(3**k + 1) for k in range(10) if 3**k < PRUNE_EPOCHS]
rungs = ("epochs " if len(rungs) > 1 else "epoch ") + " and ".join(
    [", ".join(rungs[:-1]), rungs[-1]] if len(rungs) > 1 else rungs
)
glue("rungs", rungs, display=False)
glue("n_prune_epochs", PRUNE_EPOCHS, display=False)
glue("prune_startup", STARTUP, display=False)
print(f"rungs after {rungs}; the median pruner starts after {plural(STARTUP, 'trial')}")

# %% tags=["nbval-ignore-output"]
prunable = make_objective(
    train_loader, val_loader, epochs=PRUNE_EPOCHS, device=DEVICE, seed=SEED, prune=True,
    learning_rate=(1e-5, 1e-1), max_train_loss=2 * math.log(10),
)  # fmt: skip
pruned_studies = {}
for label, (name, settings) in PRUNERS.items():
    for seed in range(STUDIES):
        pruner = make_pruner(name, **settings)  # a fixed study name: Hyperband's brackets repeat
        study = create_study(seed=seed, pruner=pruner, study_name=f"{name}-{seed}")
        study.optimize(prunable, n_trials=PRUNE_TRIALS)
        pruned_studies[label, seed] = study


# %% [markdown]
# Each study's result is two numbers: the epochs it spent, and the best accuracy it reached.
# The first figure shows how each study got there, its best accuracy growing as its epochs add
# up, one panel per sampler seed: the studies of one panel start with the same trials, so their
# lines often coincide, and they are drawn from the widest to the narrowest so that a line
# underneath still shows at the edges of the one on top. The second has one row per pruner: the
# epochs each study spent, the mean and its 95% interval, and, in the row's label, the mean best
# accuracy with its interval.


# %%
def outcome_frame(studies_by_run):
    """One row per study: its epochs spent and its best accuracy (in stats.compare's shape)."""
    return pd.DataFrame(
        [
            {
                "run": run,
                "seed": seed,
                "epoch": 0,
                "epochs spent": epochs_spent(study),
                "best accuracy": study.best_value,
            }
            for (run, seed), study in studies_by_run.items()
        ]
    )


prune_results = outcome_frame(pruned_studies)
print(f"{plural(len(prune_results), 'study', 'studies')}, {len(PRUNERS)} pruners")

# %% mystnb={"figure": {"caption": "How each pruner's study reached its best accuracy: one panel per sampler seed, in each the best validation accuracy so far of the four studies with that seed, one per pruner, against the epochs their trials had spent so far. Studies that took the same path coincide; they are drawn from the widest line (no pruning) to the narrowest (Hyperband) so that each stays visible at the edges of the others. The accuracy axis starts a tenth below the lowest best a study reached, so a study's first, poorer trials may lie below it.", "name": "fig-pruner-paths"}, "image": {"alt": "A row of panels sharing their axes, one per sampler seed, with a legend below them. In each panel four step lines of best validation accuracy so far (y) against cumulative epochs spent (x), one per pruner: no pruning cyan, solid and widest; median olive and dashed; successive halving grey and dotted; Hyperband pink, dash-dotted and narrowest. The lines start together, since every study of a panel begins with the same trials; the pruned studies reach their last step at fewer epochs, and a study's first steps may rise from below the bottom of the axis. Where lines coincide, the wider ones show as borders around the narrower."}} tags=["nbval-ignore-output"]
colours = run_colours(PRUNERS)  # the book's colours for names it does not know
styles = dict(zip(PRUNERS, ["-", "--", ":", "-."]))
widths = dict(zip(PRUNERS, [3.0, 2.2, 1.5, 0.9]))  # the widest first: coinciding lines nest
columns = min(STUDIES, 3)
fig, axes = plt.subplots(
    math.ceil(STUDIES / columns), columns, figsize=(3.7 * columns, 3.4 * math.ceil(STUDIES / 3)),
    layout="constrained", sharex=True, sharey=True, squeeze=False,
)  # fmt: skip
# the later trials matter: the axis from a tenth below the lowest best to just above the highest
bottom, top = prune_results["best accuracy"].agg(["min", "max"]) + [-0.1, 0.02]
for seed, ax in zip(range(STUDIES), axes.flat):
    for label in PRUNERS:
        curve = best_by_epochs(pruned_studies[label, seed])
        ax.step(
            curve["epochs"], curve["best value"], where="post", color=colours[label],
            ls=styles[label], lw=widths[label], label=label,
        )  # fmt: skip
    ax.set_title(f"sampler seed {seed}", fontsize=10)
axes[0, 0].set_ylim(bottom, min(1.0, top))  # shared by every panel
for ax in axes.flat[STUDIES:]:
    ax.set_axis_off()  # a last row with fewer seeds than columns
for ax in axes[:, 0]:
    ax.set_ylabel("best validation accuracy so far")
for ax in axes[-1]:
    ax.set_xlabel("epochs spent so far")
fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
plt.show()

# %% mystnb={"figure": {"caption": "The epochs each pruner's studies spent: one row per pruner, each study an open circle (offset vertically by sampler seed so that equal values stay visible), their mean with a 95% interval a filled circle and bar; each row's label gives the mean best validation accuracy of its studies with its 95% interval.", "name": "fig-pruner-epochs"}, "image": {"alt": "Four rows, one per pruner (no pruning, median, successive halving, Hyperband from top to bottom, in cyan, olive, grey and pink), with the epochs spent by a study on the x axis; in each row one open circle per study, slightly apart vertically, and a filled circle with a horizontal error bar for their mean; the row labels name the pruner and its mean best accuracy with a plus-minus interval. A legend names the two kinds of marker."}} tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
row_labels = []
for row, (label, group) in enumerate(prune_results.groupby("run", sort=False)):
    group = group.sort_values("seed")
    offsets = 0.12 * (np.arange(len(group)) + 1)  # the studies above the row, seed by seed
    ax.plot(group["epochs spent"], row - offsets, "o", mfc="none", color=colours[label], ms=6)
    low, high = t_interval(group["epochs spent"])
    ax.errorbar(
        (low + high) / 2, row, xerr=(high - low) / 2, fmt="o", color=colours[label], capsize=4,
        ms=7,
    )  # fmt: skip
    acc_low, acc_high = t_interval(group["best accuracy"])
    acc = group["best accuracy"].mean()
    spread = f" ± {(acc_high - acc_low) / 2:.3f}" if np.isfinite(acc_low) else ""
    row_labels.append(f"{label}\nbest accuracy {acc:.3f}{spread}")
ax.set_yticks(range(len(row_labels)), row_labels)
ax.set_ylim(len(row_labels) - 0.5, -0.12 * STUDIES - 0.5)  # the first pruner at the top
ax.set(xlabel="epochs spent by the study", ylabel="pruner")
ax.set_title(f"Epochs spent: {STUDIES} studies per pruner, mean and 95% interval", fontsize=10)
ax.legend(
    handles=[
        Line2D([], [], marker="o", mfc="none", color="0.4", ls="none", label="one study"),
        Line2D([], [], marker="o", color="0.4", label="mean, 95% interval"),
    ],  # the markers take the pruner's colour: shown in grey here
    loc="upper left", bbox_to_anchor=(1.01, 1),
)  # fmt: skip
plt.show()


# %% [markdown]
# One caution before the accuracies: here they cannot show that pruning keeps the best trial.
# TPE draws its first {glue:text}`random_start` trials at random from its seed alone, whatever
# a pruner did to the trials before, and a study here has {glue:text}`n_prune_trials` trials:
# in the studies with the same sampler seed, {glue:text}`prune_shared` So the pruners and no
# pruning tried the same configurations, all or most of them, and a pruner whose best accuracy
# equals no pruning's in every study owes that to the construction: it only shows that it did
# not stop the best of those trials early. It is no evidence that pruning keeps the best
# accuracy of a longer search, where TPE's model proposes most trials and a pruned trial
# changes what it proposes next.
#
# The epochs are the comparison's real content. In words, each pruner against no pruning,
# study by study (the same sampler seed gives the same first trials, so the studies are
# paired): `savings_sentence` writes the two differences, each with its interval over the
# studies, a {glue:text}`pruner_confidence` one (Bonferroni's correction for three pruners, as
# for the samplers):

# %%
same_start = min(
    shared_start(pruned_studies["no pruning", seed], pruned_studies[label, seed])
    for label in PRUNERS
    for seed in range(STUDIES)
)


def shared_sentence(shared, trials):
    """How many first trials every study of one sampler seed proposed identically, in words."""
    if shared == trials:
        return f"all {trials} trials were the same configurations, whatever the pruner."
    return (
        f"the first {shared} of the {trials} trials were the same configurations, whatever the "
        f"pruner, and only the last {plural(trials - shared, 'trial')} could differ."
    )


glue("n_prune_trials", PRUNE_TRIALS, display=False)
glue("prune_shared", shared_sentence(same_start, PRUNE_TRIALS), display=False)
PRUNER_CONFIDENCE = 1 - 0.05 / (len(PRUNERS) - 1)  # Bonferroni: 95% for the three together
glue("pruner_confidence", f"{100 * PRUNER_CONFIDENCE:.3g}%", display=False)
print(f"first trials shared by every study of a seed: {same_start} of {PRUNE_TRIALS}")

# %% tags=["nbval-ignore-output"]
pruner_sentences = "\n".join(
    savings_sentence(prune_results, run, "no pruning", confidence=PRUNER_CONFIDENCE)
    for run in list(PRUNERS)[1:]
)
print(f"{len(PRUNERS) - 1} pruners compared with no pruning")

# %%
finding(
    f"Over {STUDIES} studies per pruner of {PRUNE_TRIALS} trials, each interval a "
    f"{100 * PRUNER_CONFIDENCE:.3g}% one:\n\n{pruner_sentences}\n\nThe accuracies say little "
    "about the pruners, for the reason above.",
    needs="weigh the pruners' savings against their accuracy",
    sizes=f"on {N_TRAIN:,} training images, {TRAINS['pruners']}",
)

# %% [markdown]
# ### The Wilcoxon pruner reads folds, not epochs
#
# `WilcoxonPruner` answers another question. It is for objectives that average a score over
# *instances*: the folds of a cross-validation, training seeds, a set of problems. After each
# instance it pairs the trial's scores with the best trial's scores on the same instances and
# runs a Wilcoxon signed-rank test; once the test is confident (p below 0.1 by default) that the
# trial is worse, it stops it. The values of a learning curve are no such pairs, so
# `make_pruner("wilcoxon")` refuses an objective that reports epochs (`reports="instances"` is
# the way to ask for it).
#
# So we give it an objective that averages over folds: `idlmam.tune.kfold_loaders` cuts the
# search's images, training and validation together, into {glue:text}`n_folds` folds, and
# `make_fold_objective` trains one network per fold on the other four, scores it on that fold,
# reports the score under the fold's number, and returns the mean. A trial the pruner stops
# returns the mean of the folds it has scored, Optuna's advice for this pruner, so the sampler
# still learns from it.
#
# The number of folds limits what the test can save. When a trial is worse than the best on
# all of its first $n$ folds, the one-sided signed-rank test gives $p = 1/2^n$: 0.125 after
# three folds, above the threshold, and 0.0625 after four. With five folds the pruner can stop a
# trial only before its fifth fold, saving at most a fifth of its training. Of the
# {glue:text}`n_cv_trials` trials of the Wilcoxon studies it stopped
# {glue:text}`cv_stopped`.

# %% tags=["nbval-ignore-output"]
everything = combine_loaders(train_loader, val_loader)  # the search's images, all of them
folds = kfold_loaders(everything.X, everything.y, FOLDS, seed=SEED)
cv_studies = {}
for label, name in {"no pruning": "none", "Wilcoxon": "wilcoxon"}.items():
    cross_validated = make_fold_objective(
        folds, epochs=EPOCHS, device=DEVICE, seed=SEED, prune=name != "none"
    )
    for seed in range(STUDIES):
        pruner = make_pruner(name, reports="instances")
        study = create_study(seed=seed, pruner=pruner, study_name=f"cv-{name}-{seed}")
        study.optimize(cross_validated, n_trials=PRUNE_TRIALS)
        cv_studies[label, seed] = study
cv_results = outcome_frame(cv_studies)
glue("n_folds", FOLDS, display=False)
cv_results.groupby("run")[["epochs spent", "best accuracy"]].mean().round(
    {"epochs spent": 1, "best accuracy": 4}
)

# %% tags=["nbval-ignore-output"]
wilcoxon = [t for (run, _), study in cv_studies.items() if run == "Wilcoxon" for t in study.trials]
scored = pd.Series([t.user_attrs[FOLDS_SCORED] for t in wilcoxon], name="folds scored")
stopped = scored[scored < FOLDS].value_counts().sort_index()  # folds scored -> trials
after = ", ".join(f"{n} after {k} folds" for k, n in stopped.items())
if len(stopped) == 1:
    after = f"each after {stopped.index[0]} folds"
glue("n_cv_trials", len(scored), display=False)
glue("cv_stopped", f"{stopped.sum()} ({after})" if after else "none", display=False)
cv_same = min(
    shared_start(cv_studies["no pruning", s], cv_studies["Wilcoxon", s]) for s in range(STUDIES)
)
glue("cv_shared", shared_sentence(cv_same, PRUNE_TRIALS), display=False)
stopped.rename_axis("folds scored").to_frame("trials stopped")

# %%
finding(
    f"Over {STUDIES} cross-validated studies of {PRUNE_TRIALS} trials each, "
    f"{FOLDS} folds of {EPOCHS} epochs per trial:\n\n"
    + savings_sentence(cv_results, "Wilcoxon", "no pruning")
    + "\n\nThe accuracies say little, for the reason below.",
    needs="weigh the Wilcoxon pruner's savings",
    sizes=f"on {N_TRAIN + N_VAL:,} images in {FOLDS} folds, {TRAINS['folds']}",
)

# %% [markdown]
# The caution of the pruners holds here too: in the studies with the same sampler seed,
# {glue:text}`cv_shared` With more folds (or seeds, or problems) per trial, the test reaches
# its verdict earlier in the trial, and the share it can save grows.
#
# ## Watching a search live: the dashboard
#
# A search of hundreds of trials runs for hours; waiting for the end to look at it wastes them.
# `optuna-dashboard` (in idlmam's `tune` extra) serves a web page on a study's storage: every
# trial with its parameters and score, the optimization history, each trial's learning curve
# (the validation accuracy `make_objective` reports after every epoch), and the parameter
# importances, computed with the same PED-ANOVA evaluator as above. It reads the storage again
# as the page refreshes, so trials appear as workers finish them.
#
# To watch your own search, give it a storage that outlives the process: a journal file, on
# one machine or on a file system several machines share (see the end of the page), or a
# database. Start the search in one terminal, for example the chapter's search as a worker
# command (it creates the study, then fills it to 50 trials):
#
# ```bash
# python -m idlmam.tune --storage journal:///search.log --study mine --create --n-trials 50
# ```
#
# and the dashboard in another, from the repository:
#
# ```bash
# make dashboard STORAGE=journal:///search.log STUDY=mine
# ```
#
# It prints the address of the study's page (http://127.0.0.1:8080/dashboard/studies/... by
# default; `PORT=` changes the port). It listens on this machine only, since the dashboard can
# also rename and delete studies. `STORAGE` takes any storage the worker takes: a SQLite file
# (`sqlite:///search.db`) or a PostgreSQL URL work too. In a notebook, create the study in such
# a storage, `idlmam.tune.create_study("journal:///search.log", "mine")`, and watch it fill
# while the cell runs.
#
# ## Several workers on one study
#
# Trials are independent trainings, so a search spreads over several processes: each *worker*
# loads the same study from a shared storage, asks it for a trial, trains it, and reports back;
# the sampler of each worker sees every worker's finished trials. Here the storage is Optuna's
# journal file, an append-only log that processes can share (Optuna's FAQ advises it over SQLite
# for parallel work). `idlmam.tune.run_workers` starts such workers as local
# processes and waits for them; each records itself in its trials. Here two workers fill one
# study of {glue:text}`n_worker_trials` trials of a toy objective that sleeps a quarter of a
# second per trial to stand in for training (the objective must be importable by the new
# processes, which a function defined in a notebook is not):

# %% tags=["nbval-ignore-output"]
WORKER_TRIALS = 12  # the study's total, both workers together
with tempfile.TemporaryDirectory() as folder:
    storage = f"journal:///{folder}/search.log"  # an absolute path: four slashes in all
    started = time.perf_counter()
    shared = run_workers(
        storage, "two-workers", WORKER_TRIALS, n_workers=2, objective=Quadratic(seconds=0.25)
    )
    worker_seconds = time.perf_counter() - started
order = shared.sort_values("start")
switches = int((order["worker"].diff().fillna(0) != 0).sum())  # worker changes, in start order
glue("n_worker_trials", WORKER_TRIALS, display=False)
glue("worker_seconds", worker_seconds, display=False)
glue("worker_switches", switches, display=False)
interleave = "the trials interleave" if switches >= len(shared) // 2 else "they barely interleave"
glue("worker_interleave", interleave, display=False)
counts = shared["worker"].value_counts().sort_index()
glue("worker_counts", " and ".join(str(n) for n in counts), display=False)
zero = order["start"].min()
order.assign(
    start=(order["start"] - zero).dt.total_seconds().round(2),
    complete=(order["complete"] - zero).dt.total_seconds().round(2),
)[["trial", "worker", "state", "start", "complete", "value"]].round({"value": 3}).rename(
    columns={"start": "start (s)", "complete": "end (s)"}
)

# %% [markdown]
# Whatever the timing, the study holds exactly the trials asked for, every one finished, and
# both workers took part:

# %%
complete = (shared["state"] == "COMPLETE").sum()
workers = " and ".join(f"worker {w}" for w in sorted(set(shared["worker"])))
print(
    f"{plural(len(shared), 'trial')} (asked for {WORKER_TRIALS}), {complete} of them complete, "
    f"run by {workers}"
)

# %% mystnb={"figure": {"caption": "Two worker processes filling one study in a journal file: each trial as a bar from its start to its end, on the row of the worker that ran it, labelled with its trial number.", "name": "fig-workers"}, "image": {"alt": "A timeline with two rows, worker 0 and worker 1, and time in seconds on the x axis. Each row holds a sequence of short bars, the trials that worker ran, labelled with their trial numbers; the numbers alternate between the two rows, showing that the workers took turns at the study's next trial."}} tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(8, 2.2))
for _, row in order.iterrows():
    begin = (row["start"] - zero).total_seconds()
    width = (row["complete"] - row["start"]).total_seconds()
    ax.barh(row["worker"], width, left=begin, color=f"C{row['worker']}", edgecolor="white")
    ax.text(begin + width / 2, row["worker"], str(row["trial"]), ha="center", va="center")
ax.set(xlabel="seconds since the first trial started", yticks=[0, 1])
ax.set_yticklabels(["worker 0", "worker 1"])
ax.set_title(f"{len(shared)} trials, two processes, one journal file", fontsize=10)
plt.show()

# %% [markdown]
# The two processes took {glue:text}`worker_seconds:.1f` seconds in all, starting included,
# and ran {glue:text}`worker_counts` trials; in the order the trials started, the worker
# changed {glue:text}`worker_switches` times, so {glue:text}`worker_interleave`: each worker
# asks for the next trial as soon as it has finished one. The count is exact because
# `run_workers` has its workers take a lock around "count the trials, ask for a new one";
# workers on separate machines cannot share that lock, and may overshoot the total by up to
# one trial per extra worker when they ask at the same instant. Their samplers see each other's
# trials through the storage; TPE, Optuna 5's default, also counts the trials still running
# elsewhere as if they had scored badly (the *constant liar*), so that a worker does not propose
# a trial next to one another worker is already training.
#
# For a real search, start the workers yourself: `python -m idlmam.tune` is the worker of the
# chapter's search, one per process (with `--threads` so that they share the cores), on a
# journal file on one machine. Across machines, Optuna's documentation also suggests the
# journal file on a shared network file system (NFS), where SQLite's file locks often fail and
# the journal takes its own lock; like SQLite it is not made for many concurrent writes, which
# trials that each train a network rarely need. The book uses a PostgreSQL database there instead
# (`--storage postgresql+psycopg://USER:PASSWORD@HOST/DATABASE`): each running trial
# sends a heartbeat, and the trial of a worker that died is failed and run again by another.
# The README shows both, and `make dashboard` watches either. Keep in mind that parallel
# workers are not reproducible even when seeded: what each proposes depends on which trials the
# others had finished at that moment.
#
# ## What to take away
#
# ```{admonition} A search-and-pruning recipe, and how far this page supports it
# :class: tip
# - **Bound the rate first.** One range-test pass, at most an epoch, says where the learning rate
#   stops training; search the rate on a log scale below that.
# - **Explore, then exploit.** Spend the first trials spread evenly over the space: random
#   search, or quasi-random (Sobol) points, which the Tuning Playbook recommends while the space
#   is still being learned {cite:p}`godbole2023playbook` (Optuna's `QMCSampler`). A model-based
#   sampler (TPE, GP) pays once it has trials to learn from.
# - **Let the pruner judge only once the curves separate** (its warm-up), and measure it by the
#   best score *and* the epochs spent. To learn whether a pruner keeps the best trial, compare
#   searches long enough for the sampler to propose different trials under each pruner, at the
#   same compute: with the same trials, as here, the best scores agree by construction.
# - **Repeat a search before trusting its ranking**, and widen the intervals for the number of
#   comparisons read: here {glue:text}`n_studies` studies per sampler.
# - **Scale.** A trial here trains {glue:text}`trial_steps:,` optimizer steps on
#   {glue:text}`n_search_train:,` images, and a sampler's study runs {glue:text}`n_trials` of
#   them, a pruner's {glue:text}`n_prune_trials`.
#   Real searches run tens to hundreds of trials, each often hours long, where a pruner saves
#   far more and a sampler's model has more to learn from; what this page measured is how the
#   tools behave, not how much they gain at that scale.
# ```
#
# ## What we did
#
# - Ran random search, TPE, GP and CMA-ES as repeated, seeded studies on the chapter's search,
#   and compared their best-so-far curves with intervals over the studies.
# - Read the parameter importances of the TPE studies with the PED-ANOVA evaluator, passed
#   explicitly, on their pooled trials and study by study.
# - Measured a learning rate with one range-test pass and trained at it, at the searched rate
#   and at the curve's minimum, over several seeds.
# - Weighed the median, successive-halving and Hyperband pruners by the epochs they saved and
#   the accuracy they kept, and the Wilcoxon pruner on a cross-validated objective.
# - Saw how to watch a search with `make dashboard`, and filled one study with two worker
#   processes sharing a journal file, exactly to its count.
