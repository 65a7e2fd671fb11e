"""Schedules stepped per epoch: exponential, cosine that ends on a dip, the book's floor."""

import math

import pytest
import torch

from idlmam.optim import cosine_t_max, eta_min_for, exponential_gamma


@pytest.mark.parametrize(
    "eta_0,eta_min,epochs", [(0.1, 0.0001, 50), (0.001, 0.0001, 50), (1.0, 0.5, 3)]
)
def test_exponential_gamma_reaches_eta_min(eta_0, eta_min, epochs):
    gamma = exponential_gamma(eta_0, eta_min, epochs)
    assert math.isclose(eta_0 * gamma**epochs, eta_min, rel_tol=1e-12)


def test_exponential_gamma_rejects_a_rise():
    with pytest.raises(ValueError, match="eta_min < eta_0"):
        exponential_gamma(0.001, 0.01, 10)


@pytest.mark.parametrize("epochs,dips", [(50, 2), (50, 3), (45, 5), (10, 1), (7, 2), (20, 5)])
def test_cosine_schedule_ends_on_a_dip(epochs, dips):
    from idlmam.plotting import schedule_lrs

    t_max = cosine_t_max(epochs, dips)
    lrs = schedule_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, t_max, eta_min=0.0), epochs, 0.1
    )
    minima = [t for t, lr in enumerate(lrs) if lr < 1e-12]
    assert minima[dips - 1] == (2 * dips - 1) * t_max  # the asked-for dips all happen in the run
    assert len(minima) in (dips, dips + 1)  # (one more only when it falls on the very last epoch)
    assert max(lrs[minima[-1] :]) < 0.1 * 0.5  # the run ends low: after the last dip no rise


def test_cosine_t_max_refuses_too_many_dips():
    with pytest.raises(ValueError, match="need at least"):
        cosine_t_max(5, 3)


# A cosine schedule that ends on its last dip, for any epoch count -----------------------------

ETA_0, ETA_MIN = 0.1, 0.001


SHAPES = [(epochs, dips) for dips in range(1, 16) for epochs in range(4 * dips, 61)]


def local_minima(lrs: list[float]) -> int:
    """Dips: epochs lower than the one before and not higher than the one after (or last)."""
    return sum(
        1
        for t in range(1, len(lrs))
        if lrs[t] < lrs[t - 1] and (t == len(lrs) - 1 or lrs[t] <= lrs[t + 1])
    )


@pytest.mark.parametrize("epochs, dips", SHAPES)
def test_cosine_schedule_ends_on_its_last_dip_for_any_epochs(epochs, dips):
    from idlmam.optim import cosine_schedule, schedule_lrs

    lrs = schedule_lrs(lambda o: cosine_schedule(o, epochs, dips, eta_min=ETA_MIN), epochs, ETA_0)
    assert lrs[-1] - ETA_MIN <= 0.1 * (ETA_0 - ETA_MIN)  # the last epoch trains near the floor
    assert local_minima(lrs) == dips
    assert min(lrs) >= ETA_MIN * (1 - 1e-9) and lrs[0] == pytest.approx(ETA_0)
    after = schedule_lrs(
        lambda o: cosine_schedule(o, epochs, dips, eta_min=ETA_MIN), epochs + 3, ETA_0
    )
    assert after[epochs:] == pytest.approx([ETA_MIN] * 3)  # stepping on past the end holds


def test_cosine_schedule_is_the_half_cosine_between_its_turns_by_hand():
    from idlmam.optim import cosine_extremes, cosine_schedule, schedule_lrs

    assert cosine_extremes(15, 2) == [0, 5, 9, 14]
    lrs = schedule_lrs(lambda o: cosine_schedule(o, 15, 2, eta_min=ETA_MIN), 15, ETA_0)
    # epoch 2 of the first descent (0 -> 5): eta_min + (eta_0 - eta_min) * (1 + cos(2 pi / 5)) / 2
    assert lrs[2] == pytest.approx(
        ETA_MIN + (ETA_0 - ETA_MIN) * (1 + math.cos(2 * math.pi / 5)) / 2
    )
    assert lrs[5] == pytest.approx(ETA_MIN) and lrs[9] == pytest.approx(ETA_0)
    assert lrs[14] == pytest.approx(ETA_MIN)


def test_cosine_schedule_refuses_what_it_cannot_draw():
    from idlmam.optim import cosine_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=ETA_0)
    with pytest.raises(ValueError, match="2 dips need at least 4 epochs"):
        cosine_schedule(opt, 3, 2, eta_min=ETA_MIN)
    with pytest.raises(ValueError, match="eta_min < the initial rate"):
        cosine_schedule(opt, 10, 1, eta_min=0.5)


def test_the_books_floor_is_a_hundredth_of_the_start_and_never_zero():
    assert eta_min_for(0.1) == pytest.approx(0.001)
    assert eta_min_for(3e-4) == pytest.approx(3e-6) and eta_min_for(3e-4) > 0
    with pytest.raises(ValueError, match="positive"):
        eta_min_for(0.0)
