"""The learning-rate range test: its rates, its curve, its stop, its suggestion, and that it leaves
nothing changed behind it."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.experiments import MIN_STEPS, RangeTest, lr_range_test
from idlmam.models import mlp
from idlmam.train import train_network

# a short pass on noisy batches may bottom out at its first rate; the tests of that warning
# catch it with pytest.warns, the others need not hear it
pytestmark = pytest.mark.filterwarnings("ignore:the smoothed loss has its minimum:UserWarning")


def quadratic(condition: float, *, n: int = 64, d: int = 8, seed: int = 0):
    """Linear least squares on fixed data: its Hessian, and one full batch repeated 100 times.

    With ``nn.MSELoss`` and a linear model without bias the loss is a quadratic whose Hessian is
    ``H = 2 X^T X / n``; the columns are scaled so that its condition number is about
    ``condition``. Every batch being the full batch, SGD is plain gradient descent.
    """
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g) * torch.logspace(0, math.log10(condition) / 2, d)
    y = X @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    H = 2 * X.T @ X / n
    model = nn.Linear(d, 1, bias=False)
    nn.init.zeros_(model.weight)
    return model, H, [(X, y)] * 100


def classification_setup(optimizer_name: str):
    """A batch-norm MLP, an optimizer with state after three steps, and a shuffled loader."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(192, 8, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()  # (192,), three classes
    loader = ResidentLoader(X, y, 16, shuffle=True, seed=2)  # 12 batches
    model = mlp(8, 16, 2, 3, batch_norm=True)
    if optimizer_name == "sgd":  # two groups with their own rates, momentum buffers
        optimizer = torch.optim.SGD(
            [
                {"params": model[1].parameters(), "lr": 0.05},
                {"params": [p for m in list(model)[2:] for p in m.parameters()]},
            ],
            lr=0.1,
            momentum=0.9,
            nesterov=True,
        )
    else:  # moments and step counts
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for inputs, labels in list(loader)[:3]:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    return model, optimizer, loader


def snapshot(model, optimizer, loader):
    """Everything the range test must put back, copied."""
    return {
        "model": copy.deepcopy(model.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "modes": [m.training for m in model.modules()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "order": loader.generator.get_state(),
        "torch": torch.get_rng_state(),
    }


def assert_same(a, b):
    """Equal nested dicts, lists and tensors, tensors bit for bit."""
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


# --- the rates and the curve -------------------------------------------------------------------


def test_rates_grow_exponentially_and_are_set_on_every_group():
    model, _, batches = quadratic(1.0)
    optimizer = torch.optim.SGD(
        [{"params": [model.weight]}, {"params": [nn.Parameter(torch.zeros(1))]}], lr=0.5
    )
    seen = []

    def loss_func(y_hat, y):  # called after the rate of its batch is set, before the step
        seen.append([group["lr"] for group in optimizer.param_groups])
        return nn.functional.mse_loss(y_hat, y)

    with pytest.warns(UserWarning, match="lr_max was too small"):  # no explosion below 1e-2
        result = lr_range_test(model, optimizer, loss_func, batches, lr_min=1e-5, lr_max=1e-2)
    closed_form = [1e-5 * 1000 ** (i / 99) for i in range(100)]  # lr_min (lr_max/lr_min)^(i/(n-1))
    assert result.lrs == pytest.approx(closed_form, rel=1e-12)
    assert result.lrs[0] == 1e-5 and result.lrs[-1] == pytest.approx(1e-2, rel=1e-12)
    assert seen == [[lr, lr] for lr in result.lrs]
    assert result.explodes_at is None and result.lr_at_min == result.lrs[-1]


def test_steps_shortens_the_pass_to_that_many_rates():
    model, _, batches = quadratic(1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning):
        result = lr_range_test(
            model, optimizer, nn.MSELoss(), batches, lr_min=1e-4, lr_max=1e-3, steps=20
        )
    assert len(result.lrs) == 20
    assert result.lrs == pytest.approx([1e-4 * 10 ** (i / 19) for i in range(20)], rel=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.5, 0.98])
def test_losses_are_the_bias_corrected_moving_average_of_the_raw_losses(smoothing):
    model, optimizer, loader = classification_setup("sgd")
    result = lr_range_test(
        model, optimizer, nn.CrossEntropyLoss(), loader, lr_min=1e-3, smoothing=smoothing
    )
    average, expected = 0.0, []
    for i, loss in enumerate(result.raw_losses):
        average = smoothing * average + (1 - smoothing) * loss
        expected.append(average / (1 - smoothing ** (i + 1)))
    assert result.losses == pytest.approx(expected, rel=1e-12)
    if smoothing == 0.0:
        assert result.losses == result.raw_losses


def test_frame_holds_one_row_per_batch():
    model, optimizer, loader = classification_setup("adam")
    result = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader, lr_min=1e-4)
    assert isinstance(result, RangeTest)
    frame = result.frame()
    assert list(frame.columns) == ["lr", "smoothed loss", "raw loss"]
    assert frame["lr"].tolist() == result.lrs
    assert frame["smoothed loss"].tolist() == result.losses
    assert frame["raw loss"].tolist() == result.raw_losses


