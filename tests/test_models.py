import torch
from torch import nn

from idlmam.models import clamp_gradients, count_parameters, mlp, weight_reset


def test_mlp_is_the_chapters_network():
    model = mlp()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 128), (128, 128), (128, 10)]
    # hand count: 784*128+128 + 2*(128*128+128) + 128*10+10
    assert count_parameters(model) == 784 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 10 + 10


def test_mlp_depth_is_variable():
    for layers in (1, 4, 6):
        model = mlp(hidden=16, layers=layers)
        assert sum(isinstance(m, nn.Tanh) for m in model) == layers
        assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_weight_reset_draws_new_weights():
    model = mlp(hidden=8)
    before = [p.detach().clone() for p in model.parameters()]
    model.apply(weight_reset)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_weight_reset_removes_gradient_hooks():
    # regression: the source chapter's clamp hooks silently clipped every later experiment
    model = nn.Linear(1, 1, bias=False)
    clamp_gradients(model, 5)
    x = torch.tensor([[1000.0]])
    model(x).sum().backward()
    assert model.weight.grad.item() == 5.0
    model.apply(weight_reset)
    model.weight.grad = None
    model(x).sum().backward()
    assert model.weight.grad.item() == 1000.0


def test_clamp_gradients_is_the_chapters_example():
    params = nn.ParameterList([nn.Parameter(torch.zeros(5))])
    handles = clamp_gradients(params, 5)
    (params[0] * torch.tensor([1.0, -2.0, 1000.0, 3.0, -7.0])).sum().backward()
    assert params[0].grad.tolist() == [1.0, -2.0, 5.0, 3.0, -5.0]
    for h in handles:
        h.remove()
    params[0].grad = None
    (params[0] * torch.tensor([1000.0] * 5)).sum().backward()
    assert params[0].grad.tolist() == [1000.0] * 5
