"""A convolutional network whose depth and number of max-pooling rounds are arguments.

The fully connected builder :func:`idlmam.models.mlp` lets a search choose the number of hidden
layers; :func:`cnn` does the same for convolutions and adds the choice of how often to halve the
image with max pooling, the question of the chapter's last exercise.
"""
from __future__ import annotations

from torch import nn

__all__ = ["cnn", "pool_positions"]


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
        raise ValueError(f"need conv_layers >= 1 and pool_rounds >= 0, got {conv_layers}, {pool_rounds}")
    return [-(-(k + 1) * conv_layers // pool_rounds) - 1 for k in range(pool_rounds)]  # ceil - 1


def cnn(channels: int = 16, conv_layers: int = 2, pool_rounds: int = 1, *, classes: int = 10,
        in_channels: int = 1, image_size: int = 28, kernel_size: int = 3,
        activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
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
        raise ValueError(f"kernel_size must be odd so the padding keeps the size, got {kernel_size}")
    if image_size // 2**pool_rounds < 1:
        raise ValueError(f"{pool_rounds} poolings leave nothing of a {image_size}-pixel image")
    pools = pool_positions(conv_layers, pool_rounds)
    stack: list[nn.Module] = []
    width, side = in_channels, image_size
    for i in range(conv_layers):
        stack += [nn.Conv2d(width, channels, kernel_size, padding=kernel_size // 2), activation()]  # (B, width, s, s) -> (B, C, s, s)
        width = channels
        for _ in range(pools.count(i)):
            stack.append(nn.MaxPool2d(2))  # (B, C, s, s) -> (B, C, s // 2, s // 2)
            side //= 2
    stack += [nn.Flatten(), nn.Linear(channels * side * side, classes)]  # (B, C * s * s) -> (B, classes)
    return nn.Sequential(*stack)
