"""Schedules stepped per batch: closed forms, torch oracles, phases, errors."""

import pytest
import torch

from idlmam import optim as ours

# Schedules stepped per batch: closed forms, torch oracles, phases, errors ---------------------


def test_schedule_factors_at_hand_picked_steps():
    from idlmam.optim import (
        cooldown_factor,
        warmup_cosine_factor,
        warmup_factor,
        warmup_linear_factor,
        wsd_factor,
    )

    assert [warmup_factor(t, 3) for t in (0, 1, 2, 3, 50)] == pytest.approx([1 / 3, 2 / 3, 1, 1, 1])
    assert warmup_factor(0, 0) == warmup_factor(0, 1) == 1.0
    # T=10, W=3, r=0.1: the peak at step 2, then p = (t - 2) / 7
    cosine = [warmup_cosine_factor(t, 10, 3, eta_min_ratio=0.1) for t in (0, 1, 2, 3, 5, 9, 12)]
    # step 3: 0.1 + 0.45 (1 + cos(pi/7)); step 5: 0.1 + 0.45 (1 + cos(3 pi/7))
    expected = [1 / 3, 2 / 3, 1.0, 0.9554359905560885, 0.6501344202803414, 0.1, 0.1]
    assert cosine == pytest.approx(expected, abs=1e-12)
    linear = [warmup_linear_factor(t, 10, 3, eta_min_ratio=0.1) for t in (2, 5, 9, 12)]
    assert linear == pytest.approx([1.0, 1 - 0.9 * 3 / 7, 0.1, 0.1], abs=1e-12)
    # T=10, W=2, D=4, r=0.1: peak on steps 1..5, cooldown on 6..9: 1 - 0.9 sqrt((t - 5) / 4)
    wsd = [wsd_factor(t, 10, 2, 4, eta_min_ratio=0.1, shape="sqrt") for t in range(10)] + [
        wsd_factor(15, 10, 2, 4, eta_min_ratio=0.1, shape="sqrt")
    ]
    expected = [0.5, 1, 1, 1, 1, 1, 0.55, 0.36360389693210715, 0.22057713659400524, 0.1, 0.1]
    assert wsd == pytest.approx(expected, abs=1e-12)
    assert wsd_factor(7, 10, 2, 4, eta_min_ratio=0.1, shape="linear") == pytest.approx(0.55)
    assert [cooldown_factor(t, 4) for t in (0, 1, 3, 10)] == pytest.approx(
        [0.5, 0.2928932188134524, 0.0, 0.0], abs=1e-12
    )
    assert [cooldown_factor(t, 4, shape="linear") for t in (0, 1, 3, 10)] == pytest.approx(
        [0.75, 0.5, 0.0, 0.0]
    )


ETA_0_BATCH = 0.1


BATCH_SCHEDULES = {  # name -> (builder, factor, total steps, options)
    "cosine": ("warmup_cosine", "warmup_cosine_factor", (50, 10), {}),
    "cosine_no_warmup": ("warmup_cosine", "warmup_cosine_factor", (7, 0), {}),
    "linear": ("warmup_linear_decay", "warmup_linear_factor", (40, 5), {}),
    "linear_warmup_1": ("warmup_linear_decay", "warmup_linear_factor", (2, 1), {}),
    "wsd_sqrt": ("wsd_schedule", "wsd_factor", (60, 6, 12), dict(shape="sqrt")),
    "wsd_linear": ("wsd_schedule", "wsd_factor", (60, 6, 12), dict(shape="linear")),
    "wsd_all_decay": ("wsd_schedule", "wsd_factor", (20, 0, 19), dict(shape="sqrt")),
    "wsd_no_stable": ("wsd_schedule", "wsd_factor", (20, 5, 15), dict(shape="linear")),
}


def _batch_lrs(case, eta_min, extra=5):
    from idlmam import optim

    builder, factor, steps, options = BATCH_SCHEDULES[case]
    lrs = optim.schedule_lrs(
        lambda o: getattr(optim, builder)(o, *steps, eta_min=eta_min, **options),
        steps[0] + extra,
        ETA_0_BATCH,
    )
    closed = [
        ETA_0_BATCH
        * getattr(optim, factor)(t, *steps, eta_min_ratio=eta_min / ETA_0_BATCH, **options)
        for t in range(steps[0] + extra)
    ]
    return lrs, closed, steps


@pytest.mark.parametrize("eta_min", [0.0, 0.002])
@pytest.mark.parametrize("case", sorted(BATCH_SCHEDULES))
def test_batch_schedule_is_its_closed_form_and_keeps_its_phases(case, eta_min):
    lrs, closed, steps = _batch_lrs(case, eta_min)
    total, warmup = steps[0], steps[1]
    decay = steps[2] if len(steps) == 3 else total - max(warmup, 1)
    assert lrs == pytest.approx(closed, abs=1e-12)
    assert lrs[0] == pytest.approx(ETA_0_BATCH / max(warmup, 1)) and lrs[0] > 0
    assert all(eta_min - 1e-12 <= lr <= ETA_0_BATCH + 1e-12 for lr in lrs)
    rising, peak, falling = (
        lrs[:warmup],
        lrs[max(warmup, 1) - 1 : total - decay],
        lrs[total - decay : total],
    )
    assert all(x < y for x, y in zip(rising, rising[1:]))
    assert peak and peak == pytest.approx([ETA_0_BATCH] * len(peak))
    assert all(x > y for x, y in zip([peak[-1]] + falling, falling))  # each decay step lower
    assert lrs[total - 1] == pytest.approx(eta_min, abs=1e-12)  # the last step at the floor
    assert lrs[total:] == pytest.approx([eta_min] * (len(lrs) - total), abs=1e-12)  # and after


