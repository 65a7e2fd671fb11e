"""Schedules stepped once per epoch: constants chosen from what a reader wants to happen.

An exponential decay that ends at ``eta_min`` after ``epochs``, step drops that reach it too, a
cosine schedule with a given number of dips that ends on a dip, the book's one floor
``eta_min_for(eta_0)``, and ``schedule_lrs`` to read any schedule's rates without training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

ETA_MIN_RATIO = 0.01
r"""Every schedule of the book decays to ``eta_0 * ETA_MIN_RATIO``, 100 times below its start.

The chapter's rule of thumb puts the floor 10 to 100 times below :math:`\eta_0`. We take the
far end of that range once, for every page: low enough that the last epochs settle into a
minimum, and never 0, because an epoch at a learning rate of 0 changes no weight and is wasted.
"""


def eta_min_for(eta_0: float) -> float:
    r"""The floor :math:`\eta_{min}` of every schedule in the book: ``eta_0 * ETA_MIN_RATIO``.

    Example:
        >>> eta_min_for(0.1)
        0.001
    """
    if eta_0 <= 0:
        raise ValueError(f"eta_0 must be positive, got {eta_0}")
    return eta_0 * ETA_MIN_RATIO


def exponential_gamma(eta_0: float, eta_min: float, epochs: int) -> float:
    r"""The decay rate :math:`\gamma` that takes :math:`\eta_0` to :math:`\eta_{min}` in ``epochs``.

    .. math::
        \gamma = \left(\frac{\eta_{min}}{\eta_0}\right)^{1/T}

    Example:
        >>> round(exponential_gamma(0.001, 0.0001, 50), 5)
        0.95499
    """
    if not 0 < eta_min < eta_0:
        raise ValueError(f"need 0 < eta_min < eta_0, got eta_min={eta_min}, eta_0={eta_0}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return (eta_min / eta_0) ** (1.0 / epochs)


def cosine_t_max(epochs: int, dips: int) -> int:
    r"""The largest whole ``T_max`` for ``CosineAnnealingLR`` that fits ``dips`` dips in ``epochs``.

    A dip is a minimum of the learning rate. ``CosineAnnealingLR`` reaches its k-th dip at epoch
    :math:`(2k - 1) \cdot T_{max}`, so ``dips`` of them fit in epochs ``0 .. T-1`` when
    :math:`T_{max} = \lfloor (T - 1) / (2 \cdot \mathrm{dips} - 1) \rfloor` (at least 1).
    Only when :math:`2 \cdot \mathrm{dips} - 1` divides :math:`T - 1` does the last dip fall
    on the last epoch; otherwise the run spends its last epochs climbing back up (15 epochs and
    2 dips: ``T_max`` 4, dips at epochs 4 and 12, and epochs 13 and 14 rising). To end on the
    last dip for any epoch count, use :func:`cosine_schedule`.

    Example:
        >>> cosine_t_max(49, 2)  # dips at epochs 16 and 48 of 0..48: the last epoch
        16
        >>> cosine_t_max(15, 2)  # dips at epochs 4 and 12 of 0..14: ends on the way up
        4
    """
    if dips < 1:
        raise ValueError(f"dips must be at least 1, got {dips}")
    if epochs < 2 * dips:
        raise ValueError(
            f"{dips} dips need at least {2 * dips} epochs, got {epochs}: "
            "train longer or ask for fewer dips"
        )
    return max(1, (epochs - 1) // (2 * dips - 1))


def cosine_extremes(epochs: int, dips: int) -> list[int]:
    """The epochs where a cosine schedule with ``dips`` dips turns: peak, dip, peak, ..., dip.

    ``2 * dips`` whole epochs spread as evenly as rounding allows over ``0 .. epochs - 1``: the
    first is epoch 0 (the top), the last is ``epochs - 1`` (the last dip), so a run planned for
    ``epochs`` always ends on its lowest rate.

    Raises:
        ValueError: ``dips`` below 1, or fewer than ``2 * dips`` epochs.

    Example:
        >>> cosine_extremes(15, 2)  # top, dip, top, dip
        [0, 5, 9, 14]
    """
    if dips < 1:
        raise ValueError(f"dips must be at least 1, got {dips}")
    if epochs < 2 * dips:
        raise ValueError(
            f"{dips} dips need at least {2 * dips} epochs, got {epochs}: "
            "train longer or ask for fewer dips"
        )
    segments = 2 * dips - 1  # half-cosines between consecutive extremes
    return [round(k * (epochs - 1) / segments) for k in range(segments + 1)]


def cosine_schedule(
    optimizer: torch.optim.Optimizer, epochs: int, dips: int, *, eta_min: float
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""A cosine schedule whose ``dips``-th dip falls on the last of ``epochs``.

    ``CosineAnnealingLR`` needs a whole ``T_max``, so for most epoch counts its last dip comes
    early and the run ends partway back up (:func:`cosine_t_max`). This schedule is the same
    curve drawn between the turning points of :func:`cosine_extremes`: from each top
    (:math:`\eta_0`, each group's initial rate) to the next dip (:math:`\eta_{min}`) and back,
    one half-cosine per stretch,

    .. math::
        \eta_t = \eta_{to} + \frac{1}{2}(\eta_{from} - \eta_{to})
                 \left(1 + \cos\frac{\pi (t - t_{from})}{t_{to} - t_{from}}\right),

    so it reaches :math:`\eta_{min}` exactly ``dips`` times, never goes below it, and trains its
    last epoch at :math:`\eta_{min}`. Stepped past the last epoch it stays there.

    Args:
        optimizer: the optimizer whose rates it sets (each group from its own initial rate).
        epochs: the epochs of the run (stepped once per epoch).
        dips: how many minima.
        eta_min: the floor, below every group's initial rate.

    Raises:
        ValueError: see :func:`cosine_extremes`, or ``eta_min`` not in ``[0, eta_0)``.

    Example:
        >>> lrs = schedule_lrs(lambda o: cosine_schedule(o, 5, 2, eta_min=0.001), 5, 0.1)
        >>> [round(lr, 4) for lr in lrs]  # turns at epochs 0, 1, 3, 4
        [0.1, 0.001, 0.0505, 0.1, 0.001]
    """
    turns = cosine_extremes(epochs, dips)
    bases = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    for base in bases:
        if not 0 <= eta_min < base:
            raise ValueError(f"need 0 <= eta_min < the initial rate {base}, got {eta_min}")

    def factor(base: float) -> Callable[[int], float]:
        def at(epoch: int) -> float:
            if epoch >= turns[-1]:
                return eta_min / base
            k = max(i for i in range(len(turns) - 1) if turns[i] <= epoch)
            start, end = turns[k], turns[k + 1]
            first, last = (base, eta_min) if k % 2 == 0 else (eta_min, base)  # down, then up
            progress = (epoch - start) / (end - start)  # 0 at the first turn, 1 at the next
            lr = last + 0.5 * (first - last) * (1 + math.cos(math.pi * progress))
            return lr / base

        return at

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(base) for base in bases])


def schedule_lrs(
    make_schedule: Callable[[torch.optim.Optimizer], object], epochs: int, eta_0: float
) -> list[float]:
    """The learning rate of each epoch, read off a real ``torch.optim.lr_scheduler`` object.

    The one place the book reads a schedule: the schedule is built on a throwaway SGD optimizer
    with learning rate ``eta_0`` and stepped once per epoch, as :func:`idlmam.train.train_network`
    steps it, so what this returns is the ``lr`` column a run with that schedule records.

    Args:
        make_schedule: ``optimizer -> schedule``.
        epochs: how many epochs to read.
        eta_0: the optimizer's initial learning rate.

    Example:
        >>> schedule_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.5), 5, 1.0)
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=eta_0)
    schedule = make_schedule(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return lrs