# --- the stop and the suggestion ---------------------------------------------------------------


@pytest.mark.parametrize("condition", [1.0, 10.0, 100.0])
def test_suggestion_is_within_3x_of_the_best_constant_rate_of_a_quadratic(condition):
    model, H, batches = quadratic(condition)
    eigenvalues = torch.linalg.eigvalsh(H.double())
    mu, L = eigenvalues[0].item(), eigenvalues[-1].item()
    best = 2 / (L + mu)  # gradient descent on a quadratic: the fastest constant rate
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, optimizer, nn.MSELoss(), batches, lr_min=1e-6, lr_max=10.0)
    assert best / 3 <= result.suggestion <= 3 * best
    assert result.suggestion == result.lr_at_min / 10
    # below 2/L every step shrinks every component of the error: no explosion can happen there
    assert result.explodes_at is not None and result.explodes_at > 2 / L


@pytest.mark.parametrize("diverge_factor", [2.0, 4.0, 20.0])
def test_stops_at_the_first_loss_above_diverge_factor_times_the_best(diverge_factor):
    model, _, batches = quadratic(10.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, optimizer, nn.MSELoss(), batches, diverge_factor=diverge_factor)
    losses = result.losses
    assert len(losses) < 100 and result.explodes_at == result.lrs[-1]
    assert losses[-1] > diverge_factor * min(losses[:-1])
    assert all(losses[i] <= diverge_factor * min(losses[:i]) for i in range(1, len(losses) - 1))


def test_stops_on_a_loss_that_is_not_finite():
    model, optimizer, loader = classification_setup("sgd")
    calls = []

    def loss_func(y_hat, y):
        calls.append(1)
        loss = nn.functional.cross_entropy(y_hat, y)
        return loss * math.nan if len(calls) == 7 else loss

    result = lr_range_test(model, optimizer, loss_func, loader, lr_min=1e-7, lr_max=1e-5)
    assert len(result.lrs) == 7 and len(calls) == 7 and result.explodes_at == result.lrs[6]
    assert math.isnan(result.losses[-1]) and all(map(math.isfinite, result.losses[:-1]))


def test_a_loss_that_is_never_finite_raises():
    model, optimizer, loader = classification_setup("sgd")
    before = snapshot(model, optimizer, loader)
    with pytest.raises(ValueError, match="no finite loss at all"):
        lr_range_test(model, optimizer, lambda y_hat, y: y_hat.sum() * math.inf, loader)
    assert_same(snapshot(model, optimizer, loader), before)


