import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score
from spies import EvalSpy, ModeSGD, Recorder, RecordingSGD
from torch import nn

from idlmam.data import ResidentLoader, classic_loader, fashion_mnist, resident_loader
from idlmam.models import mlp
from idlmam.optim import schedule_lrs
from idlmam.train import DivergenceWarning, train_network
from idlmam.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_KEYS,
    CheckpointError,
    load_checkpoint,
)
from idlmam.utils import set_seed


def small_model(seed=0):
    set_seed(seed)
    return mlp(hidden=16, layers=2)


def test_one_epoch_loss_equals_a_hand_written_loop(tiny_data):
    X, y = tiny_data
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = train_network(
        model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 32), epochs=1, optimizer=opt
    )

    hand = small_model()
    hand_opt = torch.optim.SGD(hand.parameters(), lr=0.1)
    total, n = 0.0, 0
    for start in range(0, 100, 32):
        xb, yb = X[start : start + 32], y[start : start + 32]
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
    frame = train_network(
        small_model(),
        nn.CrossEntropyLoss(),
        loader,
        val_loader=loader,
        test_loader=loader,
        epochs=2,
        score_funcs={"Accuracy": accuracy_score},
    )
    assert list(frame.columns) == [
        "epoch",
        "total time",
        "lr",
        "train loss",
        "train Accuracy",
        "val loss",
        "val Accuracy",
        "test loss",
        "test Accuracy",
    ]
    assert frame["epoch"].tolist() == [0, 1]
    assert frame["total time"].is_monotonic_increasing
    # the same model, the same data: validation and test rows must agree exactly
    assert frame["val Accuracy"].tolist() == frame["test Accuracy"].tolist()
    model = small_model()
    hand = accuracy_score(y.numpy(), model(X).argmax(1).numpy())
    frame = train_network(
        model,
        nn.CrossEntropyLoss(),
        loader,
        test_loader=loader,
        epochs=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        score_funcs={"Accuracy": accuracy_score},
    )
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
    "exponential": (
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.8),
        lambda t: 0.1 * 0.8**t,
    ),
    "step": (
        lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.3),
        lambda t: 0.1 * 0.3 ** (t // 3),
    ),
    "cosine": (
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 4, eta_min=0.001),
        lambda t: 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * t / 4)),
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_lr_column_matches_the_closed_form(name, tiny_data):
    X, y = tiny_data
    build, closed_form = SCHEDULES[name]
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = train_network(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=9,
        optimizer=opt,
        lr_schedule=build(opt),
    )
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
    frame = train_network(
        model,
        nn.CrossEntropyLoss(),
        train,
        val_loader=val,
        test_loader=train,
        epochs=4,
        optimizer=opt,
        lr_schedule=Spy(opt, patience=0),
    )
    assert seen == frame["val loss"].tolist()
    assert seen != frame["test loss"].tolist()


def test_plateau_by_name_drops_after_patience(tiny_data):
    X, y = tiny_data
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    frame = train_network(
        model,
        nn.MSELoss(),
        ResidentLoader(X, torch.zeros(100, 10), 50),
        val_loader=ResidentLoader(X, torch.ones(100, 10) * 1e6, 50),
        epochs=13,
        optimizer=opt,
        lr_schedule="ReduceLROnPlateau",
    )
    # patience 10: 11 epochs with no improvement after the first, then the drop by 0.2
    assert frame["lr"].iloc[0] == 0.1
    assert frame["lr"].iloc[-1] == pytest.approx(0.02)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "epochs must be"),
        ({"lr_schedule": "ReduceLROnPlateau"}, "val_loader is None"),
        ({"lr_schedule": "cosine"}, "not understood"),
        ({"score_funcs": {1: accuracy_score}}, "must be strings"),
        ({"score_funcs": {"Accuracy": 3}}, "must be a function"),
    ],
)
def test_bad_arguments_say_what_to_fix(kwargs, message, tiny_data):
    X, y = tiny_data
    with pytest.raises((ValueError, TypeError), match=message):
        train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), **kwargs)


def test_schedule_on_another_optimizer(tiny_data):
    X, y = tiny_data
    model = small_model()
    opt, other = (torch.optim.SGD(model.parameters(), lr=0.1) for _ in range(2))
    with pytest.raises(ValueError, match="another optimizer"):
        train_network(
            model,
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            epochs=1,
            optimizer=opt,
            lr_schedule=torch.optim.lr_scheduler.StepLR(other, 2),
        )


