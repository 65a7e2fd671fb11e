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
# # Exercises 4 and 5: optimizers and clipping for a recurrent network
#
# Recurrent networks apply the same weights at every time step, so their gradients are
# products of many similar factors: they vanish or explode far more readily than those of a
# fully connected network. These two exercises retrain a three-layer bidirectional RNN, first
# with each of the chapter's optimizers, then with gradient clipping added. The sequences come
# from a small task the package generates on the spot, a stand-in for the previous chapter's
# names-by-language data.

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
import numpy as np
import pandas as pd
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR

from idlmam.budget import get_budget
from idlmam.experiments import run
from idlmam.models import BiRNN, count_parameters
from idlmam.notebook import glue, setup
from idlmam.optim import clip_grad_norm_on_step
from idlmam.plotting import final_scores
from idlmam.sequences import bayes_accuracy, markov_task, sequence_loaders
from idlmam.utils import get_device

setup(threads=1)  # one CPU thread: these small networks gain little from more, and repeat exactly

# %%
BUDGET = get_budget()  # IDL_BUDGET=full (default), chapter (50 epochs) or quick
EPOCHS = BUDGET.exercise_epochs  # T
N_TRAIN = 640 if BUDGET.name == "quick" else 4096  # training sequences
N_TEST = 2000  # test sequences
BATCH_SIZE = 32  # B
ETA_0 = 0.1  # SGD's rate (AdamW keeps its default 0.001)
CLIP_QUANTILE = 0.9  # exercise 5: clip norms above this share of the unclipped ones
DEVICE = get_device()
print(f"budget={BUDGET.name}, epochs={EPOCHS}, training sequences={N_TRAIN}")

# %% [markdown]
# ## The task and the network
#
# Each of four classes is a "language": a Markov chain over an alphabet of ten tokens, with
# its own probabilities for the first token and for each token that follows another. A
# sequence of 16 tokens is drawn from one of them, and the network must say which. The chains
# share half of their probabilities, so short or unlucky sequences are ambiguous. Because the
# chains are known, so is the best any classifier can do: pick the chain under which the
# sequence is most likely. That ceiling is computed exactly, below, on the test set.

# %%
task = markov_task(classes=4, vocab=10, length=16, shared=0.5, seed=0)
loaders = sequence_loaders(BATCH_SIZE, task=task, n_train=N_TRAIN, n_test=N_TEST, device=DEVICE)
ceiling = bayes_accuracy(task, loaders["test"].X.cpu(), loaders["test"].y.cpu())
glue("ceiling", ceiling, display=False)
print(f"best possible test accuracy (Bayes' rule on the true chains): {ceiling:.4f}")

# %% [markdown]
# The network has the previous chapter's shape: an embedding per token, three stacked
# bidirectional `nn.RNN` layers, and a linear layer on the last hidden state of each
# direction (the forward one ends on the last token, the backward one on the first).


# %%
def make_rnn():
    return BiRNN(task.vocab, task.classes, embed_dim=16, hidden=32, layers=3)


print(make_rnn())
print(f"{count_parameters(make_rnn()):,} parameters")

# %% [markdown]
# ## Exercise 4: the chapter's optimizers
#
# Retrain the three-layer bidirectional RNN from the previous chapter with each of the new
# optimizers of this one. How do they change the results?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: the runs
# Four runs with the same seed and data: plain SGD ($\eta = 0.1$), SGD with Nesterov momentum
# ($\mu = 0.9$), AdamW with its defaults, and AdamW with a cosine schedule over the whole run.
# `run` builds a fresh network for each, so no run starts from another's weights. Each
# optimizer also gets a step pre-hook that writes down the gradient's norm at every step:
# exercise 5 needs those numbers.
# :::

# %% tags=["hide-input"]
norms: dict[
    str, list[float]
] = {}  # run name -> the gradient norm of every step, before any clipping


def recorded(name, make_optimizer, max_norm=None):
    """``make_optimizer``, plus a record of each step's gradient norm, plus clipping if ``max_norm``."""

    def build(params):
        params = list(params)
        optimizer, seen = make_optimizer(params), norms.setdefault(name, [])
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: seen.append(
                torch.linalg.vector_norm(
                    torch.stack([p.grad.norm() for p in params if p.grad is not None])
                ).item()
            )
        )
        return optimizer if max_norm is None else clip_grad_norm_on_step(optimizer, max_norm)

    return build


