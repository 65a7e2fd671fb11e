"""The fair-comparison helpers against frames and answers worked out by hand."""

import math
import warnings

import pandas as pd
import pytest
import torch
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.experiments.sweep import (
    best_rates,
    lr_sweep,
    rate_grid,
    sweep_label,
    time_to_target,
    with_seeds,
)
from idlmam.models import mlp


def test_rate_grid_by_hand():
    assert rate_grid(1.0, below=2, above=1, factor=2.0) == [0.25, 0.5, 1.0, 2.0]
    assert rate_grid(0.1, below=0, above=0) == [0.1]
    for bad in ({"center": 0.0}, {"center": 1.0, "factor": 1.0}, {"center": 1.0, "below": -1}):
        with pytest.raises(ValueError):
            rate_grid(**bad)


def test_sweep_label_two_significant_digits():
    assert sweep_label("Lion", 0.00033333) == "Lion, lr 0.00033"
    assert sweep_label("SGD", 0.1) == "SGD, lr 0.1"


def trials(scores: dict[tuple[str, float], list[float]], column: str = "val Accuracy"):
    """A sweep frame: each (optimizer, rate) over seeds 0..n-1, two epochs, the last one scored."""
    rows = []
    for (name, rate), values in scores.items():
        for seed, value in enumerate(values):
            for epoch in (0, 1):
                rows.append(
                    {
                        "optimizer": name,
                        "rate": rate,
                        "run": sweep_label(name, rate),
                        "seed": seed,
                        "epoch": epoch,
                        column: value if epoch == 1 else 0.99,  # only the last epoch counts
                    }
                )
    return pd.DataFrame(rows)


def test_best_rates_by_hand():
    frame = trials(
        {
            ("A", 0.01): [0.80, 0.90],  # mean 0.85
            ("A", 0.1): [0.87, 0.87],  # mean 0.87: the best, inside the grid
            ("A", 1.0): [0.99, math.nan],  # one seed diverged: the worst
            ("B", 0.3): [0.70, 0.70],
            ("B", 0.1): [0.70, 0.70],  # a tie: the smaller rate wins, and it is an edge
            ("B", 0.2): [0.60, 0.60],
        }
    )
    table = best_rates(frame)
    assert list(table.index) == ["A", "B"]
    assert table.loc["A", "rate"] == 0.1 and table.loc["A", "score"] == pytest.approx(0.87)
    assert table.loc["A", "trials"] == 3 and not table.loc["A", "at_edge"]
    assert table.loc["B", "rate"] == 0.1 and table.loc["B", "at_edge"]


def test_best_rates_reads_only_its_column():
    frame = trials({("A", 0.01): [0.9], ("A", 0.1): [0.8]})
    frame["test Accuracy"] = frame["rate"].map({0.01: 0.1, 0.1: 0.95})  # test would pick 0.1
    assert best_rates(frame).loc["A", "rate"] == 0.01
    assert best_rates(frame, "test Accuracy").loc["A", "rate"] == 0.1
    with pytest.raises(ValueError, match="rate"):
        best_rates(frame.drop(columns="rate"))


def test_best_rates_all_diverged_still_answers():
    table = best_rates(trials({("A", 1.0): [math.nan], ("A", 10.0): [math.nan]}))
    assert table.loc["A", "rate"] == 1.0 and table.loc["A", "score"] == -math.inf


def clocked(values: dict[int, list[float]], times: dict[int, list[float]], run="A"):
    return pd.DataFrame(
        [
            {"run": run, "seed": s, "epoch": e, "total time": times[s][e], "val Accuracy": v}
            for s, seq in values.items()
            for e, v in enumerate(seq)
        ]
    )