def test_optimizer_of_another_model(tiny_data):
    X, y = tiny_data
    with pytest.raises(ValueError, match="another model"):
        train_network(
            small_model(),
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            epochs=1,
            optimizer=torch.optim.SGD(small_model().parameters(), lr=0.1),
        )


def test_empty_loader(tiny_data):
    X, y = tiny_data
    with pytest.raises(ValueError, match="empty"):
        train_network(
            small_model(), nn.CrossEntropyLoss(), ResidentLoader(X[:0], y[:0], 50), epochs=1
        )
    with pytest.raises(ValueError, match="no batches"):
        train_network(small_model(), nn.CrossEntropyLoss(), iter([]), epochs=1)


def test_on_epoch_end_can_stop(tiny_data):
    X, y = tiny_data
    rows = []
    frame = train_network(
        small_model(),
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=10,
        on_epoch_end=lambda epoch, row: rows.append(row) or epoch == 2,
    )
    assert len(frame) == 3 and [r["epoch"] for r in rows] == [0, 1, 2]


def test_checkpoint_loads_with_weights_only(tiny_data, tmp_path):
    X, y = tiny_data
    path = tmp_path / "ckpt.pt"
    model = small_model()
    frame = train_network(
        model, nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=2, checkpoint_file=path
    )
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and state["results"]["train loss"] == frame["train loss"].tolist()
    assert all(
        torch.equal(a, b)
        for a, b in zip(state["model_state_dict"].values(), model.state_dict().values())
    )
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left


@pytest.mark.slow
def test_one_epoch_of_adamw_learns_fashion_mnist(fashion_root):
    set_seed(0)
    train = resident_loader(fashion_mnist(True, fashion_root), 256, shuffle=True, seed=0)
    test = resident_loader(fashion_mnist(False, fashion_root), 1024)
    frame = train_network(
        mlp(),
        nn.CrossEntropyLoss(),
        train,
        test_loader=test,
        epochs=1,
        score_funcs={"Accuracy": accuracy_score},
    )
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
        frame = train_network(
            model,
            nn.CrossEntropyLoss(),
            loader,
            epochs=1,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        )
        results.append(frame["train loss"].iloc[0])
    assert results[0] == pytest.approx(results[1], rel=1e-6)


# --- checkpoints and resume -------------------------------------------------------------------

WORKER = Path(__file__).with_name("resume_worker.py")


def without_time(frame):
    return frame.drop(columns="total time")


@pytest.mark.parametrize("every", ["epoch", "batch"])
def test_a_run_killed_mid_epoch_resumes_to_the_same_results(tmp_path, every):
    """SIGKILL in the middle of epoch 3, resume from the file: the frame of a run never killed.

    With ``every="batch"`` the schedule has already stepped inside the killed epoch."""
    import resume_worker

    checkpoint, marker = tmp_path / "run.pt", tmp_path / "stalled"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(checkpoint), str(marker), "2", every],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert worker.poll() is None, f"the worker ended early: {worker.stderr.read()}"
            assert time.monotonic() < deadline, "the worker never reached epoch 3"
            time.sleep(0.02)
    finally:
        worker.kill()  # SIGKILL: no handler, no cleanup, like a pre-empted machine
        worker.wait()
    assert worker.returncode == -signal.SIGKILL
    assert load_checkpoint(checkpoint)["epoch"] == 2  # epochs 0-2 saved, epoch 3 lost

    ran = []
    resumed = train_network(
        **resume_worker.run_kwargs(every=every),
        checkpoint_file=checkpoint,
        resume=True,
        on_epoch_end=lambda epoch, row: ran.append(epoch),
    )
    assert ran == [3, 4, 5]  # continued, not started over
    never_killed = train_network(**resume_worker.run_kwargs(every=every))
    pd.testing.assert_frame_equal(
        without_time(resumed), without_time(never_killed), check_exact=True
    )
    assert resumed["total time"].is_monotonic_increasing
    # the schedule really stepped as asked: 4 batches an epoch, StepLR(3, 0.8) or StepLR(2, 0.5)
    size, gamma, per_epoch = (3, 0.8, 4) if every == "batch" else (2, 0.5, 1)
    assert resumed["lr"].tolist() == pytest.approx(
        [0.02 * gamma ** (epoch * per_epoch // size) for epoch in range(6)], rel=1e-12
    )

    ran.clear()  # a finished run resumes to its frame, training nothing
    again = train_network(
        **resume_worker.run_kwargs(every=every),
        checkpoint_file=checkpoint,
        resume=True,
        on_epoch_end=lambda epoch, row: ran.append(epoch),
    )
    assert ran == [] and again.equals(resumed)


def test_resume_without_a_file_starts_fresh(tiny_data, tmp_path):
    X, y = tiny_data
    path = tmp_path / "new.pt"
    fresh = train_network(
        small_model(),
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=2,
        checkpoint_file=path,
        resume=True,
    )
    plain = train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=2)
    pd.testing.assert_frame_equal(without_time(fresh), without_time(plain), check_exact=True)
    assert load_checkpoint(path)["epoch"] == 1
    with pytest.raises(ValueError, match="needs checkpoint_file"):
        train_network(small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), resume=True)


