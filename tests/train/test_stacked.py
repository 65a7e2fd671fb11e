"""train_many against its oracle: K separate train_network runs, each seed with its own order."""

import math
from functools import partial

import pytest
import schedulefree
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score
from spies import RecordingSGD
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.models import clamp_gradients, mlp
from idlmam.train import (
    DivergenceWarning,
    VmapModels,
    stack_models,
    train_many,
    train_network,
)
from idlmam.utils import order_seed, set_seed

SEEDS = [0, 1, 2]
EPOCHS = 3


def small_model() -> nn.Module:
    return mlp(hidden=16, layers=2)


class TwoLayer(nn.Module):
    """Not an nn.Sequential: stacked with torch.func.vmap instead of batched matrix products."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 12), nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def loaders(tiny_data):
    """Fresh loaders (each seed's order comes from its own generator, see order_seed)."""
    X, y = tiny_data
    train = ResidentLoader(X[:80], y[:80], 16, shuffle=True, seed=7)
    return train, ResidentLoader(X[80:], y[80:], 8), ResidentLoader(X, y, 32)


def separate_runs(
    tiny_data,
    make_model,
    make_optimizer,
    make_schedule=None,
    loss_func=None,
    clip_value=None,
    every="epoch",
):
    frames, models = [], []
    for seed in SEEDS:
        set_seed(seed)
        model = make_model()
        optimizer = make_optimizer(model.parameters())
        hooks = clamp_gradients(model, clip_value) if clip_value else []
        train, val, test = loaders(tiny_data)
        train.generator.manual_seed(order_seed(seed))  # seed s's own order, as train_many
        frame = train_network(
            model,
            loss_func or nn.CrossEntropyLoss(),
            train,
            val_loader=val,
            test_loader=test,
            score_funcs={"Accuracy": accuracy_score},
            epochs=EPOCHS,
            optimizer=optimizer,
            disable_tqdm=True,
            lr_schedule=make_schedule(optimizer) if make_schedule else None,
            lr_schedule_every=every,
        )
        for hook in hooks:
            hook.remove()
        frames.append(frame)
        models.append(model)
    return frames, models


def joint_run(tiny_data, make_model, make_optimizer, make_schedule=None, loss_func=None, **kw):
    train, val, test = loaders(tiny_data)
    return train_many(
        make_model,
        SEEDS,
        loss_func or nn.CrossEntropyLoss(),
        train,
        make_optimizer=make_optimizer,
        make_schedule=make_schedule,
        val_loader=val,
        test_loader=test,
        score_funcs={"Accuracy": accuracy_score},
        epochs=EPOCHS,
        return_models=True,
        disable_tqdm=True,
        **kw,
    )


def assert_same(joint, separate, weights_atol=1e-5):
    """The frames agree within 1e-5; so do the weights, within ``weights_atol``."""
    frame, joint_models = joint
    frames, models = separate
    assert len(frame) == len(SEEDS) * EPOCHS
    for seed, single, model, joint_model in zip(SEEDS, frames, models, joint_models):
        rows = frame[frame["seed"] == seed].reset_index(drop=True)
        assert list(rows.columns) == ["seed"] + list(single.columns)
        for column in single.columns.drop("total time"):
            assert rows[column].tolist() == pytest.approx(single[column].tolist(), abs=1e-5), column
        for p, q in zip(model.parameters(), joint_model.parameters()):
            assert torch.allclose(p, q, atol=weights_atol)


OPTIMIZERS = {
    "SGD": (lambda p: torch.optim.SGD(p, lr=0.1), None),
    "SGD+momentum": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), None),
    "SGD+Nesterov": (
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        None,
    ),
    "AdamW+cosine": (
        lambda p: torch.optim.AdamW(p, lr=0.01),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS, eta_min=1e-4),
    ),
    "Adam+step": (
        lambda p: torch.optim.Adam(p, lr=0.01),
        lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5),
    ),
    # elementwise, with train()/eval() modes: the stacked path must switch them as the loop does
    "AdamWScheduleFree": (
        lambda p: schedulefree.AdamWScheduleFree(p, lr=0.01, warmup_steps=3, weight_decay=0.01),
        None,
    ),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_equals_separate_runs(tiny_data, name):
    make_optimizer, make_schedule = OPTIMIZERS[name]
    # Adam divides each value's step by that value's own running gradient size, so the 1e-7
    # rounding of the fused tanh moves a few weights by up to 5e-5 (the frames still agree)
    assert_same(
        joint_run(tiny_data, small_model, make_optimizer, make_schedule),
        separate_runs(tiny_data, small_model, make_optimizer, make_schedule),
        weights_atol=1e-4 if name.startswith("Adam") else 1e-5,
    )


def test_clip_value_equals_clamp_gradients(tiny_data):
    make_optimizer = partial(torch.optim.SGD, lr=0.5, momentum=0.9)
    assert_same(
        joint_run(tiny_data, small_model, make_optimizer, clip_value=0.01),
        separate_runs(tiny_data, small_model, make_optimizer, clip_value=0.01),
    )