def test_time_to_target_by_hand():
    frame = pd.concat(
        [
            # seed 0 first reaches 0.8 at epoch 1 (2 epochs, 2.0 s); seed 1 at epoch 2 (3, 6.0 s);
            # seed 2 never: 2 of 3, epochs (2 + 3) / 2, seconds (2 + 6) / 2
            clocked(
                {0: [0.5, 0.8, 0.7], 1: [0.1, 0.79, 0.9], 2: [0.1, 0.2, 0.3]},
                {0: [1.0, 2.0, 3.0], 1: [2.0, 4.0, 6.0], 2: [1.0, 2.0, 3.0]},
            ),
            clocked({0: [0.1, 0.2]}, {0: [1.0, 2.0]}, run="B"),
        ],
        ignore_index=True,
    )
    table = time_to_target(frame, 0.8)
    assert list(table.index) == ["A", "B"]
    assert table.loc["A"].tolist() == [3, 2, 2.5, 4.0]
    assert table.loc["B", "reached"] == 0
    assert math.isnan(table.loc["B", "epochs"]) and math.isnan(table.loc["B", "seconds"])
    # on seed 0's clock: seed 1's epoch 2 takes seed 0's 3.0 s; mean (2.0 + 3.0) / 2
    assert time_to_target(frame, 0.8, clock_seed=0).loc["A", "seconds"] == 2.5
    with pytest.raises(ValueError, match="clock_seed 5"):
        time_to_target(frame, 0.8, clock_seed=5)
    with pytest.raises(ValueError, match="total time"):
        time_to_target(frame.drop(columns="total time"), 0.8)


@pytest.fixture
def loaders(tiny_data):
    X, y = tiny_data
    return {
        "train": ResidentLoader(X[:80], y[:80], 20, shuffle=True, seed=9),
        "val": ResidentLoader(X[80:], y[80:], 20),
    }


def small():
    return mlp(hidden=8, layers=1)


def sgd(params, lr):
    return torch.optim.SGD(params, lr=lr)


def test_lr_sweep_labels_every_trial(loaders):
    frame = lr_sweep("SGD", sgd, [0.01, 0.1], loaders=loaders, epochs=2, make_model=small)
    assert sorted(frame["run"].unique()) == ["SGD, lr 0.01", "SGD, lr 0.1"]
    assert frame["optimizer"].eq("SGD").all() and frame["seed"].eq(0).all()
    assert frame.groupby("rate")["lr"].first().to_dict() == {0.01: 0.01, 0.1: 0.1}
    assert not frame.attrs["diverged"]


def test_a_diverged_trial_is_recorded_not_warned(loaders):
    linear = lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        frame = lr_sweep("SGD", sgd, [1e38], loaders=loaders, epochs=3, make_model=linear)
    assert frame.attrs["diverged"] and frame["diverged"].fillna(False).astype(bool).any()
    assert math.isinf(best_rates(frame).loc["SGD", "score"])


def test_with_seeds_reuses_the_trial_and_trains_the_rest(loaders):
    common = dict(loaders=loaders, epochs=2, make_model=small)
    sweep = lr_sweep("SGD", sgd, [0.01, 0.1], **common)
    every = with_seeds(sweep, "SGD", sgd, 0.1, [0, 1], **common)
    assert every["seed"].tolist() == [0, 0, 1, 1] and every["run"].eq("SGD, lr 0.1").all()
    trial = sweep[sweep["rate"] == 0.1].reset_index(drop=True)
    pd.testing.assert_frame_equal(every[every["seed"] == 0].reset_index(drop=True), trial)
    fresh = lr_sweep("SGD", sgd, [0.1], seeds=[1], **common)
    pd.testing.assert_series_equal(
        every.loc[every["seed"] == 1, "train loss"].reset_index(drop=True),
        fresh["train loss"],
        check_exact=False,
        rtol=1e-6,
    )

    def refuse(params, lr):
        raise AssertionError("nothing was missing: nothing should train")

    again = with_seeds(sweep, "SGD", refuse, 0.01, [0], **common)
    assert again["rate"].eq(0.01).all() and len(again) == 2
    # a frame of an earlier call, concatenated with its sweep, repeats seed 0: taken once
    twice = with_seeds(pd.concat([sweep, every]), "SGD", refuse, 0.1, [0, 1], **common)
    pd.testing.assert_frame_equal(twice, every)
