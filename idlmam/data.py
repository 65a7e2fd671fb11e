"""Fashion-MNIST for the book: where the files come from, datasets, seeded splits, resident loader.

Where the four raw files come from, in order:

1. a cache under the data root (``IDL_DATA``, default ``./data``), in ``FashionMNIST/raw/``;
2. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``), gunzipped
   into that cache;
3. torchvision's own download (needs internet);
4. as root on a Debian machine with ``apt-get``: installing ``dataset-fashion-mnist``, then step 2.

Every file is checked (size and SHA-256 of its contents) before use, so a truncated or corrupt
file stops with an error that names it instead of becoming a silently wrong dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

__all__ = [
    "DataUnavailableError",
    "CorruptDataError",
    "data_root",
    "ensure_fashion_mnist",
    "fashion_mnist",
    "split",
    "subset",
    "ResidentLoader",
    "resident_loader",
    "classic_loader",
    "book_loaders",
]

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# SHA-256 and size of the *uncompressed* files (the .gz archives differ between mirrors).
RAW_FILES = {
    "train-images-idx3-ubyte": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        47_040_016,
    ),
    "train-labels-idx1-ubyte": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        60_008,
    ),
    "t10k-images-idx3-ubyte": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        7_840_016,
    ),
    "t10k-labels-idx1-ubyte": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        10_008,
    ),
}
HOW_TO_GET = (
    "Fashion-MNIST is not available. Either connect to the internet (torchvision downloads it), "
    "or on Debian run `apt-get install dataset-fashion-mnist` as root, or copy the four files "
    "{names} (gunzipped) into {raw}. Set IDL_DATA to use another data folder."
)


class DataUnavailableError(RuntimeError):
    """No source of the Fashion-MNIST files could be used."""


class CorruptDataError(RuntimeError):
    """A Fashion-MNIST file is truncated or its contents are not the real dataset."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``IDL_DATA``, else ``./data``."""
    return Path(root if root is not None else os.environ.get("IDL_DATA", "./data")).expanduser()


def _raw_dir(root: Path) -> Path:
    return root / "FashionMNIST" / "raw"


_verified: set[tuple[str, int, float]] = set()


def _verify(path: Path) -> None:
    """Check one raw file's size and SHA-256; raise :class:`CorruptDataError` naming it."""
    sha, size = RAW_FILES[path.name]
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime)
    if key in _verified:
        return
    fix = "delete it and run `python -m idlmam.data` (or `make data`) to fetch it again"
    if stat.st_size != size:
        raise CorruptDataError(
            f"{path} has {stat.st_size} bytes, expected {size} "
            f"(truncated or not Fashion-MNIST): {fix}"
        )
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    if digest.hexdigest() != sha:
        raise CorruptDataError(
            f"{path} has the right size but the wrong contents "
            f"(SHA-256 {digest.hexdigest()[:12]}…): {fix}"
        )
    _verified.add(key)


def _have_all(raw: Path) -> bool:
    present = [(raw / name).exists() for name in RAW_FILES]
    if all(present):
        for name in RAW_FILES:
            _verify(raw / name)
        return True
    return False


def _from_debian(raw: Path, source: Path = DEBIAN_DIR) -> bool:
    archives = [source / f"{name}.gz" for name in RAW_FILES]
    if not all(a.exists() for a in archives):
        return False
    raw.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        target = raw / archive.name[:-3]
        if target.exists():
            continue
        tmp = target.with_suffix(".part")
        try:
            with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        except (OSError, EOFError) as err:
            tmp.unlink(missing_ok=True)
            raise CorruptDataError(
                f"{archive} could not be unpacked ({err}): reinstall it with "
                "`apt-get install --reinstall dataset-fashion-mnist`"
            ) from err
        tmp.replace(target)  # atomic: a half-written file never carries the final name
    return _have_all(raw)


def _from_torchvision(root: Path) -> bool:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as err:  # no network, a mirror down: fall through to the next source
        print(
            f"idlmam.data: torchvision download failed ({type(err).__name__}: {err})",
            file=sys.stderr,
        )
        return False
    return _have_all(_raw_dir(root))


