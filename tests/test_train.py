import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score
from torch import nn

from idlmam.data import ResidentLoader, classic_loader, fashion_mnist, resident_loader
from idlmam.models import mlp
from idlmam.train import train_network
from idlmam.utils import set_seed


def small_model(seed=0):
    set_seed(seed)
    return mlp(hidden=16, layers=2)


def test_one_epoch_loss_equals_a_hand_written_loop(tiny_data):
    X, y = tiny_data
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = train_network(model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 32), epochs=1, optimizer=opt)

    hand = small_model()
    hand_opt = torch.optim.SGD(hand.parameters(), lr=0.1)
    total, n = 0.0, 0
    for start in range(0, 100, 32):
        xb, yb = X[start:start + 32], y[start:start + 32]
        loss = nn.functional.cross_entropy(hand(xb), yb)
        hand_opt.zero_grad()
        loss.backward()
        hand_opt.step()
        total += loss.item() * len(yb)
        n += len(yb)
    assert frame["train loss"].iloc[0] == pytest.approx(total / n, rel=1e-6)
    for a, b in zip(model.parameters(), hand.parameters()):
        assert torch.allclose(a, b, atol=1e-7)


def test_columns_and_scores(tiny_data):
    X, y = tiny_data
    loader = ResidentLoader(X, y, 25)
    frame = train_network(small_model(), nn.CrossEntropyLoss(), loader, val_loader=loader,
                          test_loader=loader, epochs=2, score_funcs={"Accuracy": accuracy_score})
    assert list(frame.columns) == ["epoch", "total time", "lr", "train loss", "train Accuracy",
                                   "val loss", "val Accuracy", "test loss", "test Accuracy"]
    assert frame["epoch"].tolist() == [0, 1]
    assert frame["total time"].is_monotonic_increasing
    # the same model, the same data: validation and test rows must agree exactly
    assert frame["val Accuracy"].tolist() == frame["test Accuracy"].tolist()
    model = small_model()
    hand = accuracy_score(y.numpy(), model(X).argmax(1).numpy())
    frame = train_network(model, nn.CrossEntropyLoss(), loader, test_loader=loader, epochs=1,
                          optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                          score_funcs={"Accuracy": accuracy_score})
    assert frame["test Accuracy"].iloc[0] == pytest.approx(hand)


def test_default_optimizer_is_adamw(tiny_data, monkeypatch):
    X, y = tiny_data
    made = []
    original = torch.optim.AdamW

    class Spy(original):
        def __init__(self, *a, **k):
            made.append(self)
            super().__init__(*a, **k)

    monkeypatch.setattr(torch.optim, "AdamW", Spy)
    frame = train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=1)
    assert len(made) == 1 and frame["lr"].iloc[0] == 0.001


SCHEDULES = {
    "exponential": (lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8), lambda t: 0.1 * 0.8**t),
    "step": (lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.3), lambda t: 0.1 * 0.3 ** (t // 3)),
    "cosine": (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 4, eta_min=0.001),
               lambda t: 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * t / 4))),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_lr_column_matches_the_closed_form(name, tiny_data):
    X, y = tiny_data
    build, closed_form = SCHEDULES[name]
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = train_network(model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=9,
                          optimizer=opt, lr_schedule=build(opt))
    assert np.allclose(frame["lr"], [closed_form(t) for t in range(9)], rtol=1e-9)


def test_plateau_steps_on_the_validation_loss(tiny_data):
    X, y = tiny_data
    seen = []

    class Spy(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics, *args, **kwargs):
            seen.append(metrics)
            return super().step(metrics, *args, **kwargs)

    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train, val = ResidentLoader(X[:70], y[:70], 10), ResidentLoader(X[70:], y[70:], 10)
    frame = train_network(model, nn.CrossEntropyLoss(), train, val_loader=val, test_loader=train,
                          epochs=4, optimizer=opt, lr_schedule=Spy(opt, patience=0))
    assert seen == frame["val loss"].tolist()
    assert seen != frame["test loss"].tolist()


