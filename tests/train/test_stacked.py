"""train_many against its oracle: K separate train_network runs with the same seeds and batches."""
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.models import clamp_gradients, mlp
from idlmam.train.stacked import StackedMLP, VmapModels, stack_models, train_many
from idlmam.train import train_network
from idlmam.utils import set_seed

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
    """Fresh loaders: every run (and the joint one) sees the same shuffled order."""
    X, y = tiny_data
    train = ResidentLoader(X[:80], y[:80], 16, shuffle=True, seed=7)
    return train, ResidentLoader(X[80:], y[80:], 8), ResidentLoader(X, y, 32)


def separate_runs(tiny_data, model_fn, optimizer_fn, lr_schedule_fn=None, loss_func=None,
                  clip_value=None):
    frames, models = [], []
    for seed in SEEDS:
        set_seed(seed)
        model = model_fn()
        optimizer = optimizer_fn(model.parameters())
        hooks = clamp_gradients(model, clip_value) if clip_value else []
        train, val, test = loaders(tiny_data)
        frame = train_network(model, loss_func or nn.CrossEntropyLoss(), train, val_loader=val,
                              test_loader=test, score_funcs={"Accuracy": accuracy_score},
                              epochs=EPOCHS, optimizer=optimizer, disable_tqdm=True,
                              lr_schedule=lr_schedule_fn(optimizer) if lr_schedule_fn else None)
        for hook in hooks:
            hook.remove()
        frames.append(frame)
        models.append(model)
    return frames, models


def joint_run(tiny_data, model_fn, optimizer_fn, lr_schedule_fn=None, loss_func=None, **kw):
    train, val, test = loaders(tiny_data)
    return train_many(model_fn, SEEDS, loss_func or nn.CrossEntropyLoss(), train,
                      optimizer_fn=optimizer_fn, lr_schedule_fn=lr_schedule_fn, val_loader=val,
                      test_loader=test, score_funcs={"Accuracy": accuracy_score}, epochs=EPOCHS,
                      return_models=True, disable_tqdm=True, **kw)


def assert_same(joint, separate):
    frame, joint_models = joint
    frames, models = separate
    assert len(frame) == len(SEEDS) * EPOCHS
    for seed, single, model, joint_model in zip(SEEDS, frames, models, joint_models):
        rows = frame[frame["seed"] == seed].reset_index(drop=True)
        assert list(rows.columns) == ["seed"] + list(single.columns)
        for column in single.columns.drop("total time"):
            assert rows[column].tolist() == pytest.approx(single[column].tolist(), abs=1e-5), column
        for p, q in zip(model.parameters(), joint_model.parameters()):
            assert torch.allclose(p, q, atol=1e-5)


OPTIMIZERS = {
    "SGD": (lambda p: torch.optim.SGD(p, lr=0.1), None),
    "SGD+momentum": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), None),
    "SGD+Nesterov": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=1e-3), None),
    "AdamW+cosine": (lambda p: torch.optim.AdamW(p, lr=0.01),
                     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS, eta_min=1e-4)),
    "Adam+step": (lambda p: torch.optim.Adam(p, lr=0.01),
                  lambda o: torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5)),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_equals_separate_runs(tiny_data, name):
    optimizer_fn, lr_schedule_fn = OPTIMIZERS[name]
    assert_same(joint_run(tiny_data, small_model, optimizer_fn, lr_schedule_fn),
                separate_runs(tiny_data, small_model, optimizer_fn, lr_schedule_fn))


def test_clip_value_equals_clamp_gradients(tiny_data):
    optimizer_fn = lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9)  # noqa: E731
    assert_same(joint_run(tiny_data, small_model, optimizer_fn, clip_value=0.01),
                separate_runs(tiny_data, small_model, optimizer_fn, clip_value=0.01))


def test_any_loss_function(tiny_data):
    loss = lambda y_hat, y: F.cross_entropy(y_hat, y) + 0.1 * y_hat.pow(2).mean()  # noqa: E731
    optimizer_fn = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    assert_same(joint_run(tiny_data, small_model, optimizer_fn, loss_func=loss),
                separate_runs(tiny_data, small_model, optimizer_fn, loss_func=loss))


