"""Run one named experiment of the book (a model, an optimizer, a schedule) over seeds.

Every comparison in the book is a list of such runs concatenated into one long results frame
with a ``run`` and a ``seed`` column, which :mod:`idlmam.plotting` draws.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from .models import clamp_gradients, mlp
from .train import DivergenceWarning, accuracy, train_many, train_network, why_not_stacked
from .train.loop import check_schedule_every
from .train.stacked import seeds_frame, warn_diverged_seeds
from .utils import order_seed, set_seed

__all__ = ["run"]

Loaders = Mapping[str, Iterable]


def run(
    label: str,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    make_schedule: Callable[[torch.optim.Optimizer], object] | str | None = None,
    *,
    lr_schedule_every: str = "epoch",
    loaders: Loaders | Callable[[int], Loaders],
    epochs: int,
    device: torch.device | str = "cpu",
    seeds: Sequence[int] = (0,),
    model_fn: Callable[[], nn.Module] = mlp,
    clip_value: float | None = None,
    score_funcs: dict | None = None,
    on_epoch_end: Callable[[int, dict], bool | None] | None = None,
):
    """Train a fresh model per seed and return the long results frame.

    A seed is a whole repetition: it decides the model's initial weights
    (:func:`idlmam.utils.set_seed`) and the order of the training batches (the training
    loader's generator is reseeded with :func:`idlmam.utils.order_seed`), and, when
    ``loaders`` is a function of the seed, the data split too. Two runs with the same seed see
    the same batches, so a comparison between runs is paired; two seeds never share an order.

    Several seeds train together in one pass (:func:`idlmam.train.train_many`) unless the
    setup forbids it (:func:`idlmam.train.why_not_stacked`: batch norm, norm clipping,
    ``ReduceLROnPlateau``) or ``loaders`` differs per seed; then they train one after the
    other with :func:`idlmam.train.train_network`. Either way the caller gets the same frame
    (up to rounding), the same checks and errors, divergence flagged per seed (the
    ``diverged`` column, ``frame.attrs["diverged"]``) with one
    :class:`~idlmam.train.DivergenceWarning`, ``on_epoch_end`` called for each seed, the
    schedule stepped per epoch or per batch as asked, and an optimizer with ``train()``/``eval()``
    modes (schedule-free AdamW, which stacks) switched around every evaluation.

    Args:
        label: the name of the run, stored in the ``run`` column (and used by plot legends).
        make_optimizer: ``params -> optimizer``, e.g. ``lambda p: torch.optim.SGD(p, lr=0.1)``.
        make_schedule: ``optimizer -> schedule`` (or the string ``"ReduceLROnPlateau"``), or None.
        lr_schedule_every: ``"epoch"`` or ``"batch"``: when the schedule steps (see
            :func:`idlmam.train.train_network`; the ``lr`` column holds the rate at the start
            of each epoch, and ``idlmam.optim.schedule_lrs`` reads the per-batch curve).
        loaders: ``{"train", "test"}`` and optionally ``"val"`` (see
            :func:`idlmam.data.book_loaders`), or ``seed -> such a dict`` to draw the data (a
            validation split, say) per seed.
        epochs: epochs per run.
        device: where to train.
        seeds: one model per seed.
        model_fn: builds the model (default: the chapter's MLP).
        clip_value: clamp every gradient value into ``[-clip_value, clip_value]`` during this
            run (the hooks are removed afterwards).
        score_funcs: defaults to ``{"Accuracy": idlmam.train.accuracy}``.
        on_epoch_end: ``on_epoch_end(epoch, row)`` after every epoch of every seed, with
            ``row["seed"]``; return True to stop that seed.

    Returns:
        The results frames of all seeds, one below the other, with ``run`` and ``seed`` columns;
        ``frame.attrs["diverged"]`` is True when any seed diverged.

    Raises:
        ValueError, TypeError: what :func:`idlmam.train.train_network` raises, before training.

    Example:
        >>> frame = run("SGD", lambda p: torch.optim.SGD(p, lr=0.1), loaders=loaders,
        ...             epochs=5, seeds=range(3))  # doctest: +SKIP
        >>> steps = 5 * len(loaders["train"])  # doctest: +SKIP
        >>> # a linear decay to zero, stepped every batch
        >>> frame = run("SGD, linear decay", lambda p: torch.optim.SGD(p, lr=0.1),
        ...             lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, steps),
        ...             lr_schedule_every="batch", loaders=loaders, epochs=5,
        ...             seeds=range(3))  # doctest: +SKIP
    """
    check_schedule_every(
        lr_schedule_every, make_schedule if isinstance(make_schedule, str) else None
    )
    seeds = list(seeds)
    score_funcs = score_funcs or {"Accuracy": accuracy}
    per_seed = callable(loaders)
    stack = (
        len(seeds) > 1
        and not per_seed
        and not why_not_stacked(model_fn, make_optimizer, make_schedule)
    )
    train = dict(
        score_funcs=score_funcs, epochs=epochs, device=device, lr_schedule_every=lr_schedule_every
    )
    if stack:
        frame = train_many(
            model_fn,
            seeds,
            nn.CrossEntropyLoss(),
            loaders["train"],
            optimizer_fn=make_optimizer,
            lr_schedule_fn=make_schedule,
            val_loader=loaders.get("val"),
            test_loader=loaders.get("test"),
            clip_value=clip_value,
            on_epoch_end=on_epoch_end,
            **train,
        )
    else:
        frames, diverged = [], []
        for seed in seeds:
            one = _one_seed(
                seed,
                make_optimizer,
                make_schedule,
                loaders,
                model_fn,
                clip_value,
                on_epoch_end,
                train,
            )
            if one.attrs["diverged"]:
                last = one.iloc[-1]
                diverged.append(f"seed {seed} at epoch {int(last['epoch'])} ({last['train loss']})")
            frames.append(one.assign(seed=seed))
        if diverged:
            warn_diverged_seeds(diverged)
        frame = seeds_frame(frames)
    diverged = frame.attrs["diverged"]
    columns = [c for c in frame.columns if c != "seed"]
    frame = frame[columns].assign(run=label, seed=frame["seed"])
    frame.attrs["diverged"] = diverged
    return frame


def _one_seed(
    seed, make_optimizer, make_schedule, loaders, model_fn, clip_value, on_epoch_end, train: dict
):
    """One seed of :func:`run` trained alone with ``train_network`` (its divergence warning
    left to ``run``, which issues one for all seeds)."""
    data = loaders(seed) if callable(loaders) else loaders
    generator = getattr(data["train"], "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(order_seed(seed))  # this seed's order, whatever ran before
    set_seed(seed)
    model = model_fn()
    optimizer = make_optimizer(model.parameters())
    schedule = make_schedule(optimizer) if callable(make_schedule) else make_schedule
    hooks = clamp_gradients(model, clip_value) if clip_value is not None else []
    hook = None
    if on_epoch_end is not None:

        def hook(epoch: int, row: dict) -> bool | None:
            return on_epoch_end(epoch, {**row, "seed": seed})

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DivergenceWarning)
            return train_network(
                model,
                nn.CrossEntropyLoss(),
                data["train"],
                val_loader=data.get("val"),
                test_loader=data.get("test"),
                optimizer=optimizer,
                lr_schedule=schedule,
                on_epoch_end=hook,
                **train,
            )
    finally:
        for handle in hooks:
            handle.remove()
