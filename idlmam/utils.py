"""Seeds, device choice and moving nested data between devices."""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

__all__ = ["set_seed", "get_device", "move_to", "progress_enabled"]


def set_seed(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a generator for the data order.

    Two runs that call ``set_seed`` with the same value before building their model and loaders
    get the same initial weights, the same batch order and, on the CPU, the same numbers. On a GPU
    some kernels (atomic adds in reductions, cuBLAS algorithm choice) are not bitwise repeatable, so
    results agree only to a few decimals there.

    Args:
        seed: any non-negative integer.

    Returns:
        A ``torch.Generator`` seeded with ``seed``, to hand to a loader or a split.

    Example:
        >>> a = torch.rand(2, generator=set_seed(0))
        >>> b = torch.rand(2, generator=set_seed(0))
        >>> bool((a == b).all())
        True
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the training device: ``prefer`` if given, else CUDA when present, else the CPU.

    Raises:
        ValueError: ``prefer`` names a device this machine does not have.
    """
    if prefer is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {prefer!r} was asked for, but this machine has no CUDA GPU: "
                         "use device='cpu' or get_device() to choose automatically")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {prefer!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    return device


def move_to(obj: Any, device: torch.device | str) -> Any:
    """Move a tensor, or every tensor inside nested lists, tuples, sets and dicts, to ``device``.

    Example:
        >>> move_to({"x": [torch.zeros(1)]}, "cpu")["x"][0].device.type
        'cpu'
    """
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj


def progress_enabled(disable: bool = False) -> bool:
    """Whether a progress bar should be drawn.

    Bars are for people at a keyboard. They are off when the caller asks, when ``TQDM_DISABLE``
    or ``CI`` is set (the Makefile sets ``TQDM_DISABLE=1`` for the site build and the tests, so no
    bar leaks into a page or a log).
    """
    if disable:
        return False
    for var in ("TQDM_DISABLE", "CI"):
        if os.environ.get(var, "").strip().lower() not in ("", "0", "false"):
            return False
    return True
