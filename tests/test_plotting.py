"""The book's figures draw what the runs and schedules hold: one line per seed, real rates."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

from idlmam.experiments import RangeTest
from idlmam.plotting import plot_range_test, plot_rates, plot_runs, plot_schedules


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def step(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, 2, gamma=0.5)


def test_plot_schedules_draws_the_rates_the_scheduler_sets_and_the_floor():
    ax = plot_schedules({"step": step}, 5, 1.0, eta_min=0.25, log=True, title="t")
    line, floor = ax.get_lines()
    assert list(line.get_ydata()) == [1.0, 1.0, 0.5, 0.5, 0.25]  # by hand: halved every 2 epochs
    assert list(line.get_xdata()) == [0, 1, 2, 3, 4]
    assert line.get_drawstyle() == "steps-post"
    assert set(floor.get_ydata()) == {0.25}
    assert ax.get_yscale() == "log" and "log" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["step", r"$\eta_{min}$ = 0.25"]
    assert ax.get_title() == "t"


def _plateau_frame():
    """Two seeds that cut at different epochs, in one long frame (as `run` returns it)."""
    rows = []
    for seed, lrs in {0: [0.1, 0.1, 0.02, 0.02], 1: [0.1, 0.02, 0.004, 0.004]}.items():
        rows += [{"seed": seed, "epoch": e, "lr": lr, "run": "plateau"} for e, lr in enumerate(lrs)]
    return pd.DataFrame(rows)


def test_plot_rates_draws_one_line_per_seed_never_joining_two_seeds():
    ax = plot_rates(_plateau_frame())
    lines = ax.get_lines()
    assert len(lines) == 2
    assert [list(line.get_xdata()) for line in lines] == [[0, 1, 2, 3]] * 2  # never back to 0
    assert list(lines[1].get_ydata()) == [0.1, 0.02, 0.004, 0.004]
    assert lines[0].get_color() != lines[1].get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seed 0", "seed 1"]
    assert ax.get_yscale() == "log"


def test_plot_runs_gives_each_run_its_own_colour():
    frame = pd.DataFrame(
        [
            {"run": run, "seed": 0, "epoch": e, "loss": value + e}
            for run, value in (("training loss", 0.0), ("test loss", 10.0))
            for e in range(3)
        ]
    )
    ax = plot_runs(frame, "loss", title="one title")
    colours = {line.get_color() for line in ax.get_lines() if len(line.get_xdata()) == 3}
    assert len(colours) == 2
    assert ax.get_title() == "one title"
    assert plot_runs(frame.rename(columns={"loss": "test Accuracy"})).get_ylabel() == (
        "test accuracy"
    )
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"training loss", "test loss"}


def test_plot_rates_keeps_the_runs_in_their_order_so_colours_match_other_panels():
    frame = _plateau_frame()
    frame["run"] = frame["seed"].map({0: "string", 1: "scaled"})
    ax = plot_rates(frame, by="run")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["string", "scaled"]


def test_plot_range_test_draws_the_loss_on_a_log_rate_axis_and_marks_the_suggestion():
    lrs = [1e-3 * 10 ** (i / 4) for i in range(9)]  # 1e-3 .. 1e-1
    losses = [2.0, 1.9, 1.5, 0.8, 0.5, 0.4, 0.6, 1.0, 9.0]  # falls, bottoms at 10**-1.75, explodes
    result = RangeTest(lrs, losses, losses, lrs[5] / 10, lrs[5], lrs[-1])
    ax = plot_range_test(result)
    curve, minimum, suggestion = ax.get_lines()
    assert list(curve.get_xdata()) == lrs and list(curve.get_ydata()) == losses
    assert list(minimum.get_xdata()) == [lrs[5]] and list(minimum.get_ydata()) == [0.4]
    assert set(suggestion.get_xdata()) == {lrs[5] / 10}  # a vertical line
    assert ax.get_xscale() == "log" and "log" in ax.get_xlabel()
    assert "learning rate" in ax.get_xlabel() and "loss" in ax.get_ylabel()
    assert ax.get_title() == "Learning-rate range test"
    assert ax.get_ylim() == pytest.approx((0.24, 2.16))  # 0.4 .. 2.0 and 10%: 9.0 leaves the top
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["smoothed loss", "minimum at 0.0178", "suggestion 0.00178"]


def test_plot_runs_takes_each_runs_colour_from_a_palette():
    import matplotlib.colors as mcolors

    frame = pd.DataFrame(
        [{"run": run, "seed": 0, "epoch": e, "loss": e} for run in ("a", "b") for e in range(3)]
    )
    ax = plot_runs(frame, "loss", palette={"a": "C3", "b": "C5"})
    drawn = {
        line.get_label(): mcolors.to_hex(line.get_color()) for line in ax.get_legend().get_lines()
    }
    assert drawn == {"a": mcolors.to_hex("C3"), "b": mcolors.to_hex("C5")}


def _runs_frame(names):
    return pd.DataFrame(
        [
            {"run": run, "seed": 0, "epoch": e, "loss": i + e}
            for i, run in enumerate(names)
            for e in range(3)
        ]
    )


def _drawn(ax):
    import matplotlib.colors as mcolors

    return {
        line.get_label(): (mcolors.to_hex(line.get_color()), line.get_linestyle())
        for line in ax.get_legend().get_lines()
    }


def test_a_run_keeps_its_book_wide_colour_whatever_else_shares_the_figure():
    import matplotlib.colors as mcolors

    from idlmam.plotting import RUN_COLOURS

    alone = _drawn(plot_runs(_runs_frame(["SGD w/ Nesterov"]), "loss"))
    crowded = _drawn(plot_runs(_runs_frame(["AdamW", "SGD", "SGD w/ Nesterov"]), "loss"))
    nesterov = mcolors.to_hex(RUN_COLOURS["SGD w/ Nesterov"])
    assert alone["SGD w/ Nesterov"][0] == crowded["SGD w/ Nesterov"][0] == nesterov
    assert crowded["AdamW"][0] == mcolors.to_hex("tab:red")


def test_a_variant_is_dashed_in_its_base_colour_and_unknown_runs_get_free_colours():
    drawn = _drawn(plot_runs(_runs_frame(["AdamW", "AdamW+CosineLR", "mine", "yours"]), "loss"))
    assert drawn["AdamW+CosineLR"][0] == drawn["AdamW"][0]
    assert drawn["AdamW"][1] == "-" and drawn["AdamW+CosineLR"][1] == "--"
    colours = [colour for colour, _ in drawn.values()]
    assert drawn["mine"][0] != drawn["yours"][0]
    assert drawn["mine"][0] not in colours[:2] and drawn["yours"][0] not in colours[:2]


def test_run_colours_never_gives_a_stranger_a_colour_already_used_in_the_figure():
    from idlmam.plotting import RUN_COLOURS, run_colours

    names = ["stranger"] + list(RUN_COLOURS)  # every book colour is taken
    colours = run_colours(names)
    import matplotlib.colors as mcolors

    taken = {mcolors.to_hex(c) for name, c in colours.items() if name != "stranger"}
    assert mcolors.to_hex(colours["stranger"]) not in taken


def test_plot_rates_draws_seeds_with_the_same_rates_as_one_line_naming_both():
    frame = _plateau_frame()
    twin = frame[frame["seed"] == 0].assign(seed=2)  # seed 2 cuts exactly where seed 0 does
    ax = plot_rates(pd.concat([frame, twin]))
    assert len(ax.get_lines()) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["seeds 0 and 2", "seed 1"]
