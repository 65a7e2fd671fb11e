"""The per-tensor step Shampoo and SOAP share: which tensors it visits, the closure, the contract."""

import pytest
import torch

from idlmam.optim import TensorwiseOptimizer
from idlmam.optim.tensorwise import as_matrix


class HalfStep(TensorwiseOptimizer):
    """Moves each tensor by lr times its gradient, and logs which tensors it saw."""

    def __init__(self, params, lr=0.5):
        super().__init__(params, dict(lr=lr))
        self.seen = []

    def _step_one(self, p, group):
        self.seen.append(p)
        p.sub_(group["lr"] * p.grad)


def test_every_tensor_with_a_gradient_is_stepped_once_and_the_others_left_alone():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    opt = HalfStep([{"params": [a]}, {"params": [b], "lr": 0.25}])
    a.grad = torch.full((2,), 2.0)
    opt.step()
    assert opt.seen == [a] and a.tolist() == [0.0, 0.0] and b.tolist() == [1.0, 1.0, 1.0]
    b.grad = torch.full((3,), 2.0)
    opt.step()
    assert b.tolist() == [0.5, 0.5, 0.5]  # its own group's rate


def test_the_closure_is_evaluated_with_gradients_and_its_loss_returned():
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = HalfStep([w])

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()  # needs grad mode, which step turns off around the updates
        return loss

    assert opt.step(closure).item() == 9.0 and w.item() == 0.0  # 3 - 0.5 * 6
    assert opt.step() is None


def test_a_subclass_without_its_update_says_what_is_missing():
    class Empty(TensorwiseOptimizer):
        pass

    w = torch.nn.Parameter(torch.ones(1))
    w.grad = torch.ones(1)
    with pytest.raises(NotImplementedError, match=r"Empty must define _step_one\(p, group\)"):
        Empty([w], dict(lr=1.0)).step()


def test_filters_become_one_row_per_output():
    assert as_matrix(torch.zeros(3, 2, 2, 2)).shape == (3, 8)
    assert as_matrix(torch.zeros(4, 5)).shape == (4, 5)
