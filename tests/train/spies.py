"""Spies for the loop tests: what an optimizer and a loader see of a run, on either engine.

* :class:`RecordingSGD` writes down the learning rate of every step it takes;
* :class:`ModeSGD` has ``train()`` and ``eval()`` like a schedule-free optimizer, but they only
  write down when they are called and in which mode the model is at that moment;
* :class:`EvalSpy` is a loader that writes down the optimizer's mode when it is evaluated.

All three write into one :class:`Recorder`, so a test reads the order of events of a whole run.
"""

from __future__ import annotations

import torch

from idlmam.data import ResidentLoader


class Recorder:
    """The events of a run, in order; ``model`` is the module being trained (set by the test)."""

    def __init__(self) -> None:
        self.events: list = []
        self.model: torch.nn.Module | None = None
        self.optimizer: ModeSGD | None = None


class RecordingSGD(torch.optim.SGD):
    """SGD that appends the rate of every step it takes to ``rates``."""

    def __init__(self, params, lr: float, rates: list[float]) -> None:
        super().__init__(params, lr=lr)
        self.rates = rates

    def step(self, closure=None):
        self.rates.append(self.param_groups[0]["lr"])
        return super().step(closure)


class ModeSGD(torch.optim.SGD):
    """SGD with modes that change no weight: ``("train"|"eval", model.training)`` per switch,
    ``"step in <mode> mode"`` per step. It starts in eval mode, as ``AdamWScheduleFree``."""

    def __init__(self, params, recorder: Recorder, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self.recorder, self.mode = recorder, "eval"
        recorder.optimizer = self

    def train(self) -> None:
        self.mode = "train"
        self.recorder.events.append(("train", self.recorder.model.training))

    def eval(self) -> None:
        self.mode = "eval"
        self.recorder.events.append(("eval", self.recorder.model.training))

    def step(self, closure=None):
        self.recorder.events.append(f"step in {self.mode} mode")
        return super().step(closure)


class EvalSpy(ResidentLoader):
    """A loader that appends ``("evaluate <name>", optimizer mode)`` when it is evaluated."""

    def __init__(self, X, y, batch_size: int, recorder: Recorder, name: str) -> None:
        super().__init__(X, y, batch_size)
        self.recorder, self.name = recorder, name

    def eval_batches(self, batch_size: int = 1024):
        self.recorder.events.append((f"evaluate {self.name}", self.recorder.optimizer.mode))
        return super().eval_batches(batch_size)
