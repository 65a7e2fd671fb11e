"""Stacked modules on their own: StackedMLP and VmapModels against the K models they hold, and
what may be stacked (training them is in test_stacked.py)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from idlmam.models import clamp_gradients, mlp
from idlmam.optim import SOAP, Shampoo
from idlmam.train.stacking import StackedMLP, coupling, stack_models, why_not_stacked


def test_stacked_forward_and_unstack(tiny_data):
    X, _ = tiny_data
    models = [mlp(hidden=8, layers=3, activation=nn.ReLU) for _ in range(4)]
    models.append(
        nn.Sequential(nn.Flatten(), nn.Linear(784, 8, bias=False), nn.GELU(), nn.Linear(8, 10))
    )
    for group in (models[:4], models[4:]):
        stacked = stack_models(group)
        assert isinstance(stacked, StackedMLP)
        out = stacked(X)  # (B, 1, 28, 28) -> (K, B, 10)
        assert out.shape == (len(group), len(X), 10)
        for k, model in enumerate(group):
            assert torch.allclose(out[k], model(X), atol=1e-6)
        for model, back in zip(group, stacked.unstack()):
            assert all(torch.equal(p, q) for p, q in zip(model.parameters(), back.parameters()))


def test_fused_tanh_layers_match_torch_values_and_gradients(tiny_data):
    """The stacked tanh (2*sigmoid(2z) - 1, inside the product) against nn.Tanh, forward and back."""
    X, y = tiny_data
    models = [mlp(hidden=32, layers=3) for _ in range(3)]  # Linear, Tanh, ... : every Tanh fused
    stacked = stack_models(models)
    out = stacked(X)
    F.cross_entropy(out.reshape(-1, 10), y.repeat(3), reduction="sum").backward()
    for k, model in enumerate(models):
        single = model(X)
        assert torch.allclose(out[k], single, atol=1e-6)
        F.cross_entropy(single, y, reduction="sum").backward()
    grads = [w.grad for w in stacked.weights]
    for k, model in enumerate(models):
        linears = [m for m in model if isinstance(m, nn.Linear)]
        for layer, grad in zip(linears, grads):
            assert torch.allclose(grad[k], layer.weight.grad, atol=1e-5)


def test_models_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="another architecture"):
        stack_models([mlp(hidden=8), mlp(hidden=9)])


def test_what_couples_stacked_models_is_named():
    model = nn.Linear(2, 1)
    assert coupling(torch.optim.SGD(model.parameters(), lr=0.1), None) == ""
    assert "LBFGS" in coupling(torch.optim.LBFGS(model.parameters()), None)
    clipped = torch.optim.SGD(model.parameters(), lr=0.1)
    clipped.register_step_pre_hook(lambda optimizer, args, kwargs: None)  # as norm clipping does
    assert "rewrites the gradients" in coupling(clipped, None)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(sgd)
    assert "one learning rate per model" in coupling(sgd, plateau)
    assert why_not_stacked(mlp, lambda p: torch.optim.SGD(p, lr=0.1)) == ""
    # preconditioners read whole matrices: K stacked seeds would share their L and R
    assert "Shampoo" in why_not_stacked(mlp, lambda p: Shampoo(p))
    assert "SOAP" in why_not_stacked(mlp, lambda p: SOAP(p))
    with_dropout = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10))
    with pytest.raises(ValueError, match="dropout"):
        stack_models([with_dropout])
    with pytest.raises(ValueError, match="clip_value"):
        stack_models([clamp_gradients(m := mlp(), 1.0) and m])
