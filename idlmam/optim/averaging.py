"""Weight averaging along a run: any optimizer, plus an exponential moving average of its weights.

Instead of decaying the rate at the end, a run can keep a constant rate and average the weights
it visits: the average sits nearer the bottom of the valley the iterates bounce around in
(Hägele et al. 2024, arXiv:2405.18392, use it as a stand-in for the cooldown). :class:`WeightEMA`
keeps that average inside the optimizer and shows it through the ``train()`` / ``eval()`` modes
that the book's loop already switches for schedule-free AdamW, so every evaluation, checkpoint and
returned model sees the average while every step trains the live weights.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

__all__ = ["WeightEMA", "ema_decay_for"]


def ema_decay_for(horizon_steps: float) -> float:
    r"""The decay :math:`\beta = 1 - 1 / H` of an average that remembers about ``H`` steps.

    A weight :math:`k` steps old counts :math:`\beta^k` as much as the newest one, so after
    :math:`H` steps it counts :math:`(1 - 1/H)^H \approx e^{-1}`: :math:`H` is the average's
    horizon. Giving the horizon in steps (one epoch, say) keeps the average's reach the same
    when the batch size or the data change.

    Raises:
        ValueError: ``horizon_steps`` not above 1.

    Example:
        >>> ema_decay_for(50)
        0.98
    """
    if not horizon_steps > 1:
        raise ValueError(f"horizon_steps must be above 1 (steps remembered), got {horizon_steps}")
    return 1.0 - 1.0 / horizon_steps


class WeightEMA(torch.optim.Optimizer):
    r"""``optimizer``, plus an exponential moving average of the weights it produces.

    After every step of ``optimizer`` the average :math:`\bar\Theta` moves towards the new
    weights, with ``torch.optim.swa_utils.get_ema_multi_avg_fn`` (the update
    ``AveragedModel`` uses):

    .. math::
        \bar\Theta_t = \beta\, \bar\Theta_{t-1} + (1 - \beta)\, \Theta_t,
        \qquad \bar\Theta_1 = \Theta_1

    ``eval()`` puts :math:`\bar\Theta` into the parameters (and keeps the live weights aside),
    ``train()`` puts the live weights back, so steps always train the live weights.
    :func:`idlmam.train.train_network` and the stacked path call both around every evaluation,
    as for schedule-free optimizers; the mode is saved in the state dict, so checkpoints
    (written in eval mode) resume exactly. ``param_groups`` and ``state`` are ``optimizer``'s
    own, so a schedule built on this object sets its rates. Buffers (batch-norm statistics)
    are not averaged: recompute them at the averaged weights before trusting an evaluation.

    Args:
        optimizer: the optimizer that trains (its ``step`` must not be wrapped already by
            another object with modes).
        decay: :math:`\beta` in :math:`(0, 1)`; :func:`ema_decay_for` turns a horizon in steps
            into it.

    Raises:
        ValueError: ``decay`` not in :math:`(0, 1)`, or ``optimizer`` with modes of its own
            (schedule-free: it averages already).
        RuntimeError: ``step()`` in eval mode (call ``train()`` first).

    Example:
        >>> w = torch.nn.Parameter(torch.tensor([0.0]))
        >>> optimizer = WeightEMA(torch.optim.SGD([w], lr=1.0), decay=0.5)
        >>> for _ in range(2):
        ...     w.grad = torch.tensor([-1.0]); optimizer.step()   # w: 1, then 2
        >>> optimizer.eval(); w.item()    # 0.5 * 1 + 0.5 * 2
        1.5
        >>> optimizer.train(); w.item()   # the live weight again
        2.0
    """

    def __init__(self, optimizer: torch.optim.Optimizer, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay} (see ema_decay_for)")
        if callable(getattr(optimizer, "train", None)) or callable(
            getattr(optimizer, "eval", None)
        ):
            raise ValueError(
                f"{type(optimizer).__name__} has train()/eval() modes of its own (it averages "
                "already); wrap a plain optimizer such as torch.optim.AdamW"
            )
        self.inner = optimizer
        self.decay = float(decay)
        self._update = get_ema_multi_avg_fn(self.decay)
        super().__init__(optimizer.param_groups, dict(optimizer.defaults, ema_eval=False))
        for group in self.param_groups:
            group.setdefault("ema_eval", False)
        self.inner.state = self.state  # one state: the inner's entries plus "ema"

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "inner": self.inner, "decay": self.decay}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)  # load_state_dict ends here, with new groups and state
        if "inner" in self.__dict__:
            self.inner.param_groups = self.param_groups
            self.inner.state = self.state
            self._update = get_ema_multi_avg_fn(self.decay)

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _evaluating(self) -> bool:
        return bool(self.param_groups[0]["ema_eval"])

    @torch.no_grad()
    def _swap(self, evaluating: bool) -> None:
        if self._evaluating() == evaluating:
            return
        for p in self._params():
            if "ema" in self.state[p]:
                held = self.state[p]["ema"]
                live = p.detach().clone()
                p.copy_(held)
                held.copy_(live)  # the slot now keeps what the parameter no longer shows
        for group in self.param_groups:
            group["ema_eval"] = evaluating

    def eval(self) -> None:
        """Show the averaged weights (no-op when already in eval mode)."""
        self._swap(True)

    def train(self) -> None:
        """Show the live weights again, ready for ``step()`` (no-op when already training)."""
        self._swap(False)

    @torch.no_grad()
    def step(self, closure=None):
        """Step ``optimizer``, then move the average; ``closure`` is optional."""
        if self._evaluating():
            raise RuntimeError(
                "WeightEMA.step() in eval mode would train the averaged weights: call train() first"
            )
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.inner.step()
        params = [p for p in self._params() if p.grad is not None]
        old = [p for p in params if "ema" in self.state[p]]
        for p in params:
            if "ema" not in self.state[p]:  # its first step: the average starts at it
                self.state[p]["ema"] = p.detach().clone()
        if old:
            self._update([self.state[p]["ema"] for p in old], [p.detach() for p in old], None)
        return loss
