"""Shampoo from scratch against pytorch-optimizer's ScalableShampoo and a hand computation."""

import pytest
import scipy.linalg
import torch
from pytorch_optimizer import ScalableShampoo
from pytorch_optimizer.optimizer.shampoo import LayerWiseGrafting  # where ScalableShampoo reads it
from twins import filters_and_matrix, resumed_halfway, small_net, train_pair

from idlmam.optim import Shampoo

# The oracle: pytorch-optimizer's ScalableShampoo ----------------------------------------------
# A port of Google's scalable Shampoo (grafting, beta2 averages, a warm-up on the grafting
# optimizer). Its settings that differ from ours by default are fixed so that it runs Shampoo
# as written in our docstring:
# * shape_interpretation=False: the oracle otherwise merges small dimensions, so that a 4x5
#   matrix becomes one vector of 20 and is not preconditioned at all;
# * block_size large: no splitting of a matrix into blocks, each with its own statistics;
# * use_svd=True: exact inverse roots (of a symmetric positive definite matrix, the SVD is the
#   eigendecomposition). Its default, a coupled Schur-Newton iteration, stops at a residual of
#   1e-3 and adds a ridge relative to the largest eigenvalue;
# * decoupled_weight_decay=True (ours is AdamW's); moving_average_for_momentum=False (our
#   momentum is torch.optim.SGD's, v = mu * v + D); statistics_compute_steps=1.
# beta2 = 1 (the paper's sums) is refused by the oracle's argument check, although the oracle
# implements it (its preconditioner weighs a new gradient by 1, not 1 - beta2, when beta2 == 1,
# as Google's code does): it is set on the parameter group after construction, before the first
# step reads it.
#
# Float64: in float32 the oracle's SVD fails after a few steps (eps = 1e-6 on the diagonal of
# statistics near 1 is below float32's resolution, so singular values come out 0 and their
# -1/4 power infinite); ours raises eigenvalues below eps to eps.

GRAFT = {
    "adagrad": LayerWiseGrafting.ADAGRAD,
    "rmsprop": LayerWiseGrafting.RMSPROP,
    "sgd": LayerWiseGrafting.SGD,
    "none": LayerWiseGrafting.NONE,
}


def _oracle(params, *, lr=1e-3, momentum=0.9, beta2=1.0, eps=1e-6, update_interval=1,
            grafting="adagrad", graft_eps=1e-10, nesterov=False, weight_decay=0.0,
            start_preconditioning_step=1, max_preconditioner_dim=8192):  # fmt: skip
    opt = ScalableShampoo(
        params,
        lr=lr,
        betas=(momentum, min(beta2, 0.999)),
        moving_average_for_momentum=False,
        weight_decay=weight_decay,
        decoupled_weight_decay=True,
        decoupled_learning_rate=True,
        start_preconditioning_step=start_preconditioning_step,
        preconditioning_compute_steps=update_interval,
        statistics_compute_steps=1,
        block_size=1_000_000,
        no_preconditioning_for_layers_with_dim_gt=max_preconditioner_dim,
        shape_interpretation=False,
        graft_type=GRAFT[grafting],
        nesterov=nesterov,
        diagonal_eps=graft_eps,
        matrix_eps=eps,
        use_svd=True,
    )
    for group in opt.param_groups:
        group["betas"] = (momentum, beta2)
    return opt


SAME_AS_ORACLE = {
    "paper_sums_adagrad_graft": dict(lr=0.05),
    "interval_10_sgd_graft": dict(lr=0.1, momentum=0.5, grafting="sgd", update_interval=10),
    "graft_warmup_then_shampoo": dict(lr=0.05, update_interval=3, start_preconditioning_step=7),
    "ema_rmsprop_nesterov_decay": dict(
        lr=0.005, beta2=0.99, grafting="rmsprop", nesterov=True, weight_decay=0.1, eps=1e-4
    ),
    "ema_no_grafting": dict(lr=0.02, beta2=0.9, grafting="none", momentum=0.0),
    "large_matrix_left_to_graft": dict(lr=0.05, max_preconditioner_dim=5, graft_eps=1e-3),
}


@pytest.mark.parametrize("case", sorted(SAME_AS_ORACLE))
def test_shampoo_matches_pytorch_optimizer_over_100_steps(case):
    kwargs = SAME_AS_ORACLE[case]
    net, twin = train_pair(lambda p: Shampoo(p, **kwargs), lambda p: _oracle(p, **kwargs))
    start = small_net()
    for mine, theirs, before in zip(net.parameters(), twin.parameters(), start.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-5, rtol=0)
        assert (mine - before).abs().max() > 1e-2  # every tensor really travelled


