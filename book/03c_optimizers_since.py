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
# # Optimizers since the chapter, compared fairly
#
# The gradients page ran every optimizer at one learning rate, its usual one. That answers "which
# optimizer works out of the box", not "which optimizer trains this network best". This page asks
# the second question with a protocol modelled on the MLCommons AlgoPerf benchmark
# {cite:p}`dahl2023benchmarking`: each optimizer gets its own learning-rate search on a validation
# split, by the same rule for all, and only its best setting is run with every seed and scored
# on the test set. The rules below say what is borrowed from AlgoPerf and what differs. The
# contenders are the chapter's SGD with Nesterov momentum and AdamW; NAdamW, the baseline of
# that benchmark; RAdam and Adafactor, which PyTorch now ships; three optimizers published after
# the chapter was written: Lion, Muon and schedule-free AdamW; and two preconditioners, Shampoo
# and SOAP, which the [next page](03d_preconditioning.ipynb) builds from scratch. Then a detail of AdamW that is
# easy to get wrong: which parameters should have weight decay. The page ends with a race of
# your own optimizer against the field, under the same rules.

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
import inspect
from dataclasses import replace
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.lines import Line2D

from idlmam.budget import get_budget
from idlmam.experiments import race, run
from idlmam.experiments.race import (
    DECAY,
    VAL_FRACTION,
    Contender,
    default_target,
    field,
    leaderboard,
    readable,
    run_race,
    setting,
    step_costs,
)
from idlmam.experiments.sweep import time_to_target, with_seeds
from idlmam.models import mlp
from idlmam.notebook import budget_banner, finding, glue, setup
from idlmam.optim import AdamW as ScratchAdamW
from idlmam.optim import decay_param_groups, muon_param_groups, schedule_lrs
from idlmam.plotting import run_colours
from idlmam.stats import compare, compare_pairs, final_scores, t_interval
from idlmam.text import plural
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: small networks gain little from more, and runs repeat exactly

# %%
SINCE = get_budget().since  # IDL_BUDGET=full (default), chapter or quick: this page's sizes
EPOCHS = SINCE.epochs  # epochs per run
SEEDS = range(SINCE.seeds)  # the best setting of each optimizer is run with these seeds
CHANCE = 0.1  # the accuracy of a guess among the ten classes
DEVICE = get_device()
HELD_OUT = f"training images, {VAL_FRACTION:.0%} of them held out for validation"
budget_banner(sizes=replace(SINCE, items=HELD_OUT))  # the search chooses on those

# %% [markdown]
# The protocol below lives in `idlmam.experiments.race`, so that this page and the race command
# at its end run the same code. `setting` builds its data and training from the budget: batches
# of 256, a fifth of the training images held out for validation, every run's steps and
# warmup.

# %% tags=["nbval-ignore-output"]
SETTING = setting(get_budget(), DEVICE)
loaders = SETTING.loaders
STEPS = SETTING.steps  # T, optimizer steps per run
WARMUP_STEPS = SETTING.warmup_steps
train = SETTING.run_kwargs()  # loaders, epochs, device, a schedule stepped every batch
print(
    f"{loaders['train'].n_examples:,} training and {loaders['val'].n_examples:,} validation "
    f"images; {STEPS} steps per run, the first {WARMUP_STEPS} warming up"
)

# %% [markdown]
# ## The rules of a fair comparison
#
# Every claim of the kind "optimizer A trains faster than B" hides a second comparison: how
# much effort went into tuning each. Give the new method a careful search and the baseline its
# defaults, and the new method can win without being better. AlgoPerf fixes the tuning protocol
# for every submission instead. In its first results {cite:p}`kasimbeg2025accelerating` a
# tuned NAdamW with warmup and a cosine decay was a strong baseline: the winner of the track
# with a tuning budget, Distributed Shampoo, trained about 28% faster than it, and schedule-free
# AdamW won the self-tuning track, where a submission must set its own hyperparameters with no
# search outside the run. A later benchmark of language-model pretraining {cite:p}`wen2025fantastic`
# found the claimed speed-ups of newer optimizers over AdamW, 1.4 to 2 times,
# smaller once every optimizer was tuned as carefully as the others, and falling with the size
# of the model, to about 1.1 times at 1.2 billion parameters.
#
# What our protocol borrows from AlgoPerf: a fixed training budget for every method (AlgoPerf
# fixes a maximum run time per workload, we fix the number of steps); a tuning search of the same
# size for every method, which for us tunes one thing, the learning rate of each optimizer;
# hyperparameters chosen on validation data only; a test set kept apart and reported (AlgoPerf
# records test results beside the validation ones); and, from its NAdamW baseline, a warmup
# followed by a decay, here one schedule shared by every optimizer, where AlgoPerf lets each
# submission bring its own. What differs: AlgoPerf's external-tuning track, in its first
# competition, ran five studies of five trials each (its rules have since cut that to three
# studies), drawn from a search space the submission declares; it scored each study by its fastest
# trial to a fixed validation target, and the submission by the median over the studies. It does
# not rerun the best setting with several seeds, nor rank by test accuracy, and its targets come
# from target-setting runs, not from a baseline (more on that below). We tune only the rate, on a
# grid we fix and grow by a rule we fix, in one study per optimizer, rerun the chosen rate with
# every seed, and rank by final test accuracy over the seeds, with time to a target as a second
# reading:
#
# 1. **The same search for everyone, by one rule.** Each optimizer tries three learning rates on a
#    log grid with a factor of 4 between neighbours, from its usual rate up: the rate itself, 4 and
#    16 times it. Why upward: our rate decays linearly to zero, so a run trains on average at about
#    half its peak rate, and a peak above the usual rate is the likelier gain. Then the grid grows
#    by one rule, the same for every optimizer (`idlmam.experiments.race.next_rate`): where the best
#    trial is the largest rate tried, the next trial is 4 times that rate; where it is the
#    smallest, or every trial failed, a quarter of the smallest; at most
#    {glue:text}`extend_most` rates are added. A winner still at an end after that is flagged, since
#    a wider grid might have done better. Only the learning rate is tuned: every other
#    hyperparameter keeps its default. One seed per trial. (Why a rule: an optimizer whose usual
#    rate is already near the largest it can take, as the chapter's rate for plain SGD may be once
#    momentum carries each gradient about $1/(1 - 0.9) = 10$ times as far, can fail at both
#    larger rates and keep its usual rate untuned; a grid moved for it alone after seeing that
#    would be a rule changed after the runs, for one contender. The rule does the same for every
#    optimizer, fixed in advance; it costs each three to five trials, the same rule rather than
#    the same count.)
# 2. **Choose on validation.** A fifth of the training images is held out; each trial is scored
#    by its final validation accuracy, and that alone chooses the rate. The runs record test
#    accuracy too, as every run in the book does, but the choice never reads it.
# 3. **Test once, with every seed.** The chosen rate of each optimizer is run with every seed
#    (seed 0 is its trial, reused), and the test accuracy of the last epoch is the result.
# 4. **The same schedule.** Every optimizer warms up over the first 5% of the steps and then
#    decays linearly to zero, stepped every batch; schedule-free AdamW warms up the same way and
#    has, by design, no decay.
# 5. **Time as well as accuracy.** AlgoPerf scores how long each method takes to reach a
#    target; we report when each reaches one, in steps, and in seconds from each optimizer's cost
#    per step, measured with the optimizers taking turns.
#
# ## The contenders

