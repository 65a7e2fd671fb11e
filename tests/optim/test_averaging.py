import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from idlmam.data import ResidentLoader
from idlmam.models import mlp
from idlmam.optim import WeightEMA, ema_decay_for
from idlmam.train import train_network, why_not_stacked
from idlmam.utils import set_seed


def _sgd_weights(grads, lr):
    """The weight after each SGD step from 0, by hand."""
    w, seen = 0.0, []
    for g in grads:
        w -= lr * g
        seen.append(w)
    return seen


def test_the_average_is_the_ema_of_the_weights_by_hand():
    grads, lr, decay = [1.0, -2.0, 0.5, 3.0], 0.1, 0.75
    w = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = WeightEMA(torch.optim.SGD([w], lr=lr), decay)
    for g in grads:
        w.grad = torch.tensor([g], dtype=torch.float64)
        optimizer.step()
    seen = _sgd_weights(grads, lr)
    ema = seen[0]
    for x in seen[1:]:
        ema = decay * ema + (1 - decay) * x
    optimizer.eval()
    assert w.item() == pytest.approx(ema, abs=1e-15)
    optimizer.train()
    assert w.item() == pytest.approx(seen[-1], abs=1e-15)


def test_it_matches_averaged_model_with_the_ema_function():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    optimizer = WeightEMA(torch.optim.AdamW(model.parameters(), lr=0.01), 0.9)
    for _ in range(20):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).sum().backward()
        optimizer.step()
        reference.update_parameters(model)
    optimizer.eval()
    for ours, theirs in zip(model.parameters(), reference.module.parameters()):
        torch.testing.assert_close(ours, theirs)


def test_a_schedule_on_the_wrapper_sets_the_inner_rate():
    w = torch.nn.Parameter(torch.zeros(1))
    inner = torch.optim.SGD([w], lr=1.0)
    optimizer = WeightEMA(inner, 0.5)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.1)
    optimizer.step()
    schedule.step()
    assert inner.param_groups[0]["lr"] == pytest.approx(0.1)


def test_bad_input_is_refused():
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="decay must be in"):
        WeightEMA(torch.optim.SGD([w], lr=0.1), 1.0)
    optimizer = WeightEMA(torch.optim.SGD([w], lr=0.1), 0.5)
    with pytest.raises(ValueError, match="modes of its own"):
        WeightEMA(optimizer, 0.5)
    optimizer.eval()
    w.grad = torch.ones(1)
    with pytest.raises(RuntimeError, match="call train"):
        optimizer.step()
    with pytest.raises(ValueError, match="above 1"):
        ema_decay_for(1)


def _train(epochs, path=None, resume=False):
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(96, 1, 28, 28, generator=g), torch.randint(0, 10, (96,), generator=g)
    loader = ResidentLoader(X, y, 32, shuffle=True, seed=1)
    set_seed(0)
    model = mlp(hidden=8, layers=1)
    optimizer = WeightEMA(torch.optim.AdamW(model.parameters(), lr=0.01), ema_decay_for(4))
    frame = train_network(
        model,
        torch.nn.CrossEntropyLoss(),
        loader,
        test_loader=loader,
        epochs=epochs,
        optimizer=optimizer,
        checkpoint_file=path,
        resume=resume,
        disable_tqdm=True,
    )
    return frame, model, optimizer


def test_the_loop_evaluates_the_average_and_resumes_exactly(tmp_path):
    whole, model, optimizer = _train(4)
    assert optimizer.param_groups[0]["ema_eval"]  # the returned model shows the average
    averaged = [p.detach().clone() for p in model.parameters()]
    optimizer.train()
    assert any(not torch.equal(a, p) for a, p in zip(averaged, model.parameters()))
    _train(2, tmp_path / "run.pt")
    resumed, model_r, _ = _train(4, tmp_path / "run.pt", resume=True)
    cols = ["test loss", "train loss"]
    assert resumed[cols].equals(whole[cols])
    for a, b in zip(averaged, model_r.parameters()):
        assert torch.equal(a, b)


def test_stacking_looks_through_the_wrapper():
    assert why_not_stacked(mlp, lambda p: WeightEMA(torch.optim.AdamW(p), 0.9)) == ""
    reason = why_not_stacked(mlp, lambda p: WeightEMA(torch.optim.Adafactor(p), 0.9))
    assert "Adafactor mixes values" in reason
