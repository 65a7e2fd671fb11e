r"""The learning-rate range test: one short pass with a growing rate, to choose the rate to train with.

The test is Smith's (2015, arXiv:1506.01186; 2018, arXiv:1803.09820), who raises the rate
linearly over a few epochs and reads the accuracy. The form here is fastai's ``lr_find`` (Howard
and Gugger 2020, arXiv:2002.04688): train for one pass while the learning rate grows
exponentially, one optimizer step per batch, from far too small to far too large, and watch the
loss. It stays flat while the rate is too small to matter, falls steeply once the rate
is large enough, bottoms out, and explodes when the rate is too large. Batch :math:`i` of
:math:`n` trains with

.. math::
    \eta_i = \eta_{min} \left(\frac{\eta_{max}}{\eta_{min}}\right)^{i / (n - 1)},
    \qquad i = 0, \dots, n - 1,

so every batch multiplies the rate by the same factor and the curve is read on a log axis. One
batch's loss is noisy, so the curve is smoothed with a bias-corrected exponential moving average
of the raw losses :math:`\ell_i` (as fastai does):

.. math::
    a_i = \beta a_{i-1} + (1 - \beta) \ell_i, \quad a_{-1} = 0, \qquad
    \bar\ell_i = \frac{a_i}{1 - \beta^{i + 1}}.

The pass stops early once :math:`\bar\ell_i` is more than ``diverge_factor`` times its best
value so far, or not finite: the rest of the curve would only say "exploded".

The test trains the very model and optimizer it is given, then puts everything back (see
:func:`lr_range_test`), so the training that follows is the training that would have run without
it.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads when a test first runs, so `import idlmam.experiments` stays quick
    import pandas as pd
    import torch

__all__ = ["RangeTest", "lr_range_test", "MIN_STEPS"]

MIN_STEPS = 10  # fewer batches than this cannot show a descent, a minimum and an explosion


@dataclass(frozen=True)
class RangeTest:
    """What :func:`lr_range_test` measured: one point per batch trained, and the rate to use.

    Attributes:
        lrs: the learning rate of each batch, growing exponentially.
        losses: the smoothed loss after each batch (bias-corrected moving average).
        raw_losses: each batch's own loss.
        suggestion: the rate to train with: ``lr_at_min / 10``.
        lr_at_min: the rate at the minimum of the smoothed loss.
        explodes_at: the rate at which the pass stopped because the loss exploded, or None when
            it ran to the end.
    """

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    lr_at_min: float
    explodes_at: float | None

    def frame(self) -> pd.DataFrame:
        """One row per batch: ``lr``, ``smoothed loss``, ``raw loss``."""
        import pandas as pd

        return pd.DataFrame(
            {"lr": self.lrs, "smoothed loss": self.losses, "raw loss": self.raw_losses}
        )


class _Curve:
    """The loss curve as it is measured: raw and smoothed values, and whether it exploded."""

    def __init__(self, smoothing: float, diverge_factor: float) -> None:
        self.smoothing, self.diverge_factor = smoothing, diverge_factor
        self.lrs: list[float] = []
        self.raw: list[float] = []
        self.smoothed: list[float] = []
        self.average, self.best, self.exploded = 0.0, math.inf, False

    def add(self, loss: float) -> None:
        beta = self.smoothing
        self.raw.append(loss)
        self.average = beta * self.average + (1 - beta) * loss
        smoothed = self.average / (1 - beta ** len(self.raw))  # bias correction: a_{-1} = 0
        self.smoothed.append(smoothed)
        self.exploded = not math.isfinite(smoothed) or smoothed > self.diverge_factor * self.best
        self.best = min(self.best, smoothed)


def lr_range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_func: Callable,
    train_loader: Iterable,
    *,
    lr_min: float = 1e-6,
    lr_max: float = 10.0,
    steps: int | None = None,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    device: torch.device | str = "cpu",
) -> RangeTest:
    r"""Train one pass with the rate growing exponentially, record the loss, suggest a rate.

    Batch ``i`` of ``steps`` trains with ``lr_min * (lr_max / lr_min) ** (i / (steps - 1))``,
    set on every param group, through the training loop's own pass
    (:func:`idlmam.train.batch_pass`: model in train mode, one ``optimizer`` step per batch).
    The pass stops early once the smoothed loss exceeds ``diverge_factor`` times its best, or is
    not finite.

    **The suggestion** is the rate at the minimum of the smoothed loss divided by ten: a rate on
    the steep descent, about ten times below where the loss turns up and explodes (fastai's
    rule of thumb).
    The minimum of a smoothed curve is a stable point to read; the steepest slope, the other
    common reading, differentiates a noisy curve and depends on where the test starts.

    **Nothing is left changed**, also when the pass raises: the model's weights, buffers
    (batch-norm statistics), gradients and the train/eval mode of each module, the optimizer's
    state (momentum, Adam's moments) and param groups (``lr`` and every other setting), the
    generator deciding the loader's order (a :class:`idlmam.data.ResidentLoader`'s or a
    ``DataLoader``'s) and the global random states (dropout) are saved before and put back
    after. A schedule built on ``optimizer`` is never stepped. Only a loader that keeps its
    place some other way (a plain iterator) stays consumed by the batches the test drew.

    Args:
        model: the network, already on ``device``.
        optimizer: the optimizer that will train it (the curve belongs to it: momentum, Adam
            and plain SGD explode at different rates).
        loss_func: ``loss_func(y_hat, labels)``, a scalar tensor.
        train_loader: yields ``(inputs, labels)`` batches; at least ``MIN_STEPS`` of them.
        lr_min: the first rate, far too small to change the loss.
        lr_max: the last rate, large enough that the loss explodes before it.
        steps: batches in the pass, at most ``len(train_loader)`` (default: one epoch).
        smoothing: :math:`\beta` of the moving average, in ``[0, 1)``; 0 keeps the raw losses.
        diverge_factor: stop once the smoothed loss is this many times its best (above 1).
        device: where the batches go.

    Returns:
        A :class:`RangeTest` with one point per batch trained and the ``suggestion``.

    Raises:
        ValueError: rates not ``0 < lr_min < lr_max``, ``smoothing`` outside ``[0, 1)``,
            ``diverge_factor`` not above 1, or fewer than ``MIN_STEPS`` batches (before any
            training); the first batch's loss not finite (after the pass, all put back).

    Warns:
        UserWarning: the minimum is the first point (``lr_min`` was already too large) or the
            loss never turned up (``lr_max`` was too small): the suggestion is not on a
            descent; widen the range.

    Example:
        >>> import torch
        >>> from idlmam.data import ResidentLoader
        >>> _ = torch.manual_seed(0)
        >>> X = torch.randn(512, 4); y = X @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        >>> model = torch.nn.Linear(4, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        >>> result = lr_range_test(model, optimizer, torch.nn.MSELoss(),
        ...                        ResidentLoader(X, y, 8, shuffle=True), lr_min=1e-4)
        >>> result.lrs[0], result.explodes_at is not None, 0.05 < result.suggestion < 0.5
        (0.0001, True, True)
        >>> optimizer.param_groups[0]["lr"]  # put back
        0.01
    """
    from ..train import batch_pass

    steps = _check(train_loader, lr_min, lr_max, steps, smoothing, diverge_factor)
    lrs = [lr_min * (lr_max / lr_min) ** (i / (steps - 1)) for i in range(steps)]
    curve = _Curve(smoothing, diverge_factor)

    def loss_of(y_hat, labels):  # the pass's loss, recorded batch by batch
        loss = loss_func(y_hat, labels)
        curve.add(loss.item())  # one wait for the device per batch: the curve needs each value
        return loss

    def batches() -> Iterator:  # batch_pass asks for batch i + 1 only after step i is taken
        for lr, batch in zip(lrs, train_loader):
            if curve.exploded:
                return
            for group in optimizer.param_groups:
                group["lr"] = lr
            curve.lrs.append(lr)
            yield batch

    with _put_back(model, optimizer, train_loader, device):
        batch_pass(model, optimizer, batches(), loss_of, device, keep_outputs=False, name="train")

    finite = [i for i, loss in enumerate(curve.smoothed) if math.isfinite(loss)]
    if not finite:
        raise ValueError(
            f"the loss of the first batch was {curve.raw[0]} at lr {lrs[0]:g}: the model, the "
            "loss or the data gives no finite loss at all, whatever the rate; fix that first"
        )
    lowest = min(finite, key=curve.smoothed.__getitem__)
    if lowest == 0 or (lowest == len(curve.lrs) - 1 and not curve.exploded):
        too = "lr_min was already too large" if lowest == 0 else "lr_max was too small"
        warnings.warn(
            f"the smoothed loss has its minimum at the {'first' if lowest == 0 else 'last'} "
            f"rate ({curve.lrs[lowest]:g}): {too}, so the suggestion is not on a descent. "
            "Run again with a wider range (lr_min / 100 or lr_max * 100)",
            UserWarning,
            stacklevel=2,
        )
    return RangeTest(
        lrs=curve.lrs,
        losses=curve.smoothed,
        raw_losses=curve.raw,
        suggestion=curve.lrs[lowest] / 10,
        lr_at_min=curve.lrs[lowest],
        explodes_at=curve.lrs[-1] if curve.exploded else None,
    )


@contextmanager
def _put_back(model, optimizer, train_loader, device) -> Iterator[None]:
    """Save everything the test changes; load it back afterwards, also after an exception."""
    import torch

    from ..train.checkpoint import loader_generators
    from ..train.loop import set_train_mode
    from ..utils import rng_state, set_rng_state

    model_state = copy.deepcopy(model.state_dict())  # weights and buffers (batch-norm statistics)
    optimizer_state = copy.deepcopy(optimizer.state_dict())  # its state and every group's lr
    modes = [module.training for module in model.modules()]
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    generators = loader_generators([train_loader])  # the loader's order
    random_state = rng_state(generators, cuda=torch.device(device).type == "cuda")
    set_train_mode(model, optimizer, True)  # an optimizer with modes must train in train mode
    try:
        yield
    finally:
        model.load_state_dict(model_state)  # copies into the same tensors the optimizer holds
        optimizer.load_state_dict(optimizer_state)
        for module, training in zip(model.modules(), modes):
            module.training = training
        for parameter, grad in zip(model.parameters(), grads):
            parameter.grad = grad
        set_rng_state(random_state, generators)


def _check(train_loader, lr_min, lr_max, steps, smoothing, diverge_factor) -> int:
    """Refuse bad arguments before any training; return the number of batches in the pass."""
    if not (0 < lr_min < lr_max < math.inf):
        raise ValueError(
            f"need 0 < lr_min < lr_max, got lr_min={lr_min!r}, lr_max={lr_max!r}: the rate "
            "grows from lr_min to lr_max (e.g. lr_min=1e-6, lr_max=10)"
        )
    if not 0 <= smoothing < 1:
        raise ValueError(
            f"smoothing must be in [0, 1), got {smoothing!r}: 0.98 averages over about 50 "
            "batches, 0 keeps the raw losses"
        )
    if not diverge_factor > 1:
        raise ValueError(
            f"diverge_factor must be above 1, got {diverge_factor!r}: the pass stops once the "
            "smoothed loss is this many times its best (e.g. 4)"
        )
    batches = len(train_loader) if hasattr(train_loader, "__len__") else None
    if steps is None and batches is None:
        raise ValueError("train_loader has no len(): pass steps=, the number of batches to run")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
        raise ValueError(f"steps must be an int or None, got {steps!r}")
    if steps is not None and batches is not None and steps > batches:
        raise ValueError(
            f"steps={steps} but train_loader has {batches} batches: the test is one pass, so "
            f"pass steps <= {batches}, or a smaller batch size for more batches"
        )
    steps = batches if steps is None else steps
    if steps < MIN_STEPS:
        raise ValueError(
            f"the range test needs at least {MIN_STEPS} batches, got {steps}: use a smaller "
            "batch size (or more data) so one pass has enough steps for a curve"
        )
    return steps