# %% [markdown]
# - **SGD with Nesterov momentum** and **AdamW**, as on the gradients page. SGD's usual rate here is
#   the chapter's $\eta$ = 0.1 (PyTorch's default is 0.001); AdamW keeps its defaults,
#   $\eta = 10^{-3}$ and weight decay $\lambda = 10^{-2}$: AdamW's decay is on unless you turn it
#   off.
# - **NAdamW**, the baseline of AlgoPerf: AdamW whose step uses the momentum one step ahead,
#   $\beta_1 m_t + (1 - \beta_1) g_t$ in place of $m_t$ (Nesterov's look-ahead), with the same
#   $\beta_1 = 0.9$ on every step. It is `idlmam.optim.NAdamW`, written from AlgoPerf's reference
#   code and tested against a computation by hand. It is not `torch.optim.NAdam`, which keeps
#   Dozat's momentum schedule {cite:yearpar}`dozat2016incorporating`, a coefficient
#   $\mu_t = \beta_1 (1 - \tfrac{1}{2} \cdot 0.96^{t\psi})$ on step $t$ with `momentum_decay`
#   $\psi$ = {glue:text}`nadam_psi:g` by default: over this page's {glue:text}`run_steps` steps
#   its $\mu_t$ only grows from {glue:text}`nadam_mu_first:.2f` to
#   {glue:text}`nadam_mu_last:.2f` (computed below the table of rates), about half of
#   $\beta_1$.
# - **RAdam** {cite:p}`liu2019variance`: Adam with a correction that shrinks its
#   adaptive steps while the average of the squared gradients still rests on few batches (its
#   very first steps are plain momentum steps): a warmup built into the optimizer. Also with
#   decoupled decay.
# - **Adafactor** {cite:p}`shazeer2018adafactor`: keeps, for each weight matrix,
#   only the row and column averages of the squared gradients, so its memory grows with
#   rows + columns instead of rows × columns. PyTorch's version has no momentum, scales each
#   step by the root mean square of the weights themselves, and caps its rate: on step $t$ it
#   uses $\min(\eta_t, 1/\sqrt{t})$. Under the shared schedule the cap changes nothing while
#   $\eta_t \le 1/\sqrt{t}$, which holds on every step for a peak $\eta$ up to $1/\sqrt{T}$ =
#   {glue:text}`adafactor_free_peak:.3f` ($T$ = {glue:text}`run_steps` steps); above that it
#   can cut the middle of the schedule: at the top of its grid, $\eta$ =
#   {glue:text}`adafactor_top:g`, {glue:text}`adafactor_cap`. It runs without weight decay, PyTorch's default (the paper has
#   none): PyTorch multiplies the decay by $\eta$, not by the step it really takes, so the
#   field's $\lambda$ would shrink its weights {glue:text}`adafactor_decay_ratio:.0f` times as
#   fast per step at the top of its grid as AdamW's at its usual rate.
# - **Muon** {cite:p}`jordan2024muon`: momentum, then the update matrix of each hidden layer
#   replaced by an approximation of the nearest orthogonal matrix (five Newton-Schulz iterations),
#   so that every direction of the matrix moves by about the same amount. As Muon's README
#   advises, only the hidden weight matrices go to Muon; the first layer (the input, where a
#   language model has its embedding), the output layer and the biases go to AdamW, in one
#   optimizer object, `idlmam.optim.MuonWithAdamW`. Muon's matrices get a weight decay of
#   {glue:text}`muon_decay:g`, `torch.optim.Muon`'s default and Moonshot AI's choice
#   {cite:p}`liu2025muon`; the AdamW half keeps the field's {glue:text}`field_decay:g`.
# - **Lion** {cite:p}`chen2023symbolic`: the *sign* of a mix of the stored momentum
#   and the new gradient, $\beta_1 m + (1 - \beta_1) g$, so every weight moves by exactly $\eta$
#   each step, plus decoupled decay; the momentum itself is then updated with a second, longer
#   memory, $\beta_2$. Its authors advise a rate 3-10 times
#   smaller than AdamW's and a decay 3-10 times larger: we give it $\lambda = 0.1$.
# - **Shampoo** {cite:p}`gupta2018shampoo`, the family of the winner of
#   AlgoPerf's external-tuning track: each weight matrix's gradient multiplied on the left and on
#   the right by inverse fourth roots of two small matrices that sum the gradients' products,
#   recomputed here every 10 steps; the size of each step taken from AdaGrad (*grafting*), and
#   momentum 0.9. It has no usual rate of its own: AdaGrad's default is 0.01 and momentum 0.9
#   carries each step about ten times as far, so its grid starts at 0.001.
# - **SOAP** {cite:p}`vyas2024soap`: Adam run in the coordinates of Shampoo's two
#   matrices (their eigenvectors, refreshed every 10 steps), with its authors' defaults: rate
#   0.003, $\beta_1 = \beta_2 = 0.95$. Both are written from scratch in `idlmam.optim` and
#   tested against an independent implementation (`pytorch-optimizer`).
# - **Schedule-free AdamW** {cite:p}`defazio2024road`: no decaying schedule at
#   all; it evaluates an average of its base iterates $z$ (the sequence its Adam-style steps
#   move), while the gradients are taken at an interpolation $y$ between $z$ and that average.
#   Its `optimizer.train()` and
#   `optimizer.eval()` must be called with the model's, which `idlmam.experiments.run` does.
#
# Lion fits in a dozen lines; this is the step of `idlmam.optim.Lion`, written from the paper:
#
# ```{literalinclude} ../idlmam/optim/scratch.py
# :pyobject: Lion.step
# ```
#
# And this is how Muon splits the chapter's network between its two halves:

# %%
hidden, other = muon_param_groups(mlp())
print("Muon: ", [tuple(p.shape) for p in hidden])
print("AdamW:", [tuple(p.shape) for p in other])

# %% [markdown]
# The two hidden weight matrices go to Muon; the first layer's weights, the four biases and the
# output layer's weights to AdamW. With `adjust_lr_fn="match_rms_adamw"` (Moonshot AI:
# {cite:alp}`liu2025muon`) Muon's steps are scaled to the size of an AdamW step, so one rate and one
# schedule drive both halves.
#
# Each contender is a `Contender`: a function of the parameters and the rate, its usual rate,
# whether it takes the shared schedule, its grid, and how many rates the rule may add to it. The field, as `idlmam.experiments.race`
# defines it:
#
# ```{literalinclude} ../idlmam/experiments/race.py
# :pyobject: field
# ```

# %%
CONTENDERS = field(WARMUP_STEPS)  # schedule-free AdamW warms up over the same steps
COLOURS = run_colours(CONTENDERS)  # each optimizer's colour in every figure of the book
FAMILIES = {  # the figures draw three families of three, each beside AdamW
    "SGD and Adam's variants": ["SGD w/ Nesterov", "NAdamW", "RAdam"],
    "Muon and the preconditioners": ["Muon", "Shampoo", "SOAP"],
    "Less memory, or a schedule of its own": ["Adafactor", "Lion", "Schedule-free AdamW"],
}
assert sorted(sum(FAMILIES.values(), ["AdamW"])) == sorted(CONTENDERS)  # each one, once
adafactor_top = max(CONTENDERS["Adafactor"].rates())
capped = np.flatnonzero(  # the steps t (from 1) whose scheduled rate exceeds 1 / sqrt(t)
    np.array(schedule_lrs(SETTING.make_schedule(CONTENDERS["Adafactor"]), STEPS, adafactor_top))
    > 1 / np.sqrt(np.arange(1, STEPS + 1))
)
glue("adafactor_top", adafactor_top, display=False)
glue("adafactor_free_peak", 1 / np.sqrt(STEPS), display=False)
cut = (
    f"from step {capped.min() + 1} to step {capped.max() + 1}"
    if capped.size
    else "on none of these runs' steps"
)
glue("adafactor_cap", cut, display=False)
glue("adafactor_decay_ratio", adafactor_top / CONTENDERS["AdamW"].usual_rate, display=False)
glue("extend_most", CONTENDERS["AdamW"].extend, display=False)
glue("muon_decay", race.MUON_DECAY, display=False)
glue("field_decay", DECAY, display=False)
pd.DataFrame(
    {
        "usual rate": {name: f"{c.usual_rate:g}" for name, c in CONTENDERS.items()},
        "grid": {name: ", ".join(f"{r:.2g}" for r in c.rates()) for name, c in CONTENDERS.items()},
    }
)

