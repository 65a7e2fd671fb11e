"""Run one named experiment of the chapter (a model, an optimizer, a schedule) for one or more seeds.

Every comparison in the book is a list of such runs concatenated into one long results frame
with a ``run`` and a ``seed`` column, which :mod:`idlmam.plotting` draws.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .models import clamp_gradients, mlp
from .train import train_network
from .utils import set_seed

__all__ = ["run"]


def run(label: str, make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        make_schedule: Callable[[torch.optim.Optimizer], object] | None = None, *,
        loaders: dict, epochs: int, device: torch.device | str = "cpu",
        seeds: Sequence[int] = (0,), model_fn: Callable[[], nn.Module] = mlp,
        clip_value: float | None = None, score_funcs: dict | None = None):
    """Train a fresh model per seed and return the long results frame.

    Each seed gets the same treatment: ``set_seed(seed)``, a new model from ``model_fn``, a new
    optimizer and schedule, the training order reseeded. So a run does not depend on what ran
    before it in the notebook.

    Args:
        label: the name of the run, stored in the ``run`` column (and used by plot legends).
        make_optimizer: ``params -> optimizer``, e.g. ``lambda p: torch.optim.SGD(p, lr=0.1)``.
        make_schedule: ``optimizer -> schedule`` (or the string ``"ReduceLROnPlateau"``), or None.
        loaders: ``{"train", "test"}`` and optionally ``"val"`` (see ``idlmam.data.book_loaders``).
        epochs: epochs per run.
        device: where to train.
        seeds: one run per seed.
        model_fn: builds the model (default: the chapter's MLP).
        clip_value: clamp every gradient value into ``[-clip_value, clip_value]`` during this run
            (the hooks are removed afterwards).
        score_funcs: defaults to ``{"Accuracy": sklearn.metrics.accuracy_score}``.

    Returns:
        The results frames of all seeds, one below the other, with ``run`` and ``seed`` columns.

    Example:
        >>> frame = run("SGD", lambda p: torch.optim.SGD(p, lr=0.1), loaders=loaders, epochs=5)  # doctest: +SKIP
    """
    import pandas as pd
    from sklearn.metrics import accuracy_score

    frames = []
    for seed in seeds:
        set_seed(seed)
        model = model_fn()
        optimizer = make_optimizer(model.parameters())
        schedule = make_schedule(optimizer) if callable(make_schedule) else make_schedule
        train_loader = loaders["train"]
        if hasattr(train_loader, "generator"):
            train_loader.generator.manual_seed(seed)
        hooks = clamp_gradients(model, clip_value) if clip_value is not None else []
        try:
            frame = train_network(model, nn.CrossEntropyLoss(), train_loader,
                                  val_loader=loaders.get("val"), test_loader=loaders.get("test"),
                                  score_funcs=score_funcs or {"Accuracy": accuracy_score},
                                  epochs=epochs, device=device, optimizer=optimizer,
                                  lr_schedule=schedule)
        finally:
            for hook in hooks:
                hook.remove()
        frames.append(frame.assign(run=label, seed=seed))
    return pd.concat(frames, ignore_index=True)
