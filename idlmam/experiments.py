"""Run one named experiment of the chapter (a model, an optimizer, a schedule) for one or more seeds.

Every comparison in the book is a list of such runs concatenated into one long results frame
with a ``run`` and a ``seed`` column, which :mod:`idlmam.plotting` draws.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .models import clamp_gradients, mlp
from .train import accuracy, train_many, train_network
from .utils import set_seed

__all__ = ["run"]


def _can_stack(make_optimizer, make_schedule, model_fn) -> bool:
    """Whether the seeds can train together in one pass (:func:`idlmam.multi.train_many`).

    Not with ``ReduceLROnPlateau`` (each model would need its own rate) nor with an optimizer
    that rewrites gradients across a whole tensor before its step (norm clipping): on stacked
    weights those would mix the models.
    """
    if isinstance(make_schedule, str):
        return False
    probe = make_optimizer(model_fn().parameters())
    schedule = make_schedule(probe) if make_schedule is not None else None
    plateau = isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau)
    return not plateau and not getattr(probe, "_optimizer_step_pre_hooks", None)


def run(label: str, make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        make_schedule: Callable[[torch.optim.Optimizer], object] | None = None, *,
        loaders: dict, epochs: int, device: torch.device | str = "cpu",
        seeds: Sequence[int] = (0,), model_fn: Callable[[], nn.Module] = mlp,
        clip_value: float | None = None, score_funcs: dict | None = None):
    """Train a fresh model per seed and return the long results frame.

    The seeds change the initial weights; every run and every seed sees the same batches in the
    same order (the training loader's own seed, restarted for each run), so a run does not depend
    on what ran before it in the notebook. Several seeds train together in one pass over the data
    (:func:`idlmam.multi.train_many`, the same numbers as separate runs, cheaper) unless the
    schedule or the optimizer forbids it, in which case they train one after the other.

    Args:
        label: the name of the run, stored in the ``run`` column (and used by plot legends).
        make_optimizer: ``params -> optimizer``, e.g. ``lambda p: torch.optim.SGD(p, lr=0.1)``.
        make_schedule: ``optimizer -> schedule`` (or the string ``"ReduceLROnPlateau"``), or None.
        loaders: ``{"train", "test"}`` and optionally ``"val"`` (see ``idlmam.data.book_loaders``).
        epochs: epochs per run.
        device: where to train.
        seeds: one model per seed.
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

    seeds = list(seeds)
    score_funcs = score_funcs or {"Accuracy": accuracy}
    train_loader = loaders["train"]
    generator = getattr(train_loader, "generator", None)
    if generator is not None:
        generator.manual_seed(generator.initial_seed())  # the loader's order, from its start
    if len(seeds) > 1 and _can_stack(make_optimizer, make_schedule, model_fn):
        frame = train_many(model_fn, seeds, nn.CrossEntropyLoss(), train_loader,
                           optimizer_fn=make_optimizer, lr_schedule_fn=make_schedule,
                           val_loader=loaders.get("val"), test_loader=loaders.get("test"),
                           score_funcs=score_funcs, epochs=epochs, device=device,
                           clip_value=clip_value)
        columns = [c for c in frame.columns if c != "seed"] + ["seed"]
        return frame[columns].assign(run=label)[columns[:-1] + ["run", "seed"]]
    frames = []
    order = generator.get_state() if generator is not None else None
    for seed in seeds:
        set_seed(seed)
        model = model_fn()
        optimizer = make_optimizer(model.parameters())
        schedule = make_schedule(optimizer) if callable(make_schedule) else make_schedule
        if order is not None:
            generator.set_state(order)
        hooks = clamp_gradients(model, clip_value) if clip_value is not None else []
        try:
            frame = train_network(model, nn.CrossEntropyLoss(), train_loader,
                                  val_loader=loaders.get("val"), test_loader=loaders.get("test"),
                                  score_funcs=score_funcs, epochs=epochs, device=device,
                                  optimizer=optimizer, lr_schedule=schedule)
        finally:
            for hook in hooks:
                hook.remove()
        frames.append(frame.assign(run=label, seed=seed))
    return pd.concat(frames, ignore_index=True)
