import math
from functools import partial

import pytest
import torch

from idlmam import optim as ours
from idlmam.landscapes import (
    CURVED_VALLEY_MIN,
    TWO_MINIMA_BAD,
    TWO_MINIMA_GOOD,
    bowl,
    curved_valley,
    curved_valley_floor,
    narrow_valley,
    optimizer_path,
    plateau,
    plot_paths,
    quartic_bowl,
    steps_to_reach,
    two_minima,
)
from idlmam.optim import eta_min_for

SGD = torch.optim.SGD


def sgd(lr, **kwargs):
    return lambda params: SGD(params, lr=lr, **kwargs)


def test_path_starts_at_start_and_has_one_row_per_step():
    path = optimizer_path(bowl, (3.0, -1.0), sgd(0.1), steps=7)
    assert path.shape == (8, 2) and path.dtype == torch.float64
    assert path[0].tolist() == [3.0, -1.0]


def test_plain_gradient_descent_on_the_bowl_has_a_closed_form():
    path = optimizer_path(bowl, (3.0, -1.0), sgd(0.25), steps=5)
    expected = torch.tensor([3.0, -1.0], dtype=torch.float64) * 0.75 ** torch.arange(6.0).unsqueeze(
        1
    )
    assert torch.allclose(path, expected)


@pytest.mark.parametrize(
    "f,point",
    [
        (bowl, (0.0, 0.0)),
        (narrow_valley, (0.0, 0.0)),
        (curved_valley, CURVED_VALLEY_MIN),
        (quartic_bowl, (0.0, 0.0)),
        (plateau, (0.0, 0.0)),
        (two_minima, TWO_MINIMA_GOOD),
    ],
)
def test_each_surface_is_flat_at_its_minimum(f, point):
    p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    f(p).backward()
    assert p.grad.abs().max() < 1e-12
    nearby = torch.tensor(point, dtype=torch.float64) + 0.05 * torch.randn(
        8, 2, dtype=torch.float64
    )
    assert (f(nearby) > f(torch.tensor(point, dtype=torch.float64))).all()  # (8, 2) -> (8,)


def test_the_bad_minimum_is_higher_than_the_good_one():
    found = optimizer_path(two_minima, TWO_MINIMA_BAD, sgd(0.02), steps=300)[-1]
    assert (found - torch.tensor(TWO_MINIMA_BAD, dtype=torch.float64)).norm() < 0.05
    assert two_minima(found) > two_minima(torch.tensor(TWO_MINIMA_GOOD, dtype=torch.float64)) + 0.5


def test_noisy_paths_are_the_same_for_the_same_seed_and_differ_across_seeds():
    make = sgd(0.1, momentum=0.9)
    a = optimizer_path(bowl, (2.0, 2.0), make, 30, noise=1.0, seed=3)
    b = optimizer_path(bowl, (2.0, 2.0), make, 30, noise=1.0, seed=3)
    c = optimizer_path(bowl, (2.0, 2.0), make, 30, noise=1.0, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, optimizer_path(bowl, (2.0, 2.0), make, 30))


def test_momentum_reaches_the_bottom_of_the_narrow_valley_sooner():
    start, lr = (-4.0, -2.5), 0.09
    plain = steps_to_reach(optimizer_path(narrow_valley, start, sgd(lr), 400), (0, 0), tol=0.1)
    momentum = steps_to_reach(
        optimizer_path(narrow_valley, start, sgd(lr, momentum=0.7), 400), (0, 0), tol=0.1
    )
    assert plain is not None and momentum is not None
    assert momentum < plain / 3


def test_plain_sgd_zig_zags_across_the_narrow_valley():
    path = optimizer_path(narrow_valley, (-4.0, -2.5), sgd(0.09), 20)
    across = (path[:, 1] - path[:, 0]) / math.sqrt(2)  # (21,) signed distance from the floor
    assert (across[1:] * across[:-1] < 0).all()  # it changes side on every step


def _distance_from_floor(path):
    xs = torch.linspace(-6, 4, 4001, dtype=torch.float64)
    floor = torch.stack([xs, curved_valley_floor(xs)], dim=1)  # (4001, 2)
    return torch.cdist(path, floor).min(dim=1).values  # (steps + 1,)


