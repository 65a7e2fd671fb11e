"""Faults of the Fashion-MNIST cache: a file cut short, and a file altered at one byte. A worker
started on either stops with one line naming the file, and trains on nothing."""

from __future__ import annotations

import pytest
from faultkit import PREFIX, Worker, create, observe, tune

from idlmam.data import RAW_FILES

pytestmark = pytest.mark.faults

VICTIM = "train-labels-idx1-ubyte"


def damaged_cache(fashion_root, folder, damage):
    raw = folder / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        source = fashion_root / "FashionMNIST" / "raw" / name
        if name == VICTIM:
            (raw / name).write_bytes(damage(source.read_bytes()))
        else:
            (raw / name).symlink_to(source.resolve())
    return folder


def cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def altered(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[1000] = (changed[1000] + 1) % 10  # one label, another class: same size
    return bytes(changed)


@pytest.mark.parametrize(
    "damage, says", [(cut, "30004 bytes, expected"), (altered, "wrong contents")]
)
def test_a_damaged_data_file_is_named_and_never_used(
    damage, says, fashion_root, env, tmp_path, record
):
    data = damaged_cache(fashion_root, tmp_path / "data", damage)
    url = f"journal:///{tmp_path}/study.log"
    create(url, "data")
    worker = Worker(tune(url, "data", 2), dict(env, IDL_DATA=str(data)), tmp_path / "w.log")
    assert worker.finish(120) == 1, worker.text()[-3000:]
    worker.assert_no_traceback()
    (line,) = worker.said()
    assert line.startswith(f"{PREFIX}error: {data / 'FashionMNIST' / 'raw' / VICTIM} has ")
    assert says in line and "python -m idlmam.data" in line, line
    assert observe(url, "data").trials == []  # nothing trained on it
    record(fault=f"cached {VICTIM} {damage.__name__}", lost=0, lines=[line])