def test_checkpoint_holds_every_random_state_and_loads_weights_only(tiny_data, tmp_path):
    X, y = tiny_data
    path = tmp_path / "ckpt.pt"
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = ResidentLoader(X, y, 50, shuffle=True, seed=3)
    train_network(
        model,
        nn.CrossEntropyLoss(),
        loader,
        val_loader=loader,
        epochs=2,
        optimizer=opt,
        lr_schedule="ReduceLROnPlateau",
        checkpoint_file=path,
    )
    state = torch.load(path, weights_only=True)
    assert set(state) == set(CHECKPOINT_KEYS) and state["format"] == CHECKPOINT_FORMAT
    assert state["lr_schedule_class"] == "ReduceLROnPlateau" and state["diverged"] is False
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda", "generators"}
    assert len(state["rng"]["generators"]) == 1  # the loader's own order generator, once
    assert torch.equal(state["rng"]["generators"][0], loader.generator.get_state())
    assert torch.equal(state["rng"]["torch"], torch.get_rng_state())


def write_truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage,message",
    [
        (write_truncated, "cannot be read"),
        (lambda path: path.write_bytes(b"\x00garbage" * 10), "cannot be read"),
        (lambda path: path.write_bytes(b""), "cannot be read"),
        (lambda path: torch.save({"epoch": 1, "model_state_dict": {}}, path), "format"),
    ],
)
def test_a_damaged_checkpoint_names_the_file_and_the_fix(damage, message, tiny_data, tmp_path):
    X, y = tiny_data
    path = tmp_path / "damaged.pt"
    train_network(
        small_model(),
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=1,
        checkpoint_file=path,
    )
    damage(path)
    with pytest.raises(CheckpointError, match=message) as caught:
        train_network(
            small_model(),
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            epochs=2,
            checkpoint_file=path,
            resume=True,
        )
    assert str(path) in str(caught.value) and "resume=False" in str(caught.value)
    # resume=False trains from scratch and overwrites the damaged file
    train_network(
        small_model(),
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=1,
        checkpoint_file=path,
    )
    assert load_checkpoint(path)["epoch"] == 0


def test_a_checkpoint_of_another_setup_is_refused(tiny_data, tmp_path):
    X, y = tiny_data
    path = tmp_path / "ckpt.pt"
    train_network(
        small_model(),
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 50),
        epochs=1,
        checkpoint_file=path,
    )
    with pytest.raises(CheckpointError, match="columns"):  # a score function added since
        train_network(
            small_model(),
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            epochs=2,
            checkpoint_file=path,
            resume=True,
            score_funcs={"Accuracy": accuracy_score},
        )
    with pytest.raises(CheckpointError, match="does not fit"):  # a wider model
        set_seed(0)
        train_network(
            mlp(hidden=32, layers=2),
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            epochs=2,
            checkpoint_file=path,
            resume=True,
        )
    with pytest.raises(CheckpointError, match="optimizer AdamW, this call has SGD"):
        model = small_model()
        train_network(
            model,
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 50),
            epochs=2,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            checkpoint_file=path,
            resume=True,
        )


# --- divergence -------------------------------------------------------------------------------


def regression_data():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(100, 4, generator=g)
    return X, X.sum(1, keepdim=True)  # (100, 4), (100, 1)