# Hand computations ----------------------------------------------------------------------------


def test_one_step_is_the_inverse_fourth_roots_around_the_gradient():
    torch.manual_seed(0)
    G = torch.randn(4, 3, dtype=torch.float64)
    eps, lr = 1e-3, 0.1
    # by hand, with scipy's fractional power (Schur decomposition, not eigh)
    L = eps * torch.eye(4, dtype=torch.float64) + G @ G.T
    R = eps * torch.eye(3, dtype=torch.float64) + G.T @ G
    L4 = torch.from_numpy(scipy.linalg.fractional_matrix_power(L.numpy(), -0.25).real)
    R4 = torch.from_numpy(scipy.linalg.fractional_matrix_power(R.numpy(), -0.25).real)
    direction = L4 @ G @ R4

    p = torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float64))
    opt = Shampoo([p], lr=lr, momentum=0.0, eps=eps, grafting="none")
    p.grad = G.clone()
    opt.step()
    assert torch.allclose(p, -lr * direction, atol=1e-12, rtol=0)

    # AdaGrad grafting keeps that direction and takes AdaGrad's size: G / |G| is +-1 everywhere
    q = torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float64))
    opt = Shampoo([q], lr=lr, momentum=0.0, eps=eps)
    q.grad = G.clone()
    opt.step()
    assert torch.allclose(q, -lr * direction / direction.norm() * 12**0.5, atol=1e-9, rtol=0)


def test_a_bias_takes_the_grafting_step_with_momentum():
    b = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = Shampoo([b], lr=0.1, momentum=0.5, grafting="adagrad", graft_eps=0.0)
    b.grad = torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64)
    opt.step()  # AdaGrad's first step: the sign
    assert b.tolist() == pytest.approx([-0.1, 0.1, -0.1])
    b.grad = torch.tensor([2.0, 4.0, 0.0], dtype=torch.float64)
    opt.step()  # A = G / sqrt(sum of G^2), v = 0.5 * v + A
    a = [2 / 8**0.5, 4 / 25**0.5, 0.0]
    v = [0.5 * 1 + a[0], 0.5 * -1 + a[1], 0.5 * 1 + a[2]]
    assert b.tolist() == pytest.approx([-0.1 - 0.1 * v[0], 0.1 - 0.1 * v[1], -0.1 - 0.1 * v[2]])


def test_filters_are_preconditioned_as_one_matrix_per_output():
    filters, matrix, opts = filters_and_matrix(lambda p: Shampoo(p, lr=0.1), steps=3)
    assert torch.allclose(filters.reshape(3, 8), matrix, atol=1e-12, rtol=0)
    assert opts[0].state[filters]["L"].shape == (3, 3)
    assert opts[0].state[filters]["R"].shape == (8, 8)


def test_shampoo_resumes_from_its_state_dict():
    kwargs = dict(lr=0.01, update_interval=4, start_preconditioning_step=3, nesterov=True)
    model, twin = resumed_halfway(lambda params: Shampoo(params, **kwargs))
    for mine, theirs in zip(model.parameters(), twin.parameters()):
        assert torch.equal(mine, theirs)


# Arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1e-3), "lr must be non-negative"),
        (dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
        (dict(beta2=1.5), r"beta2 must be in \(0, 1\] \(1 sums"),
        (dict(beta2=0.0), r"beta2 must be in \(0, 1\] \(1 sums"),
        (dict(eps=0.0), "eps must be positive"),
        (dict(update_interval=0), "update_interval must be a positive integer"),
        (dict(update_interval=2.5), "update_interval must be a positive integer"),
        (dict(start_preconditioning_step=0), "start_preconditioning_step must be a positive"),
        (dict(max_preconditioner_dim=-1), "max_preconditioner_dim must be a positive integer"),
        (dict(grafting="adam"), "grafting must be one of 'adagrad', 'rmsprop', 'sgd', 'none'"),
        (dict(grafting="rmsprop"), "needs beta2 < 1 .*or pass grafting='adagrad'"),
        (dict(graft_eps=-1.0), "graft_eps must be non-negative"),
        (dict(weight_decay=-0.1), "weight_decay must be non-negative"),
        (dict(momentum=0.0, nesterov=True), "nesterov=True needs a momentum > 0"),
    ],
)
def test_shampoo_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Shampoo([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)
