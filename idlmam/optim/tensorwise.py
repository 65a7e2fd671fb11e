"""What Shampoo and SOAP share: a step that updates each parameter tensor on its own, and a
weight seen as one matrix per output."""

from __future__ import annotations

import torch

__all__ = ["TensorwiseOptimizer", "as_matrix"]


def as_matrix(x: torch.Tensor) -> torch.Tensor:
    """``(out, in, *kernel)`` as ``(out, in * kernel)``: a convolution's filters as one matrix."""
    return x.reshape(x.shape[0], -1)


class TensorwiseOptimizer(torch.optim.Optimizer):
    """A torch optimizer whose step updates every parameter with a gradient by itself.

    A subclass writes ``_step_one(p, group)``, the update of one tensor ``p`` of ``group``.
    """

    @torch.no_grad()
    def step(self, closure=None):
        """Take one step; ``closure`` (re-evaluates the loss) is optional, as in torch.optim."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._step_one(p, group)
        return loss

    def _step_one(self, p: torch.Tensor, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _step_one(p, group)")
