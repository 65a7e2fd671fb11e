import copy

import pytest
import torch
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.ensembles import (
    SnapshotEnsemble,
    Snapshots,
    average_weights,
    cosine_dips,
    dip_epochs,
    train_snapshots,
    train_swa,
)
from idlmam.models import mlp
from idlmam.optim import cosine_t_max


def states_of(n, model_fn=lambda: mlp(hidden=16, layers=2)):
    """``n`` differently initialised copies of one architecture, as state dicts."""
    states = []
    for seed in range(n):
        torch.manual_seed(seed)
        states.append(copy.deepcopy(model_fn().state_dict()))
    return states


@pytest.mark.parametrize(
    "epochs,dips", [(50, 4), (50, 2), (50, 5), (8, 4), (45, 5), (30, 1), (51, 2)]
)
@pytest.mark.parametrize("eta_min", [0.0, 1e-4])
def test_dips_of_the_schedule_are_the_closed_form_minima(epochs, dips, eta_min):
    t_max = cosine_t_max(epochs, dips)
    closed_form = [k * t_max for k in range(1, epochs, 2) if k * t_max < epochs]  # odd multiples
    found = cosine_dips(epochs, dips, eta_0=0.1, eta_min=eta_min)
    assert found == closed_form
    assert len(found) >= dips


def test_dip_epochs_reads_a_list_of_rates():
    assert dip_epochs([0.1, 0.05, 0.001, 0.05, 0.1, 0.001], 0.001) == [2, 5]
    assert dip_epochs([0.1, 0.1], 0.0) == []


def test_ensemble_averages_the_members_softmax():
    states = states_of(3)
    X = torch.randn(7, 1, 28, 28)
    by_hand = []
    for state in states:
        member = mlp(hidden=16, layers=2)
        member.load_state_dict(state)
        by_hand.append(torch.softmax(member(X), dim=1))
    expected = (by_hand[0] + by_hand[1] + by_hand[2]) / 3  # (7, 10)
    ensemble = SnapshotEnsemble(mlp(hidden=16, layers=2), states).eval()
    with torch.no_grad():
        torch.testing.assert_close(ensemble.predict_proba(X), expected.detach())
        # forward gives class scores whose softmax is the averaged probability
        torch.testing.assert_close(ensemble(X).softmax(dim=1), expected.detach())
        y = torch.randint(0, 10, (7,))
        torch.testing.assert_close(
            nn.CrossEntropyLoss()(ensemble(X), y),
            -expected[torch.arange(7), y].log().mean().detach(),
        )


def test_ensemble_of_one_is_the_model():
    (state,) = states_of(1)
    model = mlp(hidden=16, layers=2)
    model.load_state_dict(state)
    X = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(
            SnapshotEnsemble(model, [state]).predict_proba(X), model(X).softmax(dim=1)
        )
    with pytest.raises(ValueError, match="at least one"):
        SnapshotEnsemble(model, [])


def test_averaged_model_holds_the_hand_mean_of_the_snapshots():
    states = states_of(4)
    swa_model = average_weights(mlp(hidden=16, layers=2), states)
    assert int(swa_model.n_averaged) == 4
    averaged = dict(swa_model.module.named_parameters())
    for name in averaged:
        by_hand = torch.stack([state[name] for state in states]).mean(dim=0)
        torch.testing.assert_close(averaged[name].detach(), by_hand)


def test_update_bn_recomputes_the_running_statistics_for_the_averaged_weights():
    states = states_of(2, lambda: mlp(hidden=8, layers=1, batch_norm=True))
    X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model = mlp(hidden=8, layers=1, batch_norm=True)
    stale = average_weights(model, states)  # no bn_loader: statistics are the template's
    torch.testing.assert_close(stale.module[2].running_mean, model[2].running_mean)
    fresh = average_weights(model, states, bn_loader=ResidentLoader(X, y, batch_size=16))
    with torch.no_grad():
        pre_activation = fresh.module[1](fresh.module[0](X))  # (64, 784) -> (64, 8)
    # four equal batches: the cumulative mean of the batch means is the mean over all 64 rows
    torch.testing.assert_close(fresh.module[2].running_mean, pre_activation.mean(dim=0))


def test_snapshots_are_taken_at_the_dips_and_the_last_one_is_the_final_model(tiny_data):
    X, y = tiny_data
    torch.manual_seed(0)
    model = mlp(hidden=16, layers=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    frame, states = train_snapshots(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 25),
        optimizer,
        epochs=7,
        dips=2,
        eta_min=1e-3,
    )
    assert cosine_dips(7, 2, eta_0=0.1, eta_min=1e-3) == [2, 6]
    assert len(states) == 2
    assert frame["lr"].iloc[[2, 6]].tolist() == pytest.approx([1e-3, 1e-3])
    for name, value in model.state_dict().items():  # epoch 6 is the last one: same weights
        torch.testing.assert_close(states[-1][name], value)
    assert not torch.equal(states[0]["1.weight"], states[1]["1.weight"])


def test_snapshot_hook_copies_rather_than_aliases():
    model = nn.Linear(2, 1)
    hook = Snapshots(model, [0])
    hook(0, {})
    hook(1, {})
    with torch.no_grad():
        model.weight.add_(1.0)
    assert len(hook.states) == 1
    assert not torch.equal(hook.states[0]["weight"], model.weight)


def test_train_swa_averages_the_epochs_after_swa_start(tiny_data):
    X, y = tiny_data
    torch.manual_seed(0)
    model = mlp(hidden=16, layers=1, batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    frame, swa_model = train_swa(
        model,
        nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 25),
        optimizer,
        epochs=5,
        swa_start=2,
        swa_lr=0.01,
        anneal_epochs=1,
    )
    assert frame["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert frame["averaged"].tolist() == [False, False, True, True, True]
    assert int(swa_model.n_averaged) == 3
    assert frame["lr"].iloc[3:].tolist() == pytest.approx([0.01, 0.01])  # SWALR holds swa_lr
    assert frame["total time"].is_monotonic_increasing
    with pytest.raises(ValueError, match="swa_start"):
        train_swa(
            model,
            nn.CrossEntropyLoss(),
            ResidentLoader(X, y, 25),
            optimizer,
            epochs=3,
            swa_start=3,
            swa_lr=0.01,
        )
