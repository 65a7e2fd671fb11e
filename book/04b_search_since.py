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
# the choices behind such a study as experiments of their own. It runs five of the samplers
# Optuna 5 ships (random search, TPE, a Gaussian process, CMA-ES and quasi-random search) several
# times each on the chapter's search, compares three pruners with no pruning at the same compute
# (and a fourth, for cross-validated trials, apart), asks which
# hyperparameter mattered, and measures a learning rate in a single pass with the *range test*,
# checking it against the rate the search found. It ends with the tools of a longer search: a
# dashboard to watch it live, and several worker processes sharing one study.

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
from matplotlib.ticker import MaxNLocator
from optuna.trial import FixedTrial

from idlmam.budget import get_budget
from idlmam.data import split
from idlmam.experiments import lr_range_test
from idlmam.models import mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.plotting import plot_range_test, run_colours
from idlmam.stats import compare, final_scores
from idlmam.text import plural
from idlmam.tune import (
    FOLDS_SCORED,
    Quadratic,
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
)
from idlmam.tune.compare import best_by_epochs_band, best_within, stop_at_epochs
from idlmam.tune.samplers import quiet_experimental
from idlmam.utils import get_device, set_seed

setup(threads=1)  # one CPU thread: small networks gain little from more, and repeat exactly
optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial is noise on a page

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter or quick
SEARCH = BUDGET.search  # this page's sizes: trials, epochs and images of its studies
STUDIES = SEARCH.studies  # independent studies per sampler (sampler seeds 0, 1, ...)
TRIALS = SEARCH.trials  # trials per study of the sampler comparison
EPOCHS = SEARCH.epochs  # epochs per trial there (and per fold of cross-validation)
PRUNE_STUDIES = SEARCH.prune_studies  # independent studies per pruner
CV_STUDIES = SEARCH.cv_studies  # independent cross-validated studies with Wilcoxon and without
PRUNE_TRIALS = SEARCH.prune_trials  # trials of a study without pruning, and of a Wilcoxon study
PRUNE_EPOCHS = SEARCH.prune_epochs  # epochs of a trial there that no pruner stops
PRUNE_BUDGET = SEARCH.prune_budget  # epochs every pruner's study spends: PRUNE_TRIALS x EPOCHS
SEEDS = BUDGET.chapter.seeds  # training seeds of the runs at a chosen rate, as in the chapter
FOLDS = 5  # folds of the cross-validated studies (why five: see the Wilcoxon pruner)
SEED = 0  # the split, and the weights and batch order every trial starts from
RANDOM_START = 10  # TPE's and GP's first trials, drawn at random (their n_startup_trials)
DEVICE = get_device()
SAMPLERS = {
    "random": "random search",
    "tpe": "TPE",
    "gp": "GP",
    "cmaes": "CMA-ES",
    "qmc": "quasi-random",
}
PRUNER_NAMES = ["no pruning", "median", "successive halving", "Hyperband"]
RATE_NAMES = ["the suggested rate", "the searched rate", "the curve's minimum"]


def points(comparison):
    """A comparison's difference and half-width in points, e.g. '+1.2 ± 0.8' (never -0.0)."""
    difference = round(100 * comparison.difference, 1) + 0.0
    return f"{difference:+.1f} ± {100 * comparison.half_width:.1f}"


def beyond(comparisons):
    """Which of the named comparisons' intervals exclude 0, in words."""
    names = [name for name, c in comparisons.items() if c.differs]
    return f"beyond the noise: {', '.join(names)}" if names else "none beyond the noise"


