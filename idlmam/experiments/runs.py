"""Run one named experiment of the book (a model, an optimizer, a schedule) over seeds.

Every comparison in the book is a list of such runs concatenated into one long results frame
with a ``run`` and a ``seed`` column, which :mod:`idlmam.plotting` draws. :func:`branch_runs`
grows branches off one run's checkpoints (the cooldowns of an "anytime" schedule).
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..models import clamp_gradients, mlp
from ..train import (
    DivergenceWarning,
    accuracy,
    seeds_frame,
    train_many,
    train_network,
    warn_diverged_seeds,
    why_not_stacked,
)
from ..train.checkpoint import continue_from
from ..train.checks import check_schedule_every
from ..utils import seed_run

__all__ = ["run", "branch_runs"]

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
    make_model: Callable[[], nn.Module] = mlp,
    loss_func: Callable | None = None,
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
        make_model: builds the model (default: the chapter's MLP).
        loss_func: ``loss_func(y_hat, y)``, a batch's mean loss (default:
            ``nn.CrossEntropyLoss()``).
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
        and not why_not_stacked(make_model, make_optimizer, make_schedule)
    )
    train = dict(
        loss_func=loss_func or nn.CrossEntropyLoss(),
        score_funcs=score_funcs,
        epochs=epochs,
        device=device,
        lr_schedule_every=lr_schedule_every,
    )
    if stack:
        frame = train_many(
            make_model,
            seeds,
            train_loader=loaders["train"],
            make_optimizer=make_optimizer,
            make_schedule=make_schedule,
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
                make_model,
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
    seed, make_optimizer, make_schedule, loaders, make_model, clip_value, on_epoch_end, train: dict
):
    """One seed of :func:`run` trained alone with ``train_network`` (its divergence warning
    left to ``run``, which issues one for all seeds)."""
    data = loaders(seed) if callable(loaders) else loaders
    seed_run(seed, data["train"])  # this seed's weights and order, whatever ran before
    model = make_model()
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
                train_loader=data["train"],
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


def branch_runs(
    label: str,
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    make_schedule: Callable[[torch.optim.Optimizer], object],
    make_branch_schedule: Callable[[torch.optim.Optimizer, int], object],
    *,
    at: Mapping[int, int],
    lr_schedule_every: str = "batch",
    loaders: Loaders,
    epochs: int,
    device: torch.device | str = "cpu",
    seeds: Sequence[int] = (0,),
    make_model: Callable[[], nn.Module] = mlp,
    loss_func: Callable | None = None,
    score_funcs: dict | None = None,
):
    """One run per seed (the *trunk*), and branches that continue it from its checkpoints.

    The trunk trains as :func:`run` would train one seed (same weights, batch order and
    frame), writing a checkpoint after every epoch; after epoch ``b`` of each branch point it
    keeps a copy. A branch loads that copy (model, optimizer, every random state, so the next
    batches are the ones the trunk would have seen), builds ``make_branch_schedule(optimizer,
    n)`` on the loaded optimizer and trains ``n`` more epochs. A cooldown branched this way off
    a constant rate is the run a warmup-stable-decay schedule of ``b + n`` epochs would have
    made (on the CPU bitwise), for the price of its ``n`` epochs alone.

    Args:
        label: the trunk's ``run`` label; branch ``b`` is labelled ``f"{label}, branch at {b}"``.
        make_optimizer: ``params -> optimizer``.
        make_schedule: ``optimizer -> schedule`` of the trunk.
        make_branch_schedule: ``(optimizer, n) -> schedule`` of a branch of ``n`` epochs, built
            after the trunk's state is loaded (``idlmam.optim.cooldown_schedule`` starts from
            the rate the optimizer holds then).
        at: ``{b: n}``: branch after ``b`` trunk epochs (``1 <= b <= epochs``), for ``n`` epochs.
        lr_schedule_every: ``"batch"`` (default here) or ``"epoch"``, for trunk and branches.
        loaders: ``{"train", "test"}`` and optionally ``"val"``.
        epochs: epochs of the trunk.
        device: where to train.
        seeds: one trunk (and its branches) per seed, trained one after the other.
        make_model: builds the model.
        loss_func: as in :func:`run`.
        score_funcs: defaults to ``{"Accuracy": idlmam.train.accuracy}``.

    Returns:
        The long results frame of trunks and branches, with ``run``, ``seed`` and a ``branch``
        column (the branch point, ``0`` for the trunk); a branch's ``epoch`` and ``total time``
        continue the trunk's.

    Raises:
        ValueError: a branch point outside ``1 .. epochs`` or a branch of fewer than 1 epoch;
            what :func:`idlmam.train.train_network` raises.

    Example:
        >>> from idlmam.optim import cooldown_schedule, warmup_constant
        >>> steps = len(loaders["train"])  # doctest: +SKIP
        >>> frame = branch_runs(  # constant rate, cooled down over 1 epoch after 4 and 2 after 8
        ...     "AdamW", lambda p: torch.optim.AdamW(p, lr=0.01),
        ...     lambda o: warmup_constant(o, steps),
        ...     lambda o, n: cooldown_schedule(o, n * steps),
        ...     at={4: 1, 8: 2}, loaders=loaders, epochs=8, seeds=range(3))  # doctest: +SKIP
    """
    check_schedule_every(lr_schedule_every, None)
    for b, n in at.items():
        if not 1 <= b <= epochs or n < 1:
            raise ValueError(
                f"branch at {b} for {n} epochs: need 1 <= branch point <= epochs={epochs} "
                "and at least 1 epoch per branch"
            )
    train = dict(
        loss_func=loss_func or nn.CrossEntropyLoss(),
        score_funcs=score_funcs or {"Accuracy": accuracy},
        device=device,
        lr_schedule_every=lr_schedule_every,
    )
    frames = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            trunk = f"{folder}/trunk-{seed}.pt"

            def keep(epoch: int, row: dict, trunk=trunk, seed=seed) -> None:
                if epoch + 1 in at:
                    shutil.copyfile(trunk, f"{folder}/seed{seed}-at{epoch + 1}.pt")

            frame = _one_seed(
                seed,
                make_optimizer,
                make_schedule,
                loaders,
                make_model,
                None,
                keep,
                dict(train, epochs=epochs, checkpoint_file=trunk),
            )
            frames.append(frame.assign(seed=seed, run=label, branch=0))
            for b, n in at.items():
                model = make_model().to(device)
                optimizer = make_optimizer(model.parameters())
                done, total_time = continue_from(  # the trunk's weights, moments, random states
                    f"{folder}/seed{seed}-at{b}.pt",
                    model,
                    optimizer,
                    [loaders.get(name) for name in ("train", "val", "test")],
                )
                branch = train_network(
                    model,
                    train_loader=loaders["train"],
                    val_loader=loaders.get("val"),
                    test_loader=loaders.get("test"),
                    optimizer=optimizer,
                    lr_schedule=make_branch_schedule(optimizer, n),
                    epochs=n,
                    **train,
                )
                branch["epoch"] += done
                branch["total time"] += total_time
                frames.append(branch.assign(seed=seed, run=f"{label}, branch at {b}", branch=b))
    return seeds_frame(frames)