def _from_apt() -> bool:
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    print("idlmam.data: installing Debian's dataset-fashion-mnist with apt-get", file=sys.stderr)
    cmd = ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(f"idlmam.data: apt-get failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
    return done.returncode == 0


def ensure_fashion_mnist(
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    apt: bool = True,
    debian_dir: Path = DEBIAN_DIR,
) -> Path:
    """Make sure the four raw Fashion-MNIST files are under ``root`` and return that root.

    Args:
        root: the data folder (default: :func:`data_root`).
        download: allow torchvision's download when no local source has the files.
        apt: allow ``apt-get install dataset-fashion-mnist`` (root on Debian only) as a last resort.
        debian_dir: where the Debian package keeps its ``.gz`` files.

    Raises:
        CorruptDataError: a file is there but truncated or wrong (the message names it).
        DataUnavailableError: no source worked (the message says how to get the data).
    """
    root = data_root(root)
    raw = _raw_dir(root)
    if _have_all(raw) or _from_debian(raw, debian_dir):
        return root
    if download and _from_torchvision(root):
        return root
    if apt and _from_apt() and _from_debian(raw, debian_dir):
        return root
    raise DataUnavailableError(HOW_TO_GET.format(names=", ".join(RAW_FILES), raw=raw))


def fashion_mnist(train: bool = True, root: str | os.PathLike | None = None):
    """The Fashion-MNIST train (60,000) or test (10,000) split as torchvision sees it.

    Items are ``(image, label)`` with ``image`` a ``(1, 28, 28)`` float tensor in ``[0, 1]``
    (``ToTensor()``).
    """
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    root = ensure_fashion_mnist(root)
    return FashionMNIST(str(root), train=train, transform=transforms.ToTensor(), download=False)


def split(dataset, fractions: Sequence[float] = (0.8, 0.2), *, seed: int = 0):
    """Split ``dataset`` at random, reproducibly (a seeded ``torch.Generator``).

    Example:
        >>> a, b = split(list(range(10)), (0.8, 0.2), seed=0)
        >>> len(a), len(b)
        (8, 2)
    """
    from torch.utils.data import random_split

    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(
            f"fractions must add up to 1, got {list(fractions)} (sum {sum(fractions)})"
        )
    return random_split(dataset, list(fractions), generator=torch.Generator().manual_seed(seed))


def subset(dataset, n: int | None, *, seed: int = 0):
    """A seeded random subset of ``n`` items (the whole dataset when ``n`` is None or too big)."""
    from torch.utils.data import Subset

    if n is None or n >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:n].tolist())


