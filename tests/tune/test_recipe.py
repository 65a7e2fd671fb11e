"""Tests of idlmam.tune.recipe: the best trial retrained on train + validation, tested once."""

from __future__ import annotations

import optuna
import pytest
import torch

from idlmam.data import ResidentLoader
from idlmam.tune import (
    Retrained,
    adamw_cosine,
    combine_loaders,
    create_study,
    make_objective,
    retrain_and_test,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMS = {"neurons_per_layer": 20, "hidden_layers": 2, "learning_rate": 3e-3}


class CountingLoader(ResidentLoader):
    """A test loader that counts how often it is read."""

    reads = 0

    def __iter__(self):
        type(self).reads += 1
        return super().__iter__()

    def eval_batches(self, batch_size: int = 1024):
        type(self).reads += 1
        return super().eval_batches(batch_size)


@pytest.fixture
def held_out():
    """30 held-out examples labelled by the rule of ``tiny_data``."""
    g = torch.Generator().manual_seed(1)
    X = torch.rand(30, 1, 28, 28, generator=g)
    return X, (X.mean(dim=(1, 2, 3)) * 10 % 10).long()


def test_retrain_trains_once_on_train_plus_val_and_scores_the_test_set_once(loaders, spy, held_out):
    """Oracle: the same run made by hand on the 100 examples, scored by counting right labels."""
    from idlmam.models import mlp
    from idlmam.train import train_network
    from idlmam.utils import order_seed, set_seed

    train_loader, val_loader = loaders
    CountingLoader.reads = 0
    test_loader = CountingLoader(*held_out, 8)
    final = retrain_and_test(PARAMS, train_loader, val_loader, test_loader, epochs=3)

    assert isinstance(final, Retrained) and CountingLoader.reads == 1  # the test set, once
    (call,) = spy  # one training run ...
    data = call["train_loader"]
    assert call["val_loader"] is None and call["test_loader"] is None  # ... that evaluates nothing
    assert torch.equal(data.X, torch.cat([train_loader.X, val_loader.X]))  # ... on all 100 images
    assert torch.equal(data.y, torch.cat([train_loader.y, val_loader.y]))
    assert data.shuffle and data.batch_size == 16
    assert call["epochs"] == 3 and isinstance(call["optimizer"], torch.optim.AdamW)
    assert call["lr_schedule"].base_lrs == [3e-3]
    assert (final.n_train, final.n_test, final.params) == (100, 30, PARAMS)
    assert len(final.results) == 3 and "val loss" not in final.results

    set_seed(0)
    model = mlp(hidden=20, layers=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    X = torch.cat([train_loader.X, val_loader.X])
    y = torch.cat([train_loader.y, val_loader.y])
    train_network(
        model,
        torch.nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 16, shuffle=True, seed=order_seed(0)),  # seed 0's batch order
        epochs=3,
        optimizer=optimizer,
        # half a cosine from 3e-3 to its floor 3e-5 in 3 epochs, written out
        lr_schedule=torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: [1.0, 0.505, 0.01][min(epoch, 2)]
        ),
        disable_tqdm=True,
    )
    model.eval()
    with torch.no_grad():
        right = (model(held_out[0]).argmax(1) == held_out[1]).sum().item()
    assert final.test_accuracy == right / 30
    for a, b in zip(model.parameters(), final.model.parameters()):
        assert torch.equal(a, b)


def test_retrain_takes_the_best_trial_of_a_study_and_its_builder(loaders, spy, held_out):
    def build_cnn(trial, epochs):
        from idlmam.models import cnn

        model = cnn(trial.suggest_int("channels", 2, 4), 1, trial.suggest_int("pool_rounds", 0, 2))
        return adamw_cosine(
            model, trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True), epochs
        )

    study = create_study(seed=0)
    study.optimize(make_objective(*loaders, epochs=1, build=build_cnn), n_trials=3)
    spy.clear()
    final = retrain_and_test(study, *loaders, ResidentLoader(*held_out), epochs=1, build=build_cnn)
    assert final.params == study.best_params
    (call,) = spy
    conv = call["model"][0]
    assert conv.out_channels == study.best_params["channels"]
    assert call["optimizer"].param_groups[0]["lr"] == study.best_params["learning_rate"]
    assert call["lr_schedule"] is None  # a one-epoch run has nothing to anneal
    # the same trial's parameters give the same network and score, however they are passed
    again = retrain_and_test(
        study.best_trial, *loaders, ResidentLoader(*held_out), epochs=1, build=build_cnn
    )
    assert again.test_accuracy == final.test_accuracy


def test_retrain_loads_the_test_set_only_after_training(loaders, spy, monkeypatch, held_out):
    import idlmam.data

    asked = []

    def fake_fashion_mnist(train=True, root=None):
        asked.append((train, len(spy)))
        return list(zip(held_out[0], held_out[1].tolist()))

    monkeypatch.setattr(idlmam.data, "fashion_mnist", fake_fashion_mnist)
    final = retrain_and_test(PARAMS, *loaders, epochs=1)
    assert asked == [(False, 1)]  # the test set, after the one training run
    assert final.n_test == 30


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"neurons_per_layer": 20, "learning_rate": 3e-3},
            "'hidden_layers' is not found.*the build the search used",
        ),
        ({**PARAMS, "dropout": 0.5}, r"never asked for \['dropout'\]"),
    ],
)
def test_retrain_refuses_parameters_that_do_not_fit_the_builder(loaders, params, match):
    with pytest.raises(ValueError, match=match):
        retrain_and_test(
            params,
            *loaders,
            ResidentLoader(torch.zeros(2, 1, 28, 28), torch.zeros(2).long()),
            epochs=1,
        )


def test_retrain_refuses_what_is_not_a_set_of_parameters(loaders):
    with pytest.raises(TypeError, match="a study, a trial or a mapping"):
        retrain_and_test([0.1, 2], *loaders, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        retrain_and_test(PARAMS, *loaders, epochs=0)
    with pytest.raises(ValueError):  # a study without a complete trial has no best parameters
        retrain_and_test(create_study(seed=0), *loaders, epochs=1)


def test_combine_loaders_keeps_every_example_and_any_iterable(loaders):
    train_loader, val_loader = loaders
    as_batches = list(val_loader)  # a plain iterable of batches
    combined = combine_loaders(train_loader, as_batches, seed=3, batch_size=32)
    assert torch.equal(combined.X, torch.cat([train_loader.X, val_loader.X]))
    assert combined.batch_size == 32 and combined.shuffle
    assert torch.equal(combined.generator.get_state(), torch.Generator().manual_seed(3).get_state())
    with pytest.raises(ValueError, match="differ in shape"):
        combine_loaders(train_loader, ResidentLoader(torch.zeros(4, 3), torch.zeros(4)))