# %% [markdown]
# The usual rates are each optimizer's default in PyTorch or in its package (Lion's in
# `idlmam.optim`, schedule-free AdamW's in `schedulefree`), SGD's the chapter's. `partial` fixes
# every argument but the parameters and the rate.
#
# NAdamW's momentum coefficient $\mu_t$, from `torch.optim.NAdam`'s default `momentum_decay`,
# checked against the product of the $\mu_t$ that NAdam keeps in its state, on the first and on
# the last step of a run of this page:

# %%
PSI = inspect.signature(torch.optim.NAdam).parameters["momentum_decay"].default
BETA_1 = 0.9  # NAdam's default beta_1


def nadam_momentum(t):
    """mu_t of torch.optim.NAdam on step t (from 1): beta_1 * (1 - 0.96 ** (t * psi) / 2)."""
    return BETA_1 * (1 - 0.5 * 0.96 ** (t * PSI))


w = torch.zeros(1, requires_grad=True)
nadam = torch.optim.NAdam([w])
for _ in range(3):  # torch keeps the product mu_1 mu_2 mu_3 in its state: the same numbers
    w.grad = torch.ones(1)
    nadam.step()
mu_product = float(np.prod([nadam_momentum(t) for t in (1, 2, 3)]))
assert abs(nadam.state[w]["mu_product"].item() / mu_product - 1) < 1e-6
glue("nadam_psi", PSI, display=False)
glue("run_steps", f"{STEPS:,}", display=False)
glue("nadam_mu_first", nadam_momentum(1), display=False)
glue("nadam_mu_last", nadam_momentum(STEPS), display=False)
print(f"mu_1 = {nadam_momentum(1):.3f}, mu_{STEPS} = {nadam_momentum(STEPS):.3f} (beta_1 = 0.9)")

# %% [markdown]
# ## The search
#
# `run_race` runs the whole protocol for each contender in turn: its three trials, one seed
# each, and those the rule adds; the best of them on validation
# (`idlmam.experiments.sweep.best_rates`); that rate with every seed, which the sections after
# the search read:

# %% tags=["nbval-ignore-output"]
results = run_race(CONTENDERS, SETTING)  # each one's trials, its best rate, that rate's seeds
trials = pd.concat([r.trials for r in results.values()], ignore_index=True)
best = pd.DataFrame(  # chosen on the final validation accuracy, nothing else
    {
        "usual rate": {name: c.usual_rate for name, c in CONTENDERS.items()},
        "trials": {name: len(r.rates) for name, r in results.items()},  # 3 + the rule's
        "rate": {name: r.rate for name, r in results.items()},
        "edge": {name: r.edge for name, r in results.items()},  # an end of its rates, if any
    }
)


def names_and(names):
    """``["A", "B", "C"]`` -> ``"A, B and C"``."""
    names = list(names)
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


final = trials.loc[trials.groupby("run")["epoch"].idxmax()]  # each trial's last epoch
final = final.assign(
    relative=final["rate"] / final["optimizer"].map(lambda n: CONTENDERS[n].usual_rate),
    error=1 - final["val Accuracy"],
    failed=final["val Accuracy"].isna() | (final["val Accuracy"] < 2 * CHANCE),  # near chance
)
edges = [
    f"{names_and(best.index[best['edge'] == end])} at the {end}"
    for end in ("bottom", "top")
    if (best["edge"] == end).any()
]
n_edge = int((best["edge"] != "-").sum())
winners = f"{n_edge} of the {len(best)} winners " + ("lies" if n_edge == 1 else "lie")
glue("edge_winners", winners if n_edge else f"none of the {len(best)} winners lies", display=False)
glue("edge_which", ": " + "; ".join(edges) if edges else "", display=False)
added = {name: len(r.rates) - len(CONTENDERS[name].rates()) for name, r in results.items()}
grew = [f"{name} ({plural(n, 'rate')})" for name, n in added.items() if n]
glue("rule_added", plural(sum(added.values()), "rate") if grew else "no rate", display=False)
glue("rule_which", ": " + ", ".join(grew) if grew else "", display=False)
n_failed = int(final["failed"].sum())
glue("failed_trials", f"{n_failed or 'none'} of the {len(final)}", display=False)
best.round(4)

# %% [markdown]
# `best_rates` takes each optimizer's rate with the highest final validation accuracy (a trial
# that diverged counts as the worst); `trials` counts the rates it tried, and `edge` says
# whether the winner is the smallest (`bottom`) or the largest (`top`) of them.
#
# The rule added {glue:text}`rule_added` in all{glue:text}`rule_which`. After it,
# {glue:text}`edge_winners` at an edge of the rates tried{glue:text}`edge_which`. A winner
# still at the top might do better at a rate no trial tried: its tuned result, and its place in
# the rankings below, are a lower bound of what tuning could give it. A winner at the bottom is
# the same warning the other way. Trials that failed, ending near chance (90% error, a guess
# among ten classes): {glue:text}`failed_trials`.
#
# The whole search, one family of optimizers a panel beside AdamW, each rate divided by its
# optimizer's usual rate so that all share one axis:

