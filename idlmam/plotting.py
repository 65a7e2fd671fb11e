"""Figures from results frames, and learning-rate schedules drawn from the real scheduler objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .optim import schedule_lrs

__all__ = ["plot_schedules", "plot_runs", "final_scores"]


def plot_schedules(schedules: Mapping[str, Callable], epochs: int, eta_0: float, ax=None):
    """Draw the learning rate per epoch of each named schedule on one axis."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for label, make_schedule in schedules.items():
        ax.plot(
            range(epochs),
            schedule_lrs(make_schedule, epochs, eta_0),
            label=label,
            drawstyle="steps-post" if "step" in label.lower() else "default",
        )
    ax.set(xlabel="epoch", ylabel="learning rate")
    ax.legend()
    return ax


def plot_runs(frame, y: str = "test Accuracy", ax=None, title: str | None = None):
    """Draw ``y`` against ``epoch`` for every run of a long results frame.

    With several seeds per run, seaborn draws the mean and a 95% confidence band, so a reader sees
    which differences are larger than the seed-to-seed noise.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(7, 4))[1]
    several = frame.groupby("run")["seed"].nunique().max() > 1 if "seed" in frame else False
    sns.lineplot(
        data=frame, x="epoch", y=y, hue="run", ax=ax, errorbar=("ci", 95) if several else None
    )
    ax.set_title(title or f"{y} per epoch" + (" (mean and 95% CI over seeds)" if several else ""))
    ax.legend(title=None)
    return ax


def final_scores(frame, column: str = "test Accuracy"):
    """The last epoch's ``column`` of each run (mean over seeds), best first."""
    last = frame[frame["epoch"] == frame.groupby("run")["epoch"].transform("max")]
    return last.groupby("run")[column].mean().sort_values(ascending=False)
