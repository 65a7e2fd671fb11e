"""SOAP from scratch against pytorch-optimizer's SOAP, torch.optim.Adam and its rotations."""

import pytest
import torch
from pytorch_optimizer import SOAP as OracleSOAP
from twins import filters_and_matrix, resumed_halfway, small_net, train_pair

from idlmam.optim import SOAP

# The oracle: pytorch-optimizer's SOAP -----------------------------------------------------------
# A port of the authors' code (github.com/nikhilvyas/SOAP) with its defaults, ours too. Its
# options that ours does not have are left at the values our SOAP implements: merge_dims=False,
# precondition_1d=False (a bias is plain Adam), correct_bias=True, normalize_gradient=False.
#
# Float64: in float32 both drift apart within a few steps, along one direction only. Rows of a
# cross-entropy gradient sum to zero over the classes, so L of the output layer has an exact
# null vector; the second moment there is rounding noise (about 1e-16 in float32), whose root is
# as small as eps = 1e-8, so Adam divides rounding noise by rounding noise there and each
# implementation's noise (the same products summed in another order) takes its own O(lr) step.
# (That direction shifts every logit alike, so the loss does not see it.) In float64 the noise is
# far below eps. The QR decompositions run in float32 in both, as in the authors' code.


SAME_AS_ORACLE = {
    "defaults": dict(lr=0.01),
    "betas_shampoo_beta_every_3_steps": dict(
        lr=0.01, betas=(0.9, 0.99), shampoo_beta=0.9, precondition_frequency=3, weight_decay=0.1
    ),
    "every_step_no_decay": dict(lr=0.02, eps=1e-6, weight_decay=0.0, precondition_frequency=1),
    "one_side_when_the_other_is_large": dict(lr=0.01, max_precondition_dim=4),
}


@pytest.mark.parametrize("case", sorted(SAME_AS_ORACLE))
def test_soap_matches_pytorch_optimizer_over_100_steps(case):
    kwargs = SAME_AS_ORACLE[case]
    oracle_kwargs = dict(
        merge_dims=False, precondition_1d=False, correct_bias=True, normalize_gradient=False
    )
    net, twin = train_pair(
        lambda p: SOAP(p, **kwargs), lambda p: OracleSOAP(p, **kwargs, **oracle_kwargs)
    )
    start = small_net()
    for mine, theirs, before in zip(net.parameters(), twin.parameters(), start.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-5, rtol=0)
        assert (mine - before).abs().max() > 1e-2  # every tensor really travelled


# Closed forms: Adam without the rotation, the first call, rotations -----------------------------


def test_without_rotation_soap_is_adam_from_the_second_gradient_on():
    # max_precondition_dim=1: no side is rotated. eps=0, since torch adds eps to sqrt(v_hat)
    # where SOAP (the authors' code) adds it to sqrt(v) and scales the rate instead.
    torch.manual_seed(0)
    weights = [torch.randn(3, 4, dtype=torch.float64), torch.randn(3, dtype=torch.float64)]
    ours = [torch.nn.Parameter(w.clone()) for w in weights]
    adams = [torch.nn.Parameter(w.clone()) for w in weights]
    soap = SOAP(ours, lr=0.01, betas=(0.9, 0.99), eps=0.0, weight_decay=0.0, max_precondition_dim=1)
    adam = torch.optim.Adam(adams, lr=0.01, betas=(0.9, 0.99), eps=0.0)
    for t in range(30):
        grads = [torch.randn_like(w) for w in weights]
        for p, g in zip(ours, grads):
            p.grad = g
        soap.step()
        if t == 0:  # the first call only gathers the statistics: nothing moves
            assert all(torch.equal(p, w) for p, w in zip(ours, weights))
            continue
        for p, g in zip(adams, grads):
            p.grad = g
        adam.step()
    for mine, theirs in zip(ours, adams):
        assert torch.allclose(mine, theirs, atol=1e-12, rtol=0)


