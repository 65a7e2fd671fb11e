"""Figures from results frames, and learning-rate schedules drawn from the real scheduler objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .optim import schedule_lrs

__all__ = [
    "RUN_COLOURS",
    "run_colours",
    "run_dashes",
    "plot_schedules",
    "plot_rates",
    "plot_runs",
    "plot_range_test",
]

#: One colour per run name, the same on every page and in every figure of the book. The
#: optimizers keep theirs wherever they appear (SGD blue, Nesterov green, AdamW red, ...); the
#: schedules of page 02 and of the schedules page after the chapter have theirs. A run named
#: ``"<base>+<variant>"`` (``"AdamW+CosineLR"``) takes its base's colour, drawn dashed.
RUN_COLOURS: dict[str, str] = {
    # the optimizers (pages 01, 03, 03c and the exercises)
    "SGD": "tab:blue",
    "SGD w/ Momentum": "tab:orange",
    "SGD w/ Nesterov": "tab:green",
    "AdamW": "tab:red",
    "NAdam": "tab:purple",
    "NAdamW": "tab:purple",
    "AdaMax": "tab:brown",
    "RAdam": "tab:pink",
    "Adafactor": "tab:gray",
    "Muon": "tab:olive",
    "Lion": "tab:cyan",
    "Shampoo": "#393b79",
    "SOAP": "#8c6d31",
    "Schedule-free AdamW": "#ff9896",
    # the chapter's schedules (page 02; the constant rate is the SGD baseline, so blue too)
    "constant rate": "tab:blue",
    "exponential decay": "tab:orange",
    "step schedule": "tab:green",
    "cosine annealing": "tab:red",
    "plateau schedule": "tab:purple",
    # the schedules after the chapter (page 03b)
    "constant": "tab:blue",
    "cosine to zero": "tab:orange",
    "linear to zero": "tab:green",
    "one-cycle": "tab:red",
    "warm restarts": "tab:purple",
    "constant + EMA": "tab:brown",
    "WSD": "tab:pink",
    "without warmup": "tab:gray",
}

# colours for names the book does not know (a reader's own runs), in this order
_SPARE = [
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#e377c2",
    "#8c564b",
    "#9467bd",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#1f77b4",
    "#393b79",
    "#8c6d31",
    "#ff9896",
    "#c5b0d5",
]


def _base(name: str) -> str | None:
    """The known run a variant ``"<base>+<variant>"`` belongs to, or None."""
    base = name.split("+")[0].strip()
    return base if "+" in name and base in RUN_COLOURS else None


def run_colours(names) -> dict[str, str]:
    """The colour of each run name: :data:`RUN_COLOURS`'s, its base's for ``"<base>+<x>"``.

    A name the book does not know gets the first spare colour that no other name of ``names``
    uses, in the order given, so every run of one figure stays distinguishable.
    """
    names = list(dict.fromkeys(names))
    colours = {}
    for name in names:
        known = RUN_COLOURS.get(name) or RUN_COLOURS.get(_base(name) or "")
        if known:
            colours[name] = known
    import matplotlib.colors as mcolors

    taken = {mcolors.to_hex(c) for c in colours.values()}
    spare = (c for c in _SPARE if mcolors.to_hex(c) not in taken)
    for name in names:
        if name not in colours:
            colours[name] = next(spare, "black")
    return colours


def run_dashes(names) -> dict[str, tuple | str]:
    """Seaborn's ``dashes`` for ``names``: a variant drawn in its base's colour is dashed."""
    return {name: (4, 2) if _base(name) and name not in RUN_COLOURS else "" for name in names}


def plot_schedules(
    schedules: Mapping[str, Callable],
    epochs: int,
    eta_0: float,
    ax=None,
    *,
    eta_min: float | None = None,
    log: bool = False,
    title: str | None = None,
):
    r"""Draw the learning rate per epoch of each named schedule on one axis.

    Each schedule is read off a real scheduler object (:func:`idlmam.optim.schedule_lrs`), one
    point per epoch: the rate that epoch trains with.

    Args:
        schedules: ``label -> (optimizer -> schedule)``; labels containing "step" are drawn as
            steps, the others as lines through the epochs' points.
        epochs: epochs drawn, ``0 .. epochs - 1``.
        eta_0: the optimizer's initial rate.
        ax: draw on this axis (default: a new figure).
        eta_min: also draw this floor as a dotted grey line, labelled :math:`\eta_{min}`.
        log: a logarithmic learning-rate axis (a decay by a constant factor is then straight,
            and a floor 100 times below the start is visible).
        title: the axis title.

    Returns:
        The axis.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6.5, 3.4))[1]
    for label, make_schedule in schedules.items():
        ax.plot(
            range(epochs),
            schedule_lrs(make_schedule, epochs, eta_0),
            label=label,
            marker="o",
            markersize=3,
            drawstyle="steps-post" if "step" in label.lower() else "default",
        )
    if eta_min is not None:
        ax.axhline(eta_min, color="grey", linestyle=":", label=rf"$\eta_{{min}}$ = {eta_min:g}")
    ax.set(xlabel="epoch", ylabel="learning rate" + (" (log scale)" if log else ""))
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: never over a dip
    return ax


