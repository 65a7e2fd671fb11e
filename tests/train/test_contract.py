"""One contract, two engines: each test runs the same setup through train_network (one model)
and train_many (the stacked engine, one seed), the two entry points of the one loop, and asks
the same of both: the lr column, the schedule's steps, the divergence row and its NaN columns,
the one warning, the hook's rows, stopping, and the train()/eval() switches of an optimizer
with modes. The numbers of many seeds against separate runs are in test_stacked.py."""

import math
import warnings

import numpy as np
import pytest
import torch
from spies import EvalSpy, ModeSGD, Recorder, RecordingSGD
from torch import nn

import idlmam.train.stacked as stacked_module
from idlmam.data import ResidentLoader
from idlmam.models import mlp
from idlmam.train import DivergenceWarning, train_many, train_network
from idlmam.utils import order_seed, set_seed

ENGINES = ["one model", "stacked"]
SEED = 4


def small_model() -> nn.Module:
    return mlp(hidden=16, layers=2)


def train(engine, tiny_data, make_optimizer, *, make_model=small_model, schedule_fn=None, **kw):
    """Seed SEED's run on either engine: the same weights, order, loaders and arguments."""
    X, y = tiny_data
    loader = kw.pop("train_loader", None) or ResidentLoader(X[:60], y[:60], 20, shuffle=True)
    kw = {"val_loader": ResidentLoader(X[60:80], y[60:80], 10), "disable_tqdm": True} | kw
    if engine == "stacked":
        frame = train_many(
            make_model,
            [SEED],
            nn.CrossEntropyLoss(),
            loader,
            make_optimizer=make_optimizer,
            make_schedule=schedule_fn,
            **kw,
        )
        assert frame["seed"].eq(SEED).all()
        return frame.drop(columns="seed")
    set_seed(SEED)
    model = make_model()
    optimizer = make_optimizer(model.parameters())
    loader.generator.manual_seed(order_seed(SEED))
    schedule = schedule_fn(optimizer) if schedule_fn else None
    return train_network(
        model, nn.CrossEntropyLoss(), loader, optimizer=optimizer, lr_schedule=schedule, **kw
    )