def test_divergence_stops_keeps_the_rows_marks_them_and_warns_once(tmp_path):
    X, y = regression_data()
    set_seed(0)
    model = nn.Linear(4, 1)
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = train_network(
            model,
            nn.MSELoss(),
            ResidentLoader(X, y, 50, shuffle=True),
            val_loader=ResidentLoader(X, y, 50),
            epochs=50,
            optimizer=torch.optim.SGD(model.parameters(), lr=100),
            checkpoint_file=tmp_path / "run.pt",
            on_epoch_end=lambda epoch, row: rows.append(row),
        )
    assert [w.category for w in caught] == [DivergenceWarning]
    assert "lower the learning rate" in str(caught[0].message)
    assert 1 < len(frame) < 50  # a few finite epochs, then the stop
    assert np.isfinite(frame["train loss"].iloc[:-1]).all()
    assert not np.isfinite(frame["train loss"].iloc[-1]) and np.isnan(frame["val loss"].iloc[-1])
    assert frame["diverged"].tolist() == [False] * (len(frame) - 1) + [True]
    assert frame.attrs["diverged"] is True and rows[-1]["diverged"] is True
    assert len(rows) == len(frame)

    # resuming a diverged run trains nothing more and says why
    with pytest.warns(DivergenceWarning, match="diverged"):
        again = train_network(
            model,
            nn.MSELoss(),
            ResidentLoader(X, y, 50, shuffle=True),
            val_loader=ResidentLoader(X, y, 50),
            epochs=50,
            optimizer=torch.optim.SGD(model.parameters(), lr=100),
            checkpoint_file=tmp_path / "run.pt",
            resume=True,
        )
    pd.testing.assert_frame_equal(again, frame)


def test_a_nan_loss_stops_at_once_and_scores_are_not_asked(tiny_data):
    X, y = tiny_data
    X = X.clone()
    X[0, 0, 0, 0] = float("nan")

    def never(y_true, y_pred):
        raise AssertionError("a score function was asked to rate a diverged model")

    with pytest.warns(DivergenceWarning):
        frame = train_network(
            small_model(),
            nn.CrossEntropyLoss(),
            ResidentLoader(X[:50], y[:50], 50),
            epochs=5,
            score_funcs={"Accuracy": never},
        )
    assert len(frame) == 1 and np.isnan(frame["train loss"].iloc[0]) and frame["diverged"].iloc[0]


def test_a_healthy_run_is_marked_not_diverged(tiny_data):
    X, y = tiny_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergenceWarning)
        frame = train_network(
            small_model(), nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=2
        )
    assert frame.attrs["diverged"] is False and "diverged" not in frame


# --- bad input, refused before any training ---------------------------------------------------


def refused(error, match, *, model=None, loss_func=None, loader=None, **kwargs):
    """Call train_network and check it raises before the first epoch, weights untouched."""
    model = model or small_model()
    before = [p.detach().clone() for p in model.parameters()]
    epochs_run = []
    with pytest.raises(error, match=match) as caught:
        train_network(
            model,
            loss_func or nn.CrossEntropyLoss(),
            loader,
            epochs=1,
            on_epoch_end=lambda epoch, row: epochs_run.append(epoch),
            **kwargs,
        )
    assert epochs_run == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return str(caught.value)


def test_a_model_output_that_does_not_fit_the_labels(tiny_data):
    X, y = tiny_data
    two_columns = torch.stack([y, y], dim=1)  # (100, 2) labels for (B, 10) scores
    message = refused(
        ValueError, "loss_func cannot compare", loader=ResidentLoader(X, two_columns, 50)
    )
    assert "(50, 10)" in message and "(50, 2)" in message and "CrossEntropyLoss" in message
    refused(
        ValueError,
        r"\(50, 1\).*\(50,\).*broadcast",
        model=nn.Sequential(nn.Flatten(), nn.Linear(784, 1)),
        loss_func=nn.MSELoss(),
        loader=ResidentLoader(X, y.float(), 50),
    )
    refused(
        ValueError,
        "one number",
        loss_func=nn.CrossEntropyLoss(reduction="none"),
        loader=ResidentLoader(X, y, 50),
    )


def test_a_model_that_cannot_take_the_inputs(tiny_data):
    X, y = tiny_data
    message = refused(
        ValueError,
        "cannot take the first batch of train_loader",
        model=nn.Linear(10, 10),
        loader=ResidentLoader(X, y, 50),
    )
    assert "(50, 1, 28, 28)" in message


def test_a_bad_validation_loader_is_caught_before_training(tiny_data):
    X, y = tiny_data
    refused(
        ValueError,
        "val_loader",
        loader=ResidentLoader(X, y, 50),
        val_loader=ResidentLoader(X, torch.stack([y, y], 1), 50),
    )


@pytest.mark.parametrize(
    "batches,what",
    [
        ([{"x": torch.zeros(4, 784), "y": torch.zeros(4, dtype=torch.long)}], "a dict with keys"),
        ([(torch.zeros(4, 784), torch.zeros(4, dtype=torch.long), torch.zeros(4))], "of 3 items"),
        ([torch.zeros(4, 784)], "a single tensor"),
    ],
)
def test_a_loader_that_does_not_yield_pairs(batches, what):
    message = refused(TypeError, r"\(inputs, labels\) pairs", loader=batches)
    assert what in message


def test_a_score_function_that_raises_is_named(tiny_data):
    X, y = tiny_data

    def roc_of_labels(y_true, y_pred):
        raise ValueError("multiclass format is not supported")

    refused(
        ValueError,
        "score function 'AUC' .*roc_of_labels.*multiclass",
        loader=ResidentLoader(X, y, 50),
        score_funcs={"AUC": roc_of_labels},
    )


@pytest.mark.parametrize(
    "device,match",
    [("gpu", "not a device name"), (f"cuda:{torch.cuda.device_count() + 3}", "CUDA")],
)
def test_a_device_that_does_not_exist(device, match, tiny_data):
    X, y = tiny_data
    refused(ValueError, match, loader=ResidentLoader(X, y, 50), device=device)


# --- reproducibility --------------------------------------------------------------------------