def test_warns_when_lr_min_is_already_too_large():
    model, _, batches = quadratic(1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(UserWarning, match="lr_min was already too large"):
        result = lr_range_test(model, optimizer, nn.MSELoss(), batches, lr_min=5.0, lr_max=50.0)
    assert result.lr_at_min == 5.0


# --- nothing left changed ----------------------------------------------------------------------


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_puts_back_weights_buffers_modes_optimizer_and_order_exactly(optimizer_name):
    model, optimizer, loader = classification_setup(optimizer_name)
    model.eval()
    model[2].train()  # a mixed state: each module's own mode comes back
    before = snapshot(model, optimizer, loader)
    result = lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader, lr_min=1e-4)
    assert len(result.lrs) >= 2  # it trained: at least two steps at rates far from the groups'
    assert_same(snapshot(model, optimizer, loader), before)


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_puts_back_everything_when_the_loss_raises_mid_pass(optimizer_name):
    model, optimizer, loader = classification_setup(optimizer_name)
    before = snapshot(model, optimizer, loader)
    calls = []

    def loss_func(y_hat, y):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("a loss that breaks on the fifth batch")
        return nn.functional.cross_entropy(y_hat, y)

    with pytest.raises(RuntimeError, match="fifth batch"):
        lr_range_test(model, optimizer, loss_func, loader, lr_min=1e-2, lr_max=100.0)
    assert len(calls) == 5  # four steps were taken
    assert_same(snapshot(model, optimizer, loader), before)


def test_training_after_the_test_is_the_training_without_it():
    """Same weights, same order, same dropout draws: the loader and random states come back."""
    model, optimizer, loader = classification_setup("adam")
    twin, twin_optimizer, twin_loader = classification_setup("adam")  # the same, made again
    model = nn.Sequential(nn.Dropout(0.2), model)  # (B, 8) -> (B, 3), dropping inputs
    twin = nn.Sequential(nn.Dropout(0.2), twin)
    torch.manual_seed(1)
    lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader, lr_min=1e-4)
    frame = train_network(
        model, nn.CrossEntropyLoss(), loader, epochs=2, optimizer=optimizer, disable_tqdm=True
    )
    torch.manual_seed(1)
    twin_frame = train_network(
        twin,
        nn.CrossEntropyLoss(),
        twin_loader,
        epochs=2,
        optimizer=twin_optimizer,
        disable_tqdm=True,
    )
    assert frame["train loss"].tolist() == twin_frame["train loss"].tolist()
    assert_same(model.state_dict(), twin.state_dict())


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr_min": 1.0, "lr_max": 1.0}, "0 < lr_min < lr_max"),
        ({"lr_min": 1.0, "lr_max": 0.1}, "0 < lr_min < lr_max"),
        ({"lr_min": 0.0}, "0 < lr_min < lr_max"),
        ({"lr_min": -1e-3}, "0 < lr_min < lr_max"),
        ({"lr_max": math.inf}, "0 < lr_min < lr_max"),
        ({"smoothing": 1.0}, r"smoothing must be in \[0, 1\)"),
        ({"smoothing": -0.1}, r"smoothing must be in \[0, 1\)"),
        ({"diverge_factor": 1.0}, "diverge_factor must be above 1"),
        ({"steps": 13}, "train_loader has 12 batches"),
        ({"steps": MIN_STEPS - 1}, f"at least {MIN_STEPS} batches"),
        ({"steps": 10.0}, "steps must be an int"),
    ],
)
def test_bad_arguments_raise_before_any_training(kwargs, message):
    model, optimizer, loader = classification_setup("sgd")
    before = snapshot(model, optimizer, loader)
    with pytest.raises(ValueError, match=message):
        lr_range_test(model, optimizer, nn.CrossEntropyLoss(), loader, **kwargs)
    assert_same(snapshot(model, optimizer, loader), before)


def test_a_loader_too_short_or_without_len_raises_naming_the_fix():
    model, optimizer, loader = classification_setup("sgd")
    short = ResidentLoader(loader.X, loader.y, 64)  # 3 batches
    with pytest.raises(ValueError, match="smaller batch size"):
        lr_range_test(model, optimizer, nn.CrossEntropyLoss(), short)
    with pytest.raises(ValueError, match="pass steps="):
        lr_range_test(model, optimizer, nn.CrossEntropyLoss(), iter(loader))
