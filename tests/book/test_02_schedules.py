"""Page 02's schedules by hand give PyTorch's rates, and train as the scheduler objects do."""

import pytest
import torch
from lessons import lesson
from torch import nn
from torch.optim.lr_scheduler import ExponentialLR, StepLR

from idlmam.data import ResidentLoader
from idlmam.optim import schedule_lrs
from idlmam.train import train_network
from idlmam.utils import seed_run

PAGE = lesson("02_schedules")


@pytest.mark.parametrize("epochs, gamma", [(15, 0.72), (50, 0.91), (3, 0.5)])
def test_exponential_rate_is_exponential_lr(epochs, gamma):
    by_hand = [PAGE["exponential_rate"](0.1, gamma, t) for t in range(epochs)]
    expected = schedule_lrs(lambda opt: ExponentialLR(opt, gamma), epochs, 0.1)
    assert by_hand == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("epochs, step_size, gamma", [(15, 3, 0.316), (50, 10, 0.1), (7, 1, 0.5)])
def test_step_rate_is_step_lr(epochs, step_size, gamma):
    by_hand = [PAGE["step_rate"](0.1, gamma, step_size, t) for t in range(epochs)]
    expected = schedule_lrs(lambda opt: StepLR(opt, step_size, gamma=gamma), epochs, 0.1)
    assert by_hand == pytest.approx(expected, rel=1e-12)


def test_the_step_rate_would_catch_a_drop_one_epoch_early():
    early = [0.1 * 0.5 ** ((t + 1) // 3) for t in range(9)]  # an off-by-one, by hand
    assert [PAGE["step_rate"](0.1, 0.5, 3, t) for t in range(9)] != pytest.approx(early)


def test_set_rate_in_the_loop_trains_as_the_scheduler_does(tiny_data):
    def trained(by_hand):
        loader = ResidentLoader(*tiny_data, batch_size=20, shuffle=True)
        seed_run(0, loader)
        model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        loss_func = nn.CrossEntropyLoss()
        if not by_hand:
            schedule = ExponentialLR(optimizer, 0.6)
            train_network(
                model, loss_func, loader, epochs=4, optimizer=optimizer, lr_schedule=schedule
            )
            return model
        for epoch in range(4):
            PAGE["set_rate"](optimizer, PAGE["exponential_rate"](0.5, 0.6, epoch))
            for x, y in loader:
                optimizer.zero_grad()
                loss_func(model(x), y).backward()
                optimizer.step()
        return model

    for a, b in zip(trained(True).parameters(), trained(False).parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