def seeded_run(seed, loader_kind="resident"):
    """Dropout, a shuffled loader, a validation set: every source of randomness in play."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(80, 1, 28, 28, generator=g), torch.randint(0, 10, (80,), generator=g)
    set_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10)
    )
    if loader_kind == "resident":
        train = ResidentLoader(X[:60], y[:60], 16, shuffle=True, seed=seed)
    else:
        train = classic_loader(
            torch.utils.data.TensorDataset(X[:60], y[:60]), 16, shuffle=True, seed=seed
        )
    return model, train, ResidentLoader(X[60:], y[60:], 20)


def test_two_runs_with_the_same_seed_give_the_same_frame():
    frames = []
    for seed in (0, 0, 1):
        model, train, val = seeded_run(seed)
        frames.append(
            train_network(
                model,
                nn.CrossEntropyLoss(),
                train,
                val_loader=val,
                epochs=3,
                score_funcs={"Accuracy": accuracy_score},
            )
        )
    pd.testing.assert_frame_equal(
        without_time(frames[0]), without_time(frames[1]), check_exact=True
    )
    assert not frames[0]["train loss"].equals(frames[2]["train loss"])


@pytest.mark.parametrize("loader_kind", ["resident", "classic"])
def test_the_checks_before_training_change_nothing(loader_kind):
    """One epoch of train_network equals a hand-written loop over the same seeded objects."""
    model, train, _ = seeded_run(0, loader_kind)
    train_network(
        model,
        nn.CrossEntropyLoss(),
        train,
        epochs=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    )
    hand, hand_train, _ = seeded_run(0, loader_kind)
    hand_opt = torch.optim.SGD(hand.parameters(), lr=0.1)
    for xb, yb in hand_train:
        loss = nn.functional.cross_entropy(hand(xb), yb)
        hand_opt.zero_grad()
        loss.backward()
        hand_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), hand.parameters()))


# --- schedules stepped every batch ------------------------------------------------------------

PER_BATCH = {  # (schedule on an optimizer with lr 0.1, its rate at step t)
    "LambdaLR": (
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + 0.5 * t)),
        lambda t: 0.1 / (1 + 0.5 * t),
    ),
    "LinearLR": (  # reaches its end after 6 of the 12 steps, then stays there
        lambda o: torch.optim.lr_scheduler.LinearLR(o, 1.0, 0.05, total_iters=6),
        lambda t: 0.1 * (1 + (0.05 - 1) * min(t, 6) / 6),
    ),
}


@pytest.mark.parametrize("name", PER_BATCH)
def test_a_per_batch_schedule_sets_the_rate_of_every_step(name, tiny_data):
    X, y = tiny_data
    build, closed_form = PER_BATCH[name]
    steps, per_epoch = 12, 4  # 3 epochs of 4 batches of 25
    rates = []
    model = small_model()
    opt = RecordingSGD(model.parameters(), 0.1, rates)
    frame = train_network(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 25, shuffle=True),
        epochs=3,
        optimizer=opt,
        lr_schedule=build(opt),
        lr_schedule_every="batch",
    )
    expected = [closed_form(t) for t in range(steps)]
    assert rates == pytest.approx(expected, rel=1e-12)
    # the lr column: the rate each epoch starts with, the rate of its first batch
    assert frame["lr"].tolist() == pytest.approx(expected[::per_epoch], rel=1e-12)
    # what a reader draws the whole curve with
    assert schedule_lrs(build, steps, 0.1) == pytest.approx(rates, rel=1e-12)

    rates.clear()  # the default, per epoch: the rate changes between epochs only
    model = small_model()
    opt = RecordingSGD(model.parameters(), 0.1, rates)
    frame = train_network(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 25),
        epochs=3,
        optimizer=opt,
        lr_schedule=build(opt),
    )
    assert rates == pytest.approx([closed_form(t // per_epoch) for t in range(steps)], rel=1e-12)
    assert frame["lr"].tolist() == pytest.approx([closed_form(e) for e in range(3)], rel=1e-12)


@pytest.mark.parametrize(
    "every,schedule,message",
    [
        ("step", None, "must be 'epoch' or 'batch', got 'step'"),
        ("Batch", None, "must be 'epoch' or 'batch'"),
        (None, None, "must be 'epoch' or 'batch', got None"),
        ("batch", "ReduceLROnPlateau", "ReduceLROnPlateau .* once per epoch"),
        ("batch", "plateau object", "ReduceLROnPlateau .* once per epoch"),
    ],
)
def test_lr_schedule_every_is_checked_before_training(every, schedule, message, tiny_data):
    X, y = tiny_data
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    if schedule == "plateau object":
        schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    refused(
        ValueError,
        message,
        model=model,
        loader=ResidentLoader(X, y, 50),
        val_loader=ResidentLoader(X, y, 50),
        optimizer=opt,
        lr_schedule=schedule,
        lr_schedule_every=every,
    )


def test_a_per_batch_schedule_steps_no_more_after_a_divergence():
    X, y = regression_data()
    set_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=100)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)
    with pytest.warns(DivergenceWarning):
        frame = train_network(
            model,
            nn.MSELoss(),
            ResidentLoader(X, y, 25, shuffle=True),
            epochs=50,
            optimizer=opt,
            lr_schedule=schedule,
            lr_schedule_every="batch",
        )
    assert frame.attrs["diverged"] and 1 < len(frame) < 50
    # 4 steps in every epoch run, the diverged one included (its loss is read at its end)
    assert schedule.last_epoch == 4 * len(frame)


# --- optimizers with train() / eval() modes (schedule-free) -----------------------------------


def test_an_optimizer_with_modes_is_switched_around_every_evaluation(tiny_data, tmp_path):
    X, y = tiny_data
    recorder = Recorder()
    recorder.model = model = small_model()
    opt = ModeSGD(model.parameters(), recorder)
    saved = []

    def hook(epoch, row):
        recorder.events.append(("hook", opt.mode))
        saved.append(load_checkpoint(tmp_path / "run.pt")["optimizer_state_dict"])

    frame = train_network(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X[:60], y[:60], 30),
        val_loader=EvalSpy(X[60:80], y[60:80], 10, recorder, "val"),
        test_loader=EvalSpy(X[80:], y[80:], 10, recorder, "test"),
        epochs=2,
        optimizer=opt,
        checkpoint_file=tmp_path / "run.pt",
        on_epoch_end=hook,
    )
    one_epoch = [
        ("train", True),  # model.train(), then optimizer.train(), before the training batches
        "step in train mode",
        "step in train mode",
        ("eval", False),  # model.eval(), then optimizer.eval(), before any evaluation
        ("evaluate val", "eval"),
        ("evaluate test", "eval"),
        ("hook", "eval"),  # after the checkpoint, written in eval mode too
    ]
    assert recorder.events == one_epoch * 2
    assert len(frame) == 2 and len(saved) == 2
    assert opt.mode == "eval" and not model.training  # as a run leaves them


def schedule_free_setup(tiny_data, **kwargs):
    """A fresh seeded model, AdamWScheduleFree with warmup, and the loaders of a 2-epoch run."""
    from schedulefree import AdamWScheduleFree

    X, y = tiny_data
    model = small_model()
    opt = AdamWScheduleFree(model.parameters(), lr=0.01, warmup_steps=4, **kwargs)
    train = ResidentLoader(X[:80], y[:80], 16, shuffle=True, seed=5)
    return model, opt, train, ResidentLoader(X[80:], y[80:], 10)


def test_schedule_free_adamw_trains_as_its_own_example_loop(tiny_data):
    """train_network does what the schedulefree README's loop does, to the last bit."""
    X, y = tiny_data
    model, opt, train, val = schedule_free_setup(tiny_data)
    frame = train_network(
        model, nn.CrossEntropyLoss(), train, val_loader=val, epochs=2, optimizer=opt
    )

    hand, hand_opt, hand_train, _ = schedule_free_setup(tiny_data)
    val_losses = []
    for _ in range(2):
        hand.train()
        hand_opt.train()
        for xb, yb in hand_train:
            hand_opt.zero_grad()
            nn.functional.cross_entropy(hand(xb), yb).backward()
            hand_opt.step()
        hand.eval()
        hand_opt.eval()
        with torch.no_grad():
            val_losses.append(nn.functional.cross_entropy(hand(X[80:]), y[80:]).item())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), hand.parameters()))
    assert frame["val loss"].tolist() == pytest.approx(val_losses, rel=1e-6)
    # the weights evaluated and returned are the average x, not the training point y
    hand_opt.train()
    assert not any(torch.equal(a, b) for a, b in zip(model.parameters(), hand.parameters()))