def test_the_first_call_gathers_the_statistics_and_the_bases_only():
    G = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]], dtype=torch.float64)
    p = torch.nn.Parameter(torch.ones(2, 3, dtype=torch.float64))
    opt = SOAP([p], betas=(0.9, 0.8), weight_decay=0.5)
    p.grad = G
    opt.step()
    assert torch.equal(p, torch.ones(2, 3, dtype=torch.float64))  # not even the decay
    state = opt.state[p]
    assert torch.allclose(state["L"], 0.2 * G @ G.T) and torch.allclose(state["R"], 0.2 * G.T @ G)
    assert state["step"] == 0 and not state["exp_avg"].any() and not state["exp_avg_sq"].any()
    for side in "LR":  # eigenvectors, the largest eigenvalue's first
        Q, stat = state[f"Q_{side}"], state[side]
        assert torch.allclose(Q.T @ Q, torch.eye(len(Q), dtype=torch.float64))
        eigenvalues = (Q * (stat @ Q)).sum(0)
        assert torch.allclose(stat @ Q, Q * eigenvalues, atol=1e-12)
        assert (eigenvalues.diff() <= 1e-12).all()


def test_soap_turns_with_the_gradients_where_adam_does_not():
    # Rotate every gradient G into U G V^T (U, V orthogonal): SOAP's weights turn the same way,
    # since its bases turn with L = sum G G^T and R = sum G^T G; Adam's, per coordinate, do not.
    torch.manual_seed(0)
    U = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))[0]
    V = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    grads = [torch.randn(4, 3, dtype=torch.float64) for _ in range(8)]

    def train(make_optimizer, turn):
        p = torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.float64))
        opt = make_optimizer([p])
        for G in grads:
            p.grad = U @ G @ V.T if turn else G.clone()
            opt.step()
        return p.detach()

    def soap(params):
        return SOAP(params, lr=0.1, weight_decay=0.0, precondition_frequency=3)

    plain, turned = train(soap, False), train(soap, True)
    assert plain.abs().max() > 0.1
    assert torch.allclose(turned, U @ plain @ V.T, atol=1e-6, rtol=0)

    def adam(params):
        return torch.optim.Adam(params, lr=0.1)

    plain, turned = train(adam, False), train(adam, True)
    assert not torch.allclose(turned, U @ plain @ V.T, atol=1e-2, rtol=0)


def test_filters_are_rotated_as_one_matrix_per_output():
    filters, matrix, opts = filters_and_matrix(
        lambda p: SOAP(p, lr=0.1, precondition_frequency=2), steps=5
    )
    assert torch.allclose(filters.reshape(3, 8), matrix, atol=1e-12, rtol=0)
    assert opts[0].state[filters]["Q_L"].shape == (3, 3)
    assert opts[0].state[filters]["Q_R"].shape == (8, 8)


def test_soap_resumes_from_its_state_dict():
    kwargs = dict(lr=0.01, precondition_frequency=4, max_precondition_dim=4)  # R of (4, 5): none

    def after_load(second, twin):
        assert second.state[twin[0].weight]["Q_R"] is None

    model, twin = resumed_halfway(lambda params: SOAP(params, **kwargs), after_load)
    for mine, theirs in zip(model.parameters(), twin.parameters()):
        assert torch.equal(mine, theirs)


# Arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1e-3), "lr must be non-negative"),
        (dict(betas=(1.0, 0.95)), r"betas\[0\] must be in \[0, 1\)"),
        (dict(betas=(0.95, -0.1)), r"betas\[1\] must be in \[0, 1\)"),
        (dict(shampoo_beta=1.0), r"shampoo_beta must be in \[0, 1\), or None to use betas\[1\]"),
        (dict(eps=-1e-8), "eps must be non-negative"),
        (dict(weight_decay=-0.1), "weight_decay must be non-negative"),
        (dict(precondition_frequency=0), "precondition_frequency must be a positive integer"),
        (dict(precondition_frequency=2.5), "precondition_frequency must be a positive integer"),
        (dict(max_precondition_dim=0), "max_precondition_dim must be a positive integer"),
    ],
)
def test_soap_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SOAP([torch.nn.Parameter(torch.zeros(2, 2))], **kwargs)
