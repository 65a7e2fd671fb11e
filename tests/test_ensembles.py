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
from idlmam.optim import cosine_extremes, cosine_schedule, eta_min_for, schedule_lrs


def states_of(n, make_model=lambda: mlp(hidden=16, layers=2)):
    """``n`` differently initialised copies of one architecture, as state dicts."""
    states = []
    for seed in range(n):
        torch.manual_seed(seed)
        states.append(copy.deepcopy(make_model().state_dict()))
    return states


@pytest.mark.parametrize(
    "epochs,dips,expected",
    [
        # turns at round(k * (T - 1) / (2d - 1)), k = 0 .. 2d - 1; the dips are the odd k
        (15, 2, [5, 14]),  # (T - 1) / 3 = 4.67: turns 0, 5, 9, 14
        (8, 2, [2, 7]),  # 7 / 3 = 2.33: turns 0, 2, 5, 7 (CosineAnnealingLR(T_max=2): 2, 6)
        (8, 4, [1, 3, 5, 7]),  # 7 / 7 = 1: every epoch turns
        (15, 4, [2, 6, 10, 14]),  # 14 / 7 = 2
        (50, 4, [7, 21, 35, 49]),  # 49 / 7 = 7
        (45, 5, [5, 15, 24, 34, 44]),  # 44 / 9 = 4.89: 4.9, 14.7, 24.4, 34.2, 44 rounded
        (51, 2, [17, 50]),  # 50 / 3 = 16.67: 16.7 and 50
        (30, 1, [29]),  # one dip: down all the way to the last epoch
    ],
)
@pytest.mark.parametrize("eta_min", [0.0, 1e-4, None])
def test_dips_are_hand_computed_and_the_last_is_the_last_epoch(epochs, dips, expected, eta_min):
    assert cosine_dips(epochs, dips, eta_0=0.1, eta_min=eta_min) == expected


def test_dips_match_the_turning_epochs_for_every_epoch_and_dip_count():
    for dips in range(1, 16):
        for epochs in range(4 * dips, 61):
            found = cosine_dips(epochs, dips, eta_0=0.1)
            assert found == cosine_extremes(epochs, dips)[1::2], (epochs, dips)
            assert len(found) == dips and found[-1] == epochs - 1, (epochs, dips)


def test_default_floor_is_the_books_eta_min():
    lrs = schedule_lrs(
        lambda opt: cosine_schedule(opt, 8, 2, eta_min=eta_min_for(0.1)), 8, eta_0=0.1
    )
    assert [lrs[i] for i in (2, 7)] == pytest.approx([0.001, 0.001])
    assert cosine_dips(8, 2, eta_0=0.1) == cosine_dips(8, 2, eta_0=0.1, eta_min=0.001)
    with pytest.raises(ValueError, match="eta_min"):
        cosine_dips(8, 2, eta_0=0.1, eta_min=0.2)


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
        epochs=8,
        dips=2,
    )
    # 8 epochs, 2 dips: turns at 0, 2, 5, 7; the floor is eta_min_for(0.1) = 0.001
    assert len(states) == 2
    assert frame["lr"].tolist() == pytest.approx(
        [
            0.1,
            0.0505,  # halfway down: 0.001 + 0.099 * (1 + cos(pi / 2)) / 2
            0.001,
            0.001 + 0.099 * 0.25,  # a third of the way up: 1 - (1 + cos(pi / 3)) / 2 = 1 / 4
            0.001 + 0.099 * 0.75,
            0.1,
            0.0505,
            0.001,
        ]
    )
    for name, value in model.state_dict().items():  # epoch 7 is the last one: same weights
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
