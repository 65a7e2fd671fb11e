"""Gradient-norm clipping on any optimizer, and the norms it records."""

import pytest
import torch


def test_clip_grad_norm_on_step_keeps_the_direction():
    from idlmam.optim import clip_grad_norm_on_step

    p = torch.nn.Parameter(torch.zeros(5))
    opt = clip_grad_norm_on_step(torch.optim.SGD([p], lr=1.0), 5.0)
    g = torch.tensor([1.0, -2.0, 1000.0, 3.0, -7.0])
    p.grad = g.clone()
    opt.step()
    expected = -g * 5.0 / g.norm()
    assert torch.allclose(p.detach(), expected, atol=1e-6)
    assert torch.isclose(p.detach().norm(), torch.tensor(5.0))
    p.grad = torch.tensor([0.1, 0.0, 0.0, 0.0, 0.0])  # small gradients pass unchanged
    before = p.detach().clone()
    opt.step()
    assert torch.allclose(p.detach(), before - torch.tensor([0.1, 0, 0, 0, 0]))


def test_record_grad_norms_logs_the_norm_before_clipping_by_hand():
    from idlmam.optim import clip_grad_norm_on_step, record_grad_norms

    w, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(1))
    log = []
    opt = clip_grad_norm_on_step(record_grad_norms(torch.optim.SGD([w, b], lr=1.0), log), 1.0)
    assert log == []  # nothing before the first step
    w.grad, b.grad = torch.tensor([[1.0, 2.0], [2.0, 4.0]]), torch.tensor([12.0])
    opt.step()  # |g| = sqrt(1 + 4 + 4 + 16 + 144) = 13, clipped to 1 after the record
    step = torch.cat([w.detach().flatten(), b.detach()])
    assert torch.allclose(step, -torch.tensor([1.0, 2.0, 2.0, 4.0, 12.0]) / 13)
    w.grad, b.grad = torch.tensor([[0.0, 0.0], [0.0, 0.3]]), torch.tensor([0.4])
    opt.step()  # 0.5: below the threshold
    assert log == [[pytest.approx(13.0), pytest.approx(0.5)]]


def test_record_grad_norms_keeps_one_list_per_optimizer_that_stepped():
    from idlmam.optim import record_grad_norms

    log = []
    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(3)]
    probe = record_grad_norms(torch.optim.SGD([params[0]], lr=0.1), log)  # never steps
    first = record_grad_norms(torch.optim.SGD([params[1]], lr=0.1), log)
    second = record_grad_norms(torch.optim.AdamW([params[2]]), log)
    params[2].grad = torch.tensor([0.0, 3.0, 4.0])
    second.step()
    params[1].grad = torch.tensor([2.0, 0.0, 0.0])
    first.step()
    first.step()
    params[1].grad = None  # no gradient at all: a norm of 0
    first.step()
    assert log == [[5.0], [2.0, 2.0, 0.0]]
    assert probe.state_dict()["state"] == {}


def test_record_grad_norms_sees_a_real_backward_pass():
    from idlmam.optim import record_grad_norms

    torch.manual_seed(0)
    model, log = torch.nn.Linear(4, 3), []
    opt = record_grad_norms(torch.optim.SGD(model.parameters(), lr=0.1), log)
    model(torch.randn(8, 4)).pow(2).sum().backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    opt.step()
    assert log == [[pytest.approx(expected, rel=1e-6)]]