def plot_rates(frame, by: str = "seed", ax=None, *, title: str | None = None):
    """Draw the ``lr`` column of a results frame: one step line per value of ``by``.

    A schedule that reacts to the run (``ReduceLROnPlateau``) cuts at different epochs for each
    seed, so each seed (or each run, with ``by="run"``) gets its own line, colour and marker,
    in the order they appear in ``frame``; no line joins the last epoch of one to the first of
    the next. Seeds (or runs) whose rates are the same at every epoch share one line, labelled
    with all of them ("seeds 0 and 2"), so no line hides another. The rate axis is
    logarithmic, so every cut by the same factor is a step of the same height.

    Args:
        frame: a long results frame with ``epoch``, ``lr`` and the ``by`` column.
        by: the column whose values get one line each (``"seed"`` or ``"run"``).
        ax: draw on this axis (default: a new figure).
        title: the axis title.

    Returns:
        The axis.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.2))[1]
    lines: dict[tuple, tuple[list, object]] = {}  # rates -> (keys, rows), in order of appearance
    for key, rows in frame.groupby(by, sort=False):
        rows = rows.sort_values("epoch")
        rates = tuple(zip(rows["epoch"], rows["lr"]))
        lines.setdefault(rates, ([], rows))[0].append(key)
    markers = "osD^vP*X"
    for i, (keys, rows) in enumerate(lines.values()):
        names = [str(k) for k in keys]
        together = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        ax.plot(
            rows["epoch"],
            rows["lr"],
            drawstyle="steps-post",
            marker=markers[i % len(markers)],
            markersize=4,
            linewidth=1.6,
            alpha=0.85,
            label=(f"{by}s " if len(names) > 1 else f"{by} ") + together
            if by == "seed"
            else together,
        )
    ax.set(xlabel="epoch", ylabel="learning rate (log scale)", yscale="log")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def plot_runs(frame, y: str = "test Accuracy", ax=None, title: str | None = None, *, palette=None):
    """Draw ``y`` against ``epoch`` for every run of a long results frame.

    With several seeds per run, it draws the mean and a band of the 95% Student-t interval over
    seeds (:func:`idlmam.stats.t_interval`, the interval the pages' sentences state), so a reader
    sees which differences are larger than the seed-to-seed noise. Each run is drawn in its
    book-wide colour (:func:`run_colours`; a variant ``"<base>+<x>"`` dashed in its base's), or
    in ``palette[run]`` when a dict run -> colour is given.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .stats import t_interval

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    several = frame.groupby("run")["seed"].nunique().max() > 1 if "seed" in frame else False
    names = list(dict.fromkeys(frame["run"]))
    sns.lineplot(
        data=frame,
        x="epoch",
        y=y,
        hue="run",
        style="run",
        ax=ax,
        errorbar=t_interval if several else None,
        palette=palette or run_colours(names),
        dashes=run_dashes(names),
    )
    ax.set_ylabel(y.replace("Accuracy", "accuracy"))  # the score's column name, in prose case
    ax.set_title(
        title or f"{y} per epoch" + (" (mean and 95% t-interval over seeds)" if several else "")
    )
    ax.legend(title=None)
    return ax


def plot_range_test(result, ax=None, *, title: str | None = "Learning-rate range test"):
    """Draw the smoothed loss of a learning-rate range test against the rate, and its suggestion.

    The rate axis is logarithmic (the rate grew by the same factor every batch). The minimum of
    the curve is marked with a dot, the suggested rate (ten times below it) with a dashed line.
    The loss axis spans the curve up to its minimum, so the descent fills the figure and the
    explosion after it leaves through the top.

    Args:
        result: what :func:`idlmam.experiments.lr_range_test` returned.
        ax: draw on this axis (default: a new figure).
        title: the axis title.

    Returns:
        The axis.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6.5, 3.4))[1]
    ax.plot(result.lrs, result.losses, label="smoothed loss")
    ax.plot(
        result.lr_at_min,
        result.losses[result.lrs.index(result.lr_at_min)],
        "o",
        color="black",
        label=f"minimum at {result.lr_at_min:.3g}",
    )
    ax.axvline(
        result.suggestion, color="C1", linestyle="--", label=f"suggestion {result.suggestion:.3g}"
    )
    descent = result.losses[: result.lrs.index(result.lr_at_min) + 1]
    high, low = max(descent), descent[-1]
    if high > low:  # the descent fills the axis; the rise after the minimum leaves at the top
        ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="training loss (smoothed)")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax
