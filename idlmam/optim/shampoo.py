r"""Shampoo written from scratch: each weight matrix preconditioned from both sides.

Shampoo (Gupta, Koren and Singer 2018) keeps two small matrices per weight matrix, the sums of
:math:`G G^\top` and :math:`G^\top G`, and steps along :math:`L^{-1/4} G R^{-1/4}`: a full-matrix
AdaGrad on each side of the weight at the memory cost of the two sides. Its step takes its size
from a simpler optimizer (grafting), which also steps the biases.
"""

from __future__ import annotations

import torch

from idlmam.optim.scratch import _check_non_negative
from idlmam.optim.tensorwise import TensorwiseOptimizer, as_matrix

__all__ = ["Shampoo", "GRAFTINGS"]

GRAFTINGS = ("adagrad", "rmsprop", "sgd", "none")
"""The optimizers Shampoo can take the size of its step from (``"none"`` keeps its own)."""


def _inverse_fourth_root(stat: torch.Tensor, floor: float) -> torch.Tensor:
    """``stat^{-1/4}`` of a symmetric positive definite matrix, by its eigendecomposition.

    Eigenvalues below ``floor`` (the least the statistics can have) are rounding errors and
    are raised to it.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(stat)
    return (eigenvectors * eigenvalues.clamp_min(floor).pow(-0.25)) @ eigenvectors.mT


class Shampoo(TensorwiseOptimizer):
    r"""Shampoo: the gradient of each weight matrix preconditioned on its left and on its right.

    Following Gupta, Koren and Singer 2018 (arXiv:1802.09568, Algorithm 1), with the grafting
    and the exponential averages of scalable Shampoo (Anil et al. 2020, arXiv:2002.09018). For a
    weight matrix with gradient :math:`G_t` (:math:`m \times n`), momentum :math:`\mu`, weight
    decay :math:`\lambda` and learning rate :math:`\eta`:

    .. math::
        L_t &= \beta_2 L_{t-1} + w \, G_t G_t^\top, \qquad
        R_t = \beta_2 R_{t-1} + w \, G_t^\top G_t, \qquad
        L_0 = \epsilon I_m, \; R_0 = \epsilon I_n \\
        D_t &= \hat{L}^{-1/4} \, G_t \, \hat{R}^{-1/4}
            \cdot \frac{\lVert A_t \rVert_F}{\lVert \hat{L}^{-1/4} G_t \hat{R}^{-1/4} \rVert_F} \\
        v_t &= \mu \, v_{t-1} + D_t \qquad (v_0 = 0) \\
        \Theta_{t+1} &= \Theta_t \, (1 - \eta \lambda) - \eta \cdot
            \begin{cases} \mu \, v_t + D_t & \text{Nesterov} \\ v_t & \text{otherwise}
            \end{cases}

    where :math:`w = 1` when :math:`\beta_2 = 1` (the paper's sums) and :math:`1 - \beta_2`
    otherwise, and :math:`\hat{L}^{-1/4}, \hat{R}^{-1/4}` are the inverse fourth roots of
    :math:`L, R` as they were at the last step that was a multiple of ``update_interval``
    (eigendecompositions, the costly part; the identity before the first). With
    :math:`\beta_2 < 1` the :math:`\epsilon I` the statistics start from fades like
    :math:`\beta_2^t`, as in the reference code, so that a direction the gradients never take
    ends with a root near :math:`(\epsilon \beta_2^t)^{-1/4}`: for long runs keep
    :math:`\beta_2` close to 1, or 1.

    :math:`A_t` is the direction of the grafting optimizer: Shampoo keeps its own direction but
    takes the size of the grafting optimizer's, one weight tensor at a time (Agarwal et al. 2020,
    arXiv:2002.11803), so that a learning rate tuned for that optimizer carries over:

    * ``"adagrad"``: :math:`A_t = G_t / (\sqrt{\textstyle\sum_{s \le t} G_s^2} + \epsilon_g)`;
    * ``"rmsprop"``: the sum replaced by the average :math:`S_t = \beta_2 S_{t-1} +
      (1 - \beta_2) G_t^2` (needs :math:`\beta_2 < 1`);
    * ``"sgd"``: :math:`A_t = G_t`;
    * ``"none"``: no rescaling, :math:`D_t = \hat{L}^{-1/4} G_t \hat{R}^{-1/4}`.

    A tensor that is not preconditioned steps along :math:`D_t = A_t` (plain SGD with momentum
    for ``"none"``): the biases and other tensors of fewer than two dimensions, and those with a
    dimension larger than ``max_preconditioner_dim`` (whose statistics would be too large).
    Before ``start_preconditioning_step``, every tensor takes the grafting optimizer's own step,
    with momentum :math:`\mu` on :math:`A_t`, while :math:`L, R, v` already gather. A tensor of
    more than two dimensions (a convolution's filters) is preconditioned as the matrix
    :math:`(\text{out}, \text{in} \cdot \text{kernel})`. The statistics are kept in float32 at
    least.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        momentum: :math:`\mu`, in :math:`[0, 1)`; 0 is no momentum.
        beta2: :math:`\beta_2`, in :math:`(0, 1]`; 1 sums the statistics, as the paper does.
        eps: :math:`\epsilon`, where the statistics start (so that their roots exist).
        update_interval: :math:`k`, the roots are recomputed every :math:`k` steps.
        grafting: the optimizer that sizes each step, one of :data:`GRAFTINGS`.
        graft_eps: :math:`\epsilon_g`, in the grafting optimizer's denominator.
        nesterov: use Nesterov momentum (needs ``momentum > 0``).
        weight_decay: :math:`\lambda`, decoupled from the gradient, as in AdamW.
        start_preconditioning_step: the first step that takes Shampoo's direction.
        max_preconditioner_dim: tensors with a larger dimension take the grafting step only.

    Example:
        >>> p = torch.nn.Parameter(torch.zeros(2, 2))
        >>> opt = Shampoo([p], lr=0.1, momentum=0.0, grafting="none")
        >>> p.grad = torch.tensor([[3.0, 0.0], [0.0, 4.0]]); opt.step()
        >>> p.data  # L = R = diag(9, 16) + eps I: the step whitens G to the identity
        tensor([[-0.1000,  0.0000],
                [ 0.0000, -0.1000]])
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.9,
        *,
        beta2: float = 1.0,
        eps: float = 1e-6,
        update_interval: int = 1,
        grafting: str = "adagrad",
        graft_eps: float = 1e-10,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        start_preconditioning_step: int = 1,
        max_preconditioner_dim: int = 8192,
    ) -> None:
        _check_non_negative(lr=lr, graft_eps=graft_eps, weight_decay=weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not 0.0 < beta2 <= 1.0:
            raise ValueError(
                f"beta2 must be in (0, 1] (1 sums the statistics, as the paper does), got {beta2}"
            )
        if not eps > 0:
            raise ValueError(
                f"eps must be positive (the statistics start at eps * I so that their roots "
                f"exist; the paper's default is 1e-6), got {eps}"
            )
        for name, value in dict(
            update_interval=update_interval,
            start_preconditioning_step=start_preconditioning_step,
            max_preconditioner_dim=max_preconditioner_dim,
        ).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if grafting not in GRAFTINGS:
            raise ValueError(
                f"grafting must be one of {', '.join(map(repr, GRAFTINGS))}, got {grafting!r}"
            )
        if grafting == "rmsprop" and beta2 == 1.0:
            raise ValueError(
                "grafting='rmsprop' averages the squared gradients with beta2, so it needs "
                "beta2 < 1 (e.g. 0.999); or pass grafting='adagrad', which sums them"
            )
        if nesterov and momentum <= 0:
            raise ValueError("nesterov=True needs a momentum > 0")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            beta2=beta2,
            eps=eps,
            update_interval=update_interval,
            grafting=grafting,
            graft_eps=graft_eps,
            nesterov=nesterov,
            weight_decay=weight_decay,
            start_preconditioning_step=start_preconditioning_step,
            max_preconditioner_dim=max_preconditioner_dim,
        )
        super().__init__(params, defaults)

    def _step_one(self, p: torch.Tensor, group: dict) -> None:
        lr, mu, beta2, grafting = group["lr"], group["momentum"], group["beta2"], group["grafting"]
        g = p.grad
        state = self.state[p]
        preconditioned = p.ndim >= 2 and max(as_matrix(p).shape) <= group["max_preconditioner_dim"]
        if not state:
            state["step"] = 0
            state["momentum"] = torch.zeros_like(p)
            if grafting in ("adagrad", "rmsprop"):
                state["graft_sum"] = torch.zeros_like(p)  # the sum (or average) of G^2
            if preconditioned:
                dtype = torch.promote_types(p.dtype, torch.float32)
                for side, size in zip("LR", as_matrix(p).shape):
                    state[side] = group["eps"] * torch.eye(size, dtype=dtype, device=p.device)
                    state[f"{side}_root"] = torch.eye(size, dtype=dtype, device=p.device)
                if group["start_preconditioning_step"] > 1:
                    state["graft_momentum"] = torch.zeros_like(p)
        state["step"] += 1
        t = state["step"]

        # The grafting optimizer's direction A_t
        graft = g  # SGD's, and no grafting's
        if grafting in ("adagrad", "rmsprop"):
            squares = state["graft_sum"]
            if grafting == "adagrad":
                squares.addcmul_(g, g)
            else:
                squares.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            graft = g / squares.sqrt().add_(group["graft_eps"])

        # Shampoo's direction D_t, sized like A_t
        if preconditioned:
            L, R = state["L"], state["R"]
            G = as_matrix(g).to(L.dtype)  # (m, n)
            w = 1.0 if beta2 == 1.0 else 1.0 - beta2
            L.mul_(beta2).addmm_(G, G.mT, alpha=w)  # (m, m)
            R.mul_(beta2).addmm_(G.mT, G, alpha=w)  # (n, n)
            if t % group["update_interval"] == 0:
                floor = group["eps"] * beta2**t  # the least eigenvalue L and R can have
                state["L_root"] = _inverse_fourth_root(L, floor)
                state["R_root"] = _inverse_fourth_root(R, floor)
            direction = (state["L_root"] @ G @ state["R_root"]).to(p.dtype).view_as(p)
            if grafting != "none":
                direction.mul_(graft.norm() / (direction.norm() + 1e-16))
        else:
            direction = graft

        # Momentum on D_t (on A_t before start_preconditioning_step), weight decay, the step
        velocity, now = state["momentum"].mul_(mu).add_(direction), direction
        if "graft_momentum" in state:
            graft_velocity = state["graft_momentum"].mul_(mu).add_(graft)
            if t < group["start_preconditioning_step"]:
                velocity, now = graft_velocity, graft
            else:
                del state["graft_momentum"]  # needed no more
        update = velocity * mu + now if group["nesterov"] else velocity
        if group["weight_decay"]:
            p.mul_(1 - lr * group["weight_decay"])
        p.add_(update, alpha=-lr)