def _decode(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """All of ``dataset`` as two tensors ``(X, y)``, decoded once."""
    from torch.utils.data import Subset
    from torchvision import transforms

    if isinstance(dataset, Subset):
        X, y = _decode(dataset.dataset)
        index = torch.as_tensor(dataset.indices, dtype=torch.long)
        return X[index], y[index]
    raw, targets = getattr(dataset, "data", None), getattr(dataset, "targets", None)
    if (
        isinstance(raw, torch.Tensor)
        and raw.dtype == torch.uint8
        and raw.dim() == 3
        and isinstance(getattr(dataset, "transform", None), transforms.ToTensor)
        and getattr(dataset, "target_transform", None) is None
    ):
        # exactly what ToTensor does to each image, for all of them at once: (N, 28, 28) -> (N, 1, 28, 28)
        return raw.unsqueeze(1).to(torch.get_default_dtype()).div(255), torch.as_tensor(targets)
    items = [dataset[i] for i in range(len(dataset))]  # any other dataset: decode item by item
    X = torch.stack([torch.as_tensor(x) for x, _ in items])
    y = torch.as_tensor([int(t) for _, t in items])
    return X, y


class ResidentLoader:
    """Batches from tensors that already sit on the training device.

    It speaks the ``DataLoader`` protocol the training loop needs: iterating yields
    ``(inputs, labels)`` batches, ``len()`` is the number of batches per epoch. The order is a
    fresh seeded permutation each epoch when ``shuffle`` is on.

    Args:
        X: inputs, first dimension the examples.
        y: labels, same first dimension.
        batch_size: examples per batch.
        shuffle: draw a new order each epoch.
        seed: seed of the order (the loader's own ``torch.Generator``).
        device: where the tensors live (moved there once).
        drop_last: drop the last, smaller batch.

    Example:
        >>> loader = ResidentLoader(torch.zeros(10, 3), torch.arange(10), batch_size=4)
        >>> len(loader), [len(yb) for _, yb in loader]
        (3, [4, 4, 2])
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 256,
        *,
        shuffle: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        drop_last: bool = False,
    ) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must match")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device)
        self.X, self.y = X.to(self.device), y.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.X)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def n_examples(self) -> int:
        return len(self.X)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, B = len(self.X), self.batch_size
        order = (
            torch.randperm(n, generator=self.generator).to(self.device) if self.shuffle else None
        )
        for start in range(0, len(self) * B, B):
            if order is None:
                yield self.X[start : start + B], self.y[start : start + B]
            else:
                idx = order[start : start + B]
                # index_select: the same rows as X[idx], the faster gather (book/measurements.md)
                yield self.X.index_select(0, idx), self.y.index_select(0, idx)

    def stacked_batches(
        self, generators: Sequence[torch.Generator]
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch for K models at once, each in the order its own generator draws.

        Batch ``b`` stacks the ``b``-th batch of every model: inputs ``(K, B, ...)`` and labels
        ``(K, B)``. Model ``k`` sees exactly the batches a copy of this loader whose
        ``generator`` were ``generators[k]`` would yield (the same permutation per epoch).
        Without ``shuffle`` every model sees the loader's own order.

        Args:
            generators: one ``torch.Generator`` per model; each is advanced by one permutation.
        """
        n, B, K = len(self.X), self.batch_size, len(generators)
        if self.shuffle:
            orders = torch.stack([torch.randperm(n, generator=g) for g in generators])  # (K, n)
        else:
            orders = torch.arange(n).expand(K, n)
        orders = orders.to(self.device)
        for start in range(0, len(self) * B, B):
            idx = orders[:, start : start + B]  # (K, B): row k is model k's batch
            flat = idx.reshape(-1)
            yield (
                self.X.index_select(0, flat).view(*idx.shape, *self.X.shape[1:]),
                self.y.index_select(0, flat).view(*idx.shape, *self.y.shape[1:]),
            )

    def eval_batches(self, batch_size: int = 1024) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """All examples in order, in large batches (for evaluation; the order does not matter).

        Args:
            batch_size: examples per batch; the last batch holds the rest.

        Yields:
            ``(inputs, labels)`` batches, in the stored order, never shuffled.
        """
        for start in range(0, len(self.X), batch_size):
            yield self.X[start : start + batch_size], self.y[start : start + batch_size]


def resident_loader(
    dataset,
    batch_size: int = 256,
    *,
    shuffle: bool = False,
    seed: int = 0,
    device: torch.device | str = "cpu",
    drop_last: bool = False,
) -> ResidentLoader:
    """Decode ``dataset`` once (bitwise what ``ToTensor()`` gives) into a :class:`ResidentLoader`."""
    X, y = _decode(dataset)
    return ResidentLoader(
        X, y, batch_size, shuffle=shuffle, seed=seed, device=device, drop_last=drop_last
    )


def classic_loader(dataset, batch_size: int = 256, *, shuffle: bool = False, seed: int = 0):
    """The classic path, a ``DataLoader`` over the dataset, with a seeded order."""
    from torch.utils.data import DataLoader

    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )


def book_loaders(
    batch_size: int = 256,
    *,
    device: torch.device | str = "cpu",
    train_size: int | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    test: bool = True,
) -> dict[str, ResidentLoader]:
    """The chapter's loaders, resident on ``device``: ``{"train", "test"}`` (and ``"val"``).

    Args:
        batch_size: training batch size (the chapter's B = 256).
        device: where the tensors live.
        train_size: use a seeded random subset of this many training examples (None: all 60,000).
        val_fraction: when given, split this fraction off the *training* data as a validation
            set (seeded); the training loader then holds only the rest, so no validation row is
            ever trained on.
        seed: seed of the subset, the split and the training order.
        test: also load the test set (a hyperparameter search must not even load it).
    """
    train = subset(fashion_mnist(True), train_size, seed=seed)
    loaders = {}
    if val_fraction is not None:
        train, val = split(train, (1 - val_fraction, val_fraction), seed=seed)
        loaders["val"] = resident_loader(val, 1024, device=device)
    loaders["train"] = resident_loader(train, batch_size, shuffle=True, seed=seed, device=device)
    if test:
        loaders["test"] = resident_loader(fashion_mnist(False), 1024, device=device)
    return loaders


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m idlmam.data``: fetch the data (see the module docstring) and say where it is."""
    try:
        root = ensure_fashion_mnist()
    except (DataUnavailableError, CorruptDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"Fashion-MNIST ready in {_raw_dir(root).resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
