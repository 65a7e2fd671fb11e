"""Page 01's hand-written loop trains the network exactly as the package's `train_network`."""

import pytest
import torch
from lessons import lesson
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.train import train_network
from idlmam.utils import seed_run

PAGE = lesson("01_two_parts")


def _net():
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), nn.Tanh(), nn.Linear(16, 10))


def _trained(tiny_data, by_hand, epochs=3):
    loader = ResidentLoader(*tiny_data, batch_size=16, shuffle=True, seed=5)
    seed_run(0, loader)
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loss = nn.CrossEntropyLoss()
    if by_hand:
        PAGE["train_by_hand"](model, loss, loader, optimizer, schedule, epochs)
    else:
        train_network(model, loss, loader, epochs=epochs, optimizer=optimizer, lr_schedule=schedule)
    return model, optimizer


def test_the_pages_loop_ends_with_the_weights_train_network_ends_with(tiny_data):
    by_hand, opt_hand = _trained(tiny_data, by_hand=True)
    packaged, opt_pack = _trained(tiny_data, by_hand=False)
    for a, b in zip(by_hand.parameters(), packaged.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert opt_hand.param_groups[0]["lr"] == opt_pack.param_groups[0]["lr"] == 0.5 / 2**3


def test_the_comparison_can_fail_a_loop_that_steps_the_schedule_every_batch(tiny_data):
    def every_batch(model, loss_func, loader, optimizer, schedule, epochs):
        for _ in range(epochs):
            for x, y in loader:
                optimizer.zero_grad()
                loss_func(model(x), y).backward()
                optimizer.step()
                schedule.step()  # L on G's clock: the wrong loop
        return model

    original = PAGE["train_by_hand"]
    PAGE["train_by_hand"] = every_batch
    try:
        wrong, _ = _trained(tiny_data, by_hand=True)
    finally:
        PAGE["train_by_hand"] = original
    packaged, _ = _trained(tiny_data, by_hand=False)
    with pytest.raises(AssertionError):
        for a, b in zip(wrong.parameters(), packaged.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
