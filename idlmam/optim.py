"""Schedule arithmetic, gradient-norm clipping on any optimizer (and optimizers from scratch).

The chapter picks schedule constants from what a reader wants to happen, not by trial:
an exponential decay that ends at ``eta_min`` after ``epochs``, a cosine schedule with a given
number of dips that ends on a dip.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "exponential_gamma",
    "ETA_MIN_RATIO",
    "eta_min_for",
    "cosine_t_max",
    "cosine_extremes",
    "cosine_schedule",
    "schedule_lrs",
    "clip_grad_norm_on_step",
    "record_grad_norms",
    "SGD",
    "Adam",
    "AdamW",
]


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


# Optimizers from scratch ---------------------------------------------------------------------
# Each one is the chapter's update rule in a few lines, with torch.optim's conventions, so that it
# traces exactly the same weights as its torch.optim namesake. The learning rate is read from
# ``param_groups`` on every step, so any torch.optim.lr_scheduler can drive it.


def _check_non_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")


class SGD(torch.optim.Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    With gradient :math:`g^t`, momentum :math:`\mu`, dampening :math:`d`, weight decay
    :math:`\lambda` and learning rate :math:`\eta`:

    .. math::
        g^t &\leftarrow g^t + \lambda \Theta_t \\
        v^{t} &= \mu \cdot v^{t-1} + (1 - d) \cdot g^t \qquad (v^1 = g^1) \\
        \Theta_{t+1} &= \Theta_t - \eta \cdot
            \begin{cases} g^t + \mu \cdot v^t & \text{Nesterov} \\ v^t & \text{otherwise} \end{cases}

    The chapter writes the velocity with the rate inside, :math:`v^{t} = \mu v^{t-1} + \eta g^t`;
    PyTorch keeps :math:`\eta` outside, which is the same thing while :math:`\eta` is constant and
    behaves better when a schedule changes it. The Nesterov line is the "peek ahead" rearranged so
    that it needs only the gradient at the current weights.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        momentum: :math:`\mu`; 0 is plain SGD.
        dampening: :math:`d`, the share of each new gradient left out of the velocity.
        weight_decay: :math:`\lambda`, an L2 penalty added to the gradient.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = SGD([p], lr=0.1, momentum=0.9)
        >>> p.grad = torch.tensor([1.0]); opt.step(); opt.step()
        >>> round(p.item(), 2)  # 1 - 0.1 * 1 - 0.1 * (0.9 + 1)
        0.71
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        _check_non_negative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov=True needs a momentum > 0 and dampening = 0")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Take one step; ``closure`` (re-evaluates the loss) is optional, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + wd * p if wd else p.grad
                if mu:
                    state = self.state[p]
                    if "velocity" not in state:  # the first velocity is the gradient itself
                        state["velocity"] = g.clone()
                    else:
                        state["velocity"].mul_(mu).add_(g, alpha=1 - group["dampening"])
                    v = state["velocity"]
                    g = g + mu * v if group["nesterov"] else v
                p.add_(g, alpha=-lr)
        return loss


class Adam(torch.optim.Optimizer):
    r"""Adam: momentum as an average of the gradients, each direction scaled by their size.

    .. math::
        g^t &\leftarrow g^t + \lambda \Theta_t \\
        m^t &= \beta_1 \cdot m^{t-1} + (1 - \beta_1) \cdot g^t \\
        v^t &= \beta_2 \cdot v^{t-1} + (1 - \beta_2) \cdot g^t \odot g^t \\
        \hat{m} &= \frac{m^t}{1 - \beta_1^t}, \qquad \hat{v} = \frac{v^t}{1 - \beta_2^t} \\
        \Theta_{t+1} &= \Theta_t - \eta \cdot \frac{\hat{m}}{\sqrt{\hat{v}} + \epsilon}

    with :math:`m^0 = v^0 = 0`. The weight decay :math:`\lambda` is added to the gradient (an L2
    penalty), so it is rescaled with everything else; :class:`AdamW` decouples it.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        betas: :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
        eps: :math:`\epsilon`, added after the square root so no division is by zero.
        weight_decay: :math:`\lambda`.

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = Adam([p], lr=0.1)
        >>> p.grad = torch.tensor([123.0]); opt.step()  # the first step is lr long, whatever g is
        >>> round(p.item(), 4)
        0.9
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {beta}")
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        )

    @torch.no_grad()
    def step(self, closure=None):
        """Take one step; ``closure`` (re-evaluates the loss) is optional, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = (
                group["lr"],
                group["betas"],
                group["eps"],
                group["weight_decay"],
            )
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if wd and self._decoupled:
                    p.mul_(1 - lr * wd)  # AdamW: shrink the weights directly
                elif wd:
                    g = g + wd * p  # Adam: an L2 penalty inside the gradient
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["t"] += 1
                t, m, v = state["t"], state["m"], state["v"]
                m.mul_(beta1).add_(g, alpha=1 - beta1)  # mean of the gradients
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # mean of their squares
                m_hat = m / (1 - beta1**t)  # undo the pull towards m^0 = 0
                v_hat = v / (1 - beta2**t)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay: the weights shrink directly, outside the rescaling.

    .. math::
        \Theta_t &\leftarrow \Theta_t \cdot (1 - \eta \lambda) \\
        \Theta_{t+1} &= \Theta_t - \eta \cdot \frac{\hat{m}}{\sqrt{\hat{v}} + \epsilon}

    with :math:`\hat{m}, \hat{v}` as in :class:`Adam`, computed from the gradient alone. Adding
    :math:`\lambda \Theta` to the gradient (as :class:`Adam` does) lets
    :math:`\sqrt{\hat{v}}` divide the decay away for weights with large gradients; AdamW keeps
    the decay the same for every weight. The default :math:`\lambda = 0.01` is torch's.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        betas: :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
        eps: :math:`\epsilon`.
        weight_decay: :math:`\lambda`.

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = AdamW([p], lr=0.1, weight_decay=0.5)
        >>> p.grad = torch.tensor([0.0]); opt.step()  # no gradient: only the decay acts
        >>> round(p.item(), 4)
        0.95
    """

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
