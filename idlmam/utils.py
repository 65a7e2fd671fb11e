"""Seeds and random states, device choice, and moving nested data between devices."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

__all__ = [
    "set_seed",
    "order_seed",
    "seed_run",
    "rng_state",
    "set_rng_state",
    "get_device",
    "move_to",
    "progress_enabled",
]


def set_seed(seed: int, *, deterministic: bool = False) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a generator for the data order.

    Two runs that call ``set_seed`` with the same value before building their model and loaders
    get the same initial weights, the same dropout masks, the same batch order and, on the CPU,
    bitwise the same results frame (all but the ``total time`` column).

    The data order is seeded apart from the rest: :class:`idlmam.data.ResidentLoader` and
    :func:`idlmam.data.classic_loader` take ``seed=`` and keep their own ``torch.Generator``
    (for a plain ``DataLoader``, pass ``generator=set_seed(seed)``). The order then does not
    depend on how many random numbers building the model drew, and
    :func:`idlmam.train.train_network` saves and restores that generator when it resumes.

    On a GPU the same seed is not enough for the same numbers. Some CUDA kernels add with
    atomic operations, whose order changes from run to run (``index_add``, ``scatter_add``, the
    backward of embeddings and of some poolings), and cuBLAS and cuDNN pick algorithms per run
    (``cudnn.benchmark``) with different rounding. Results then agree to a few decimals, not
    bitwise. ``deterministic=True`` asks for repeatable kernels instead:
    ``torch.use_deterministic_algorithms(True)``, ``cudnn.benchmark = False`` and
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (set before CUDA starts, so call ``set_seed`` first). It
    is slower, and an operation with no deterministic kernel then raises instead of running.

    Args:
        seed: any non-negative integer.
        deterministic: also switch torch to deterministic kernels (see above); global and
            left on for the rest of the process.

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
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def order_seed(seed: int) -> int:
    """The seed of the batch order of the run with seed ``seed``.

    A seed is a whole repetition: it decides the initial weights (:func:`set_seed`) *and* the
    order of the batches. The order gets a seed of its own, derived from ``seed`` with NumPy's
    ``SeedSequence``, so that it is not the same random stream that drew the weights, and two
    different seeds never share an order. :func:`idlmam.experiments.run` reseeds the training
    loader's generator with it before each seed; :func:`idlmam.train.train_many` gives each
    stacked model a generator seeded with it.

    Raises:
        ValueError: ``seed`` is not a non-negative int.

    Example:
        >>> order_seed(0) == order_seed(0), order_seed(0) == order_seed(1)
        (True, False)
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(np.random.SeedSequence([seed, 0xB47C4]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seed_run(seed: int, loader: object = None) -> None:
    """Start repetition ``seed`` of a run: its initial weights and its batch order.

    The one way the book seeds a run: :func:`set_seed` (weights, dropout, anything drawn from
    the global generators), and, when ``loader`` has a ``torch.Generator`` as ``generator``
    (:class:`idlmam.data.ResidentLoader`, :func:`idlmam.data.classic_loader`), that generator
    reseeded with :func:`order_seed`. :func:`idlmam.experiments.run` and the tuning objectives
    call it, so a search trial with seed ``s`` sees the weights and the batches of seed ``s``
    of ``run`` (the stacked path seeds each model's order with :func:`order_seed` too).

    Raises:
        ValueError: ``seed`` is not a non-negative int.

    Example:
        >>> from idlmam.data import ResidentLoader
        >>> loader = ResidentLoader(torch.zeros(8, 1), torch.arange(8), 4, shuffle=True)
        >>> seed_run(0, loader); a = torch.randn(1), [y.tolist() for _, y in loader]
        >>> seed_run(0, loader); b = torch.randn(1), [y.tolist() for _, y in loader]
        >>> torch.equal(a[0], b[0]) and a[1] == b[1]
        True
    """
    order = order_seed(seed)  # validates the seed before anything is seeded
    set_seed(seed)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(order)


def rng_state(generators: Iterable[torch.Generator] = (), *, cuda: bool = False) -> dict:
    """Every random state a training run draws from, as tensors and plain Python numbers.

    Python's ``random``, NumPy's global generator, torch's CPU generator, every CUDA device's
    generator when ``cuda`` is true, and the given ``generators`` (a loader's data order). The
    result holds no NumPy objects, so a checkpoint holding it loads with
    ``torch.load(..., weights_only=True)``. Generators a caller made with
    ``np.random.default_rng`` are not global and not included.

    Args:
        generators: extra ``torch.Generator`` objects, e.g. ``[train_loader.generator]``.
        cuda: include the CUDA generators (initialises CUDA; only when training there).

    Returns:
        A dict ``{"python", "numpy", "torch", "cuda", "generators"}`` for :func:`set_rng_state`.

    Example:
        >>> state = rng_state()
        >>> a = torch.rand(1); set_rng_state(state); bool(torch.rand(1) == a)
        True
    """
    version, internal, gauss_next = random.getstate()
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if cuda else None,
        "generators": [g.get_state() for g in generators],
    }


def set_rng_state(state: dict, generators: Iterable[torch.Generator] = ()) -> None:
    """Put back the random states :func:`rng_state` saved.

    Args:
        state: what :func:`rng_state` returned (possibly through a checkpoint).
        generators: the same generators, in the same order, as were saved. The CUDA states are
            restored only where this machine has CUDA (a CPU resume of a GPU run skips them).

    Raises:
        ValueError: ``generators`` are not as many as the saved ones.
    """
    generators = list(generators)
    if len(generators) != len(state["generators"]):
        raise ValueError(
            f"{len(state['generators'])} generator state(s) were saved but "
            f"{len(generators)} generator(s) were given: pass the same loaders"
        )
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    for generator, saved in zip(generators, state["generators"]):
        generator.set_state(saved)


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the training device: ``prefer`` if given, else the GPU when present, else the CPU.

    With ``prefer=None`` the environment variable ``IDL_DEVICE`` decides when it is set (``make
    notebooks`` sets ``IDL_DEVICE=cpu``, since nbval's reference outputs were made on the CPU);
    otherwise the choice is torch's own (``torch.accelerator``): an NVIDIA GPU (``cuda``), an
    Apple GPU (``mps``) or an Intel GPU (``xpu``), whichever this build of torch was made for
    and finds at run time, without an index (the current device of that kind). A machine with
    none gets the CPU.

    Args:
        prefer: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"xpu"``, or None to choose.

    Returns:
        The ``torch.device``, checked to exist on this machine.

    Raises:
        ValueError: ``prefer`` is not a device name, or names a device this machine lacks.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    if prefer is None:
        prefer = os.environ.get("IDL_DEVICE", "").strip() or None
    if prefer is None:
        if torch.accelerator.is_available():
            accelerator = torch.accelerator.current_accelerator()
            if accelerator is not None:
                return torch.device(accelerator.type)
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device {prefer!r} is not a device name: use 'cpu', 'cuda', 'cuda:0' "
            "or 'mps', or get_device() to choose automatically"
        ) from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {prefer!r} was asked for, but this machine has no CUDA GPU: "
            "use device='cpu' or get_device() to choose automatically"
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise ValueError(
            f"device {prefer!r} does not exist: this machine has "
            f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
            f"cuda:{torch.cuda.device_count() - 1}"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {prefer!r} was asked for, but this machine has no Apple GPU "
            "(MPS): use device='cpu' or get_device() to choose automatically"
        )
    backend = getattr(torch, device.type, None)  # e.g. torch.xpu
    if device.type not in ("cpu", "cuda", "mps") and not (
        hasattr(backend, "is_available") and backend.is_available()
    ):
        raise ValueError(
            f"device {prefer!r} is not available on this machine: use 'cpu', "
            "'cuda' or 'mps', or get_device() to choose automatically"
        )
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
    quiet = [os.environ.get(var, "").strip().lower() for var in ("TQDM_DISABLE", "CI")]
    return all(value in ("", "0", "false") for value in quiet)