# %% mystnb={"figure": {"caption": "The learning-rate search, one family of optimizers a panel, each beside AdamW: each optimizer's final validation error (one seed) at each rate it tried, the rate divided by its usual rate. Every grid starts at the usual rate (1) and goes up to 16 times it; the points beyond are the rates the rule added. Lower is better. A trial that failed, ending near chance (90% error), is drawn as a cross above the solid line where the error axis is cut, so that the other trials can be read; dotted lines join it to its optimizer's other trials.", "name": "fig-optimizer-sweep"}, "image": {"alt": "Three panels side by side sharing a validation-error axis, one per family of optimizers, each with AdamW in red as the reference: SGD with Nesterov momentum, NAdamW and RAdam; Muon, Shampoo and SOAP; Adafactor, Lion and schedule-free AdamW. In each, error against the learning rate divided by the optimizer's usual rate on a logarithmic axis, one line with markers per optimizer; a dotted vertical line marks the usual rate; the lowest point of each line is the rate it keeps; crosses in a strip above a solid line where the axis is cut, labelled diverged (chance), mark the trials that ended near chance, joined to their lines by dotted segments."}} tags=["nbval-ignore-output"]
ok = final[~final["failed"]]
top = max(0.35, ok["error"].max() + 0.02)  # the axis is cut here
lost_at = top + 0.012  # failed trials: a row of crosses above the cut, joined by dotted lines
fig, axes = plt.subplots(1, len(FAMILIES), figsize=(12, 4.2), sharex=True, sharey=True)
for ax, (family, names) in zip(axes, FAMILIES.items()):
    for name in ["AdamW", *names]:
        mine = final[final["optimizer"] == name].sort_values("relative")
        drawn = mine["error"].where(~mine["failed"], lost_at)
        ax.plot(mine["relative"], drawn, ":", lw=1, color=COLOURS[name])
        rows = mine[~mine["failed"]]
        ax.plot(rows["relative"], rows["error"], "o-", color=COLOURS[name], label=name)
        failed = mine["failed"]
        ax.plot(mine["relative"][failed], drawn[failed], "X", ms=10, color=COLOURS[name])
    ax.plot([], [], "X", ms=10, color="black", label="diverged (chance)")  # in its run's colour
    ax.axhline(top, color="black", lw=0.8)
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.set(xscale="log", title=family)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # off the data
factors = sorted(set(final["relative"].round(6)))
axes[0].set_xticks(factors, [f"{f:g}" if f >= 1 else f"1/{1 / f:g}" for f in factors])
axes[0].xaxis.set_minor_formatter(plt.NullFormatter())
axes[0].set_ylim(0.1 if ok["error"].min() > 0.11 else 0, top + 0.024)
ticks = [t for t in axes[0].get_yticks() if t <= top + 1e-9]  # no error value above the cut
axes[0].set_yticks(ticks, [f"{t:.0%}" for t in ticks])
axes[0].set(ylabel="final validation error")
axes[1].set(xlabel="learning rate / the optimizer's usual rate (log scale)")
fig.suptitle("Each optimizer's search: three rates, then the rule, one seed each")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Usual rates against tuned rates
#
# Each optimizer now has every seed twice: at the rate its search chose (the race ran them) and at
# its usual rate. Both reuse the seed-0 trial already run at that rate; where the search kept the
# usual rate, the two are the same runs. So seed 0 of each tuned rate is the search's winner, the
# best of its trials on validation, reused in the test mean: chosen for doing well, it biases the
# tuned numbers slightly upward.


# %% tags=["nbval-ignore-output"]
tuned = pd.concat([r.tuned for r in results.values()], ignore_index=True)  # the race's
usual = pd.concat(  # each contender at its usual rate, reusing the runs already made
    [
        with_seeds(
            pd.concat([trials, tuned]),
            name,
            c.optimizer_at,
            c.usual_rate,
            SEEDS,
            make_schedule=SETTING.make_schedule(c),
            **train,
        )
        for name, c in CONTENDERS.items()
    ],
    ignore_index=True,
)
usual = usual.assign(run=usual["optimizer"])

# %% tags=["nbval-ignore-output"]
scores = {"usual": final_scores(usual), "tuned": final_scores(tuned)}
ranking = pd.DataFrame(
    {
        column: scores[when][key]
        for when in scores
        for column, key in ((f"{when}: test acc.", "mean"), (f"{when}: ±", "half_width"))
    }
).sort_values("tuned: test acc.", ascending=False)
for when, at in (("usual", 2), ("tuned", 5)):
    shown = ranking[f"{when}: test acc."].round(4)  # as the table shows it: a tie, one rank
    ranks = shown.rank(ascending=False, method="min").astype(int)
    ranking.insert(at, f"{when}: rank", ranks)
ranking.round(4)

# %% mystnb={"figure": {"caption": "Final test accuracy of each optimizer at its usual rate (open circles) and at the rate its validation search chose (filled), mean over seeds with 95% intervals, in percent; sorted by the tuned result. Left, every result; where an optimizer's search kept its usual rate the two points coincide, the open ring around the filled one. Right, the tuned results alone, on the narrower range that the grey band marks on the left, so that their intervals can be compared.", "name": "fig-usual-vs-tuned"}, "image": {"alt": "Two dot plots sharing one row per optimizer, ten rows sorted by tuned test accuracy. Left: for each optimizer an open circle at its mean test accuracy at the usual rate and a filled circle at the tuned rate, each with a horizontal 95% interval bar, joined by a grey line whose length is the gain from tuning; a grey band marks the range of the right panel. Right: the filled tuned points alone with their interval bars, on a zoomed accuracy axis in percent."}} tags=["nbval-ignore-output"]
fig, (whole, zoom) = plt.subplots(
    1, 2, figsize=(10, 4.5), sharey=True, gridspec_kw=dict(width_ratios=[3, 2])
)
for y, name in enumerate(ranking.index[::-1]):
    u, t = (100 * scores[when].loc[name] for when in ("usual", "tuned"))
    whole.plot([u["mean"], t["mean"]], [y, y], color="grey", lw=1, zorder=1)
    whole.errorbar(
        u["mean"],
        y,
        xerr=u["half_width"],
        fmt="o",
        ms=10,
        color=COLOURS[name],
        mfc="white",
        zorder=2,
    )  # larger than the filled point: a ring where they meet
    for ax in (whole, zoom):
        ax.errorbar(
            t["mean"],
            y,
            xerr=t["half_width"],
            fmt="o",
            ms=5,
            color=COLOURS[name],
            capsize=3,
            zorder=3,
        )
low, high = 100 * scores["tuned"]["low"].min(), 100 * scores["tuned"]["high"].max()
pad = 0.1 * (high - low) if high > low else 0.5  # NaN-safe: no interval with one seed
zoom.set_xlim(low - pad, high + pad)
whole.axvspan(low - pad, high + pad, color="grey", alpha=0.15, lw=0)
whole.set_yticks(range(len(ranking)), ranking.index[::-1])
whole.set(xlabel="final test accuracy (%)", title="Usual rate (open) and tuned rate (filled)")
zoom.set(xlabel="final test accuracy (%)", title="The tuned rates, zoomed")
marks = [
    Line2D([], [], marker="o", ms=9, mfc="white", color="grey", ls="", label="usual rate"),
    Line2D([], [], marker="o", ms=5, color="grey", ls="", label="tuned rate"),
]
fig.legend(handles=marks, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.01))
fig.suptitle("Test accuracy, mean and 95% interval over seeds")
fig.tight_layout(rect=(0, 0.05, 1, 1))
plt.show()

# %% [markdown]
# The `±` columns are the half-widths of the 95% intervals over the seeds, as fractions like the
# accuracies (0.005 is half a point). They, and the bars of the figure, are each optimizer's own
# interval: how far its mean moves from seed to seed. The comparisons below are paired by seed
# instead. A seed fixes the initial weights and the order of the batches, the same for every
# optimizer, so part of what moves one optimizer's result from seed to seed moves the other's
# too, and cancels in their difference: two optimizers whose bars overlap can still differ by
# more than the noise, paired, and the interval of a difference can be narrower than either
# bar. What the runs support about the two rankings, each difference with its paired interval:
# the first and second of each ranking compared, the largest gains in rank with what tuning
# gained each optimizer, and which tuned optimizers the seeds cannot tell apart:

# %% tags=["nbval-ignore-output"]
glue("kept_usual", int((best["rate"] == best["usual rate"]).sum()), display=False)
glue("n_contenders", len(CONTENDERS), display=False)
top_usual = list(ranking.sort_values("usual: rank").index[:2])
top_tuned = list(ranking.index[:2])


def first(when, top):
    """Who came first: one optimizer, or two that the table's four decimals cannot separate."""
    if ranking.loc[top[1], f"{when}: rank"] == 1:
        return f"{top[0]} and {top[1]} tied for first to four decimals"
    return f"{top[0]} came first"


