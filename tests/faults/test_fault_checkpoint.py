"""Faults of a training checkpoint: the disk fills while one is written (a real small filesystem
where this machine lets us mount one, and an injected write error everywhere), and a checkpoint
cut at a random byte. Nothing half-written is ever loaded; the previous checkpoint survives."""

from __future__ import annotations

import errno
import random
import shutil
import subprocess
import uuid

import pytest
import torch
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.train import train_network
from idlmam.train.checkpoint import CheckpointError, load_checkpoint

pytestmark = pytest.mark.faults


def train(checkpoint, epochs: int, resume: bool = False, hidden: int = 32):
    """A small run (100 examples) that writes ``checkpoint`` after each epoch."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(100, 1, 28, 28, generator=g)
    y = (X.mean(dim=(1, 2, 3)) * 10 % 10).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return train_network(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 25, shuffle=True, seed=0),
        epochs=epochs,
        checkpoint_file=checkpoint,
        resume=resume,
        disable_tqdm=True,
    )


def check_the_previous_checkpoint_survives(folder, err: pytest.ExceptionInfo, record, **how):
    path = folder / "run.pt"
    message = str(err.value)
    assert str(path) in message and "No space left on device" in message, message
    assert "the previous one is unchanged" in message and "resume=True" in message, message
    assert load_checkpoint(path)["epoch"] == 0  # epoch 1's write failed: epoch 0's is intact
    assert [p.name for p in folder.iterdir()] == ["run.pt"]  # no temporary file left
    record(fault="ENOSPC while a checkpoint is written", lost=0, lines=[message], **how)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs folder with room for one checkpoint of :func:`train` but not for a second beside
    it (an atomic write needs both at once); skipped where mounting is not allowed."""
    train(tmp_path / "probe.pt", epochs=1)
    size = (tmp_path / "probe.pt").stat().st_size
    folder = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    room = (size * 3 // 2 + 4095) // 4096 * 4096
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()[:100]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_full_disk_fails_the_write_and_keeps_the_previous_checkpoint(small_disk, record):
    with pytest.raises(CheckpointError) as err:
        train(small_disk / "run.pt", epochs=3)
    check_the_previous_checkpoint_survives(small_disk, err, record, how="tmpfs of 1.5 files")


def test_an_injected_write_error_keeps_the_previous_checkpoint(tmp_path, monkeypatch, record):
    """torch.save writes half the file, then the disk is full (from the second write on)."""
    real_save, calls = torch.save, []

    def save_until_full(state, fh, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return real_save(state, fh, *args, **kwargs)
        fh.write(b"PK\x03\x04" + b"\0" * 5000)  # the start of a zip, then no more room
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save_until_full)
    with pytest.raises(CheckpointError) as err:
        train(tmp_path / "run.pt", epochs=3)
    monkeypatch.undo()
    check_the_previous_checkpoint_survives(tmp_path, err, record, how="injected")
    train(tmp_path / "run.pt", epochs=3, resume=True)  # space again: the run goes on from there
    assert load_checkpoint(tmp_path / "run.pt")["epoch"] == 2


def test_a_checkpoint_cut_at_a_random_byte_is_named_and_never_loaded(tmp_path, record):
    good = tmp_path / "good.pt"
    train(good, epochs=1)
    data = good.read_bytes()
    rng = random.Random(0)
    cuts = sorted(rng.sample(range(len(data)), 20))
    for cut in cuts:
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.pt cannot be read.*truncated") as err:
            train(path, epochs=2, resume=True)
        assert path.read_bytes() == data[:cut]  # left as it was, for whoever looks into it
    record(
        fault=f"checkpoint cut at {len(cuts)} random bytes of {len(data)}",
        lost=0,
        lines=[str(err.value)],
    )
    shutil.copy(good, tmp_path / "again.pt")
    assert len(train(tmp_path / "again.pt", epochs=2, resume=True)) == 2
