import math

import pytest
import torch

from idlmam.optim import cosine_t_max, exponential_gamma


@pytest.mark.parametrize("eta_0,eta_min,epochs", [(0.1, 0.0001, 50), (0.001, 0.0001, 50), (1.0, 0.5, 3)])
def test_exponential_gamma_reaches_eta_min(eta_0, eta_min, epochs):
    gamma = exponential_gamma(eta_0, eta_min, epochs)
    assert math.isclose(eta_0 * gamma**epochs, eta_min, rel_tol=1e-12)


def test_exponential_gamma_rejects_a_rise():
    with pytest.raises(ValueError, match="eta_min < eta_0"):
        exponential_gamma(0.001, 0.01, 10)


@pytest.mark.parametrize("epochs,dips", [(50, 2), (50, 3), (45, 5), (10, 1), (3, 2)])
def test_cosine_schedule_ends_on_a_dip(epochs, dips):
    t_max = cosine_t_max(epochs, dips)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, t_max, eta_min=0.0)
    lrs = []
    for _ in range((2 * dips - 1) * t_max + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    minima = [i for i in range(1, len(lrs) - 1) if lrs[i] < 1e-12] + ([len(lrs) - 1] if lrs[-1] < 1e-12 else [])
    assert len(minima) == dips
    assert (2 * dips - 1) * t_max <= epochs


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