lines = [
    f"- At the usual rates, {first('usual', top_usual)}: {compare(usual, *top_usual).sentence()}.",
    f"- After tuning, {first('tuned', top_tuned)}: {compare(tuned, *top_tuned).sentence()}.",
]
both = pd.concat(  # each optimizer twice, so that compare can pair its two rates by seed
    [
        usual.assign(run=usual["optimizer"] + " at its usual rate"),
        tuned.assign(run=tuned["optimizer"] + " at its tuned rate"),
    ],
    ignore_index=True,
)
rose = (ranking["usual: rank"] - ranking["tuned: rank"])[best["rate"] != best["usual rate"]]
for name in rose[rose > 0].sort_values(ascending=False, kind="stable").index[:3]:
    ranks = ranking.loc[name, ["usual: rank", "tuned: rank"]]
    gain = compare(both, f"{name} at its tuned rate", f"{name} at its usual rate").sentence()
    lines.append(
        f"- Tuning lifted {name} from rank {ranks.iloc[0]} to rank {ranks.iloc[1]}: {gain}."
    )
order, first = list(ranking.index), 0
while first < len(order):  # runs of neighbours in the tuned ranking that no pair tells apart
    last = first + 1
    while last < len(order) and not any(
        compare(tuned, a, order[last]).differs for a in order[first:last]
    ):
        last += 1
    tied = order[first:last]
    if len(tied) > 1:
        r0, r1 = ranking.loc[tied[0], "tuned: rank"], ranking.loc[tied[-1], "tuned: rank"]
        pair = compare(tuned, tied[0], tied[-1]).sentence()
        lines.append(
            f"- Every pair among {names_and(tied)} (tuned ranks {r0} to {r1}) ends within the "
            "noise of the seeds, so their order is not resolved; the first and the last of "
            f"them: {pair}."
            if len(tied) > 2
            else f"- The tuned ranks {r0} and {r1} are not resolved: {pair}."
        )
    first = last
if not any(" not resolved" in line for line in lines):
    lines.append("- Each tuned optimizer ends apart from its neighbours by more than the noise.")
finding(  # the finding on full and chapter; on quick, a box in its place
    "\n".join(lines),
    needs="rank the optimizers at their usual and at their tuned rates",
    sizes=SINCE,
)

# %% [markdown]
# The search kept the usual rate for {glue:text}`kept_usual` of the {glue:text}`n_contenders`
# optimizers. A comparison of optimizers at their defaults is, in part, a comparison of how well
# their defaults suit this network and this number of steps. Against the book's default optimizer,
# AdamW, each tuned contender, on the test set, paired by seed as above. These are
# {glue:text}`n_vs_adamw` comparisons read together, so each interval is widened by Bonferroni's
# correction, to {glue:text}`vs_adamw_level:.2%`, so that all of them together hold at 95%; at
# 95% each, one comparison in twenty would seem to differ by chance alone.

# %% tags=["nbval-ignore-output"]
against = [(name, "AdamW") for name in ranking.index if name != "AdamW"]
level = 1 - 0.05 / len(against)  # Bonferroni: 95% for the comparisons together
glue("n_vs_adamw", len(against), display=False)
glue("vs_adamw_level", level, display=False)
finding(  # the finding on full and chapter; on quick, a box in its place
    compare_pairs(tuned, against, confidence=level),
    needs="tell the tuned optimizers apart from tuned AdamW",
    sizes=SINCE,
)

# %% [markdown]
# ## Time to a target
#
# Final accuracy is half of the story; AlgoPerf scores how soon a method gets there. AlgoPerf's
# targets come from target-setting runs, not from its baseline submission: on each workload, the
# best of four standard optimizers (AdamW, NAdamW, Nesterov and heavy-ball momentum), each tuned
# with a far larger search than a submission gets. Ours is simpler and comes from one baseline,
# tuned AdamW: its final validation accuracy (mean over the seeds), less one standard error of a
# single run's accuracy on the validation split, rounded down to a multiple of 0.5 points. The
# margin is there because the validation split is a sample: a run that trains exactly as well as
# AdamW's mean reads above or below it by about that much from the images alone, and would miss
# a target set at AdamW's mean about half the time. AdamW still crosses late by construction:
# the target sits just below where its own runs end.

# %% tags=["nbval-ignore-output"]
target, target_rule = default_target(results)
reach = time_to_target(tuned, target)  # epochs: means over the seeds that got there
reach.insert(3, "steps", reach["epochs"] * len(loaders["train"]))
glue("target", target, display=False)
glue("target_rule", target_rule, display=False)
glue("epoch_steps", len(loaders["train"]), display=False)
partial_rows = reach["reached"] < reach["seeds"]  # some seed never got there: after the rest
shown = reach.drop(columns="seconds").assign(p=partial_rows).sort_values(["p", "epochs"])
shown = shown.drop(columns="p").astype(object)
for column in ("epochs", "steps"):  # means over seeds: whole numbers unless the seeds differ
    shown[column] = shown[column].map(lambda v: f"{v:,.1f}".removesuffix(".0") if v == v else v)
shown.mask(shown.isna(), "not reached")

# %% [markdown]
# The target is a validation accuracy of {glue:text}`target:.1%`: {glue:text}`target_rule`.
# `reached` counts the seeds that got there; the rows where every seed did come first, then
# those where only some did or none. `epochs` and `steps` are means over the seeds that got
# there. A crossing is checked only at the end of an epoch, when the validation split is scored,
# so a seed's steps are a multiple of the {glue:text}`epoch_steps` steps of an epoch, and their
# mean over the seeds can fall between two such multiples.
# Read the epochs with the schedule in mind: a run whose rate decays to zero at its last step is
# built to be best at the end, and may cross a target late and still finish ahead; schedule-free
# AdamW has no such decay. {cite:t}`wen2025fantastic` make the same point about language
# models: rankings of optimizers read from checkpoints before the end of training can flip by the
# end, because the rate is still decaying.
#
# A step is one batch for every optimizer, but not the same number of seconds: a step of some
# optimizers costs more. Seconds need a fair clock, the same conditions for every optimizer, and
# the training runs above cannot give one. Where it can, the book trains the seeds of a run side
# by side as one stacked model, whose clock counts all of them at once (see
# [the measurements page](measurements.md)); and the site executes this page while another page
# trains beside it, so the machine's load changes from one run to the next. So the cost of a step
# is measured apart, by `idlmam.experiments.race.step_costs`: 30 steps (forward, backward and the
# optimizer's step, on one batch of 256 images) of each tuned optimizer in turn, in five rounds
# after one that warms up, so that whatever else the machine does falls on all of them alike. The
# table gives the median over the rounds, the fastest and the slowest round, and the ratio to
# AdamW within each round (median, lowest, highest; the median of the ratios need not be the
# ratio of the medians). One more row, the book's AdamW written from scratch
# (`idlmam.optim.AdamW`, the same algorithm in another implementation), shows how far the
# seconds of one algorithm move from round to round and from one implementation to another.

# %% tags=["nbval-ignore-output"]
makers = {  # each tuned optimizer at its chosen rate
    name: lambda p, c=c, rate=results[name].rate: c.optimizer_at(p, rate)
    for name, c in CONTENDERS.items()
    if results[name].ok
}
makers["AdamW, from scratch"] = lambda p: ScratchAdamW(p, lr=results["AdamW"].rate)
costs = step_costs(makers, steps=30, rounds=5, reference="AdamW", device=DEVICE)
reach["seconds"] = reach["steps"] * costs["ms per step"] / 1000  # steps to target x their cost
glue("muon_cost", costs.loc["Muon", "x ref"], display=False)
scratch = costs.loc["AdamW, from scratch"]
glue("scratch_cost", scratch["x ref"], display=False)
glue("scratch_low", scratch["x min"], display=False)
glue("scratch_high", scratch["x max"], display=False)
costs.rename(
    columns={"x ref": "× AdamW", "x min": "× AdamW, lowest", "x max": "× AdamW, highest"}
).round(2)

