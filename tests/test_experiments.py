import pandas as pd
import pytest
import torch

from idlmam.data import ResidentLoader
from idlmam.experiments import run
from idlmam.models import mlp


@pytest.fixture
def loaders(tiny_data):
    X, y = tiny_data
    return {"train": ResidentLoader(X[:80], y[:80], 20, shuffle=True, seed=9),
            "val": ResidentLoader(X[80:], y[80:], 20), "test": ResidentLoader(X[80:], y[80:], 20)}


def small():
    return mlp(hidden=8, layers=2)


def sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def test_stacked_seeds_equal_one_seed_at_a_time(loaders):
    together = run("SGD", sgd, loaders=loaders, epochs=3, seeds=[0, 1, 2], model_fn=small)
    alone = pd.concat([run("SGD", sgd, loaders=loaders, epochs=3, seeds=[s], model_fn=small)
                       for s in (0, 1, 2)], ignore_index=True)
    assert list(together.columns) == list(alone.columns)
    assert together["run"].eq("SGD").all() and sorted(together["seed"].unique()) == [0, 1, 2]
    for column in ("train loss", "test loss", "test Accuracy", "lr"):
        a = together.sort_values(["seed", "epoch"])[column].to_numpy()
        b = alone.sort_values(["seed", "epoch"])[column].to_numpy()
        assert abs(a - b).max() < 1e-5, column
    assert together.groupby("seed")["train loss"].first().nunique() == 3  # seeds differ


def test_plateau_and_norm_clipping_train_seed_by_seed(loaders):
    from idlmam.optim import clip_grad_norm_on_step

    plateau = run("Plateau", sgd, "ReduceLROnPlateau", loaders=loaders, epochs=2, seeds=[0, 1],
                  model_fn=small)
    clipped = run("Norm", lambda p: clip_grad_norm_on_step(sgd(p), 0.01), loaders=loaders,
                  epochs=2, seeds=[0, 1], model_fn=small)
    single = run("Norm", lambda p: clip_grad_norm_on_step(sgd(p), 0.01), loaders=loaders,
                 epochs=2, seeds=[1], model_fn=small)
    assert len(plateau) == len(clipped) == 4
    assert clipped[clipped["seed"] == 1]["train loss"].tolist() == single["train loss"].tolist()


def test_clip_value_hooks_do_not_outlive_the_run(loaders):
    clipped = run("Clamp", sgd, loaders=loaders, epochs=1, seeds=[0], model_fn=small, clip_value=1e-6)
    free = run("Free", sgd, loaders=loaders, epochs=1, seeds=[0], model_fn=small)
    again = run("Free", sgd, loaders=loaders, epochs=1, seeds=[0], model_fn=small)
    assert clipped["train loss"].iloc[0] != free["train loss"].iloc[0]
    assert free["train loss"].tolist() == again["train loss"].tolist()
