"""The chapter's fully connected network, and resetting a model between experiments."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["mlp", "weight_reset", "clamp_gradients", "count_parameters"]


def mlp(in_features: int = 28 * 28, hidden: int = 128, layers: int = 3, classes: int = 10, *,
        activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """A fully connected network with ``layers`` hidden layers of ``hidden`` neurons each.

    ``mlp()`` is the chapter's model, ``784 -> 128 -> 128 -> 128 -> 10`` with tanh.

    Args:
        in_features: values per input (the input is flattened first).
        hidden: neurons per hidden layer.
        layers: number of hidden layers (at least 1).
        classes: outputs.
        activation: the non-linearity after each hidden layer.

    Example:
        >>> mlp(layers=2)(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """
    if layers < 1 or hidden < 1:
        raise ValueError(f"need layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
    stack: list[nn.Module] = [nn.Flatten(), nn.Linear(in_features, hidden), activation()]  # (B, ...) -> (B, hidden)
    for _ in range(layers - 1):
        stack += [nn.Linear(hidden, hidden), activation()]
    stack.append(nn.Linear(hidden, classes))  # (B, hidden) -> (B, classes)
    return nn.Sequential(*stack)


def weight_reset(module: nn.Module) -> None:
    """Draw fresh random weights and remove gradient hooks; use as ``model.apply(weight_reset)``.

    Hooks added with ``parameter.register_hook`` (gradient clamping, say) survive a plain
    re-initialisation, and would silently clip every later experiment on the same model; this
    removes them too.
    """
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
    for p in module.parameters(recurse=False):
        if getattr(p, "_backward_hooks", None):
            p._backward_hooks.clear()


def clamp_gradients(model: nn.Module, z: float) -> list:
    """Clamp every gradient value of ``model`` into ``[-z, z]`` from now on.

    Returns the hook handles; ``handle.remove()`` (or :func:`weight_reset`) takes them off.
    """
    if z <= 0:
        raise ValueError(f"the clip value z must be positive, got {z}")
    return [p.register_hook(lambda grad: grad.clamp(-z, z)) for p in model.parameters()]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable values in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
