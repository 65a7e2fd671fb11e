import math

import pytest
import torch

from idlmam import optim as ours
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


def test_clip_grad_norm_on_step_keeps_the_direction():
    from idlmam.optim import clip_grad_norm_on_step

    p = torch.nn.Parameter(torch.zeros(5))
    opt = clip_grad_norm_on_step(torch.optim.SGD([p], lr=1.0), 5.0)
    g = torch.tensor([1.0, -2.0, 1000.0, 3.0, -7.0])
    p.grad = g.clone()
    opt.step()
    expected = -g * 5.0 / g.norm()
    assert torch.allclose(p.detach(), expected, atol=1e-6)
    assert torch.isclose(p.detach().norm(), torch.tensor(5.0))
    p.grad = torch.tensor([0.1, 0.0, 0.0, 0.0, 0.0])  # small gradients pass unchanged
    before = p.detach().clone()
    opt.step()
    assert torch.allclose(p.detach(), before - torch.tensor([0.1, 0, 0, 0, 0]))


# Optimizers from scratch: oracle tests against torch.optim ------------------------------------


def _train_pair(make_ours, make_torch, steps=100, make_schedule=None):
    """Train two copies of one small network, one per optimizer, on the same batches."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    twin.load_state_dict(net.state_dict())
    opts = [make_ours(net.parameters()), make_torch(twin.parameters())]
    schedules = [make_schedule(o) for o in opts] if make_schedule else []
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        X, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
        for model, opt in zip((net, twin), opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
        for schedule in schedules:
            schedule.step()
    return net, twin, opts


SAME_AS_TORCH = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.05, momentum=0.9)),
    "sgd_dampening": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.5)),
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    "sgd_weight_decay": ("SGD", dict(lr=0.1, weight_decay=0.01)),
    "sgd_nesterov_weight_decay": (
        "SGD",
        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05),
    ),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_betas_eps": ("Adam", dict(lr=0.01, betas=(0.5, 0.9), eps=1e-6)),
    "adam_weight_decay": ("Adam", dict(lr=0.01, weight_decay=0.1)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_weight_decay": ("AdamW", dict(lr=0.01, weight_decay=0.3)),
}


@pytest.mark.parametrize("case", sorted(SAME_AS_TORCH))
def test_from_scratch_optimizer_matches_torch(case):
    name, kwargs = SAME_AS_TORCH[case]
    net, twin, _ = _train_pair(
        lambda p: getattr(ours, name)(p, **kwargs),
        lambda p: getattr(torch.optim, name)(p, **kwargs),
    )
    for mine, theirs in zip(net.parameters(), twin.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=0.01)),
        ("AdamW", dict(lr=0.01)),
    ],
)
@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_from_scratch_optimizer_follows_a_schedule(name, kwargs, schedule):
    make_schedule = {
        "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=1e-4),
        "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.3),
    }[schedule]
    net, twin, opts = _train_pair(
        lambda p: getattr(ours, name)(p, **kwargs),
        lambda p: getattr(torch.optim, name)(p, **kwargs),
        make_schedule=make_schedule,
    )
    assert opts[0].param_groups[0]["lr"] == pytest.approx(opts[1].param_groups[0]["lr"])
    assert opts[0].param_groups[0]["lr"] != kwargs["lr"]  # the schedule really moved it
    for mine, theirs in zip(net.parameters(), twin.parameters()):
        assert torch.allclose(mine, theirs, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_from_scratch_defaults_are_torchs(name):
    p = [torch.nn.Parameter(torch.zeros(1))]
    mine, theirs = getattr(ours, name)(p).defaults, getattr(torch.optim, name)(p).defaults
    assert mine == {k: theirs[k] for k in mine}


def test_from_scratch_optimizers_skip_parameters_without_gradients():
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    for opt in (ours.SGD([used, unused], lr=0.1, momentum=0.9), ours.AdamW([used, unused])):
        used.grad = torch.ones(2)
        opt.step()
    assert torch.equal(unused.detach(), torch.ones(2)) and not torch.equal(
        used.detach(), torch.ones(2)
    )


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: ours.SGD(p, lr=-0.1), "lr must be non-negative"),
        (lambda p: ours.SGD(p, lr=0.1, momentum=-0.5), "momentum must be non-negative"),
        (lambda p: ours.SGD(p, lr=0.1, nesterov=True), "nesterov=True needs a momentum"),
        (
            lambda p: ours.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            "dampening = 0",
        ),
        (lambda p: ours.SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay must be non-negative"),
        (lambda p: ours.Adam(p, lr=-1e-3), "lr must be non-negative"),
        (lambda p: ours.Adam(p, betas=(1.0, 0.999)), r"betas\[0\] must be in \[0, 1\)"),
        (lambda p: ours.AdamW(p, betas=(0.9, -0.1)), r"betas\[1\] must be in \[0, 1\)"),
        (lambda p: ours.AdamW(p, eps=-1e-8), "eps must be non-negative"),
    ],
)
def test_from_scratch_optimizers_reject_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make([torch.nn.Parameter(torch.zeros(1))])


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


def test_record_grad_norms_logs_the_norm_before_clipping_by_hand():
    from idlmam.optim import clip_grad_norm_on_step, record_grad_norms

    w, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(1))
    log = []
    opt = clip_grad_norm_on_step(record_grad_norms(torch.optim.SGD([w, b], lr=1.0), log), 1.0)
    assert log == []  # nothing before the first step
    w.grad, b.grad = torch.tensor([[1.0, 2.0], [2.0, 4.0]]), torch.tensor([12.0])
    opt.step()  # |g| = sqrt(1 + 4 + 4 + 16 + 144) = 13, clipped to 1 after the record
    step = torch.cat([w.detach().flatten(), b.detach()])
    assert torch.allclose(step, -torch.tensor([1.0, 2.0, 2.0, 4.0, 12.0]) / 13)
    w.grad, b.grad = torch.tensor([[0.0, 0.0], [0.0, 0.3]]), torch.tensor([0.4])
    opt.step()  # 0.5: below the threshold
    assert log == [[pytest.approx(13.0), pytest.approx(0.5)]]


def test_record_grad_norms_keeps_one_list_per_optimizer_that_stepped():
    from idlmam.optim import record_grad_norms

    log = []
    params = [torch.nn.Parameter(torch.zeros(3)) for _ in range(3)]
    probe = record_grad_norms(torch.optim.SGD([params[0]], lr=0.1), log)  # never steps
    first = record_grad_norms(torch.optim.SGD([params[1]], lr=0.1), log)
    second = record_grad_norms(torch.optim.AdamW([params[2]]), log)
    params[2].grad = torch.tensor([0.0, 3.0, 4.0])
    second.step()
    params[1].grad = torch.tensor([2.0, 0.0, 0.0])
    first.step()
    first.step()
    params[1].grad = None  # no gradient at all: a norm of 0
    first.step()
    assert log == [[5.0], [2.0, 2.0, 0.0]]
    assert probe.state_dict()["state"] == {}


def test_record_grad_norms_sees_a_real_backward_pass():
    from idlmam.optim import record_grad_norms

    torch.manual_seed(0)
    model, log = torch.nn.Linear(4, 3), []
    opt = record_grad_norms(torch.optim.SGD(model.parameters(), lr=0.1), log)
    model(torch.randn(8, 4)).pow(2).sum().backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()
    opt.step()
    assert log == [[pytest.approx(expected, rel=1e-6)]]
