"""Every network the book trains, and the small rules that act on a model.

* :func:`mlp`: the chapter's fully connected network, with optional batch norm;
* :func:`cnn`: a convolutional network whose depth and pooling are arguments (exercise 7);
* :class:`BiRNN`: the bidirectional RNN of exercises 4 and 5;
* :func:`weight_reset`, :func:`clamp_gradients`, :func:`count_parameters`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "mlp",
    "cnn",
    "pool_positions",
    "BiRNN",
    "weight_reset",
    "clamp_gradients",
    "count_parameters",
]


def mlp(
    in_features: int = 28 * 28,
    hidden: int = 128,
    layers: int = 3,
    classes: int = 10,
    *,
    activation: type[nn.Module] = nn.Tanh,
    batch_norm: bool = False,
) -> nn.Sequential:
    """A fully connected network with ``layers`` hidden layers of ``hidden`` neurons each.

    ``mlp()`` is the chapter's model, ``784 -> 128 -> 128 -> 128 -> 10`` with tanh. With
    ``batch_norm=True`` every hidden ``Linear`` is followed by a ``BatchNorm1d`` before its
    activation; its running statistics are buffers, not parameters, which matters to weight
    averaging (SWA ends with ``update_bn``) and to stacking several models (they cannot be).

    Args:
        in_features: values per input (the input is flattened first).
        hidden: neurons per hidden layer.
        layers: number of hidden layers (at least 1).
        classes: outputs.
        activation: the non-linearity after each hidden layer.
        batch_norm: put ``BatchNorm1d`` between each hidden ``Linear`` and its activation.

    Raises:
        ValueError: ``layers`` or ``hidden`` below 1.

    Example:
        >>> mlp(layers=2)(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
        >>> [type(m).__name__ for m in mlp(layers=1, batch_norm=True)]
        ['Flatten', 'Linear', 'BatchNorm1d', 'Tanh', 'Linear']
    """
    if layers < 1 or hidden < 1:
        raise ValueError(f"need layers >= 1 and hidden >= 1, got layers={layers}, hidden={hidden}")
    stack: list[nn.Module] = [nn.Flatten()]  # (B, 1, 28, 28) -> (B, 784)
    width = in_features
    for _ in range(layers):
        stack.append(nn.Linear(width, hidden))  # (B, width) -> (B, hidden)
        if batch_norm:
            stack.append(nn.BatchNorm1d(hidden))
        stack.append(activation())
        width = hidden
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


def pool_positions(conv_layers: int, pool_rounds: int) -> list[int]:
    """After which convolutions (0-based) a max pooling follows.

    The convolutions are split into ``pool_rounds`` blocks as even as possible, and each block
    ends with a pooling, so the last pooling follows the last convolution. With more rounds than
    convolutions, some convolutions are followed by several poolings in a row.

    Example:
        >>> pool_positions(4, 2), pool_positions(3, 3), pool_positions(5, 0), pool_positions(1, 2)
        ([1, 3], [0, 1, 2], [], [0, 0])
    """
    if conv_layers < 1 or pool_rounds < 0:
        raise ValueError(
            f"need conv_layers >= 1 and pool_rounds >= 0, got {conv_layers}, {pool_rounds}"
        )
    return [-(-(k + 1) * conv_layers // pool_rounds) - 1 for k in range(pool_rounds)]  # ceil - 1


def cnn(
    channels: int = 16,
    conv_layers: int = 2,
    pool_rounds: int = 1,
    *,
    classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    kernel_size: int = 3,
    activation: type[nn.Module] = nn.ReLU,
) -> nn.Sequential:
    """``conv_layers`` convolutions of ``channels`` filters, ``pool_rounds`` 2x2 max poolings, a linear layer.

    Every convolution keeps the image size (padding ``kernel_size // 2``); each max pooling
    halves it (rounding down), so after ``p`` rounds a 28-pixel side is ``28 // 2**p``
    (28, 14, 7, 3, 1). The poolings are spread evenly over the convolutions
    (:func:`pool_positions`).

    Args:
        channels: filters per convolution.
        conv_layers: convolutions (at least 1).
        pool_rounds: max poolings (``0`` or more, as long as the image keeps a pixel).
        classes: outputs.
        in_channels: channels of the input image.
        image_size: side of the (square) input image.
        kernel_size: side of each (odd) filter.
        activation: the non-linearity after each convolution.

    Example:
        >>> import torch
        >>> cnn(channels=8, conv_layers=3, pool_rounds=2)(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 10])
    """
    if conv_layers < 1 or channels < 1:
        raise ValueError(f"need conv_layers >= 1 and channels >= 1, got {conv_layers}, {channels}")
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd so the padding keeps the size, got {kernel_size}"
        )
    if image_size // 2**pool_rounds < 1:
        raise ValueError(f"{pool_rounds} poolings leave nothing of a {image_size}-pixel image")
    pools = pool_positions(conv_layers, pool_rounds)
    stack: list[nn.Module] = []
    width, side = in_channels, image_size
    for i in range(conv_layers):
        stack += [
            nn.Conv2d(width, channels, kernel_size, padding=kernel_size // 2),
            activation(),
        ]  # (B, width, s, s) -> (B, C, s, s)
        width = channels
        for _ in range(pools.count(i)):
            stack.append(nn.MaxPool2d(2))  # (B, C, s, s) -> (B, C, s // 2, s // 2)
            side //= 2
    stack += [
        nn.Flatten(),
        nn.Linear(channels * side * side, classes),
    ]  # (B, C * s * s) -> (B, classes)
    return nn.Sequential(*stack)


class BiRNN(nn.Module):
    """Embedding, a stacked bidirectional ``nn.RNN``, and a linear layer on the two last states.

    The shape of the previous chapter's classifier: the forward direction ends on the last token,
    the backward direction on the first, and the two final hidden states of the top layer are
    concatenated and mapped to the classes.

    Args:
        vocab: alphabet size.
        classes: outputs.
        embed_dim: size of each token's embedding.
        hidden: hidden units per direction and layer.
        layers: stacked RNN layers.

    Example:
        >>> BiRNN(vocab=10, classes=4)(torch.zeros(2, 24, dtype=torch.long)).shape
        torch.Size([2, 4])
    """

    def __init__(
        self, vocab: int, classes: int, *, embed_dim: int = 16, hidden: int = 32, layers: int = 3
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim)
        self.rnn = nn.RNN(
            embed_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True
        )
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        _, h_n = self.rnn(self.embed(X))  # (B, T) -> (B, T, E); h_n: (layers * 2, B, hidden)
        last = torch.cat(
            [h_n[-2], h_n[-1]], dim=1
        )  # top layer, forward and backward: (B, 2 * hidden)
        return self.head(last)  # (B, classes)