@pytest.mark.parametrize("warmup", [0, 1])
@pytest.mark.parametrize("total", [2, 9, 50])
def test_warmup_cosine_without_warmup_is_cosine_annealing(total, warmup):
    from idlmam.optim import schedule_lrs, warmup_cosine

    ours_lrs = schedule_lrs(lambda o: warmup_cosine(o, total, warmup, eta_min=0.001), total, 0.1)
    theirs = schedule_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, total - 1, eta_min=0.001),
        total,
        0.1,
    )
    assert ours_lrs == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("total", [2, 9, 50])
def test_warmup_linear_decay_without_warmup_is_linear_lr(total):
    from idlmam.optim import schedule_lrs, warmup_linear_decay

    ours_lrs = schedule_lrs(lambda o: warmup_linear_decay(o, total, 0), total + 3, 0.1)
    theirs = schedule_lrs(
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.0, total_iters=total - 1),
        total + 3,
        0.1,
    )
    assert ours_lrs == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("total,warmup", [(30, 0), (30, 1), (30, 7), (8, 7)])
def test_wsd_without_a_stable_phase_is_warmup_linear_decay(total, warmup):
    from idlmam.optim import schedule_lrs, warmup_linear_decay, wsd_schedule

    decay = total - max(warmup, 1)
    wsd = schedule_lrs(
        lambda o: wsd_schedule(o, total, warmup, decay, eta_min=0.01, shape="linear"), total, 0.1
    )
    linear = schedule_lrs(lambda o: warmup_linear_decay(o, total, warmup, eta_min=0.01), total, 0.1)
    assert wsd == pytest.approx(linear, abs=1e-12)


@pytest.mark.parametrize("branch", [4, 10, 25])  # from the end of the warmup on
@pytest.mark.parametrize("shape", ["sqrt", "linear"])
def test_a_cooldown_branched_off_the_trunk_is_the_wsd_schedule(branch, shape):
    from idlmam.optim import cooldown_schedule, schedule_lrs, warmup_constant, wsd_schedule

    warmup, decay, eta_min = 4, 6, 0.002
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    trunk, lrs = warmup_constant(optimizer, warmup), []
    for _ in range(branch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        trunk.step()
    cooldown = cooldown_schedule(optimizer, decay, eta_min=eta_min, shape=shape)
    for _ in range(decay + 2):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        cooldown.step()
    planned = schedule_lrs(
        lambda o: wsd_schedule(o, branch + decay, warmup, decay, eta_min=eta_min, shape=shape),
        branch + decay + 2,
        0.1,
    )
    assert lrs == pytest.approx(planned, abs=1e-12)


def test_batch_schedules_take_each_group_to_the_floor():
    from idlmam.optim import cooldown_schedule, warmup_cosine, warmup_linear_decay, wsd_schedule

    for make in (
        lambda o: warmup_cosine(o, 10, 2, eta_min=0.001),
        lambda o: warmup_linear_decay(o, 10, 2, eta_min=0.001),
        lambda o: wsd_schedule(o, 10, 2, 3, eta_min=0.001),
        lambda o: cooldown_schedule(o, 9, eta_min=0.001),
    ):
        params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
        optimizer = torch.optim.SGD(
            [{"params": params[:1], "lr": 0.1}, {"params": params[1:]}], lr=0.01
        )
        schedule = make(optimizer)
        for _ in range(9):  # to the last of 10 steps
            optimizer.step()
            schedule.step()
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.001, 0.001])


def test_cooldown_starts_from_the_current_rate_even_mid_warmup():
    from idlmam.optim import cooldown_schedule, warmup_constant

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    trunk = warmup_constant(optimizer, 10)
    for _ in range(3):
        optimizer.step()
        trunk.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.04)  # (3 + 1) / 10 of the peak
    cooldown_schedule(optimizer, 2, shape="linear")
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02)  # half way from 0.04 to 0


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda o: ours.wsd_schedule(o, 10, 5, 6), "leave no step at the peak"),
        (lambda o: ours.wsd_schedule(o, 10, 0, 10), "leave no step at the peak"),
        (lambda o: ours.wsd_schedule(o, 10, -1, 3), "warmup_steps must be non-negative"),
        (lambda o: ours.wsd_schedule(o, 10, 2, 0), "decay_steps must be at least 1"),
        (lambda o: ours.wsd_schedule(o, 10, 2, 3, shape="cosine"), "shape must be one of"),
        (lambda o: ours.wsd_schedule(o, 10, 2, 3, eta_min=0.1), "eta_min < the initial rate"),
        (lambda o: ours.warmup_cosine(o, 10, 10), "leaves no step to decay"),
        (lambda o: ours.warmup_cosine(o, 1, 0), "leaves no step to decay"),
        (lambda o: ours.warmup_linear_decay(o, 10, -2), "warmup_steps must be non-negative"),
        (lambda o: ours.warmup_linear_decay(o, 10, 2, eta_min=-0.01), "eta_min < the initial rate"),
        (lambda o: ours.warmup_constant(o, -1), "warmup_steps >= 0"),
        (lambda o: ours.cooldown_schedule(o, 0), "decay_steps >= 1"),
        (lambda o: ours.cooldown_schedule(o, 5, shape="exp"), "shape must be one of"),
        (lambda o: ours.cooldown_schedule(o, 5, eta_min=0.2), "eta_min < the current rate"),
        (
            lambda o: ours.wsd_factor(0, 10, 2, 3, eta_min_ratio=1.0),
            r"eta_min_ratio must be in \[0, 1\)",
        ),
        (lambda o: ours.warmup_cosine_factor(-1, 10, 2), "step must be non-negative"),
    ],
)
def test_batch_schedules_reject_bad_input(make, match):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=match):
        make(optimizer)