def test_models_that_are_not_sequential_use_vmap(tiny_data):
    set_seed(0)
    assert isinstance(stack_models([TwoLayer(), TwoLayer()]), VmapModels)
    # a gentle rate: at lr=0.1 the loss jumps about and amplifies float rounding past 1e-5
    optimizer_fn = lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)  # noqa: E731
    assert_same(joint_run(tiny_data, TwoLayer, optimizer_fn),
                separate_runs(tiny_data, TwoLayer, optimizer_fn))


def test_stacked_forward_and_unstack(tiny_data):
    X, _ = tiny_data
    models = [mlp(hidden=8, layers=3, activation=nn.ReLU) for _ in range(4)]
    models.append(nn.Sequential(nn.Flatten(), nn.Linear(784, 8, bias=False), nn.GELU(), nn.Linear(8, 10)))
    for group in (models[:4], models[4:]):
        stacked = stack_models(group)
        assert isinstance(stacked, StackedMLP)
        out = stacked(X)  # (B, 1, 28, 28) -> (K, B, 10)
        assert out.shape == (len(group), len(X), 10)
        for k, model in enumerate(group):
            assert torch.allclose(out[k], model(X), atol=1e-6)
        for model, back in zip(group, stacked.unstack()):
            assert all(torch.equal(p, q) for p, q in zip(model.parameters(), back.parameters()))


def test_fused_tanh_layers_match_torch_values_and_gradients(tiny_data):
    """The stacked tanh (2*sigmoid(2z) - 1, inside the product) against nn.Tanh, forward and back."""
    X, y = tiny_data
    models = [mlp(hidden=32, layers=3) for _ in range(3)]  # Linear, Tanh, ... : every Tanh fused
    stacked = stack_models(models)
    out = stacked(X)
    F.cross_entropy(out.reshape(-1, 10), y.repeat(3), reduction="sum").backward()
    for k, model in enumerate(models):
        single = model(X)
        assert torch.allclose(out[k], single, atol=1e-6)
        F.cross_entropy(single, y, reduction="sum").backward()
    grads = [w.grad for w in stacked.weights]
    for k, model in enumerate(models):
        linears = [m for m in model if isinstance(m, nn.Linear)]
        for layer, grad in zip(linears, grads):
            assert torch.allclose(grad[k], layer.weight.grad, atol=1e-5)


def test_frame_layout(tiny_data):
    X, y = tiny_data
    frame = train_many(small_model, [3, 5], nn.CrossEntropyLoss(), ResidentLoader(X, y, 50),
                       epochs=2, disable_tqdm=True)
    assert list(frame.columns) == ["seed", "epoch", "total time", "lr", "train loss"]
    assert frame["seed"].tolist() == [3, 3, 5, 5] and frame["epoch"].tolist() == [0, 1, 0, 1]
    assert frame["lr"].tolist() == [0.001] * 4  # AdamW's default, as in train_network
    seen = []
    train_many(small_model, [3, 5], nn.CrossEntropyLoss(), ResidentLoader(X, y, 50), epochs=5,
               disable_tqdm=True, on_epoch_end=lambda epoch, rows: seen.append(len(rows)) or epoch == 1)
    assert seen == [2, 2]  # stopped after the second epoch


@pytest.mark.parametrize("kwargs, message", [
    ({"seeds": []}, "seeds is empty"),
    ({"seeds": [1, 1]}, "seeds repeat"),
    ({"lr_schedule_fn": lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o)}, "ReduceLROnPlateau"),
    ({"optimizer_fn": lambda p: torch.optim.LBFGS(p)}, "LBFGS"),
    ({"model_fn": lambda: nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(784, 10))}, "dropout"),
    ({"model_fn": lambda: clamp_gradients(m := small_model(), 1.0) and m}, "clip_value"),
    ({"epochs": 0}, "epochs"),
])
def test_clear_errors(tiny_data, kwargs, message):
    X, y = tiny_data
    args = {"model_fn": small_model, "seeds": [0, 1], "epochs": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        train_many(args.pop("model_fn"), args.pop("seeds"), nn.CrossEntropyLoss(),
                   ResidentLoader(X, y, 50), disable_tqdm=True, **args)


def test_models_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="another architecture"):
        stack_models([mlp(hidden=8), mlp(hidden=9)])