def test_schedule_free_resumes_exactly(tiny_data, tmp_path):
    path = tmp_path / "run.pt"

    def kwargs():
        model, opt, train, val = schedule_free_setup(tiny_data, weight_decay=0.01)
        return dict(
            model=model,
            loss_func=nn.CrossEntropyLoss(),
            train_loader=train,
            val_loader=val,
            epochs=3,
            optimizer=opt,
            disable_tqdm=True,
        )

    first = kwargs()
    train_network(**first, checkpoint_file=path, on_epoch_end=lambda epoch, row: epoch == 0)
    state = load_checkpoint(path)
    assert state["epoch"] == 0
    assert state["optimizer_state_dict"]["param_groups"][0]["train_mode"] is False  # eval mode
    saved = state["model_state_dict"]
    assert all(torch.equal(saved[n], p) for n, p in first["model"].named_parameters())

    resumed_kwargs, whole_kwargs = kwargs(), kwargs()
    resumed = train_network(**resumed_kwargs, checkpoint_file=path, resume=True)
    whole = train_network(**whole_kwargs)
    pd.testing.assert_frame_equal(without_time(resumed), without_time(whole), check_exact=True)
    for a, b in zip(resumed_kwargs["model"].parameters(), whole_kwargs["model"].parameters()):
        assert torch.equal(a, b)


def test_schedule_free_with_batch_norm_warns(tiny_data):
    from schedulefree import AdamWScheduleFree

    X, y = tiny_data
    loader = ResidentLoader(X, y, 50)

    def run(model, opt):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_network(model, nn.CrossEntropyLoss(), loader, epochs=1, optimizer=opt)
        return [str(w.message) for w in caught if "batch-norm" in str(w.message)]

    set_seed(0)
    bn = mlp(hidden=16, layers=2, batch_norm=True)
    (message,) = run(bn, AdamWScheduleFree(bn.parameters()))
    assert "AdamWScheduleFree" in message and "Recompute them" in message
    plain = small_model()
    assert run(plain, AdamWScheduleFree(plain.parameters())) == []  # no batch norm
    set_seed(0)
    bn = mlp(hidden=16, layers=2, batch_norm=True)
    assert run(bn, torch.optim.AdamW(bn.parameters())) == []  # no averaged weights
