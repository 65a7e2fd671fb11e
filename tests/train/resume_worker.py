"""A small training run for the kill-and-resume test in ``tests/test_train.py``.

``python tests/resume_worker.py CHECKPOINT MARKER EPOCH [EVERY]`` trains the run
:func:`run_kwargs` builds (its schedule stepped every ``EVERY``, ``epoch`` or ``batch``), with
``checkpoint_file=CHECKPOINT, resume=True``. After epoch EPOCH has finished (and
its checkpoint is written) it stalls in the middle of the next epoch, at its second training
batch, writes MARKER and sleeps, waiting for the test to kill it with SIGKILL.

The test imports :func:`run_kwargs` to resume in-process and to train the uninterrupted
reference, so the three runs are built the same way. The run draws from every source of
randomness the checkpoint must restore: a shuffled loader with its own generator, dropout
(torch), and input noise scaled by Python's ``random`` and NumPy's global generator.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.train import train_network
from idlmam.utils import set_seed

EPOCHS = 6


class Jitter(nn.Module):
    """Noise on the inputs while training, drawn from Python, NumPy and torch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        scale = 0.05 * (random.random() + float(np.random.rand()))
        return x + scale * torch.randn_like(x)


class Stall(nn.Module):
    """The identity, until ``armed``: then its second training call writes ``marker`` and sleeps."""

    def __init__(self, marker: str | None = None) -> None:
        super().__init__()
        self.marker, self.armed, self.calls = marker, False, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.armed:
            self.calls += 1
            if self.calls == 2:
                Path(self.marker).write_text("stalled mid-epoch\n")
                time.sleep(120)  # the test kills us long before this ends
        return x


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float((y_true == y_pred).mean())


def run_kwargs(stall: Stall | None = None, every: str = "epoch") -> dict:
    """Everything ``train_network`` needs for the run, built from fixed seeds.

    ``every="batch"``: a schedule stepped after every batch, which changes the rate within an
    epoch (4 batches per epoch, a step down every 3), so a kill mid-epoch interrupts it.
    """
    torch.set_num_threads(1)  # as tests/conftest.py: the same kernels, the same sums
    set_seed(0)
    g = torch.Generator().manual_seed(1)
    X = torch.rand(96, 8, generator=g)
    y = (X[:, :4].sum(1) > X[:, 4:].sum(1)).long()  # (96,)
    model = nn.Sequential(
        stall or Stall(), Jitter(), nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 2)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    schedule = (
        torch.optim.lr_scheduler.StepLR(optimizer, 2, gamma=0.5)
        if every == "epoch"
        else torch.optim.lr_scheduler.StepLR(optimizer, 3, gamma=0.8)
    )
    return dict(
        model=model,
        loss_func=nn.CrossEntropyLoss(),
        train_loader=ResidentLoader(X[:64], y[:64], 16, shuffle=True, seed=2),
        val_loader=ResidentLoader(X[64:], y[64:], 16),
        score_funcs={"Accuracy": accuracy},
        epochs=EPOCHS,
        optimizer=optimizer,
        lr_schedule=schedule,
        lr_schedule_every=every,
        disable_tqdm=True,
    )


def main(checkpoint: str, marker: str, stall_after: int, every: str = "epoch") -> int:
    stall = Stall(marker)

    def arm(epoch: int, row: dict) -> None:
        stall.armed = epoch == stall_after

    train_network(
        **run_kwargs(stall, every), checkpoint_file=checkpoint, resume=True, on_epoch_end=arm
    )
    print("resume_worker: finished without being killed", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5]))