# %% [markdown]
# In these rounds a step of Muon cost {glue:text}`muon_cost:.1f` times a step of AdamW. The same
# AdamW written from scratch cost {glue:text}`scratch_cost:.2f` times torch's, between
# {glue:text}`scratch_low:.2f` and {glue:text}`scratch_high:.2f` times from round to round: a
# difference in seconds between two optimizers smaller than that spread says nothing about
# them. Muon's Newton-Schulz iterations are matrix products, and on this network they are not
# small beside the forward and backward passes. Counting the floating-point operations of
# `torch.optim.Muon`'s five iterations (each: two products with the matrix and one of its small
# square Gram matrix with itself) against the passes through each $m \times n$ matrix, for a batch
# of $B$ examples: $2Bmn$ forward, and backward $2Bmn$ for the gradient of the weights and $2Bmn$
# for the gradient of the layer's input (every matrix Muon steps is a hidden layer's, whose input
# needs a gradient):


# %%
def newton_schulz_flops(m, n, steps=5):
    """Floating-point operations of torch.optim.Muon's iterations on one m x n matrix."""
    r, c = sorted((m, n))  # it works on the wide orientation: r rows, r <= c
    return steps * (2 * r * r * c + 2 * r**3 + 2 * r * r * c)  # X X^T, A A, B X


shapes = [tuple(p.shape) for p in hidden]  # Muon's matrices: the hidden layers'
ns = sum(newton_schulz_flops(m, n) for m, n in shapes)
passes = sum(6 * race.BATCH_SIZE * m * n for m, n in shapes)
glue("ns_ratio", ns / passes, display=False)
print(f"per step: Newton-Schulz {ns / 1e6:.0f} MFLOP, forward + backward {passes / 1e6:.0f} MFLOP")

# %% [markdown]
# Per step, Muon's iterations cost {glue:text}`ns_ratio:.1f` times the arithmetic of the forward
# and backward passes through the same matrices, the two hidden layers. A whole step costs less
# than that ratio suggests: its passes also go through the first layer, 784 × 128 and the
# largest matrix of the network, and the output layer, which Muon does not touch. The passes grow with the batch and the
# iterations do not, so with larger batches their share falls. The figure below draws the same
# runs against steps and against seconds (each optimizer's steps times its cost per step). Bands
# for every optimizer on one axis would hide each other, so it gives each family of optimizers a
# row of its own, with tuned AdamW, the book's default, drawn in every row; each row has its own
# axis of seconds, so that its optimizers can be told apart:

# %%
curves = tuned.assign(step=(tuned["epoch"] + 1) * len(loaders["train"]))
curves["seconds"] = curves["step"] * curves["run"].map(costs["ms per step"]) / 1000

# %% mystnb={"figure": {"caption": "Validation accuracy of the tuned optimizers, one family a row, each beside tuned AdamW, the reference drawn in every row, mean over seeds with a 95% band. Left, against optimizer steps; right, against seconds: the steps times each optimizer's cost per step, measured in interleaved rounds on one CPU thread, each row on its own axis of seconds. The dashed line is the target. Every panel shares the accuracy axis, which starts a few points below the target so that the order near it can be read: the first epochs lie below it.", "name": "fig-steps-and-seconds"}, "image": {"alt": "Six panels in three rows and two columns, sharing one accuracy axis zoomed on the few points around the target. Each row holds one family with AdamW in red as the reference: SGD with Nesterov momentum, NAdamW and RAdam; Muon, Shampoo and SOAP; Adafactor, Lion and schedule-free AdamW. Left column: validation accuracy against optimizer steps, mean lines with shaded 95% bands over seeds, entering the axis from below after the first epochs. Right column: the same curves against seconds, the steps times each optimizer's cost per step, each row on its own time axis, where the lines of the optimizers whose steps cost more stretch further to the right than AdamW's. A dashed horizontal line marks the target in every panel; each row has its legend at its right."}} tags=["nbval-ignore-output"]
rows = len(FAMILIES)
fig, axes = plt.subplots(rows, 2, figsize=(11, 3.1 * rows), sharey=True)
for (family, names), (left, right) in zip(FAMILIES.items(), axes):
    names = ["AdamW", *names]  # the reference first, in every row
    row = curves[curves["run"].isin(names)]
    style = dict(y="val Accuracy", hue="run", hue_order=names, palette=run_colours(names))
    sns.lineplot(row, x="step", errorbar=t_interval, err_kws=dict(alpha=0.15), ax=left, **style)
    sns.lineplot(row, x="seconds", errorbar=t_interval, err_kws=dict(alpha=0.15), ax=right, **style)
    left.get_legend().remove()  # one legend a row, beside its right panel
    left.set(xlabel="optimizer steps", ylabel="validation accuracy", title=f"{family}: steps")
    left.set_xlim(0, curves["step"].max() * 1.02)  # one axis of steps for every row
    right.set(xlabel="seconds of steps (steps × cost per step)", title=f"{family}: seconds")
    for ax in (left, right):
        ax.axhline(target, color="black", ls="--", lw=1, label="target")
    left.label_outer()  # one axis of steps for every row: its numbers on the bottom row only
    right.set_ylabel(None)  # each row its own axis of seconds: every right panel keeps its numbers
    right.tick_params(labelleft=False)  # the accuracy axis is shared: numbered on the left only
    right.legend(fontsize=8, title=None, loc="upper left", bbox_to_anchor=(1.02, 1))
axes[0, 0].set_ylim(target - 0.04, max(target, curves["val Accuracy"].max()) + 0.005)
axes[0, 0].yaxis.set_major_formatter(plt.FuncFormatter(lambda a, _: f"{a:.0%}"))
fig.suptitle("The tuned optimizers against steps (left) and seconds (right), AdamW in every row")
fig.tight_layout()
plt.show()

# %% [markdown]
# Which reach the target first, by steps and by seconds (the seconds are steps times a cost per
# step measured on one machine, one CPU thread: read them as a measure of these implementations
# there, with the spread of the rounds in the table of costs):

# %% tags=["nbval-ignore-output"]
got_there = reach[reach["reached"] == reach["seeds"]]  # every seed reached the target


def when(name):
    row = reach.loc[name]
    return f"{row['steps']:.0f} steps, {row['seconds']:.1f} s at its cost per step"


lines = [
    f"- {len(got_there)} of the {len(reach)} tuned optimizers reached the target with every seed."
]
fewest = got_there.index[got_there["steps"] == got_there["steps"].min()]
soonest = got_there.index[got_there["seconds"] == got_there["seconds"].min()]
if list(fewest) == list(soonest):  # one optimizer first on both clocks: say it once
    lines += [f"- The fewest steps and the fewest seconds: {n} ({when(n)})." for n in fewest]
else:
    lines += [f"- The fewest steps: {name} ({when(name)})." for name in fewest]
    lines += [f"- The fewest seconds: {name} ({when(name)})." for name in soonest]
