"""Gradient-norm clipping on any optimizer, and a record of the norms it saw."""

from __future__ import annotations

import torch


def clip_grad_norm_on_step(
    optimizer: torch.optim.Optimizer, max_norm: float
) -> torch.optim.Optimizer:
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


def record_grad_norms(
    optimizer: torch.optim.Optimizer, log: list[list[float]]
) -> torch.optim.Optimizer:
    r"""Write down the joint L2 norm of the gradients before each step of ``optimizer``.

    .. math::
        \lVert g \rVert_2 = \sqrt{\textstyle\sum_p \lVert g_p \rVert_2^2}

    over every parameter of ``optimizer`` that has a gradient: the number
    ``torch.nn.utils.clip_grad_norm_`` compares with its threshold. The norms go into a new list
    appended to ``log`` at this optimizer's first step, so a ``log`` shared by the optimizers of
    several seeds (:func:`idlmam.experiments.run` builds one per seed) holds one list per seed
    that trained, in order; an optimizer that never steps adds nothing. It is a step pre-hook,
    like :func:`clip_grad_norm_on_step`, and hooks run in the order they were added: record first
    and clip second to log the norms *before* clipping. Each record reads the norm back from the
    device (one synchronisation per step).

    Args:
        optimizer: the optimizer to watch.
        log: the list the series of this optimizer is appended to.

    Returns:
        ``optimizer`` itself, so it can wrap a constructor:
        ``clip_grad_norm_on_step(record_grad_norms(torch.optim.SGD(p, lr=0.1), log), 1.0)``.

    Example:
        >>> p, log = torch.nn.Parameter(torch.zeros(2)), []
        >>> opt = record_grad_norms(torch.optim.SGD([p], lr=0.1), log)
        >>> p.grad = torch.tensor([3.0, 4.0]); opt.step()
        >>> log
        [[5.0]]
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    series: list[float] | None = None

    def record(opt, args, kwargs) -> None:
        nonlocal series
        if series is None:  # the first step: this optimizer's own list
            series = []
            log.append(series)
        norms = [torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]
        series.append(torch.linalg.vector_norm(torch.stack(norms)).item() if norms else 0.0)

    optimizer.register_step_pre_hook(record)
    return optimizer
