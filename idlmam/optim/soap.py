r"""SOAP written from scratch: Adam run in the eigenbasis of Shampoo's preconditioners.

SOAP (Vyas et al. 2024) keeps Shampoo's two statistics per weight matrix, :math:`L` from
:math:`G G^\top` and :math:`R` from :math:`G^\top G`, but instead of their inverse roots it uses
only their eigenvectors: it rotates each gradient into that basis, takes an Adam step there and
rotates the step back. The eigenvectors change slowly, so they are refreshed only every few steps.
"""

from __future__ import annotations

import math

import torch

from idlmam.optim.scratch import _check_non_negative
from idlmam.optim.tensorwise import TensorwiseOptimizer, as_matrix

__all__ = ["SOAP"]


def _eigenbasis(stat: torch.Tensor) -> torch.Tensor:
    """The eigenvectors of a symmetric matrix as columns, the largest eigenvalue's first."""
    _, eigenvectors = torch.linalg.eigh(stat.to(torch.promote_types(stat.dtype, torch.float32)))
    return eigenvectors.flip(1).to(stat.dtype)


def _refreshed_eigenbasis(stat: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of power iteration from the basis ``q``, then QR: ``(new basis, column order)``.

    The columns of ``stat @ q`` are sorted by the eigenvalues they estimate, largest first (the
    order that the second moments, kept in the old basis, must follow). The QR decomposition
    runs in float32, as in the reference code, whatever the type of ``stat``.
    """
    product = stat @ q  # (m, m)
    order = torch.argsort((q * product).sum(dim=0), descending=True)  # q_i^T stat q_i
    product = product.index_select(1, order)
    q_new, _ = torch.linalg.qr(product.to(torch.float32))
    return q_new.to(stat.dtype), order


def _rotate(x: torch.Tensor, q_left: torch.Tensor | None, q_right: torch.Tensor | None):
    """``Q_L^T X Q_R``: from the weights' coordinates into the eigenbasis (None: identity)."""
    if q_left is not None:
        x = q_left.mT @ x
    if q_right is not None:
        x = x @ q_right
    return x


def _rotate_back(x: torch.Tensor, q_left: torch.Tensor | None, q_right: torch.Tensor | None):
    """``Q_L X Q_R^T``: from the eigenbasis back into the weights' coordinates."""
    if q_left is not None:
        x = q_left @ x
    if q_right is not None:
        x = x @ q_right.mT
    return x


class SOAP(TensorwiseOptimizer):
    r"""SOAP (ShampoO with Adam in the Preconditioner's eigenbasis): Adam in a rotated basis.

    Following Vyas et al. 2024 (arXiv:2409.11321, and the authors' code).
    For a weight matrix with gradient :math:`G_t` (:math:`m \times n`):

    .. math::
        L_t &= \beta_s L_{t-1} + (1 - \beta_s) \, G_t G_t^\top, \qquad
        R_t = \beta_s R_{t-1} + (1 - \beta_s) \, G_t^\top G_t \qquad (L_0 = R_0 = 0) \\
        G'_t &= Q_L^\top G_t Q_R \\
        M_t &= \beta_1 M_{t-1} + (1 - \beta_1) \, G_t, \qquad
        V_t = \beta_2 V_{t-1} + (1 - \beta_2) \, G'_t \odot G'_t \\
        \Theta_{t+1} &= \left(\Theta_t - \eta \, \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}
            \, Q_L \frac{Q_L^\top M_t Q_R}{\sqrt{V_t} + \epsilon} Q_R^\top\right)
            (1 - \eta \lambda)

    The first moment :math:`M` is kept in the weights' coordinates and rotated at each step;
    the second :math:`V` lives in the eigenbasis, where Adam's per-coordinate scaling is closest
    to Shampoo's full-matrix one. :math:`Q_L, Q_R` hold the eigenvectors of :math:`L, R`: first
    from an eigendecomposition of the statistics of the first gradient, then, after every
    ``precondition_frequency`` steps of :math:`t`, from one step of power iteration and a QR
    decomposition (:math:`Q \leftarrow \operatorname{qr}(L Q)`, the columns sorted by the
    eigenvalues they estimate, and :math:`V` reordered with them), as in the authors' code; the
    QR runs in float32, as there, whatever the weights' type. :math:`L, R` are updated after the
    step, with the gradient it used.

    As in the authors' code, the first call only gathers :math:`L, R` and computes the bases:
    the weights move from the second call on, which is :math:`t = 1` above (and weight decay
    starts then too). A side larger than ``max_precondition_dim`` is not rotated
    (:math:`Q = I` there); the biases and other 1-D tensors are not rotated at all, which is
    plain Adam (with the same first call). A tensor of more than two dimensions is rotated as
    the matrix :math:`(\text{out}, \text{in} \cdot \text{kernel})`. :math:`\beta_s`
    (``shampoo_beta``) is :math:`\beta_2` unless given.

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate :math:`\eta`.
        betas: :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
        shampoo_beta: :math:`\beta_s` in :math:`[0, 1)`, for :math:`L, R`; None is :math:`\beta_2`.
        eps: :math:`\epsilon`, added after the square root.
        weight_decay: :math:`\lambda`, decoupled from the gradient, as in AdamW.
        precondition_frequency: the bases are refreshed every this many steps.
        max_precondition_dim: a side larger than this keeps the identity as its basis.

    Example:
        >>> p = torch.nn.Parameter(torch.zeros(2, 2))
        >>> opt = SOAP([p], lr=0.1, weight_decay=0.0)
        >>> p.grad = torch.tensor([[3.0, 0.0], [0.0, 4.0]]); opt.step()  # gathers L, R only
        >>> p.abs().sum().item()
        0.0
        >>> opt.step()  # Adam's first step, in the basis where G is diagonal: lr along each
        >>> p.data
        tensor([[-0.1000,  0.0000],
                [ 0.0000, -0.1000]])
    """

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        *,
        shampoo_beta: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
    ) -> None:
        _check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1), got {beta}")
        if shampoo_beta is not None and not 0.0 <= shampoo_beta < 1.0:
            raise ValueError(
                f"shampoo_beta must be in [0, 1), or None to use betas[1], got {shampoo_beta}"
            )
        for name, value in dict(
            precondition_frequency=precondition_frequency,
            max_precondition_dim=max_precondition_dim,
        ).items():
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            shampoo_beta=shampoo_beta,
            eps=eps,
            weight_decay=weight_decay,
            precondition_frequency=precondition_frequency,
            max_precondition_dim=max_precondition_dim,
        )
        super().__init__(params, defaults)

    def _step_one(self, p: torch.Tensor, group: dict) -> None:
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        G = as_matrix(p.grad) if p.ndim >= 2 else p.grad  # (m, n), or the vector as it is
        state = self.state[p]
        if not state:  # the first call: statistics and bases, no step
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(G)  # M, in the weights' coordinates
            state["exp_avg_sq"] = torch.zeros_like(G)  # V, in the eigenbasis
            sizes = G.shape if p.ndim >= 2 else (None, None)
            for side, size in zip("LR", sizes):
                rotated = size is not None and size <= group["max_precondition_dim"]
                state[side] = G.new_zeros(size, size) if rotated else None
            self._update_statistics(G, state, group)
            for side in "LR":
                stat = state[side]
                state[f"Q_{side}"] = _eigenbasis(stat) if stat is not None else None
            return
        state["step"] += 1
        t = state["step"]
        q_left, q_right = state["Q_L"], state["Q_R"]

        # Adam in the eigenbasis, rotated back
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(G, 1 - beta1)
        exp_avg_sq.lerp_(_rotate(G, q_left, q_right).square(), 1 - beta2)
        step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        denominator = exp_avg_sq.sqrt().add_(group["eps"])
        direction = _rotate_back(_rotate(exp_avg, q_left, q_right) / denominator, q_left, q_right)
        p.add_(direction.view_as(p), alpha=-step_size)
        if wd:
            p.mul_(1 - lr * wd)  # decoupled weight decay, after the step

        # The statistics gather this gradient; every precondition_frequency steps, new bases
        self._update_statistics(G, state, group)
        if t % group["precondition_frequency"] == 0:
            for dim, side in enumerate("LR"):
                if state[side] is not None:
                    q, order = _refreshed_eigenbasis(state[side], state[f"Q_{side}"])
                    state[f"Q_{side}"] = q
                    state["exp_avg_sq"] = state["exp_avg_sq"].index_select(dim, order)

    @staticmethod
    def _update_statistics(G: torch.Tensor, state: dict, group: dict) -> None:
        beta = group["shampoo_beta"] if group["shampoo_beta"] is not None else group["betas"][1]
        if state["L"] is not None:
            state["L"].lerp_(G @ G.mT, 1 - beta)  # (m, m)
        if state["R"] is not None:
            state["R"].lerp_(G.mT @ G, 1 - beta)  # (n, n)