def test_plateau_by_name_drops_after_patience(tiny_data):
    X, y = tiny_data
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = train_network(model, nn.MSELoss(), ResidentLoader(X, torch.zeros(100, 10), 50),
                          val_loader=ResidentLoader(X, torch.ones(100, 10) * 1e6, 50), epochs=13,
                          optimizer=opt, lr_schedule="ReduceLROnPlateau")
    # patience 10: 11 epochs with no improvement after the first, then the drop by 0.2
    assert frame["lr"].iloc[0] == 0.1
    assert frame["lr"].iloc[-1] == pytest.approx(0.02)


@pytest.mark.parametrize("kwargs,message", [
    ({"epochs": 0}, "epochs must be"),
    ({"lr_schedule": "ReduceLROnPlateau"}, "val_loader is None"),
    ({"lr_schedule": "cosine"}, "not understood"),
    ({"score_funcs": {1: accuracy_score}}, "must be strings"),
    ({"score_funcs": {"Accuracy": 3}}, "must be a function"),
])
def test_bad_arguments_say_what_to_fix(kwargs, message, tiny_data):
    X, y = tiny_data
    with pytest.raises((ValueError, TypeError), match=message):
        train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), **kwargs)


def test_schedule_on_another_optimizer(tiny_data):
    X, y = tiny_data
    model = small_model()
    opt, other = (torch.optim.SGD(model.parameters(), lr=0.1) for _ in range(2))
    with pytest.raises(ValueError, match="another optimizer"):
        train_network(model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=1,
                      optimizer=opt, lr_schedule=torch.optim.lr_scheduler.StepLR(other, 2))


def test_optimizer_of_another_model(tiny_data):
    X, y = tiny_data
    with pytest.raises(ValueError, match="another model"):
        train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=1,
                      optimizer=torch.optim.SGD(small_model().parameters(), lr=0.1))


def test_empty_loader(tiny_data):
    X, y = tiny_data
    with pytest.raises(ValueError, match="empty"):
        train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X[:0], y[:0], 50), epochs=1)
    with pytest.raises(ValueError, match="no batches"):
        train_network(small_model(), nn.CrossEntropyLoss(), iter([]), epochs=1)


def test_on_epoch_end_can_stop(tiny_data):
    X, y = tiny_data
    rows = []
    frame = train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=10,
                          on_epoch_end=lambda epoch, row: rows.append(row) or epoch == 2)
    assert len(frame) == 3 and [r["epoch"] for r in rows] == [0, 1, 2]


def test_checkpoint_loads_with_weights_only(tiny_data, tmp_path):
    X, y = tiny_data
    path = tmp_path / "ckpt.pt"
    model = small_model()
    frame = train_network(model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=2,
                          checkpoint_file=path)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and state["results"]["train loss"] == frame["train loss"].tolist()
    assert all(torch.equal(a, b) for a, b in zip(state["model_state_dict"].values(), model.state_dict().values()))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left


@pytest.mark.slow
def test_one_epoch_of_adamw_learns_fashion_mnist(fashion_root):
    set_seed(0)
    train = resident_loader(fashion_mnist(True, fashion_root), 256, shuffle=True, seed=0)
    test = resident_loader(fashion_mnist(False, fashion_root), 1024)
    frame = train_network(mlp(), nn.CrossEntropyLoss(), train, test_loader=test, epochs=1,
                          score_funcs={"Accuracy": accuracy_score})
    assert frame["test Accuracy"].iloc[0] > 0.75


@pytest.mark.slow
def test_classic_and_resident_paths_agree(fashion_root):
    """Same model, same order of examples: the two data paths give the same losses."""
    from torch.utils.data import Subset

    test = Subset(fashion_mnist(False, fashion_root), range(600))
    results = []
    for loader in (classic_loader(test, 100), resident_loader(test, 100)):
        set_seed(1)
        model = mlp()
        frame = train_network(model, nn.CrossEntropyLoss(), loader, epochs=1,
                              optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
        results.append(frame["train loss"].iloc[0])
    assert results[0] == pytest.approx(results[1], rel=1e-6)
