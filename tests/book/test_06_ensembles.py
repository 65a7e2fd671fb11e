"""Page 06: the SWA loop the page shows (its lesson cell, run verbatim) against the package's
``idlmam.ensembles.train_swa``, which the page's multi-seed runs use.

Both train the same network from the same seed on the same shuffled tiny data, with the page's
recipe (a cosine decay to the SWA rate, then ``SWALR`` holding it while the weights of every
epoch from ``swa_start`` on are averaged, then ``update_bn``). Compared, exactly: the averaged
model's whole state (the mean weights, the BatchNorm statistics ``update_bn`` recomputed for
them, and how many epochs were averaged) and the live network's final weights.
"""

import pytest
import torch
from lessons import lesson
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR
from torch.optim.swa_utils import AveragedModel, update_bn

from idlmam.data import ResidentLoader
from idlmam.ensembles import train_swa
from idlmam.models import mlp

EPOCHS, SWA_START, ETA_0, SWA_LR = 4, 2, 0.1, 0.01


@pytest.fixture(scope="module")
def page():
    return lesson("06_ensembles")


def train(tiny_data, how):
    """A fresh seeded network, optimizer and shuffled loader, trained by ``how``."""
    X, y = tiny_data
    torch.manual_seed(0)
    model = mlp(hidden=16, layers=2, batch_norm=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=ETA_0)
    return model, how(model, ResidentLoader(X, y, 25, shuffle=True, seed=0), optimizer)


def by_hand(page):
    def how(model, loader, optimizer):
        return page["swa_by_hand"](
            model,
            nn.CrossEntropyLoss(),
            loader,
            optimizer,
            epochs=EPOCHS,
            swa_start=SWA_START,
            swa_lr=SWA_LR,
        )

    return how


def with_the_package(model, loader, optimizer):
    _, swa_model = train_swa(
        model,
        nn.CrossEntropyLoss(),
        loader,
        optimizer,
        epochs=EPOCHS,
        swa_start=SWA_START,
        swa_lr=SWA_LR,
        lr_schedule=CosineAnnealingLR(optimizer, SWA_START, eta_min=SWA_LR),  # as the page
        device="cpu",
        disable_tqdm=True,
    )
    return swa_model


def test_the_pages_swa_loop_gives_the_averaged_weights_of_train_swa(page, tiny_data):
    mine_live, mine = train(tiny_data, by_hand(page))
    theirs_live, theirs = train(tiny_data, with_the_package)
    assert int(mine.n_averaged) == int(theirs.n_averaged) == EPOCHS - SWA_START
    mine_state, theirs_state = mine.state_dict(), theirs.state_dict()
    assert list(mine_state) == list(theirs_state)  # parameters, BatchNorm buffers, n_averaged
    for name, value in mine_state.items():
        torch.testing.assert_close(value, theirs_state[name], rtol=0, atol=0, msg=name)
    for name, value in mine_live.state_dict().items():
        torch.testing.assert_close(
            value, theirs_live.state_dict()[name], rtol=0, atol=0, msg=f"live {name}"
        )
    # the average is not just the last epoch's weights: the test would miss a loop that
    # averaged one epoch only
    assert not torch.equal(mine.module[1].weight, mine_live[1].weight)


def test_update_bn_makes_no_pass_without_batch_norm():
    """What the page says of update_bn: without BatchNorm it returns before reading the data."""

    class Counting:
        reads = 0

        def __iter__(self):
            self.reads += 1
            return iter([])

    loader = Counting()
    update_bn(loader, AveragedModel(mlp(hidden=8, layers=1)))
    assert loader.reads == 0, "update_bn read the loader of a network without BatchNorm"