# %%
# what the page trains, for the budget box: the images of chapter_loaders' 80/20 split (the
# search's, and the range test's: those of the Optuna page's search), the studies and the runs
N_TRAIN, N_VAL = (len(p) for p in split(range(SEARCH.train_size or 60_000), seed=SEED))
N_RANGE = len(split(range(BUDGET.studies.train_size or 60_000), seed=SEED)[0])
TRAINS = {
    "samplers": f"{plural(len(SAMPLERS) * STUDIES, 'study', 'studies')} of "
    f"{plural(TRIALS, 'trial')} of {plural(EPOCHS, 'epoch')}, {STUDIES} per sampler",
    "pruners": f"{plural(len(PRUNER_NAMES) * PRUNE_STUDIES, 'study', 'studies')} of "
    f"{plural(PRUNE_BUDGET, 'epoch')} each (trials of up to {plural(PRUNE_EPOCHS, 'epoch')} "
    f"until the budget is spent), {PRUNE_STUDIES} per pruner",
    "folds": f"{plural(2 * CV_STUDIES, 'cross-validated study', 'cross-validated studies')} "
    f"of {plural(PRUNE_TRIALS * FOLDS * EPOCHS, 'epoch')} each (trials of up to {FOLDS} "
    f"trainings of {plural(EPOCHS, 'epoch')}, one per fold, until the budget is spent), "
    f"{CV_STUDIES} with the Wilcoxon pruner and {CV_STUDIES} without",
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
# ## Five samplers, each run several times
#
# A *sampler* proposes each trial's hyperparameters from the trials before it. Five of those
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
# - **quasi-random search** (`QMCSampler`): learns nothing from the scores either, like random
#   search, but takes its points from a *scrambled Sobol sequence*, which fills the space more
#   evenly than independent draws (fewer clumps and gaps); the Tuning Playbook recommends it for
#   the exploration phase of a search {cite:p}`godbole2023playbook`.
#
# `idlmam.tune.make_sampler` makes each by name, seeded. TPE and GP begin with
# {glue:text}`random_start` random trials (their `n_startup_trials`, Optuna's default) before
# their model proposes anything, and they draw them
# from a random sampler with the same seed: the first trials of random search, TPE and GP with
# one seed are the same trials. CMA-ES starts from its Gaussian after one random trial, and
# quasi-random search takes its Sobol points after one random trial too (the seed scrambles the
# sequence, so each seed gives other points).
#
# One study is one draw: a sampler that was lucky once proves nothing. So each sampler runs
# {glue:text}`n_studies` independent studies, sampler seeds 0, 1, ..., of
# {glue:text}`n_trials` trials each, on the same objective (every trial trains from the same
# seed, so a setting always gets the same score, whichever study proposes it). Each trial is
# {glue:text}`trial_steps:,` optimizer steps. What will be read, decided before the runs: each
# study's best validation accuracy after its last trial, each sampler against random search,
# the baseline, with intervals widened for the {glue:text}`n_sampler_comparisons` comparisons
# (below).

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
glue("n_sampler_comparisons", len(SAMPLERS) - 1, display=False)
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


in_common = {n: shared_start(studies["random", 0], studies[n, 0]) for n in list(SAMPLERS)[1:]}
print(
    "first trials shared with random search:",
    ", ".join(f"{SAMPLERS[n]} {k}" for n, k in in_common.items()),
)

# %% [markdown]
# Below, each sampler's best validation accuracy so far after every trial: the line is the mean
# over its studies, the band a 95% t-interval of that mean. Five bands on one axis would hide
# each other, so there are two panels, each with random search as the baseline: on the left
# the samplers that share its random start, on the right those that share only its first
# trial. Up to the dash-dotted black line, random search, TPE and GP run the same trials, so
# their curves coincide (and only random search's band is drawn there). The first trials
# differ most and say least (a best of one or two trials), so the accuracy axis shows only the
# range the curves occupy from the fifth trial on; the first trials and the widest bands leave
# it at the bottom.

# %% mystnb={"figure": {"caption": "Best validation accuracy so far against the trials run, for five samplers: the mean over independent studies (sampler seeds), with a 95% t-interval band, random search in both panels as the baseline. Left: TPE and GP, which run the same random trials as random search up to the dash-dotted vertical line (the end of their random start): their lines coincide there, and their bands, random search's until then, are drawn from the last shared trial on. Right: CMA-ES and quasi-random search (a scrambled Sobol sequence), which share only the first trial. The accuracy axis, shared by the panels, spans the curves from the fifth trial on, so the first trials and the widest bands are cut at the bottom.", "name": "fig-samplers"}, "image": {"alt": "Two line charts side by side sharing a y axis of best validation accuracy so far (zoomed to the range of the curves from the fifth trial on) against trials run (x), each line with a light shaded band with thin edges and a legend in the lower right. Both panels show random search (cyan, solid). The left panel adds TPE (olive, dashed) and GP (grey, dotted), whose bands begin at the last trial of the random start; the three lines lie on top of each other up to a black dash-dotted vertical line after that trial and may separate afterwards. The right panel adds CMA-ES (pink, dashed) and quasi-random (brown, dotted), which follow their own paths from the second trial. The earliest parts of the curves rise from below the bottom of the axes."}} tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained", sharey=True)
colours = run_colours(SAMPLERS.values())  # the book's colours for names it does not know
PANELS = [("random", "tpe", "gp"), ("random", "cmaes", "qmc")]  # shared random start or not
TITLES = ["the same random start as random search", "one trial in common with random search"]
styles = ["-", "--", ":"]  # in a panel: random search solid, the other two dashed and dotted
bands = {name: best_so_far_band([studies[name, s] for s in range(STUDIES)]) for name in SAMPLERS}
for ax, names, title in zip(axes, PANELS, TITLES):
    for name, ls in zip(names, styles):
        band, label = bands[name], SAMPLERS[name]
        x = band.index + 1  # trial number 0 is the first trial run
        ax.plot(x, band["mean"], ls=ls, label=label, lw=2, color=colours[label])
        # TPE's and GP's bands are random search's during the random start: drawn after it only
        shown = x >= (RANDOM_START if name in ("tpe", "gp") else 1)
        low, high = band["low"].clip(0, 1)[shown], band["high"].clip(0, 1)[shown]
        ax.fill_between(x[shown], low, high, color=colours[label], alpha=0.08, lw=0)
        for edge in (low, high):  # thin edges: overlapping bands stay apart
            ax.plot(x[shown], edge, ls=ls, lw=0.7, color=colours[label], alpha=0.6)
    if "tpe" in names:
        ax.axvline(RANDOM_START + 0.5, color="black", ls="-.", lw=1, label="end of random start")
    ax.set(xlabel="trials run")
    ax.set_title(title, fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right", fontsize=8)  # the curves rise to the upper right
# the axis from the curves after the first few trials: their lowest mean at the fifth trial,
# and the highest band after it, each with a margin of a tenth of that range
fifth = min(4, TRIALS - 1)  # trial number 4 is the fifth trial run
low = min(band["mean"].iloc[fifth] for band in bands.values())
high = max(band[["mean", "high"]].iloc[fifth:].max().max() for band in bands.values())
margin = 0.1 * max(high - low, 0.01)
axes[0].set(ylabel="best validation accuracy so far", ylim=(low - margin, min(1.0, high + margin)))
fig.suptitle(f"{STUDIES} studies per sampler, mean and 95% interval", fontsize=10)
plt.show()

# %% [markdown]
# After the last trial, each study's best is one number; over the studies of a sampler they give
# a mean and an interval. Each sampler is then compared with random search, the baseline. TPE
# and GP share their first {glue:text}`random_start` trials with random search's study of the
# same seed, so they are compared with it seed by seed (a paired interval on the per-seed
# differences). CMA-ES and quasi-random search share only their first trial, so pairing them by
# seed would borrow a link the runs do not have: they are compared without pairing (Welch's
# interval on the difference of the two means; their seeds are relabelled so that
# `idlmam.stats.compare` does not pair them).
#
# {glue:text}`n_sampler_comparisons` comparisons make as many chances to see a difference that
# is only noise: with that many 95% intervals, the chance that at least one misses its true
# difference is up to that many times 5%. So each interval is widened by Bonferroni's
# correction, a {glue:text}`sampler_confidence` interval (`compare(..., confidence=...)`), so
# that they hold together with 95% confidence. The table gives each sampler's own mean and 95%
# interval, uncorrected: it describes the samplers one by one and compares none; its last
# column counts the different best accuracies among a sampler's studies.

# %% tags=["nbval-ignore-output"]
best = pd.DataFrame(
    [
        {"run": SAMPLERS[name], "seed": seed, "epoch": 0, "best accuracy": study.best_value}
        for (name, seed), study in studies.items()
    ]
)
PAIRED = ("tpe", "gp")  # their random start is random search's trials (in_common above)
pairs = [(SAMPLERS[name], "random search") for name in list(SAMPLERS)[1:]]
unpaired = ~best["run"].isin([SAMPLERS[n] for n in ("random", *PAIRED)])
welch = best.assign(seed=best["seed"].where(~unpaired, best["seed"] + STUDIES))  # unmatched
SAMPLER_CONFIDENCE = 1 - 0.05 / len(pairs)  # Bonferroni: 95% for the comparisons together
sampler_comparisons = {
    a: compare(welch, a, b, "best accuracy", confidence=SAMPLER_CONFIDENCE) for a, b in pairs
}
sampler_sentences = "\n".join(  # each bullet a sentence: "quasi-random" capitalised
    f"- {c.sentence()[:1].upper()}{c.sentence()[1:]}." for c in sampler_comparisons.values()
)
glue("sampler_confidence", f"{100 * SAMPLER_CONFIDENCE:.3g}%", display=False)
if BUDGET.findings:  # the recipe box's reading of the runs, only on a budget that supports it
    said = ", ".join(f"{a} {points(c)}" for a, c in sampler_comparisons.items())
    sampler_takeaway = (
        f"Here, after {TRIALS} trials, each sampler's best against random search's, in points "
        f"({STUDIES} studies, {100 * SAMPLER_CONFIDENCE:.3g}% intervals): {said}; "
        f"{beyond(sampler_comparisons)}."
    )
else:
    sampler_takeaway = "This budget's runs are too small to compare them (see the box above)."
glue("sampler_takeaway", sampler_takeaway, display=False)
glue("gp_seconds", seconds["gp"] / seconds["random"], display=False)
scores = final_scores(best, "best accuracy")
different = best.groupby("run")["best accuracy"].nunique()  # how many different bests
scores.rename(columns={"seeds": "studies", "mean": "mean best accuracy"}).assign(
    **{
        "95% interval": scores["half_width"].map("± {:.4f}".format),
        "different bests": different[scores.index],
    }
)[["studies", "mean best accuracy", "95% interval", "different bests"]].round(4)

# %% tags=["nbval-ignore-output"]
zero = [run for run in scores.index if scores.loc[run, "half_width"] == 0]
if zero:
    said = "; ".join(
        f"all {scores.loc[run, 'seeds']} {run} studies found the same best, "
        f"{scores.loc[run, 'mean']:.4f}"
        for run in zero
    )
    zero_width = (
        f"An interval of ± 0.0000 is no certainty: {said}. With no spread among the studies, "
        "the t-interval has zero width, and it says nothing about how far another study could end."
    )
else:
    zero_width = (
        "No interval in the table has zero width: no sampler's studies all found the same best "
        "(the t-interval of equal values would be ± 0.0000, no spread, which is no certainty)."
    )
print(zero_width)

# %%
finding(
    f"After {TRIALS} trials of {plural(STEPS, 'optimizer step')} each, over {STUDIES} studies "
    'per sampler ("seeds" are the samplers\' seeds; TPE and GP paired with random search by '
    f"seed, CMA-ES and quasi-random search not; each interval a {100 * SAMPLER_CONFIDENCE:.3g}% "
    f"one, Bonferroni's correction for the {len(pairs)} comparisons):\n\n{sampler_sentences}\n\n"
    "Each line compares one sampler with random search only: they do not order the others "
    "among themselves.",
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
# lie), and show each study's own importances as dots, to make their spread visible. Pooled,
# the top 10% holds {glue:text}`n_top`: {glue:text}`top_advice`.
#
# What the numbers measure matters too. PED-ANOVA compares the best trials with the trials the
# study ran, not with the whole search space, so it measures importance within the region the
# TPE studies explored: once TPE has settled on a range of rates, the rate may look less
# important than it would over the whole range from $10^{-5}$ to $10^{-2}$.

# %% tags=["nbval-ignore-output"]
tpe_trials = [t for s in range(STUDIES) for t in studies["tpe", s].trials]
pooled = optuna.create_study(direction="maximize")
pooled.add_trials(tpe_trials)
with quiet_experimental():  # marked experimental in Optuna 4.9, the oldest the package allows
    PED_ANOVA = optuna.importance.PedAnovaImportanceEvaluator()  # not the version's default
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
tenth = math.ceil(0.1 * len(values))
n_top = int((values >= values[tenth - 1]).sum())
ties = f" (not {tenth}: the trials that tie its last place all count)" if n_top > tenth else ""
glue("n_top", f"{plural(n_top, 'trial')}{ties}", display=False)
glue(
    "top_advice",
    "at least the 5 the advice asks for" if n_top >= 5 else "fewer than the 5 the advice asks for",
    display=False,
)
pd.concat([importances, overall.to_frame().T]).rename_axis("TPE study (seed)").round(3)

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
ahead = int((importances[first] > importances[second]).sum())  # studies that agree on the order
if n_top < 5:
    firm = (
        f"Even pooled, the top 10% is only {n_top} trials, so the order of the first two, "
        f"`{first}` and `{second}`, is not firm."
    )
else:
    firm = f"Study by study, `{first}` came before `{second}` in {ahead} of the {STUDIES} studies"
    gap = overall[first] - overall[second]
    if 2 * ahead <= STUDIES:  # most studies found the other order
        firm += (
            f", so the pooled order of these two, {gap:.2f} apart, is not what most studies "
            "found: the runs do not rank them."
        )
    else:
        firm += "."
finding(
    f"Pooled, the importances are {ranking}. {agreement} {firm}",
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
by_seed = at_rates.pivot(index="seed", columns="run", values="val Accuracy")[RATE_NAMES]
by_seed.rename_axis(columns="validation accuracy at").map(
    lambda v: "diverged" if pd.isna(v) else f"{v:.4f}"
)

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
if BUDGET.findings and readings:  # the recipe box's reading of the runs
    against = {
        run: compare(at_rates, trained[0], run, "val Accuracy", confidence=confidence)
        for run in trained[1:]
    }
    said = ", ".join(f"against {run} {points(c)}" for run, c in against.items())
    range_takeaway = (
        f"Here one pass of {range_seconds:.1f} s suggested {result.suggestion:.2g}, "
        f"{result.suggestion / searched:.2g} times the searched rate; over {SEEDS} seeds, "
        f"{trained[0]} ended {said} points ({100 * confidence:.3g}% intervals), "
        f"{beyond(against)}."
    )
else:
    range_takeaway = "This budget's runs are too small to compare the rates (see the box above)."
glue("range_takeaway", range_takeaway, display=False)
finding("\n".join(lines), needs="compare the rates", sizes=TRAINS["rates"])

# %% [markdown]
# The range test costs one pass, a search many trainings; it answers a narrower question, though:
# one rate, for one network, at the start of training, while the search also chose the network
# and judged each rate by where a whole run ends. A range test is a cheap way to set the range
# a search explores, or the peak of a schedule; it is not the whole search.
#
# ## Pruners at the same compute
#
# A pruner stops a trial whose learning curve looks hopeless, and the epochs it saves can pay for
# more trials. What it costs is the chance that a stopped trial would have caught up. So the
# question to ask of a pruner is what its search finds with the same compute as a search without
# it, not what it saves on the same list of trials. Every study here gets the same budget,
# {glue:text}`prune_budget` epochs: what a study without pruning spends on
# {glue:text}`n_prune_trials` trials of {glue:text}`n_prune_epochs` epochs (a trial of up to
# {glue:text}`prune_trial_steps:,` optimizer steps). A pruned study spends the epochs it saves on
# more trials, and after TPE's random start its sampler proposes other trials than the study
# without pruning. We compare, each with the same TPE sampler and sampler seeds:
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
#
# The rules of the comparison, fixed before the runs:
#
# - **The stop.** `stop_at_epochs(budget)` (from `idlmam.tune.compare`) is a callback that
#   stops a study once its trials have spent the budget. It is read between trials, so the trial
#   that crosses the budget runs to its end: a study may spend up to
#   {glue:text}`prune_overshoot` beyond the budget (a whole trial less its first epoch). Those
#   epochs are counted as spent (the table below shows them).
# - **The score.** Each study's result is the best validation accuracy among its trials that
#   finished within the budget (`best_within`): the trial that crossed it is left out, whatever
#   its score, so every study is read at the same compute.
# - **The comparison.** Each pruner against no pruning, paired by sampler seed (the studies of
#   one seed begin with the same random trials), {glue:text}`n_prune_studies` studies each,
#   every interval a {glue:text}`pruner_confidence` one: Bonferroni's correction for three
#   pruners, as for the samplers.

# %%
STARTUP = max(2, PRUNE_TRIALS // 4)  # finished trials before the median pruner judges
PRUNERS = {  # the name on the page: make_pruner's name and settings
    "no pruning": ("none", {}),
    "median": ("median", {"n_startup_trials": STARTUP, "n_warmup_steps": 1}),
    "successive halving": ("halving", {"min_resource": 1, "reduction_factor": 3}),
    "Hyperband": ("hyperband", {"min_resource": 1, "reduction_factor": 3}),
}
assert list(PRUNERS) == PRUNER_NAMES  # the pruners the budget box counts
PRUNER_CONFIDENCE = 1 - 0.05 / (len(PRUNERS) - 1)  # Bonferroni: 95% for the three together
# successive halving's rungs: steps 1, 3, 9, ... (a step is an epoch counted from 0)
rungs = [str(3**k + 1) for k in range(10) if 3**k < PRUNE_EPOCHS]
rungs = ("epochs " if len(rungs) > 1 else "epoch ") + " and ".join(
    [", ".join(rungs[:-1]), rungs[-1]] if len(rungs) > 1 else rungs
)
glue("rungs", rungs, display=False)
glue("n_prune_epochs", PRUNE_EPOCHS, display=False)
glue("n_prune_trials", PRUNE_TRIALS, display=False)
glue("n_prune_studies", PRUNE_STUDIES, display=False)
glue("prune_budget", PRUNE_BUDGET, display=False)
glue("prune_overshoot", plural(PRUNE_EPOCHS - 1, "epoch"), display=False)
glue("prune_trial_steps", PRUNE_EPOCHS * len(train_loader), display=False)
glue("prune_startup", STARTUP, display=False)
glue("pruner_confidence", f"{100 * PRUNER_CONFIDENCE:.3g}%", display=False)
print(
    f"a budget of {PRUNE_BUDGET} epochs per study; rungs after {rungs}; the median pruner "
    f"starts after {plural(STARTUP, 'trial')}"
)

# %% tags=["nbval-ignore-output"]
prunable = make_objective(
    train_loader, val_loader, epochs=PRUNE_EPOCHS, device=DEVICE, seed=SEED, prune=True,
    learning_rate=(1e-5, 1e-1), max_train_loss=2 * math.log(10),
)  # fmt: skip
stop = stop_at_epochs(PRUNE_BUDGET)
pruned_studies = {}
for label, (name, settings) in PRUNERS.items():
    for seed in range(PRUNE_STUDIES):
        pruner = make_pruner(name, **settings)  # a fixed study name: Hyperband's brackets repeat
        study = create_study(seed=seed, pruner=pruner, study_name=f"{name}-{seed}")
        # every trial spends an epoch at least, so the budget also bounds the number of trials
        study.optimize(prunable, n_trials=PRUNE_BUDGET, callbacks=[stop])
        pruned_studies[label, seed] = study


# %% [markdown]
# The first figure shows how the studies spent the budget: their best accuracy so far, found
# among the trials finished within the epochs spent so far, the mean over the studies of a
# pruner with its 95% band. Four bands on one axis would hide each other, so each pruner has a
# panel of its own, with no pruning in every panel as the reference; every curve stops at the
# budget. The table after it gives each pruner's studies, as means: the trials they ran, those
# stopped early (by the pruner, or because their training diverges, which stops a trial under any
# pruner), the epochs spent with the overshoot of the last trial, and the best accuracy within
# the budget with its 95% interval over the studies.


# %%
def pruned(trial):
    """Whether a trial was stopped before its last epoch: by its pruner, or as it diverged."""
    return trial.state == optuna.trial.TrialState.PRUNED


def budget_frame(studies_by_run, budget, stopped=pruned):
    """One row per study of a budget: its trials, those ``stopped`` early, the epochs spent,
    and the best accuracy among the trials finished within the budget (stats.compare's shape)."""
    return pd.DataFrame(
        [
            {
                "run": run,
                "seed": seed,
                "epoch": 0,
                "trials": len(study.trials),
                "stopped early": sum(stopped(t) for t in study.trials),
                "epochs spent": epochs_spent(study),
                "best accuracy": best_within(study, budget),
            }
            for (run, seed), study in studies_by_run.items()
        ]
    )


prune_results = budget_frame(pruned_studies, PRUNE_BUDGET)
print(f"{plural(len(prune_results), 'study', 'studies')}, {len(PRUNERS)} pruners")

# %% mystnb={"figure": {"caption": "How each pruner's studies spent the same budget of epochs: the best validation accuracy so far (among the trials finished within the epochs spent so far) against the epochs spent, the mean over the studies of a pruner with a 95% t-interval band, one panel per pruner, each beside no pruning, the reference. Every curve ends at the budget, its last value drawn one epoch wide. The accuracy axis, shared by the panels, spans the curves from a quarter of the budget on, so the first trials are cut at the bottom and the widest bands at the bottom and the top.", "name": "fig-pruner-paths"}, "image": {"alt": "Three line charts side by side sharing a y axis of best validation accuracy so far against epochs spent (x), ending at the same budget. Each panel shows no pruning (purple, solid) and one pruner, dashed: median (red), successive halving (green), Hyperband (orange), each line with a light shaded band with thin edges and a legend in the lower right. The curves rise in steps as trials finish; the earliest parts may rise from below the bottom of the axes."}} tags=["nbval-ignore-output"]
# the pruners' own palette: the spare colours after the samplers', so no colour means both
colours = {
    label: colour
    for label, colour in run_colours([*SAMPLERS.values(), *PRUNERS]).items()
    if label in PRUNERS
}
paths = {
    label: best_by_epochs_band(
        [pruned_studies[label, s] for s in range(PRUNE_STUDIES)], PRUNE_BUDGET
    )
    for label in PRUNERS
}
fig, axes = plt.subplots(
    1, len(PRUNERS) - 1, figsize=(11, 3.8), layout="constrained", sharex=True, sharey=True
)
for ax, label in zip(axes, list(PRUNERS)[1:]):
    for name, ls in (("no pruning", "-"), (label, "--")):
        band = paths[name]  # its last value drawn one epoch wide, so that the budget's shows
        band = pd.concat([band, band.iloc[[-1]].set_axis([band.index[-1] + 1])])
        x = band.index
        # steps: the best so far changes only when a trial finishes
        ax.step(x, band["mean"], where="post", ls=ls, lw=2, color=colours[name], label=name)
        low, high = band["low"].clip(0, 1), band["high"].clip(0, 1)
        ax.fill_between(x, low, high, step="post", color=colours[name], alpha=0.1, lw=0)
        for edge in (low, high):  # thin edges: overlapping bands stay apart
            ax.step(x, edge, where="post", ls=ls, lw=0.7, color=colours[name], alpha=0.6)
    ax.set(xlabel="epochs spent so far", xlim=(1, PRUNE_BUDGET + 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(label, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)  # the curves rise to the upper right
quarter = PRUNE_BUDGET // 4  # the axis from the curves after a quarter of the budget
low = min(band["mean"].loc[quarter:].min() for band in paths.values())
high = max(band[["mean", "high"]].loc[quarter:].max().max() for band in paths.values())
margin = 0.1 * max(high - low, 0.01)
axes[0].set(ylabel="best validation accuracy so far", ylim=(low - margin, min(1.0, high + margin)))
fig.suptitle(
    f"{PRUNE_STUDIES} studies per pruner, {PRUNE_BUDGET} epochs each: mean and 95% interval",
    fontsize=10,
)
plt.show()

# %% tags=["nbval-ignore-output"]
means = prune_results.groupby("run", sort=False)[["trials", "stopped early", "epochs spent"]].mean()
per_pruner = means.assign(
    **{
        "over the budget": means["epochs spent"] - PRUNE_BUDGET,
        "best accuracy": prune_results.groupby("run", sort=False)["best accuracy"].mean(),
        "95% interval": final_scores(prune_results, "best accuracy")["half_width"].map(
            "± {:.4f}".format
        ),
    }
)
per_pruner.index.name = f"mean of {plural(PRUNE_STUDIES, 'study', 'studies')}"
per_pruner.round({"trials": 1, "stopped early": 1, "epochs spent": 1, "over the budget": 1}).round(
    4
)

# %% [markdown]
# Every study of one sampler seed begins with the same random trials, TPE's random start, which
# no pruner changes (a pruner stops a trial; it does not choose the next one):
# {glue:text}`prune_shared` In words, each pruner against no pruning, paired by sampler seed,
# with the {glue:text}`pruner_confidence` intervals the rules above fixed:

# %%
same_start = min(
    shared_start(pruned_studies["no pruning", seed], pruned_studies[label, seed])
    for label in PRUNERS
    for seed in range(PRUNE_STUDIES)
)


def after_start(frame, shared, reference="no pruning"):
    """The first trials every study of a seed shared, and how many each run ran after them."""
    more = frame.groupby("run", sort=False)["trials"].mean() - shared

    def said(n, unit=""):
        return f"{n:.1f} more{unit}" if n > 0 else f"no more{unit}"

    runs = ", ".join(f"{run} {said(n)}" for run, n in more.items() if run != reference)
    return (
        f"in the studies of one sampler seed, the first {shared} trials were the same "
        f"configurations, whatever the pruner. After them, a study without pruning ran "
        f"{said(more[reference], ' trials')} on average, and with a pruner: {runs}."
    )


glue("prune_shared", after_start(prune_results, same_start), display=False)
print(f"first trials shared by every study of a seed: {same_start}")


# %% tags=["nbval-ignore-output"]
def budget_sentence(frame, run, reference, confidence):
    """What ``run`` ran and found within the budget against ``reference``, in one bullet."""
    mine = frame[frame["run"] == run]
    theirs = frame[frame["run"] == reference]
    kept = compare(frame, run, reference, "best accuracy", confidence=confidence).sentence()
    return (
        f"- **{run[:1].upper() + run[1:]}** ran {mine['trials'].mean():.1f} trials per study "
        f"({reference} {theirs['trials'].mean():.1f}), stopped {mine['stopped early'].mean():.1f} "
        f"of them early, and spent {mine['epochs spent'].mean():.1f} epochs with the last trial's "
        f"overshoot; within the budget, {kept}."
    )


pruner_sentences = "\n".join(
    budget_sentence(prune_results, run, "no pruning", PRUNER_CONFIDENCE)
    for run in list(PRUNERS)[1:]
)
if BUDGET.findings:  # the recipe box's reading of the runs, only on a budget that supports it
    pruner_comparisons = {
        run: compare(
            prune_results, run, "no pruning", "best accuracy", confidence=PRUNER_CONFIDENCE
        )
        for run in list(PRUNERS)[1:]
    }
    trials = prune_results.groupby("run")["trials"].mean()
    said = ", ".join(
        f"{run} {points(c)} with {trials[run]:.1f} trials" for run, c in pruner_comparisons.items()
    )
    pruner_takeaway = (
        f"Here, each pruner's best within {PRUNE_BUDGET} epochs against no pruning's "
        f"({trials['no pruning']:.1f} trials), in points ({PRUNE_STUDIES} studies, "
        f"{100 * PRUNER_CONFIDENCE:.3g}% intervals): {said}; {beyond(pruner_comparisons)}."
    )
else:
    pruner_takeaway = "This budget's runs are too small to compare them (see the box above)."
glue("pruner_takeaway", pruner_takeaway, display=False)
print(f"{len(PRUNERS) - 1} pruners compared with no pruning")

# %%
finding(
    f'Over {PRUNE_STUDIES} studies per pruner of {PRUNE_BUDGET} epochs each ("seeds" are the '
    f"samplers' seeds; each interval a {100 * PRUNER_CONFIDENCE:.3g}% one, Bonferroni's "
    f"correction for the three comparisons):\n\n{pruner_sentences}",
    needs="weigh the pruners at the same compute",
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
# trial only before its fifth fold, saving at most a fifth of its training.
#
# The rules are those of the pruners above: every study gets the same budget,
# {glue:text}`cv_budget` epochs, what a study without pruning spends on
# {glue:text}`n_prune_trials` trials of {glue:text}`n_folds` folds of {glue:text}`trial_epochs`
# (`stop_at_epochs` again, the last trial's overshoot counted as spent), each study's result is
# its best cross-validated accuracy within the budget, and the Wilcoxon pruner is compared with
# no pruning, paired by sampler seed, with a 95% interval (one comparison, no correction).

# %% tags=["nbval-ignore-output"]
everything = combine_loaders(train_loader, val_loader)  # the search's images, all of them
folds = kfold_loaders(everything.X, everything.y, FOLDS, seed=SEED)
CV_BUDGET = PRUNE_TRIALS * FOLDS * EPOCHS  # what a study without pruning spends
cv_studies = {}
for label, name in {"no pruning": "none", "Wilcoxon": "wilcoxon"}.items():
    cross_validated = make_fold_objective(
        folds, epochs=EPOCHS, device=DEVICE, seed=SEED, prune=name != "none"
    )
    for seed in range(CV_STUDIES):
        pruner = make_pruner(name, reports="instances")
        study = create_study(seed=seed, pruner=pruner, study_name=f"cv-{name}-{seed}")
        study.optimize(cross_validated, n_trials=CV_BUDGET, callbacks=[stop_at_epochs(CV_BUDGET)])
        cv_studies[label, seed] = study
cv_results = budget_frame(  # a stopped trial returns the mean of its folds: COMPLETE, not PRUNED
    cv_studies, CV_BUDGET, stopped=lambda t: t.user_attrs.get(FOLDS_SCORED, FOLDS) < FOLDS
)
glue("n_folds", FOLDS, display=False)
glue("cv_budget", CV_BUDGET, display=False)
cv_means = cv_results.groupby("run", sort=False)[["trials", "stopped early", "epochs spent"]]
cv_means = cv_means.mean()
cv_means.assign(
    **{"best accuracy": cv_results.groupby("run", sort=False)["best accuracy"].mean()}
).rename_axis(f"mean of {plural(CV_STUDIES, 'study', 'studies')}").round(
    {"trials": 1, "stopped early": 1, "epochs spent": 1, "best accuracy": 4}
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
    shared_start(cv_studies["no pruning", s], cv_studies["Wilcoxon", s]) for s in range(CV_STUDIES)
)
glue("cv_shared", after_start(cv_results, cv_same), display=False)
stopped.rename_axis("folds scored").to_frame("trials stopped")

# %%
finding(
    f"Over {CV_STUDIES} cross-validated studies per arm of {CV_BUDGET} epochs each, "
    f"{FOLDS} folds of {EPOCHS} epochs per trial (the interval a 95% one):\n\n"
    + budget_sentence(cv_results, "Wilcoxon", "no pruning", 0.95),
    needs="weigh the Wilcoxon pruner at the same compute",
    sizes=f"on {N_TRAIN + N_VAL:,} images in {FOLDS} folds, {TRAINS['folds']}",
)

# %% [markdown]
# As for the pruners above, the studies of one sampler seed share their random start:
# {glue:text}`cv_shared` Of the {glue:text}`n_cv_trials` trials of the Wilcoxon studies, the
# pruner stopped {glue:text}`cv_stopped`. With more folds (or seeds, or problems) per trial, the
# test reaches its verdict earlier in the trial, and the share it can save grows.
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
).set_index("trial")

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
#   stops training; search the rate on a log scale below that. {glue:text}`range_takeaway`
# - **Explore, then exploit.** Spend the first trials spread evenly over the space: random
#   search, or quasi-random (Sobol) points, which the Tuning Playbook recommends while the space
#   is still being learned {cite:p}`godbole2023playbook` (Optuna's `QMCSampler`). A model-based
#   sampler (TPE, GP) can only gain once it has trials to learn from.
#   {glue:text}`sampler_takeaway`
# - **Let the pruner judge only once the curves separate** (its warm-up), and compare pruners at
#   the same compute, as here: the same budget of epochs for every study, a pruner's savings
#   spent on more trials, each study read at the budget. Compared on the same trials instead,
#   their best scores would agree by construction. {glue:text}`pruner_takeaway`
# - **Repeat a search before trusting its ranking**, and widen the intervals for the number of
#   comparisons read: here {glue:text}`n_studies` studies per sampler and
#   {glue:text}`n_prune_studies` per pruner, with Bonferroni's correction.
# - **Scale.** A trial here trains {glue:text}`trial_steps:,` optimizer steps on
#   {glue:text}`n_search_train:,` images, and a sampler's study runs {glue:text}`n_trials` of
#   them; a pruner's study spends {glue:text}`prune_budget` epochs on trials of up to
#   {glue:text}`n_prune_epochs`.
#   Real searches run tens to hundreds of trials, each often hours long, where a pruner saves
#   far more and a sampler's model has more to learn from; what this page measured is how the
#   tools behave, not how much they gain at that scale.
# ```
#
# ## What we did
#
# - Ran random search, TPE, GP, CMA-ES and quasi-random search as repeated, seeded studies on
#   the chapter's search, and compared their best-so-far curves with intervals over the studies.
# - Read the parameter importances of the TPE studies with the PED-ANOVA evaluator, passed
#   explicitly, on their pooled trials and study by study.
# - Measured a learning rate with one range-test pass and trained at it, at the searched rate
#   and at the curve's minimum, over several seeds.
# - Gave the median, successive-halving and Hyperband pruners the same budget of epochs as no
#   pruning, and compared the best accuracy each study found within it; likewise the Wilcoxon
#   pruner on a cross-validated objective.
# - Saw how to watch a search with `make dashboard`, and filled one study with two worker
#   processes sharing a journal file, exactly to its count.