@pytest.mark.parametrize("every", ["epoch", "batch"])
@pytest.mark.parametrize("engine", ENGINES)
def test_the_lr_column_and_the_schedule_steps(engine, every, tiny_data):
    rates = []
    frame = train(
        engine,
        tiny_data,
        lambda p: RecordingSGD(p, 0.1, rates),
        schedule_fn=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 0.5**t),
        lr_schedule_every=every,
        epochs=3,
    )
    per_epoch = 3  # 60 examples in batches of 20
    steps = [e if every == "epoch" else i for i in range(9) for e in [i // per_epoch]]
    assert rates == pytest.approx([0.1 * 0.5**t for t in steps], rel=1e-12)
    assert frame["lr"].tolist() == pytest.approx(rates[::per_epoch], rel=1e-12)
    assert list(frame.columns[:4]) == ["epoch", "total time", "lr", "train loss"]
    assert frame["total time"].is_monotonic_increasing and frame.attrs["diverged"] is False


@pytest.mark.parametrize("engine", ENGINES)
def test_a_diverged_epoch_is_the_last_row_marked_and_not_evaluated(engine, tiny_data):
    X, y = tiny_data

    def broken():  # a NaN weight: the training loss is NaN from the first batch on
        model = small_model()
        with torch.no_grad():
            model[1].weight[0, 0] = float("nan")
        return model

    def never(y_true, y_pred):
        raise AssertionError("a score function was asked to rate a diverged model")

    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = train(
            engine,
            tiny_data,
            lambda p: torch.optim.SGD(p, lr=0.1),
            make_model=broken,
            test_loader=ResidentLoader(X[80:], y[80:], 10),
            score_funcs={"Accuracy": never},
            epochs=4,
            on_epoch_end=lambda epoch, row: rows.append(row),
        )
    assert [w.category for w in caught] == [DivergenceWarning]
    assert "lower the learning rate" in str(caught[0].message)
    assert len(frame) == 1 and frame["diverged"].tolist() == [True]
    assert frame.attrs["diverged"] is True and frame["diverged"].dtype == bool
    nan_columns = [c for c in frame.columns if c.split()[0] in ("train", "val", "test")]
    assert nan_columns == [
        "train loss",
        "train Accuracy",
        "val loss",
        "val Accuracy",
        "test loss",
        "test Accuracy",
    ]
    assert all(math.isnan(frame[c].iloc[0]) for c in nan_columns)
    assert len(rows) == 1 and rows[0]["diverged"] is True and math.isnan(rows[0]["val loss"])


@pytest.mark.parametrize("engine", ENGINES)
def test_on_epoch_end_sees_every_row_and_can_stop(engine, tiny_data):
    rows = []
    frame = train(
        engine,
        tiny_data,
        lambda p: torch.optim.SGD(p, lr=0.1),
        epochs=5,
        on_epoch_end=lambda epoch, row: rows.append(row) or epoch == 1,
    )
    assert len(frame) == 2 and [r["epoch"] for r in rows] == [0, 1]
    assert [r["val loss"] for r in rows] == frame["val loss"].tolist()
    assert "diverged" not in frame and not any("diverged" in r for r in rows)


@pytest.mark.parametrize("engine", ENGINES)
def test_an_optimizer_with_modes_is_switched_around_every_evaluation(
    engine, tiny_data, monkeypatch
):
    X, y = tiny_data
    recorder = Recorder()
    stack = stacked_module.stack_models

    def keep(models):  # the stacked module, whose mode the optimizer's switches note
        recorder.model = stack(models)
        return recorder.model

    monkeypatch.setattr(stacked_module, "stack_models", keep)

    def make_optimizer(params):
        if engine == "one model":  # the model these parameters belong to
            recorder.model = model_of[0]
        return ModeSGD(params, recorder)

    model_of = []

    def make_model():
        model_of.append(small_model())
        return model_of[-1]

    frame = train(
        engine,
        tiny_data,
        make_optimizer,
        make_model=make_model,
        train_loader=ResidentLoader(X[:60], y[:60], 30, shuffle=True),
        val_loader=EvalSpy(X[60:80], y[60:80], 10, recorder, "val"),
        test_loader=EvalSpy(X[80:], y[80:], 10, recorder, "test"),
        epochs=2,
        on_epoch_end=lambda epoch, row: recorder.events.append(("hook", recorder.optimizer.mode)),
    )
    one_epoch = [
        ("train", True),  # model.train(), then optimizer.train(), before the training batches
        "step in train mode",
        "step in train mode",
        ("eval", False),  # model.eval(), then optimizer.eval(), before any evaluation
        ("evaluate val", "eval"),
        ("evaluate test", "eval"),
        ("hook", "eval"),
    ]
    assert recorder.events == one_epoch * 2
    assert len(frame) == 2 and recorder.optimizer.mode == "eval"  # as a run leaves them
    assert not recorder.model.training


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_mistake_gets_the_same_error(engine, tiny_data):
    X, y = tiny_data
    other = torch.optim.SGD(small_model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        train(
            engine,
            tiny_data,
            lambda p: torch.optim.SGD(p, lr=0.1),
            schedule_fn=lambda o: torch.optim.lr_scheduler.StepLR(other, 2),
            epochs=1,
        )
    with pytest.raises(ValueError, match="holds none of the parameters"):
        train(engine, tiny_data, lambda p: torch.optim.SGD(small_model().parameters()), epochs=1)
    wide = ResidentLoader(torch.zeros(20, 1, 30, 30), y[:20], 10, shuffle=True)  # 900 != 784
    with pytest.raises(ValueError, match=r"cannot take the first batch of train_loader"):
        train(engine, tiny_data, lambda p: torch.optim.SGD(p, lr=0.1), train_loader=wide)


def test_both_engines_give_the_same_frame(tiny_data):
    """The oracle with one seed: a stacked run of K=1 is the run of that model alone."""
    X, y = tiny_data
    kwargs = {"score_funcs": {"Accuracy": lambda a, b: float((a == b).mean())}, "epochs": 3}
    kwargs["test_loader"] = ResidentLoader(X[80:], y[80:], 10)
    one, stacked = (
        train(
            engine,
            tiny_data,
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            schedule_fn=lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5),
            **kwargs,
        )
        for engine in ENGINES
    )
    assert list(one.columns) == list(stacked.columns)
    for column in one.columns.drop("total time"):
        assert np.allclose(one[column], stacked[column], atol=1e-5), column