spread = got_there["steps"].to_frame().join(costs[["ms min", "ms max"]])  # each round's seconds
fastest = spread["steps"] * spread["ms min"] / 1000
slowest = spread["steps"] * spread["ms max"] / 1000
for name in soonest:  # the others whose fastest round beats its slowest round: not resolved
    close = [n for n in got_there.index if n != name and fastest[n] < slowest[name]]
    if close:
        lines.append(
            f"- The rounds' spread of costs does not separate {name} from {names_and(close)}: "
            f"at their fastest rounds they need less than {slowest[name]:.1f} s, {name}'s "
            "at its slowest."
        )
if reach.loc["AdamW", "reached"] and "AdamW" not in {*fewest, *soonest}:
    lines.append(f"- AdamW, whose result set the target: {when('AdamW')}.")
if {"Muon", "AdamW"} <= set(got_there.index):
    muon, adamw = got_there.loc["Muon"], got_there.loc["AdamW"]
    lines.append(
        f"- Muon needed {muon['steps']:.0f} steps to AdamW's {adamw['steps']:.0f}, but each of "
        f"its steps cost {costs.loc['Muon', 'x ref']:.1f} times one of AdamW's: "
        f"{muon['seconds']:.1f} s against {adamw['seconds']:.1f} s."
    )
lines.append(
    "\nMeans over the seeds that reached the target (a seed that never did is left out of them);"
    " each run is read when it crosses the target, mid-schedule for the decaying ones. The "
    "seconds compare these implementations on this CPU, not the algorithms."
)
finding(  # the finding on full and chapter; on quick, a box in its place
    "\n".join(lines), needs="say which optimizer reaches the target first", sizes=SINCE
)


# %% [markdown]
# ## Weight-decay hygiene
#
# Weight decay pulls every decayed parameter towards zero. What that does depends on what comes
# after the parameter. A weight matrix with no normalization after it, as in the chapter's
# network, gets smaller weights and with them a smoother function of its input: the usual reason
# for decay. A weight matrix followed by batch norm does not: batch norm divides
# any rescaling of the matrix back out, so the network computes the same function whatever the
# matrix's size. Decay there changes the training instead of the function: it keeps the matrix
# small, and a step of a given size turns a small matrix by a larger angle than a large one, so
# for such a matrix decay acts as a larger effective learning rate
# {cite:p}`vanlaarhoven2017l2,zhang2019three`. For a bias or a batch-norm scale
# $\gamma$ and shift $\beta$ it does neither: a bias of zero is not simpler than a bias of 0.3,
# and a batch-norm scale pulled towards zero shrinks what the layer passes on. So common
# practice (nanoGPT's `configure_optimizers`; {cite:alp}`he2018bag`) decays only the parameters
# with two or more dimensions. `decay_param_groups` makes the two groups for any `torch.optim`
# optimizer:
#
# ```{literalinclude} ../idlmam/optim/muon.py
# :pyobject: decay_param_groups
# ```
#
# How much can it matter here? AdamW's decoupled decay multiplies each decayed weight by
# $(1 - \eta\lambda)$ every step, so over a run of $T$ steps a weight that no gradient defends
# shrinks to $(1 - \eta\lambda)^T$ of its size.

# %% tags=["nbval-ignore-output"]
ETA = best.loc["AdamW", "rate"]  # AdamW's tuned rate
STRONG = 10 * DECAY  # a decay ten times AdamW's default, common in large-model recipes
glue("adamw_eta", ETA, display=False)
glue("steps", STEPS, display=False)
shrink = {lam: (1 - ETA * lam) ** STEPS for lam in (DECAY, STRONG)}  # at the peak rate
glue("shrink_default", shrink[DECAY], display=False)
glue("shrink_strong", shrink[STRONG], display=False)
shrinks = "; ".join(f"lambda = {lam:g}: {factor:.3f}" for lam, factor in shrink.items())
print(f"eta = {ETA:.2g}, T = {STEPS}: (1 - eta * lambda)^T for {shrinks}")
rates = np.array(
    schedule_lrs(SETTING.make_schedule(CONTENDERS["AdamW"]), STEPS, ETA)
)  # the rate of every step
scheduled = float(np.prod(1 - rates * STRONG))  # the product of (1 - eta_t lambda) over the run
glue("mean_rate_share", rates.mean() / ETA, display=False)
glue("shrink_scheduled", scheduled, display=False)
print(f"with the schedule: mean rate {rates.mean() / ETA:.2f} x eta; lambda = 0.1: {scheduled:.3f}")

# %% [markdown]
# At AdamW's tuned rate $\eta$ = {glue:text}`adamw_eta:.2g` over {glue:text}`steps` steps, the
# default decay would shrink a weight that no gradient defends to {glue:text}`shrink_default:.1%`
# of its size, and a decay ten times larger, $\lambda = 0.1$, to
# {glue:text}`shrink_strong:.1%`. Both figures assume the peak rate on every step. With the warmup
# and the linear decay the mean rate is {glue:text}`mean_rate_share:.0%` of the peak, about half,
# and the product of $(1 - \eta_t\lambda)$ over the rates $\eta_t$ the schedule really gives its
# steps shows that even $\lambda = 0.1$ shrinks a weight that no gradient defends only to
# {glue:text}`shrink_scheduled:.0%` of its size over the run. A pull that weak can hardly change
# the result of a run this short: whatever the comparison below finds, a difference within the
# noise here would be no evidence against the practice, only a sign that the run is too short
# for the pull to matter.
#
# We test the stronger decay, which pulls ten times as hard: AdamW at $\lambda = 0.1$ on the
# chapter's network with batch norm after every hidden layer, once decaying every parameter and once
# only the weight matrices. In that network what the two variants differ in is the decay of the
# batch-norm scales and shifts and of the output layer's bias; the hidden layers' biases sit just
# before batch norm, which subtracts them out again. Batch norm keeps running statistics, buffers
# that the stacked model of the measurements page cannot stack, so each seed of these runs trains on
# its own.

# %% tags=["nbval-ignore-output"]
bn = dict(train, make_model=partial(mlp, batch_norm=True))
schedule = SETTING.make_schedule(CONTENDERS["AdamW"])
everything = run(
    "decay on every parameter",
    lambda p: torch.optim.AdamW(p, lr=ETA, weight_decay=STRONG),
    schedule,
    seeds=SEEDS,
    **bn,
)
matrices = run(
    "decay on the matrices only",
    lambda p: torch.optim.AdamW(decay_param_groups(p, STRONG), lr=ETA),
    schedule,
    seeds=SEEDS,
    **bn,
)
hygiene = pd.concat([everything, matrices], ignore_index=True)
final_scores(hygiene)[["seeds", "mean", "half_width"]].rename(
    columns={"mean": "test acc.", "half_width": "±"}
).round(4)

# %% [markdown]
# The table gives each variant's final test accuracy, the mean over seeds and the half-width of
# its 95% interval. Whether sparing the biases and the batch-norm parameters changed the result:

# %% tags=["nbval-ignore-output"]
finding(  # the finding on full and chapter; on quick, a box in its place
    compare(hygiene, "decay on the matrices only", "decay on every parameter")
    .sentence()
    .capitalize()
    + ".",
    needs="tell the two weight-decay groupings apart",
    sizes=SINCE,
)