def test_any_loss_function(tiny_data):
    def loss(y_hat, y):
        return F.cross_entropy(y_hat, y) + 0.1 * y_hat.pow(2).mean()

    make_optimizer = partial(torch.optim.SGD, lr=0.1)
    assert_same(
        joint_run(tiny_data, small_model, make_optimizer, loss_func=loss),
        separate_runs(tiny_data, small_model, make_optimizer, loss_func=loss),
    )


def test_models_that_are_not_sequential_use_vmap(tiny_data):
    set_seed(0)
    assert isinstance(stack_models([TwoLayer(), TwoLayer()]), VmapModels)
    # a gentle rate: at lr=0.1 the loss jumps about and amplifies float rounding past 1e-5
    make_optimizer = partial(torch.optim.SGD, lr=0.02, momentum=0.9)
    assert_same(
        joint_run(tiny_data, TwoLayer, make_optimizer),
        separate_runs(tiny_data, TwoLayer, make_optimizer),
    )


def test_frame_layout(tiny_data):
    X, y = tiny_data
    frame = train_many(
        small_model,
        [3, 5],
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=2,
        disable_tqdm=True,
    )
    assert list(frame.columns) == ["seed", "epoch", "total time", "lr", "train loss"]
    assert frame["seed"].tolist() == [3, 3, 5, 5] and frame["epoch"].tolist() == [0, 1, 0, 1]
    assert frame["lr"].tolist() == [0.001] * 4  # AdamW's default, as in train_network


def test_on_epoch_end_is_asked_per_seed_and_stops_only_that_seed(tiny_data):
    X, y = tiny_data
    seen = []

    def hook(epoch, row):
        seen.append((epoch, row["seed"]))
        return row["seed"] == 3 and epoch == 1  # stop seed 3 after its second epoch

    frame, models = train_many(
        small_model,
        [3, 5],
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50, shuffle=True),
        epochs=4,
        disable_tqdm=True,
        on_epoch_end=hook,
        return_models=True,
    )
    assert seen == [(0, 3), (0, 5), (1, 3), (1, 5), (2, 5), (3, 5)]
    assert frame.groupby("seed")["epoch"].max().to_dict() == {3: 1, 5: 3}
    assert not frame.attrs["diverged"] and "diverged" not in frame
    # seed 3's model is returned as it was when it stopped: two epochs of a single run
    set_seed(3)
    alone = small_model()
    loader = ResidentLoader(X, y, 50, shuffle=True)
    loader.generator.manual_seed(order_seed(3))
    train_network(alone, nn.CrossEntropyLoss(), loader, epochs=2, disable_tqdm=True)
    for p, q in zip(alone.parameters(), models[0].parameters()):
        assert torch.allclose(p, q, atol=1e-5)


def test_two_seeds_with_the_same_weights_still_differ_by_their_batch_order(tiny_data):
    X, y = tiny_data

    def same_weights():  # ignores the seed: every model starts from identical weights
        torch.manual_seed(123)
        return small_model()

    frame = train_many(
        same_weights,
        [0, 1],
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 10, shuffle=True),
        epochs=1,
        disable_tqdm=True,
        make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
    )
    losses = frame.set_index("seed")["train loss"]
    assert losses[0] != pytest.approx(losses[1], abs=1e-6)  # only the order differs


def test_every_seed_draws_its_own_order(tiny_data):
    X, y = tiny_data
    loader = ResidentLoader(X, y, 10, shuffle=True)
    orders = [torch.Generator().manual_seed(order_seed(s)) for s in (0, 1)]
    inputs, labels = next(iter(loader.stacked_batches(orders)))  # (K, B, 1, 28, 28), (K, B)
    assert inputs.shape == (2, 10, 1, 28, 28) and labels.shape == (2, 10)
    assert not torch.equal(inputs[0], inputs[1])
    loader.generator.manual_seed(order_seed(1))
    alone, alone_labels = next(iter(loader))  # seed 1's first batch, from a single loader
    assert torch.equal(alone, inputs[1]) and torch.equal(alone_labels, labels[1])


