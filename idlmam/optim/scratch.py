"""The chapter's optimizers written from scratch (SGD with momentum, Adam, AdamW), NAdamW and Lion."""

from __future__ import annotations

import torch

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
    _nesterov = False

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
                if self._nesterov:  # NAdamW: the momentum one step further, with this g
                    m = beta1 * m + (1 - beta1) * g
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


class NAdamW(AdamW):
    r"""NAdamW as the AlgoPerf benchmark's baseline runs it: AdamW with a Nesterov look-ahead.

    With :math:`m^t, v^t` and the decoupled decay as in :class:`AdamW`, the step uses the
    momentum as it would be one step later if the next gradient were the same as this one:

    .. math::
        \bar{m}^t &= \beta_1 \cdot m^t + (1 - \beta_1) \cdot g^t \\
        \Theta_{t+1} &= \Theta_t (1 - \eta \lambda) - \eta \cdot
            \frac{\bar{m}^t / (1 - \beta_1^t)}{\sqrt{v^t / (1 - \beta_2^t)} + \epsilon}

    with a constant :math:`\beta_1` on every step (Dahl et al. 2023, arXiv:2306.07179, the
    ``nadamw`` reference submission). ``torch.optim.NAdam`` is a different algorithm: it keeps
    Dozat's momentum schedule :math:`\mu_t = \beta_1 (1 - \tfrac12 \cdot 0.96^{t \psi})`,
    which is still below 0.6 after a thousand steps (:math:`\beta_1 = 0.9`,
    :math:`\psi = 0.004`). With :math:`\beta_1 = 0` the look-ahead vanishes and NAdamW is AdamW.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        betas: :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
        eps: :math:`\epsilon`.
        weight_decay: :math:`\lambda`, decoupled as in :class:`AdamW`.

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = NAdamW([p], lr=0.1, weight_decay=0.0)
        >>> p.grad = torch.tensor([123.0]); opt.step()  # (0.9 * 0.1 + 0.1) / 0.1 = 1.9 lr long
        >>> round(p.item(), 4)
        0.81
    """

    _nesterov = True


class Lion(torch.optim.Optimizer):
    r"""Lion (EvoLved Sign Momentum): every weight moves by the same step, only its sign varies.

    Following Chen et al. 2023 (arXiv:2302.06675, Algorithm 2), with :math:`m^0 = 0`:

    .. math::
        c^t &= \beta_1 \cdot m^{t-1} + (1 - \beta_1) \cdot g^t \\
        \Theta_{t+1} &= \Theta_t - \eta \cdot \left(\operatorname{sign}(c^t)
            + \lambda \Theta_t\right) \\
        m^t &= \beta_2 \cdot m^{t-1} + (1 - \beta_2) \cdot g^t

    The step direction mixes the momentum with the new gradient (:math:`\beta_1`), while the
    momentum itself remembers longer (:math:`\beta_2`). Only one state tensor per weight, and
    the sign throws the gradient's size away: each value moves by exactly :math:`\eta` (plus the
    decoupled weight decay, as in :class:`AdamW`), and a value with :math:`c = 0` does not move
    but for the decay (``torch.sign(0)`` is 0, as in the paper's code). Because a sign step is
    larger than a typical Adam step, use a rate 3-10 times smaller than AdamW's and a
    :math:`\lambda` 3-10 times larger, so that :math:`\eta \lambda` stays about the same.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        betas: :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
        weight_decay: :math:`\lambda`.

    Example:
        >>> p = torch.nn.Parameter(torch.tensor([1.0, 1.0]))
        >>> opt = Lion([p], lr=0.1, weight_decay=0.5)
        >>> p.grad = torch.tensor([123.0, 0.0]); opt.step()  # 1 - 0.1 * (1 + 0.5), 1 - 0.1 * 0.5
        >>> [round(v, 4) for v in p.tolist()]
        [0.85, 0.95]
    """

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        _check_non_negative(lr=lr, weight_decay=weight_decay)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {beta}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        """Take one step; ``closure`` (re-evaluates the loss) is optional, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                m = state["m"]
                c = beta1 * m + (1 - beta1) * g  # the direction of this step
                if wd:
                    p.mul_(1 - lr * wd)  # decoupled weight decay, from the old weights
                p.add_(torch.sign(c), alpha=-lr)
                m.mul_(beta2).add_(g, alpha=1 - beta2)  # the momentum, updated after the step
        return loss
