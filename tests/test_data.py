import gzip
import shutil

import pytest
import torch

from idlmam import data
from idlmam.data import (
    CorruptDataError,
    DataUnavailableError,
    ResidentLoader,
    ensure_fashion_mnist,
    resident_loader,
    split,
    subset,
)


def test_no_source_gives_one_clear_message(tmp_path):
    with pytest.raises(DataUnavailableError, match="apt-get install dataset-fashion-mnist"):
        ensure_fashion_mnist(
            tmp_path / "data", download=False, apt=False, debian_dir=tmp_path / "none"
        )


def test_truncated_cache_file_is_named(tmp_path, fashion_root):
    raw = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(fashion_root / "FashionMNIST" / "raw", raw)
    victim = raw / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:5000])
    with pytest.raises(CorruptDataError, match="t10k-labels-idx1-ubyte.*5000 bytes"):
        ensure_fashion_mnist(tmp_path, download=False, apt=False, debian_dir=tmp_path / "none")


def test_wrong_contents_are_named(tmp_path, fashion_root):
    raw = tmp_path / "FashionMNIST" / "raw"
    shutil.copytree(fashion_root / "FashionMNIST" / "raw", raw)
    victim = raw / "train-labels-idx1-ubyte"
    content = bytearray(victim.read_bytes())
    content[100] = (content[100] + 1) % 10  # one label changed: same size, wrong dataset
    victim.write_bytes(bytes(content))
    with pytest.raises(CorruptDataError, match="train-labels-idx1-ubyte.*wrong contents"):
        ensure_fashion_mnist(tmp_path, download=False, apt=False, debian_dir=tmp_path / "none")


def test_debian_archives_are_unpacked_into_the_cache(tmp_path, fashion_root):
    debian = tmp_path / "debian"
    debian.mkdir()
    for name in data.RAW_FILES:
        with (
            open(fashion_root / "FashionMNIST" / "raw" / name, "rb") as src,
            gzip.open(debian / f"{name}.gz", "wb", compresslevel=1) as dst,
        ):
            shutil.copyfileobj(src, dst)
    root = ensure_fashion_mnist(tmp_path / "cache", download=False, apt=False, debian_dir=debian)
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir()) == sorted(
        data.RAW_FILES
    )


def test_truncated_debian_archive_is_named(tmp_path, fashion_root):
    debian = tmp_path / "debian"
    debian.mkdir()
    for name in data.RAW_FILES:
        blob = gzip.compress((fashion_root / "FashionMNIST" / "raw" / name).read_bytes()[:2000], 1)
        (debian / f"{name}.gz").write_bytes(blob[:-10])
    with pytest.raises(CorruptDataError, match=r"\.gz"):
        ensure_fashion_mnist(tmp_path / "cache", download=False, apt=False, debian_dir=debian)
    assert not list((tmp_path / "cache").rglob("*.part"))  # nothing half-written left behind


def test_real_datasets_have_the_right_sizes(fashion_root):
    train, test = data.fashion_mnist(True, fashion_root), data.fashion_mnist(False, fashion_root)
    assert (len(train), len(test)) == (60_000, 10_000)
    x, label = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= label < 10


def test_resident_loader_is_bitwise_what_totensor_gives(fashion_root):
    test = data.fashion_mnist(False, fashion_root)
    loader = resident_loader(test, batch_size=1000)
    X, y = loader.X, loader.y
    for i in (0, 1, 4321, 9999):
        xi, yi = test[i]
        assert torch.equal(X[i], xi) and int(y[i]) == yi


def test_resident_loader_of_a_subset_keeps_its_rows(fashion_root):
    test = data.fashion_mnist(False, fashion_root)
    part = subset(test, 50, seed=3)
    loader = resident_loader(part, batch_size=7)
    for j in (0, 49):
        xi, yi = test[part.indices[j]]
        assert torch.equal(loader.X[j], xi) and int(loader.y[j]) == yi


def test_seeded_order_repeats_and_changes_each_epoch():
    X, y = torch.arange(20).float().unsqueeze(1), torch.arange(20)

    def orders(seed):
        loader = ResidentLoader(X, y, 6, shuffle=True, seed=seed)
        return [torch.cat([yb for _, yb in loader]).tolist() for _ in range(2)]

    a, b = orders(1), orders(1)
    assert a == b and a[0] != a[1]
    assert sorted(a[0]) == list(range(20))
    assert orders(2) != a


def test_len_and_drop_last():
    X, y = torch.zeros(10, 2), torch.zeros(10)
    assert len(ResidentLoader(X, y, 4)) == 3
    assert len(ResidentLoader(X, y, 4, drop_last=True)) == 2
    assert [len(b) for b, _ in ResidentLoader(X, y, 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="rows"):
        ResidentLoader(X, y[:3], 4)


def test_split_is_seeded_and_disjoint():
    a1, b1 = split(list(range(100)), (0.8, 0.2), seed=5)
    a2, _ = split(list(range(100)), (0.8, 0.2), seed=5)
    assert list(a1.indices) == list(a2.indices)
    assert not set(a1.indices) & set(b1.indices) and len(a1) == 80
    with pytest.raises(ValueError, match="add up to 1"):
        split(list(range(10)), (0.5, 0.2))


def test_book_loaders_split_off_validation_without_leakage(fashion_root, monkeypatch):
    monkeypatch.setenv("IDL_DATA", str(fashion_root))
    loaders = data.book_loaders(64, train_size=1000, val_fraction=0.2, seed=4)
    assert (loaders["train"].n_examples, loaders["val"].n_examples, loaders["test"].n_examples) == (
        800,
        200,
        10_000,
    )
    every = data.fashion_mnist(True, fashion_root)
    chosen = data.subset(every, 1000, seed=4)
    train_part, val_part = data.split(chosen, (0.8, 0.2), seed=4)
    train_ids = {chosen.indices[i] for i in train_part.indices}
    val_ids = {chosen.indices[i] for i in val_part.indices}
    assert not train_ids & val_ids
    # the loaders hold exactly those rows
    assert torch.equal(loaders["val"].X[0], every[chosen.indices[val_part.indices[0]]][0])
