"""Schedules stepped once per batch: warmup, decay to zero, warmup-stable-decay, cooldowns.

Each is a ``LambdaLR`` whose multiplier is a small pure function of the step, exposed so the
formula can be read and tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# Schedules stepped per batch -----------------------------------------------------------------
# Conventions shared by every function below. Steps are scheduler steps t = 0, 1, 2, ... (batches
# when the schedule is stepped once per batch). Warmup climbs (t + 1) / W, so the first step
# trains at a small rate, never 0, and step W - 1 at the peak; warmup_steps 0 and 1 both mean
# "the first step at the peak". A decay of D steps takes the last D steps, each lower than the
# one before, the last at eta_min; stepping on past the end stays at eta_min.

_SHAPES = ("linear", "sqrt")


def _check_steps(step: int, total_steps: int, warmup_steps: int, decay_steps: int) -> None:
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
    if decay_steps < 1:
        raise ValueError(f"decay_steps must be at least 1, got {decay_steps}")
    if max(warmup_steps, 1) + decay_steps > total_steps:
        raise ValueError(
            f"warmup_steps + decay_steps ({warmup_steps} + {decay_steps}) leave no step at the "
            f"peak within total_steps={total_steps}: need max(warmup_steps, 1) + decay_steps "
            "<= total_steps"
        )


def _check_decay_to_end(step: int, total_steps: int, warmup_steps: int) -> None:
    """The checks of a schedule that decays from the peak to the end of the run."""
    if step < 0:
        raise ValueError(f"step must be non-negative, got {step}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")
    if max(warmup_steps, 1) >= total_steps:
        raise ValueError(
            f"warmup_steps={warmup_steps} leaves no step to decay in total_steps={total_steps}: "
            "need warmup_steps < total_steps and total_steps >= 2"
        )


def _check_ratio(eta_min_ratio: float) -> None:
    if not 0 <= eta_min_ratio < 1:
        raise ValueError(f"eta_min_ratio must be in [0, 1), got {eta_min_ratio}")


def warmup_factor(step: int, warmup_steps: int) -> float:
    r"""The warmup multiplier of step :math:`t`: :math:`\min(1, (t + 1) / W)`.

    The rate climbs in equal steps from :math:`\eta_0 / W` and reaches the peak on step
    :math:`W - 1`; after that it is 1. ``warmup_steps`` 0 and 1 both give 1 from the start.

    Example:
        >>> [warmup_factor(t, 4) for t in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """
    if step < 0 or warmup_steps < 0:
        raise ValueError(f"need step >= 0 and warmup_steps >= 0, got {step}, {warmup_steps}")
    return min(1.0, (step + 1) / max(warmup_steps, 1))


def cooldown_factor(step: int, decay_steps: int, *, shape: str = "sqrt") -> float:
    r"""The share of the way from the starting rate down to the floor still left at step :math:`t`.

    With :math:`p = \min(1, (t + 1) / D)` over a cooldown of :math:`D` steps:

    .. math::
        \text{linear: } 1 - p, \qquad \text{sqrt: } 1 - \sqrt{p}

    The (1 - sqrt) shape (Hägele et al. 2024, arXiv:2405.18392) stays high longer and then drops
    fast. Step :math:`D - 1` and every later one give 0: the floor.

    Example:
        >>> [cooldown_factor(t, 4, shape="linear") for t in range(5)]
        [0.75, 0.5, 0.25, 0.0, 0.0]
        >>> cooldown_factor(0, 4, shape="sqrt")  # 1 - sqrt(1/4)
        0.5
    """
    if shape not in _SHAPES:
        raise ValueError(f"shape must be one of {_SHAPES}, got {shape!r}")
    if step < 0 or decay_steps < 1:
        raise ValueError(f"need step >= 0 and decay_steps >= 1, got {step}, {decay_steps}")
    p = min(1.0, (step + 1) / decay_steps)
    return 1 - p if shape == "linear" else 1 - math.sqrt(p)


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, *, eta_min_ratio: float = 0.0
) -> float:
    r"""The multiplier of :func:`warmup_cosine` at step :math:`t`: warmup, then one half-cosine.

    With :math:`r = \eta_{min} / \eta_0`, :math:`t_p = \max(W, 1) - 1` (the step at the peak) and
    :math:`p = \min(1, (t - t_p) / (T - 1 - t_p))`:

    .. math::
        f(t) = \begin{cases} (t + 1) / W & t < W \\
               r + (1 - r) \cdot \tfrac{1}{2} (1 + \cos \pi p) & \text{otherwise} \end{cases}

    so step :math:`T - 1` trains at :math:`\eta_{min}`. Without warmup this is
    ``CosineAnnealingLR(T_max=total_steps - 1)`` on its way down.

    Example:
        >>> [round(warmup_cosine_factor(t, 5, 2), 3) for t in range(6)]
        [0.5, 1.0, 0.75, 0.25, 0.0, 0.0]
    """
    _check_decay_to_end(step, total_steps, warmup_steps)
    _check_ratio(eta_min_ratio)
    if step < warmup_steps:
        return warmup_factor(step, warmup_steps)
    peak = max(warmup_steps, 1) - 1
    p = min(1.0, (step - peak) / (total_steps - 1 - peak))
    return eta_min_ratio + (1 - eta_min_ratio) * 0.5 * (1 + math.cos(math.pi * p))


def warmup_linear_factor(
    step: int, total_steps: int, warmup_steps: int, *, eta_min_ratio: float = 0.0
) -> float:
    r"""The multiplier of :func:`warmup_linear_decay` at step :math:`t`: warmup, then a line.

    With :math:`r`, :math:`t_p` and :math:`p` as in :func:`warmup_cosine_factor`:

    .. math::
        f(t) = \begin{cases} (t + 1) / W & t < W \\
               1 - (1 - r) \cdot p & \text{otherwise} \end{cases}

    Example:
        >>> [round(warmup_linear_factor(t, 6, 2), 3) for t in range(7)]
        [0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    _check_decay_to_end(step, total_steps, warmup_steps)
    _check_ratio(eta_min_ratio)
    if step < warmup_steps:
        return warmup_factor(step, warmup_steps)
    peak = max(warmup_steps, 1) - 1
    p = min(1.0, (step - peak) / (total_steps - 1 - peak))
    return 1 - (1 - eta_min_ratio) * p


def wsd_factor(
    step: int,
    total_steps: int,
    warmup_steps: int,
    decay_steps: int,
    *,
    eta_min_ratio: float = 0.0,
    shape: str = "sqrt",
) -> float:
    r"""The multiplier of :func:`wsd_schedule` at step :math:`t`: warmup, stable, decay.

    Warmup for :math:`W` steps, then the peak, then a cooldown (:func:`cooldown_factor`) over
    the last :math:`D` of the :math:`T` steps:

    .. math::
        f(t) = \begin{cases} (t + 1) / W & t < W \\
               1 & t < T - D \\
               r + (1 - r) \cdot c(t - (T - D)) & \text{otherwise} \end{cases}

    where :math:`c` is :func:`cooldown_factor` (``shape`` ``"sqrt"``:
    :math:`c(s) = 1 - \sqrt{(s + 1) / D}`). With ``shape="linear"`` and
    :math:`D = T - \max(W, 1)` it is :func:`warmup_linear_factor`.

    Example:
        >>> [round(wsd_factor(t, 8, 2, 4, shape="linear"), 3) for t in range(9)]
        [0.5, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    _check_steps(step, total_steps, warmup_steps, decay_steps)
    _check_ratio(eta_min_ratio)
    if step < warmup_steps:
        return warmup_factor(step, warmup_steps)
    decay_start = total_steps - decay_steps
    if step < decay_start:
        return 1.0
    return eta_min_ratio + (1 - eta_min_ratio) * cooldown_factor(
        step - decay_start, decay_steps, shape=shape
    )


def _schedule_to_floor(
    optimizer: torch.optim.Optimizer, eta_min: float, factor: Callable[[int, float], float]
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` with ``factor(step, eta_min / eta_0)`` for each group's initial rate."""
    bases = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    for base in bases:
        if not 0 <= eta_min < base:
            raise ValueError(f"need 0 <= eta_min < the initial rate {base}, got {eta_min}")

    def for_group(ratio: float) -> Callable[[int], float]:
        return lambda step: factor(step, ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [for_group(eta_min / b) for b in bases])


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    *,
    eta_min: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Linear warmup, then a cosine decay that trains its last step at ``eta_min``.

    The multiplier is :func:`warmup_cosine_factor`, applied to each group's initial rate
    :math:`\eta_0` (:math:`r = \eta_{min} / \eta_0` per group). Step it once per batch with
    ``total_steps = epochs * len(train_loader)``.

    Args:
        optimizer: the optimizer whose rates it sets.
        total_steps: the steps of the run (:math:`T`).
        warmup_steps: steps of warmup (:math:`W`, below ``total_steps``; 0 or 1: none).
        eta_min: the floor, below every group's initial rate.

    Raises:
        ValueError: ``warmup_steps`` negative or not below ``total_steps``, fewer than 2 steps,
            or ``eta_min`` not in ``[0, eta_0)``.

    Example:
        >>> from idlmam.optim import schedule_lrs
        >>> lrs = schedule_lrs(lambda o: warmup_cosine(o, 5, 2, eta_min=0.01), 6, 0.1)
        >>> [round(lr, 4) for lr in lrs]
        [0.05, 0.1, 0.0775, 0.0325, 0.01, 0.01]
    """
    _check_decay_to_end(0, total_steps, warmup_steps)
    return _schedule_to_floor(
        optimizer,
        eta_min,
        lambda t, r: warmup_cosine_factor(t, total_steps, warmup_steps, eta_min_ratio=r),
    )


def warmup_linear_decay(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    *,
    eta_min: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Linear warmup, then a straight line down to ``eta_min`` (to zero by default).

    The multiplier is :func:`warmup_linear_factor`; everything else as in
    :func:`warmup_cosine`. Decaying linearly to zero matches or beats a cosine (Defazio et al.
    2023, arXiv:2310.07831).

    Args:
        optimizer: the optimizer whose rates it sets.
        total_steps: the steps of the run (:math:`T`).
        warmup_steps: steps of warmup (:math:`W`, below ``total_steps``; 0 or 1: none).
        eta_min: the floor, below every group's initial rate.

    Raises:
        ValueError: as :func:`warmup_cosine`.

    Example:
        >>> from idlmam.optim import schedule_lrs
        >>> lrs = schedule_lrs(lambda o: warmup_linear_decay(o, 6, 2), 7, 0.1)
        >>> [round(lr, 4) for lr in lrs]
        [0.05, 0.1, 0.075, 0.05, 0.025, 0.0, 0.0]
    """
    _check_decay_to_end(0, total_steps, warmup_steps)
    return _schedule_to_floor(
        optimizer,
        eta_min,
        lambda t, r: warmup_linear_factor(t, total_steps, warmup_steps, eta_min_ratio=r),
    )


def wsd_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    decay_steps: int,
    *,
    eta_min: float = 0.0,
    shape: str = "sqrt",
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Warmup, stable, decay (WSD): a constant peak rate and a short cooldown at the end.

    The multiplier is :func:`wsd_factor` (Hu et al. 2024, arXiv:2404.06395). A cooldown of
    about 10-20% of the steps matches a cosine, and the (1 - sqrt) shape beats a linear one
    (Hägele et al. 2024, arXiv:2405.18392). Because the rate is constant until the cooldown,
    one run can be branched at any step into a cooldown (:func:`warmup_constant` for the trunk,
    :func:`cooldown_schedule` for each branch): the same rates as this schedule with
    ``total_steps`` = the branch point + ``decay_steps``.

    Args:
        optimizer: the optimizer whose rates it sets.
        total_steps: the steps of the run (:math:`T`).
        warmup_steps: steps of warmup (:math:`W`; 0 or 1: none).
        decay_steps: the last :math:`D` steps, the cooldown (at least 1).
        eta_min: the floor, below every group's initial rate.
        shape: ``"sqrt"`` (1 - sqrt) or ``"linear"``.

    Raises:
        ValueError: negative steps, ``decay_steps`` below 1, ``max(warmup_steps, 1) +
            decay_steps > total_steps``, an unknown ``shape``, or ``eta_min`` not in
            ``[0, eta_0)``.

    Example:
        >>> from idlmam.optim import schedule_lrs
        >>> lrs = schedule_lrs(lambda o: wsd_schedule(o, 8, 2, 4, shape="linear"), 8, 0.1)
        >>> [round(lr, 4) for lr in lrs]
        [0.05, 0.1, 0.1, 0.1, 0.075, 0.05, 0.025, 0.0]
    """
    _check_steps(0, total_steps, warmup_steps, decay_steps)
    cooldown_factor(0, decay_steps, shape=shape)  # an unknown shape raises now, not at step 0
    return _schedule_to_floor(
        optimizer,
        eta_min,
        lambda t, r: wsd_factor(
            t, total_steps, warmup_steps, decay_steps, eta_min_ratio=r, shape=shape
        ),
    )


def warmup_constant(
    optimizer: torch.optim.Optimizer, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Linear warmup (:func:`warmup_factor`), then the peak rate for as long as the run goes.

    The trunk of an "anytime" WSD run: branch it at any step with :func:`cooldown_schedule`.

    Example:
        >>> from idlmam.optim import schedule_lrs
        >>> schedule_lrs(lambda o: warmup_constant(o, 2), 4, 0.1)
        [0.05, 0.1, 0.1, 0.1]
    """
    warmup_factor(0, warmup_steps)  # a negative warmup raises here
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: warmup_factor(t, warmup_steps))


def cooldown_schedule(
    optimizer: torch.optim.Optimizer,
    decay_steps: int,
    *,
    eta_min: float = 0.0,
    shape: str = "sqrt",
) -> torch.optim.lr_scheduler.LambdaLR:
    r"""A cooldown from each group's *current* rate to ``eta_min`` in ``decay_steps`` steps.

    Built on an optimizer that has trained (a trunk run at a constant rate), it replaces that
    run's schedule: with :math:`\eta_s` the rate the optimizer holds now,

    .. math::
        \eta_t = \eta_{min} + (\eta_s - \eta_{min}) \cdot c(t)

    where :math:`c` is :func:`cooldown_factor`, so the first step is already one notch below
    :math:`\eta_s` and step ``decay_steps - 1`` trains at ``eta_min``, exactly the last steps of
    a :func:`wsd_schedule`. :math:`\eta_s` is read when the schedule is built: to resume a
    branch from a checkpoint, build it at the branch point (as before the interruption), then
    load the states.

    Args:
        optimizer: the optimizer whose rates it sets.
        decay_steps: length of the cooldown (at least 1).
        eta_min: the floor, below every group's current rate.
        shape: ``"sqrt"`` (1 - sqrt) or ``"linear"``.

    Raises:
        ValueError: ``decay_steps`` below 1, an unknown ``shape``, or ``eta_min`` not below
            the current rate.

    Example:
        >>> optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> trunk = warmup_constant(optimizer, 2)  # trains at 0.05, then 0.1, 0.1, ...
        >>> for _ in range(5):
        ...     optimizer.step(); trunk.step()
        >>> branch = cooldown_schedule(optimizer, 4, shape="linear")
        >>> lrs = []
        >>> for _ in range(5):
        ...     lrs.append(round(optimizer.param_groups[0]["lr"], 4))
        ...     optimizer.step(); branch.step()
        >>> lrs
        [0.075, 0.05, 0.025, 0.0, 0.0]
    """
    cooldown_factor(0, decay_steps, shape=shape)  # bad decay_steps or shape raise here
    starts = [group["lr"] for group in optimizer.param_groups]
    bases = [group.get("initial_lr", start) for group, start in zip(optimizer.param_groups, starts)]
    for start in starts:
        if not 0 <= eta_min < start:
            raise ValueError(f"need 0 <= eta_min < the current rate {start}, got {eta_min}")

    def for_group(start: float, base: float) -> Callable[[int], float]:
        # LambdaLR multiplies the group's initial rate (base), so divide it out
        return lambda t: (
            (eta_min + (start - eta_min) * cooldown_factor(t, decay_steps, shape=shape)) / base
        )

    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, [for_group(s, b) for s, b in zip(starts, bases)]
    )
