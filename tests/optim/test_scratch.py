"""The optimizers written from scratch against torch.optim and hand computations."""

import copy
import io
import math

import pytest
import torch

from idlmam import optim as ours

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


# NAdamW (AlgoPerf's): a hand computation, AdamW at beta_1 = 0, not torch's NAdam ----------------


def _nadamw_by_hand(theta0, grad, steps, lr, beta1, beta2, eps, wd):
    """The AlgoPerf baseline's update in Python floats, one value at a time."""
    theta, m, v = list(theta0), [0.0] * len(theta0), [0.0] * len(theta0)
    for t in range(1, steps + 1):
        g = grad(theta, t)
        for i in range(len(theta)):
            theta[i] *= 1 - lr * wd
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            look_ahead = beta1 * m[i] + (1 - beta1) * g[i]
            step = lr / (1 - beta1**t) * look_ahead
            theta[i] -= step / (math.sqrt(v[i] / (1 - beta2**t)) + eps)
    return theta


def _noisy_quadratic(theta, t):
    a, b = [1.0, 10.0, 0.1], [0.3, 0.2, -1.0]
    return [a[i] * (theta[i] - b[i]) + math.cos(2.3 * t + i) for i in range(3)]


def _run(opt_class, p, steps, **kwargs):
    opt = opt_class([p], **kwargs)
    for t in range(1, steps + 1):
        p.grad = torch.tensor(_noisy_quadratic(p.tolist(), t), dtype=torch.float64)
        opt.step()
    return p.tolist()


def test_nadamw_matches_a_hand_computation_over_100_steps():
    theta0, kwargs = [1.0, -0.5, 2.0], dict(lr=0.02, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    want = _nadamw_by_hand(theta0, _noisy_quadratic, 100, 0.02, 0.9, 0.99, 1e-8, 0.1)
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    assert _run(ours.NAdamW, p, 100, **kwargs) == pytest.approx(want, abs=1e-9)
    adamw = _run(
        ours.AdamW, torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64)), 100, **kwargs
    )
    assert max(abs(x - y) for x, y in zip(want, adamw)) > 1e-3  # the look-ahead changes the path


def test_nadamw_is_adamw_without_momentum_and_is_not_torchs_nadam():
    def path(opt_class, betas, **more):
        p = torch.nn.Parameter(torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64))
        return _run(opt_class, p, 50, lr=0.02, betas=betas, weight_decay=0.1, **more)

    no_momentum = (0.0, 0.99)
    assert path(ours.NAdamW, no_momentum) == pytest.approx(
        path(torch.optim.AdamW, no_momentum), abs=1e-12
    )
    ours_ = path(ours.NAdamW, (0.9, 0.99))
    # Dozat's schedule keeps torch's momentum near beta_1 / 2: another path
    nadam = path(torch.optim.NAdam, (0.9, 0.99), decoupled_weight_decay=True)
    assert max(abs(x - y) for x, y in zip(ours_, nadam)) > 1e-3


# Lion from scratch: a hand computation, sign(0), checkpoints ----------------------------------


def test_lion_matches_a_hand_computation_over_100_steps():
    # f(theta) = sum_i a_i (theta_i - b_i)^2 / 2, its gradient plus a fixed oscillating term
    # (noisy enough that the order of the updates and the place of the decay change the result)
    a, b, theta0 = [1.0, 10.0, 0.1], [0.3, 0.2, -1.0], [1.0, -0.5, 2.0]
    lr, beta1, beta2, wd = 0.02, 0.9, 0.99, 0.1

    def grad(theta, t):
        return [a[i] * (theta[i] - b[i]) + math.cos(2.3 * t + i) for i in range(3)]

    def sign(x):
        return (x > 0) - (x < 0)

    theta, m = list(theta0), [0.0, 0.0, 0.0]  # by hand, in Python floats
    for t in range(100):
        g = grad(theta, t)
        for i in range(3):
            c = beta1 * m[i] + (1 - beta1) * g[i]
            theta[i] = theta[i] - lr * (sign(c) + wd * theta[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g[i]

    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = ours.Lion([p], lr=lr, betas=(beta1, beta2), weight_decay=wd)
    for t in range(100):
        p.grad = torch.tensor(grad(p.tolist(), t), dtype=torch.float64)
        opt.step()
    assert p.tolist() == pytest.approx(theta, abs=1e-6)
    assert max(abs(x - y) for x, y in zip(theta, theta0)) > 0.5  # it really travelled


def test_lion_does_not_move_a_value_whose_direction_is_zero():
    assert torch.sign(torch.tensor(0.0)) == 0  # the paper's code: torch.sign
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = ours.Lion([p], lr=0.1, weight_decay=0.5)
    p.grad = torch.tensor([0.0, 5.0, -5.0])
    opt.step()  # decay 1 - 0.1 * 0.5 = 0.95 for all; sign steps 0, -0.1, +0.1
    assert p.tolist() == pytest.approx([0.95, -1.9 - 0.1, 2.85 + 0.1])
    p.grad = torch.zeros(3)
    opt.step()  # no gradient, but the momentum of the last two still points the same way
    assert p.tolist() == pytest.approx([0.95 * 0.95, -2.0 * 0.95 - 0.1, 2.95 * 0.95 + 0.1])


def test_lion_resumes_from_its_state_dict():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    twin = copy.deepcopy(model)
    batches = [torch.randn(8, 5) for _ in range(10)]

    def train(net, opt, xs):
        for X in xs:
            opt.zero_grad()
            net(X).pow(2).mean().backward()
            opt.step()

    opt = ours.Lion(model.parameters(), lr=0.01, weight_decay=0.1)
    train(model, opt, batches)  # uninterrupted
    first = ours.Lion(twin.parameters(), lr=0.01, weight_decay=0.1)
    train(twin, first, batches[:5])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    second = ours.Lion(twin.parameters(), lr=0.01, weight_decay=0.1)
    second.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    assert all(torch.equal(second.state[p]["m"], first.state[p]["m"]) for p in twin.parameters())
    train(twin, second, batches[5:])
    for mine, theirs in zip(model.parameters(), twin.parameters()):
        assert torch.equal(mine, theirs)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1e-4), "lr must be non-negative"),
        (dict(weight_decay=-0.1), "weight_decay must be non-negative"),
        (dict(betas=(1.0, 0.99)), r"betas\[0\] must be in \[0, 1\)"),
        (dict(betas=(0.9, -0.1)), r"betas\[1\] must be in \[0, 1\)"),
    ],
)
def test_lion_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ours.Lion([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def test_lion_is_elementwise_and_muon_is_not_for_stacked_training():
    from idlmam.models import mlp
    from idlmam.optim import Lion, MuonWithAdamW, muon_param_groups
    from idlmam.train import why_not_stacked

    def small():
        return mlp(in_features=12, hidden=8, layers=2)

    assert Lion([torch.nn.Parameter(torch.zeros(1))]).defaults == dict(
        lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0
    )
    assert why_not_stacked(small, lambda p: Lion(p, lr=1e-4)) == ""
    reason = why_not_stacked(small, lambda p: MuonWithAdamW(*muon_param_groups(p)))
    assert "MuonWithAdamW" in reason