# %% tags=["hide-input", "nbval-ignore-output"]
optimizers = {
    "SGD": (lambda p: torch.optim.SGD(p, lr=ETA_0), None),
    "SGD+Nesterov": (lambda p: torch.optim.SGD(p, lr=ETA_0, momentum=0.9, nesterov=True), None),
    "AdamW": (lambda p: torch.optim.AdamW(p), None),
    "AdamW+cosine": (lambda p: torch.optim.AdamW(p), lambda opt: CosineAnnealingLR(opt, EPOCHS)),
}
plain = pd.concat(
    [
        run(
            name,
            recorded(name, make_optimizer),
            make_schedule,
            loaders=loaders,
            epochs=EPOCHS,
            device=DEVICE,
            model_fn=make_rnn,
        )
        for name, (make_optimizer, make_schedule) in optimizers.items()
    ],
    ignore_index=True,
)
for name, score in final_scores(plain).items():
    glue(f"plain_{name.replace('+', '_')}", score, display=False)
final_scores(plain).round(4)

# %% [markdown]
# :::{dropdown} Solution: what the optimizers do for the RNN
# Final test accuracies: SGD {glue:text}`plain_SGD:.3f`, Nesterov
# {glue:text}`plain_SGD_Nesterov:.3f`, AdamW {glue:text}`plain_AdamW:.3f` and AdamW with cosine
# annealing {glue:text}`plain_AdamW_cosine:.3f`, against a ceiling of
# {glue:text}`ceiling:.3f`.
#
# Plain SGD learns slowly at first: the gradients that reach the embeddings and the lower
# layers pass back through many time steps and shrink on the way, and a fixed step does little
# with a small gradient. Nesterov momentum makes the effective step about $1/(1 - \mu) = 10$
# times larger, which speeds up the first epochs, but with $\eta = 0.1$ it is often too much
# for an RNN: instead of climbing, its accuracy tends to jump up and down, because momentum
# also piles up the occasional very large gradient (exercise 5 looks at those). AdamW
# normalizes every parameter's step by the size of its recent gradients, so small and large
# gradients alike give steps of a sensible size: from its default settings it climbs fastest.
# Given enough epochs plain SGD can catch up, so compare the curves, not only the last
# epoch. The cosine schedule adds a calmer end to the run; in a short run that mostly means
# smaller steps while the network is still far from converged.
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
ax = plt.subplots(figsize=(7, 4))[1]
for name, frame in plain.groupby("run", sort=False):
    ax.plot(frame["epoch"], frame["test Accuracy"], label=name)
ax.axhline(ceiling, color="gray", ls=":", label="best possible")
ax.set(xlabel="epoch", ylabel="test accuracy", title="Bidirectional RNN, four optimizers")
ax.legend()

# %% [markdown]
# ## Exercise 5: gradient clipping
#
# Add gradient clipping to the experiments of exercise 4. Does it help the RNN or hurt it?

# %% [markdown]
# ### Solution
#
# :::{dropdown} Solution: look first, then clip
# We clip the *norm* of the whole gradient (`clip_grad_norm_on_step`, which keeps the
# gradient's direction; the chapter's value clamping, `run(..., clip_value=z)`, works the same
# way but can turn the direction). The threshold is the one real decision, and the norms
# recorded in exercise 4 make it an informed one: the histogram shows what each optimizer's
# gradients looked like without clipping. We set each optimizer's threshold at the
# `CLIP_QUANTILE` quantile of its own norms, so clipping only touches the largest steps of a
# typical run.
# :::

# %% tags=["hide-input", "nbval-ignore-output"]
max_norms = {name: float(np.quantile(norms[name], CLIP_QUANTILE)) for name in optimizers}
with_clip = pd.concat(
    [
        run(
            f"{name}+clip",
            recorded(f"{name}+clip", make_optimizer, max_norms[name]),
            make_schedule,
            loaders=loaders,
            epochs=EPOCHS,
            device=DEVICE,
            model_fn=make_rnn,
        )
        for name, (make_optimizer, make_schedule) in optimizers.items()
    ],
    ignore_index=True,
)
pd.Series(max_norms, name="max_norm").round(3)

