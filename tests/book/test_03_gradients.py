"""Page 03's momentum and clipping lines take the steps of torch.optim.SGD and the package's hook."""

import pytest
import torch
from lessons import lesson
from torch import nn

from idlmam.optim import clip_grad_norm_on_step

PAGE = lesson("03_gradients")


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), nn.Tanh(), nn.Linear(16, 10))


def _batches(tiny_data, n=12, size=10):
    X, y = tiny_data
    return [(X[i * size % 100 :][:size], y[i * size % 100 :][:size]) for i in range(n)]


def _momentum(tiny_data, nesterov, by_hand, rates):
    net = _net()
    params = list(net.parameters())
    velocities = [torch.zeros_like(p) for p in params]
    optimizer = torch.optim.SGD(params, lr=rates[0], momentum=0.9, nesterov=nesterov)
    for lr, (x, y) in zip(rates, _batches(tiny_data)):
        net.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        if by_hand:
            PAGE["momentum_step"](params, velocities, lr, 0.9, nesterov)
        else:
            optimizer.param_groups[0]["lr"] = lr  # a schedule changes it between steps
            optimizer.step()
    return torch.cat([p.detach().flatten() for p in params])


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_step_is_torch_sgd_even_when_the_rate_changes(tiny_data, nesterov):
    rates = [0.3] * 4 + [0.1] * 4 + [0.03] * 4
    by_hand = _momentum(tiny_data, nesterov, True, rates)
    torch.testing.assert_close(by_hand, _momentum(tiny_data, nesterov, False, rates))


def test_momentum_and_nesterov_differ_so_the_comparison_can_fail(tiny_data):
    rates = [0.3] * 12
    with pytest.raises(AssertionError):
        torch.testing.assert_close(
            _momentum(tiny_data, True, True, rates), _momentum(tiny_data, False, False, rates)
        )


def _clipped(tiny_data, by_hand, max_norm):
    net = _net()
    optimizer = torch.optim.SGD(net.parameters(), lr=2.0, momentum=0.9, nesterov=True)
    norms = []
    if not by_hand:
        optimizer = clip_grad_norm_on_step(optimizer, max_norm)
    for x, y in _batches(tiny_data):
        if by_hand:
            norms.append(
                PAGE["clipped_step"](net, nn.CrossEntropyLoss(), x, y, optimizer, max_norm)
            )
        else:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()]), norms


def test_clipped_step_is_the_packages_clipping_hook(tiny_data):
    by_hand, norms = _clipped(tiny_data, True, 0.05)
    assert max(norms) > 0.05  # the threshold binds, so clipping is what is compared
    torch.testing.assert_close(by_hand, _clipped(tiny_data, False, 0.05)[0])


def test_clipping_changes_the_steps_so_the_comparison_can_fail(tiny_data):
    with pytest.raises(AssertionError):
        torch.testing.assert_close(
            _clipped(tiny_data, True, 0.05)[0], _clipped(tiny_data, False, 1e6)[0]
        )
