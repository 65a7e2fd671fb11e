"""Schedule arithmetic, gradient-norm clipping on any optimizer (and optimizers from scratch).

The chapter picks schedule constants from what a reader wants to happen, not by trial:
an exponential decay that ends at ``eta_min`` after ``epochs``, a cosine schedule with a given
number of dips that ends on a dip.
"""
from __future__ import annotations

import torch

__all__ = ["exponential_gamma", "cosine_t_max", "clip_grad_norm_on_step"]


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
    r"""``T_max`` for ``CosineAnnealingLR`` so that ``epochs`` of training end on the last of ``dips``.

    A dip is a minimum of the learning rate; ``dips`` of them are ``2 * dips - 1`` half-periods,
    so :math:`T_{max} = T / (2 \cdot \mathrm{dips} - 1)` (rounded down, at least 1).

    Example:
        >>> cosine_t_max(50, 2)
        16
    """
    if dips < 1:
        raise ValueError(f"dips must be at least 1, got {dips}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return max(1, epochs // (2 * dips - 1))


def clip_grad_norm_on_step(optimizer: torch.optim.Optimizer, max_norm: float) -> torch.optim.Optimizer:
    r"""Rescale the gradients so their joint L2 norm is at most ``max_norm`` before each step.

    .. math::
        g \leftarrow g \cdot \min\left(1, \frac{z}{\lVert g \rVert_2}\right)

    Unlike clamping each value, this keeps the gradient's direction. It is registered as a
    step pre-hook on ``optimizer`` (``torch.nn.utils.clip_grad_norm_`` over all its
    parameters), so any training loop and any schedule keep working unchanged.

    Returns:
        ``optimizer`` itself, so it can wrap a constructor:
        ``clip_grad_norm_on_step(torch.optim.AdamW(model.parameters()), 5.0)``.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def clip(opt, args, kwargs) -> None:  # a pre-hook must return None (or new arguments)
        torch.nn.utils.clip_grad_norm_(params, max_norm)

    optimizer.register_step_pre_hook(clip)
    return optimizer