# %% tags=["hide-input", "nbval-ignore-output"]
both = pd.concat([plain, with_clip], ignore_index=True)
fig, (ax_acc, ax_norm) = plt.subplots(1, 2, figsize=(11, 3.8))
all_norms = [n for name in optimizers for n in norms[name]]
bins = np.geomspace(min(all_norms), max(all_norms), 50)
for i, name in enumerate(optimizers):
    for suffix, style in (("", "-"), ("+clip", "--")):
        frame = both[both["run"] == name + suffix]
        ax_acc.plot(
            frame["epoch"], frame["test Accuracy"], ls=style, color=f"C{i}", label=name + suffix
        )
    ax_norm.hist(norms[name], bins=bins, histtype="step", color=f"C{i}", label=name)
    ax_norm.axvline(max_norms[name], color=f"C{i}", ls="--")
ax_acc.axhline(ceiling, color="gray", ls=":")
ax_acc.set(xlabel="epoch", ylabel="test accuracy", title="Solid: no clipping; dashed: clipped")
ax_norm.set(
    xscale="log",
    xlabel="gradient norm (no clipping)",
    ylabel="steps",
    title="Gradient norms; dashed: each threshold",
)
ax_acc.legend(fontsize=7, ncol=2)
ax_norm.legend(fontsize=8)

# %% tags=["hide-input", "nbval-ignore-output"]
table = pd.DataFrame(
    {
        "no clipping": final_scores(plain),
        "clipped": final_scores(with_clip).rename(lambda run: run.removesuffix("+clip")),
        "median norm": {name: np.median(norms[name]) for name in optimizers},
        "largest norm": {name: max(norms[name]) for name in optimizers},
        "max_norm": max_norms,
    }
)
for name, row in table.iterrows():
    key = name.replace("+", "_")
    glue(f"clip_gain_{key}", row["clipped"] - row["no clipping"], display=False)
    glue(f"spike_{key}", row["largest norm"] / row["median norm"], display=False)
table.round(4)

# %% [markdown]
# :::{dropdown} Solution: does clipping help?
# The change in final test accuracy that clipping brought: SGD {glue:text}`clip_gain_SGD:+.3f`,
# Nesterov {glue:text}`clip_gain_SGD_Nesterov:+.3f`, AdamW {glue:text}`clip_gain_AdamW:+.3f`,
# AdamW with cosine {glue:text}`clip_gain_AdamW_cosine:+.3f`. The largest gradient of each
# unclipped run was {glue:text}`spike_SGD:.1f`, {glue:text}`spike_SGD_Nesterov:.1f`,
# {glue:text}`spike_AdamW:.1f` and {glue:text}`spike_AdamW_cosine:.1f` times its median.
#
# Clipping is a guard against rare, very large gradients: it caps those steps and leaves the
# others alone, so it helps exactly when such spikes are what holds a run back. Momentum
# turns one huge gradient into a series of huge steps, so the momentum run has the most to
# lose to spikes. But when its trouble is a rate that is too large on *every* step (a Nesterov
# curve that wanders with and without clipping is the sign), capping only the largest steps
# cannot fix it, and the remedy is a smaller $\eta$. For AdamW clipping matters less:
# dividing by the running size of the gradients already scales a sudden spike down (not
# entirely, since the running average needs a few steps to catch up). Plain SGD's steps are
# small to begin with, and a clipped step is only a smaller step. Single runs are noisy, so
# differences of a point or so are within what another seed would change. This is why the
# chapter recommends clipping for recurrent networks by default: with a threshold above the
# typical norm it costs little where it is not needed, and it can save a run that one spike
# would otherwise wreck.
# :::
#
# ## What we did
#
# - Generated a sequence classification task with a known best possible accuracy, and trained
#   a three-layer bidirectional RNN on it.
# - Compared plain SGD, Nesterov momentum, AdamW and AdamW with cosine annealing on that RNN.
# - Recorded the gradient norms each optimizer met, chose clipping thresholds from them, and
#   saw which optimizers clipping helped.