def test_a_nan_loss_stops_that_seed_flags_it_and_warns_once(tiny_data):
    X, y = tiny_data
    built = []

    def make_model():  # the second model (seed 1) has one NaN weight: its loss is NaN at once
        model = small_model()
        built.append(model)
        if len(built) == 2:
            with torch.no_grad():
                model[1].weight[0, 0] = float("nan")
        return model

    def make():
        return ResidentLoader(X[:80], y[:80], 16, shuffle=True), ResidentLoader(X[80:], y[80:], 8)

    train, val = make()
    with pytest.warns(DivergenceWarning) as caught:
        frame = train_many(
            make_model,
            [0, 1],
            nn.CrossEntropyLoss(),
            train,
            val_loader=val,
            score_funcs={"Accuracy": accuracy_score},
            epochs=3,
            disable_tqdm=True,
            make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
        )
    assert len([w for w in caught if issubclass(w.category, DivergenceWarning)]) == 1
    assert "seed 1 at epoch 0" in str(caught[0].message)
    assert frame.attrs["diverged"] is True
    assert frame.groupby("seed")["epoch"].max().to_dict() == {0: 2, 1: 0}  # seed 1 stopped
    assert frame["diverged"].tolist() == [False, False, False, True]
    last = frame[frame["seed"] == 1].iloc[0]
    assert math.isnan(last["val loss"]) and math.isnan(last["val Accuracy"])
    # the healthy seed trained exactly as it would have alone
    set_seed(0)
    model = small_model()
    train, val = make()
    train.generator.manual_seed(order_seed(0))
    alone = train_network(
        model,
        nn.CrossEntropyLoss(),
        train,
        val_loader=val,
        score_funcs={"Accuracy": accuracy_score},
        epochs=3,
        disable_tqdm=True,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    )
    healthy = frame[frame["seed"] == 0]
    assert healthy["val loss"].tolist() == pytest.approx(alone["val loss"].tolist(), abs=1e-5)


def test_a_misfit_loader_is_refused_before_training_with_the_loops_error(tiny_data):
    X, y = tiny_data
    trained = []
    wide = ResidentLoader(torch.zeros(20, 1, 30, 30), y[:20], 10, shuffle=True)  # 900 != 784
    with pytest.raises(
        ValueError,
        match=r"model cannot take the first batch of train_loader: "
        r"inputs of shape \(10, 1, 30, 30\)",
    ):
        train_many(
            small_model,
            [0, 1],
            nn.CrossEntropyLoss(),
            wide,
            disable_tqdm=True,
            on_epoch_end=lambda epoch, row: trained.append(epoch),
        )
    assert trained == []
    strings = ResidentLoader(X, torch.zeros(len(X), 3), 10)  # labels a CrossEntropyLoss refuses
    with pytest.raises(ValueError, match="loss_func cannot compare"):
        train_many(
            small_model,
            [0, 1],
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 10),
            val_loader=strings,
            disable_tqdm=True,
        )
    with pytest.raises(TypeError, match="needs an idlmam.data.ResidentLoader"):
        train_many(small_model, [0, 1], nn.CrossEntropyLoss(), [(X, y)], disable_tqdm=True)


def test_a_failing_score_function_is_named_before_training(tiny_data):
    X, y = tiny_data

    def broken(y_true, y_pred):
        raise KeyError("oops")

    with pytest.raises(ValueError, match=r"score function 'Broken' \(.*broken\) failed"):
        train_many(
            small_model,
            [0, 1],
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 10),
            score_funcs={"Broken": broken},
            disable_tqdm=True,
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seeds": []}, "seeds is empty"),
        ({"seeds": [1, 1]}, "seeds repeat"),
        (
            {"make_schedule": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o)},
            "ReduceLROnPlateau",
        ),
        ({"make_optimizer": lambda p: torch.optim.LBFGS(p)}, "LBFGS"),
        (
            {
                "make_model": lambda: nn.Sequential(
                    nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10)
                )
            },
            "dropout",
        ),
        ({"make_model": lambda: clamp_gradients(m := small_model(), 1.0) and m}, "clip_value"),
        ({"epochs": 0}, "epochs"),
        ({"lr_schedule_every": "step"}, "must be 'epoch' or 'batch', got 'step'"),
        (
            {
                "lr_schedule_every": "batch",
                "make_schedule": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o),
            },
            "ReduceLROnPlateau .* once per epoch",  # train_network's own error
        ),
    ],
)
def test_clear_errors(tiny_data, kwargs, message):
    X, y = tiny_data
    args = {"make_model": small_model, "seeds": [0, 1], "epochs": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        train_many(
            args.pop("make_model"),
            args.pop("seeds"),
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            disable_tqdm=True,
            **args,
        )


def test_a_per_batch_schedule_equals_separate_runs(tiny_data):
    rates = {"joint": [], "separate": []}

    def schedule(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 / (1 + 0.3 * t))

    joint = joint_run(
        tiny_data,
        small_model,
        lambda p: RecordingSGD(p, 0.1, rates["joint"]),
        schedule,
        lr_schedule_every="batch",
    )
    separate = separate_runs(
        tiny_data,
        small_model,
        lambda p: RecordingSGD(p, 0.1, rates["separate"]),
        schedule,
        every="batch",
    )
    assert_same(joint, separate)  # the lr column included
    per_epoch = 5  # 80 training examples in batches of 16
    expected = [0.1 / (1 + 0.3 * t) for t in range(EPOCHS * per_epoch)]
    assert rates["joint"] == pytest.approx(expected, rel=1e-12)  # one optimizer for all K
    assert rates["separate"] == pytest.approx(expected * len(SEEDS), rel=1e-12)  # one per seed
    frame = joint[0]
    assert frame["lr"].tolist() == pytest.approx(expected[::per_epoch] * len(SEEDS), rel=1e-12)