def test_nesterov_keeps_closer_to_the_floor_through_the_bend():
    start, lr = (-5.0, 0.0), 0.1
    heavy = optimizer_path(curved_valley, start, sgd(lr, momentum=0.9), 150)
    nesterov = optimizer_path(curved_valley, start, sgd(lr, momentum=0.9, nesterov=True), 150)
    assert _distance_from_floor(nesterov).max() < _distance_from_floor(heavy).max()
    off_heavy, off_nesterov = [
        int((_distance_from_floor(p) > 0.1).sum()) for p in (heavy, nesterov)
    ]
    assert off_nesterov < off_heavy / 3  # steps spent more than 0.1 away from the floor
    for path in (heavy, nesterov):
        assert steps_to_reach(path, CURVED_VALLEY_MIN, tol=0.1) is not None


def test_clipping_bounds_every_step_and_tames_the_quartic():
    start, lr, z = (-3.0, 2.5), 0.15, 5.0
    wild = optimizer_path(quartic_bowl, start, sgd(lr), 40)
    assert torch.isnan(wild[-1]).all()  # it blew up, and the rest of the path is NaN
    tamed = optimizer_path(quartic_bowl, start, sgd(lr), 40, clip=z)
    assert (tamed.diff(dim=0).norm(dim=1) <= lr * z + 1e-12).all()
    assert tamed[-1].norm() < 0.5


def test_vanishing_gradient_barely_moves():
    path = optimizer_path(plateau, (-3.0, 2.5), sgd(0.1), 40)
    assert (path[-1] - path[0]).norm() < 0.1
    assert (optimizer_path(bowl, (-3.0, 2.5), sgd(0.1), 40)[-1]).norm() < 0.1


def test_a_cosine_schedule_escapes_the_narrow_minimum_a_small_constant_rate_does_not():
    start, steps = (-3.0, 2.0), 120
    constant = optimizer_path(two_minima, start, sgd(0.1), steps)
    assert steps_to_reach(constant, TWO_MINIMA_BAD, tol=0.1) is not None
    cosine = optimizer_path(
        two_minima,
        start,
        sgd(0.5),
        steps,
        make_schedule=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(
            o, 40, eta_min=eta_min_for(0.5)
        ),
    )
    assert (cosine[:41] - torch.tensor(TWO_MINIMA_BAD, dtype=torch.float64)).norm(dim=1).min() < 0.1
    assert steps_to_reach(cosine, TWO_MINIMA_GOOD, tol=0.01) is not None


def test_from_scratch_optimizers_trace_torchs_paths():
    for name, kwargs in [
        ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=0.1)),
        ("AdamW", dict(lr=0.1, weight_decay=0.1)),
    ]:
        theirs = optimizer_path(
            curved_valley, (-5.0, 0.0), partial(getattr(torch.optim, name), **kwargs), 100
        )
        mine = optimizer_path(
            curved_valley, (-5.0, 0.0), partial(getattr(ours, name), **kwargs), 100
        )
        assert torch.allclose(mine, theirs, atol=1e-10, rtol=0)


def test_steps_to_reach_needs_the_path_to_stay():
    path = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    assert steps_to_reach(path, (0, 0)) is None
    assert steps_to_reach(path[:2], (0, 0)) == 1
    assert steps_to_reach(torch.zeros(3, 2), (0, 0)) == 0


def test_plot_paths_draws_every_path_and_leaves_out_nan():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wild = optimizer_path(quartic_bowl, (-3.0, 2.5), sgd(0.15), 10)
    ax = plot_paths(
        quartic_bowl,
        {"wild": wild, "calm": optimizer_path(quartic_bowl, (1.0, 1.0), sgd(0.1), 10)},
        xlim=(-4, 4),
        ylim=(-4, 4),
        minima=[(0, 0)],
    )
    labels = [line.get_label() for line in ax.get_lines()]
    assert "wild" in labels and "calm" in labels
    plt.close(ax.figure)


def test_with_noisy_gradients_the_cosine_schedule_settles_closer_than_a_large_constant_rate():
    good = torch.tensor(TWO_MINIMA_GOOD, dtype=torch.float64)
    cosine = partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=40, eta_min=eta_min_for(0.5))

    def mean_distance(make_schedule):
        return (
            sum(
                (
                    optimizer_path(
                        two_minima,
                        (-3.0, 2.0),
                        sgd(0.5),
                        120,
                        noise=0.5,
                        seed=seed,
                        make_schedule=make_schedule,
                    )[-1]
                    - good
                ).norm()
                for seed in range(3)
            )
            / 3
        )

    assert mean_distance(cosine) < mean_distance(None) / 2