# %% [markdown]
# Whatever this short run shows, the grouping costs nothing and removes a pull that grows with
# $\eta\lambda T$: with longer training, larger rates or larger decay (Lion's advice is a
# $\lambda$ three to ten times AdamW's), the undefended parameters shrink further. Decaying only
# the matrices is a common default for that reason, not a result of this page: one short run on
# one network, whatever it found, cannot tell whether it is the better choice elsewhere.
#
# ## Race your own
#
# Everything above went through one call, `run_race`, with the field as its argument. An
# optimizer of your own can go through the same protocol: the same search on validation (three
# rates, then the rule), its best rate with every seed, scored once on test, against the field already run
# above. Here is an idea of the kind a reader might have: momentum whose step, for each tensor,
# is rescaled to a root mean square of one, so that the rate alone sets how far each layer
# moves (a cousin of Lion, which fixes the size of every single weight's step instead):


# %%
class NormalizedMomentum(torch.optim.Optimizer):
    """Momentum, then each tensor's step rescaled to root mean square 1: lr is the step size."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("momentum", torch.zeros_like(p))
                m.mul_(group["momentum"]).add_(p.grad)
                p.sub_(group["lr"] * m / (m.pow(2).mean().sqrt() + 1e-12))


# %% [markdown]
# Its usual rate is a guess, AdamW's; the grid tries it, 4 and 16 times it, and the rule goes on
# where the best lies at an end. Because its step
# reads a whole tensor (the root mean square), it is marked `elementwise=False`: its seeds train
# one after the other rather than stacked into one model, where a tensor would hold every seed.
# One call races it; `leaderboard` ranks it with the field:

# %% tags=["nbval-ignore-output"]
MINE = "Normalized momentum"
mine = run_race({MINE: Contender(1e-3, NormalizedMomentum, elementwise=False)}, SETTING)
board = leaderboard({**results, **mine}, target=target)
readable(board, MINE).drop(columns="status")

# %% [markdown]
# The table is the one the command prints: test accuracy in percent with the half-width of its
# 95% interval over seeds; `vs leader`, the difference to the first of the table in points,
# paired by seed, each interval a 95% one with no correction for the number of rows (so it can
# call a difference that the corrected comparisons with AdamW above leave within the noise);
# the steps to the target of the section on time, with how many seeds got there; the rate the
# search chose, and whether it sat at an edge of the rates tried. Where the newcomer, starred,
# ended:

# %% tags=["nbval-ignore-output"]
me = board.loc[MINE]
rank = list(board.index).index(MINE) + 1
edge = f", at the {me['edge']} of its grid" if me["edge"] != "-" else ""
if me["status"] != "ok":
    text = f"{MINE} has no result: {me['status']}."
elif me["verdict"] == "leader":
    text = f"{MINE} leads the field: {me['test acc.']:.1%} ± {me['±']:.1%} on test."
else:
    text = (
        f"{MINE} ranks {rank} of {len(board)}: {me['test acc.']:.1%} ± {me['±']:.1%} on "
        f"test, at the rate {me['rate']:.2g}{edge}. Against the leader, {board.index[0]}, "
        f"{100 * me['vs leader']:+.1f} ± {100 * me['vs leader ±']:.1f} points, paired by "
        f"seed: {me['verdict']}."
    )
finding(text, needs="rank a new optimizer against the field", sizes=SINCE)

# %% [markdown]
# The same race from a terminal, for an optimizer in a file of your own (a
# `torch.optim.Optimizer` subclass, or a function `(params, lr) -> optimizer`):
#
# ```bash
# python -m idlmam.race my_optimizer.py:NormalizedMomentum --lr 1e-3
# ```
#
# It trains the field once per budget and package version, caches its runs (it prints where;
# `--fresh` retrains them), so that a second race trains only the newcomer. It prints the
# leaderboard, and writes it to `race-NormalizedMomentum/` with every run (`runs.csv`), a figure of
# test accuracy per epoch, and a one-file HTML report. `--budget quick` is a smoke test in under a
# minute on the book's CPU; `--field AdamW,Muon` races against part of the field; `--help` says the
# rest. A module that does not import, a name that is not there or an object that is not an
# optimizer stops with one line saying what to fix; an optimizer that diverges at every rate or
# raises in its `step` ends as a row saying so. In Colab, write the file with `%%writefile
# my_optimizer.py` in a cell, then run the command in another with a `!` in front. The
# [measurements page](measurements.md) has the race's wall times on this book's CPU.
#
# ## What to take away
#
# ```{admonition} A protocol for comparing optimizers, and how far this page supports it
# :class: tip
# - **Write the rules down before the first run**: the budget of steps, the schedule, each
#   optimizer's grid and what happens when its winner sits at an edge, the split that chooses and
#   the split that reports. A rule changed after seeing the runs makes a new experiment, and a
#   page must say so; a rule that grows every grid, fixed in advance, moves a search that missed
#   for every optimizer alike.
# - **Tune every optimizer with the same effort**, at least its learning rate, and compare against
#   a tuned AdamW, not a default one {cite:p}`kasimbeg2025accelerating,wen2025fantastic`. Three
#   rates were not enough here: the rule added {glue:text}`rule_added`, and after it
#   {glue:text}`edge_winners` at an edge of the rates tried.
# - **Compare paired by seed, with intervals**, and the more comparisons you read, the wider each
#   interval must be before one of them counts. This page corrects its comparisons with AdamW
#   for their number; the rankings above are read at 95% each, uncorrected: treat a difference
#   near the edge of its interval there as a lead, not a result.
# - **Count steps and seconds apart.** A step of one optimizer can cost several of another's:
#   here a step of Muon cost {glue:text}`muon_cost:.1f` times one of AdamW, its Newton-Schulz
#   iterations {glue:text}`ns_ratio:.1f` times the arithmetic of the passes through the same
#   matrices. Time the steps with the methods taking turns, and remember that seconds measure an
#   implementation on a machine: the same AdamW from scratch cost between
#   {glue:text}`scratch_low:.2f` and {glue:text}`scratch_high:.2f` times torch's, round to round.
# - **Scale.** These runs take {glue:text}`run_steps` steps on a small network, with batches of
#   256 images. The iterations' share of the arithmetic grows with a layer's width and falls with
#   the batch: by the count above, about 5 × width / batch, so a layer 4,096 wide trained on
#   batches of a million tokens spends about 2% there. The speed-ups claimed for newer optimizers
#   over AdamW, 1.4 to 2 times, fell to about 1.1 times at 1.2 billion parameters once every
#   optimizer was tuned alike {cite:p}`wen2025fantastic`: a ranking from a few hundred steps on
#   Fashion-MNIST is a reason to try an optimizer on your problem, not a forecast for it.
# ```
#
# ## What we did
#
# - Gave {glue:text}`n_contenders` optimizers the same search: three learning rates each on a log
#   grid from its usual rate up, grown by one rule where the best sat at an end, one seed per
#   trial, chosen on a validation split (`idlmam.experiments.sweep`), and counted the winners
#   still at an edge.
# - Ran each at its usual and at its chosen rate with every seed, scored once on the test set,
#   and compared the two rankings.
# - Measured when each tuned optimizer reached a target of {glue:text}`target:.1%` validation
#   accuracy, in steps and in seconds from each optimizer's cost per step (timed in interleaved
#   rounds), and counted what Muon's Newton-Schulz iterations add to a step.
# - Ran Muon on the hidden matrices with AdamW on the rest, in one optimizer; NAdamW as AlgoPerf
#   runs it and Lion, both from scratch; Adafactor under its own cap; and schedule-free
#   AdamW with its `train()` and `eval()` switched by the loop.
# - Compared decaying every parameter of AdamW with decaying only the weight matrices, on a
#   network with batch norm.
# - Raced a new optimizer against the field through the same code, as `python -m idlmam.race`
#   does for any optimizer in a file.
