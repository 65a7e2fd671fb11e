r"""Two-dimensional loss surfaces, and the paths real optimizers take across them.

The chapter explains schedules and optimizers with hand-drawn pictures of a point rolling over a
loss surface. Here the surfaces are small torch functions of a 2-element parameter, and the paths
are traced by real ``torch.optim`` (or :mod:`idlmam.optim`) optimizers and schedulers, so every
picture is something the code actually did.

Every surface takes a tensor ``p`` of shape ``(..., 2)`` and returns the loss, shape ``(...)``:
one point for training, a whole grid for a contour plot.

Example:
    >>> path = optimizer_path(bowl, (2.0, 1.0), lambda ps: torch.optim.SGD(ps, lr=0.5), steps=3)
    >>> path.shape, path[-1].tolist()
    (torch.Size([4, 2]), [0.25, 0.125])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

__all__ = [
    "bowl",
    "narrow_valley",
    "curved_valley",
    "curved_valley_floor",
    "quartic_bowl",
    "plateau",
    "two_minima",
    "CURVED_VALLEY_MIN",
    "TWO_MINIMA_BAD",
    "TWO_MINIMA_GOOD",
    "optimizer_path",
    "steps_to_reach",
    "plot_paths",
]

Surface = Callable[[torch.Tensor], torch.Tensor]

# the two minima of `two_minima`: a narrow, shallow one (this is its well's centre; the
# minimum itself sits within 0.03 of it) and a wide, deep one (exactly here)
TWO_MINIMA_BAD = (-1.0, 0.5)
TWO_MINIMA_GOOD = (2.0, -1.0)
# the minimum of `curved_valley`: on its floor at x = 1
CURVED_VALLEY_MIN = (1.0, 2.0 * math.log1p(math.exp(4.0)) / 4.0)


def bowl(p: torch.Tensor) -> torch.Tensor:
    r"""The ideal surface: every gradient points straight at the minimum at the origin.

    .. math::
        f(x, y) = \tfrac{1}{2}(x^2 + y^2)
    """
    return 0.5 * (p**2).sum(-1)


def narrow_valley(p: torch.Tensor, *, a: float = 0.2, b: float = 20.0) -> torch.Tensor:
    r"""A long, narrow valley running diagonally up to the minimum at the origin.

    An ill-conditioned quadratic: along the valley floor, :math:`u = (x + y)/\sqrt{2}`, the
    curvature is ``a``; across it, :math:`w = (y - x)/\sqrt{2}`, it is ``b``.

    .. math::
        f(x, y) = \tfrac{1}{2}\left(a u^2 + b w^2\right)

    Plain gradient descent is stable only for :math:`\eta < 2 / b`, and then it crosses the
    valley back and forth while creeping along it at a rate set by the small ``a``.
    """
    u = (p[..., 0] + p[..., 1]) / math.sqrt(2)  # along the valley
    w = (p[..., 1] - p[..., 0]) / math.sqrt(2)  # across it
    return 0.5 * (a * u**2 + b * w**2)


def curved_valley_floor(
    x: torch.Tensor, *, slope: float = 2.0, sharpness: float = 4.0
) -> torch.Tensor:
    r"""The floor of :func:`curved_valley`: flat for :math:`x < 0`, rising with ``slope`` after.

    .. math::
        y_{floor}(x) = \frac{s}{k} \log\left(1 + e^{k x}\right)

    a softplus: ``sharpness`` :math:`k` sets how tight the bend at :math:`x = 0` is.
    """
    return slope * torch.nn.functional.softplus(sharpness * x) / sharpness


def curved_valley(p: torch.Tensor, *, a: float = 0.3, b: float = 2.0) -> torch.Tensor:
    r"""A valley that runs straight along :math:`y = 0`, then bends up; minimum on the floor at x = 1.

    .. math::
        f(x, y) = \tfrac{b}{2}\left(y - y_{floor}(x)\right)^2 + \tfrac{a}{2}(x - 1)^2

    with :func:`curved_valley_floor` as :math:`y_{floor}`. The minimum is
    :data:`CURVED_VALLEY_MIN`. Coming in along the straight part, an optimizer with momentum
    has built up speed in :math:`x` by the time it reaches the bend, and has to turn.
    """
    x, y = p[..., 0], p[..., 1]
    return 0.5 * b * (y - curved_valley_floor(x)) ** 2 + 0.5 * a * (x - 1) ** 2


def quartic_bowl(p: torch.Tensor) -> torch.Tensor:
    r"""An oval bowl whose gradient grows with the cube of the distance: far out, it explodes.

    .. math::
        f(x, y) = \tfrac{1}{4}(x^2 + 2 y^2)^2, \qquad \lVert \nabla f \rVert_2 \propto r^3

    A step of rate :math:`\eta` from far enough out overshoots the minimum and lands farther
    out still, where the gradient is larger again: the steps grow without bound.
    """
    return 0.25 * (p[..., 0] ** 2 + 2 * p[..., 1] ** 2) ** 2


def plateau(p: torch.Tensor, *, width: float = 1.0) -> torch.Tensor:
    r"""A well in a flat plain: far from the origin the gradient all but vanishes.

    .. math::
        f(x, y) = 1 - \exp\left(-\frac{x^2 + y^2}{2 s^2}\right)

    Like a saturated :math:`\tanh` or :math:`\sigma`, the surface still slopes the right way, but
    so gently that each step barely moves.
    """
    return 1 - torch.exp(-(p**2).sum(-1) / (2 * width**2))


def _well(p: torch.Tensor, centre: Sequence[float], depth: float, width: float) -> torch.Tensor:
    c = torch.as_tensor(centre, dtype=p.dtype)
    return -depth * torch.exp(-((p - c) ** 2).sum(-1) / (2 * width**2))


def two_minima(p: torch.Tensor) -> torch.Tensor:
    r"""A bad minimum, narrow and shallow, on the way to a good one, wide and deep.

    Two Gaussian wells in a gentle bowl, at :data:`TWO_MINIMA_BAD` (width 0.3) and
    :data:`TWO_MINIMA_GOOD` (width 1.5):

    .. math::
        f(p) = \tfrac{1}{40}\lVert p - p_{good} \rVert^2 - 1.2\, e^{-\lVert p - p_{bad} \rVert^2 / 2 (0.3)^2}
               - 2\, e^{-\lVert p - p_{good} \rVert^2 / 2 (1.5)^2}

    The narrow well's curvature is large, so a large learning rate cannot stay in it, while
    the wide well holds it; that is what a schedule that raises the rate again exploits.
    """
    good = torch.as_tensor(TWO_MINIMA_GOOD, dtype=p.dtype)
    return (
        0.025 * ((p - good) ** 2).sum(-1)
        + _well(p, TWO_MINIMA_BAD, 1.2, 0.3)
        + _well(p, TWO_MINIMA_GOOD, 2.0, 1.5)
    )


def optimizer_path(
    f: Surface,
    start: Sequence[float],
    make_optimizer: Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
    steps: int,
    *,
    noise: float = 0.0,
    seed: int = 0,
    make_schedule: Callable[[torch.optim.Optimizer], object] | None = None,
    clip: float | None = None,
) -> torch.Tensor:
    r"""The points a real optimizer visits on the surface ``f``, starting from ``start``.

    Each step computes :math:`g = \nabla f(p)`, adds Gaussian noise of standard deviation
    ``noise`` (a stand-in for mini-batch noise), rescales it to norm at most ``clip``
    (``torch.nn.utils.clip_grad_norm_``), and calls ``optimizer.step()``; a schedule, when
    given, is stepped after every optimizer step (one step plays the part of one epoch).
    The parameter is float64. Once it stops being finite, the remaining rows are NaN (the
    plots leave them out).

    Args:
        f: the surface, ``(..., 2) -> (...)``.
        start: the starting point ``(x, y)``.
        make_optimizer: builds the optimizer from a list of parameters, e.g.
            ``lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)``.
        steps: optimizer steps to take.
        noise: standard deviation of the noise added to each gradient coordinate.
        seed: seeds the noise, so a noisy path is the same every time.
        make_schedule: builds a ``torch.optim.lr_scheduler`` from the optimizer.
        clip: the largest gradient norm allowed (``None``: no clipping).

    Returns:
        A ``(steps + 1, 2)`` tensor: the start, then the point after each step.
    """
    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    optimizer = make_optimizer([p])
    schedule = make_schedule(optimizer) if make_schedule is not None else None
    generator = torch.Generator().manual_seed(seed)
    path = torch.full((steps + 1, 2), float("nan"), dtype=torch.float64)
    path[0] = p.detach()
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        f(p).backward()
        if noise:
            p.grad += noise * torch.randn(2, generator=generator, dtype=p.dtype)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([p], clip)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        if not torch.isfinite(p).all():
            break
        path[t] = p.detach()
    return path


def steps_to_reach(path: torch.Tensor, point: Sequence[float], tol: float = 0.05) -> int | None:
    """The first step after which ``path`` stays within ``tol`` of ``point`` (``None``: never).

    Example:
        >>> steps_to_reach(torch.tensor([[1.0, 0.0], [0.01, 0.0], [0.5, 0.0], [0.01, 0.0]]), (0, 0))
        3
    """
    near = (path - torch.as_tensor(point, dtype=path.dtype)).norm(dim=-1) < tol  # (steps + 1,)
    if not near[-1]:
        return None
    far = (~near).nonzero()
    return int(far[-1]) + 1 if len(far) else 0


def plot_paths(
    f: Surface,
    paths: Mapping[str, torch.Tensor],
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    ax=None,
    levels: int = 25,
    title: str | None = None,
    colors: Sequence[str] = ("black", "tab:blue", "tab:purple", "white"),
    markersize: float = 3.0,
    minima: Sequence[Sequence[float]] = (),
):
    """Draw ``f`` as filled contour bands, red (high) to green (low), with each path on top.

    The contour levels are quantiles of ``f`` over the view, so narrow valleys and flat
    plains both show their shape. Each path starts at a hollow circle; points that left
    the view (or the finite numbers) are simply not drawn.

    Args:
        f: the surface.
        paths: label -> ``(steps + 1, 2)`` tensor, as :func:`optimizer_path` returns.
        xlim, ylim: the view.
        ax: the axis to draw on (a new figure when ``None``).
        levels: number of contour levels.
        title: the axis title.
        colors: one colour per path, in order.
        markersize: size of the dot at each step (0: lines only).
        minima: points to mark with a star.

    Returns:
        The matplotlib axis.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    ax = ax or plt.subplots(figsize=(5, 4))[1]
    xs = torch.linspace(*xlim, 200, dtype=torch.float64)
    ys = torch.linspace(*ylim, 200, dtype=torch.float64)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")  # (200, 200) each
    Z = f(torch.stack([X, Y], dim=-1)).numpy()  # (200, 200, 2) -> (200, 200)
    bounds = np.unique(np.quantile(Z, np.linspace(0, 1, levels + 1)))
    # no anti-aliasing and no contour lines: the bands show the shape, and the PNG stays small
    ax.contourf(
        X.numpy(), Y.numpy(), Z, levels=bounds, cmap="RdYlGn_r", alpha=0.8, antialiased=False
    )
    for (label, path), color in zip(paths.items(), colors):
        pts = path.detach().numpy()
        ax.plot(pts[:, 0], pts[:, 1], "-o", color=color, lw=1.2, ms=markersize, label=label)
        ax.plot(*pts[0], "o", mfc="none", mec=color, ms=9, mew=1.5)
    for point in minima:
        ax.plot(*point, "*", color="gold", mec="k", ms=11, zorder=5)
    ax.set(xlim=xlim, ylim=ylim, xlabel="$\\theta_1$", ylabel="$\\theta_2$", title=title)
    ax.grid(False)
    if paths:
        ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return ax
