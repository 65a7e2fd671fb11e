import pytest
import torch
from torch import nn

from idlmam.cnn import cnn, pool_positions


@pytest.mark.parametrize("conv_layers,pool_rounds", [(1, 0), (1, 1), (2, 1), (3, 2), (4, 4), (6, 3), (1, 3), (2, 4)])
def test_output_shape_and_number_of_poolings(conv_layers, pool_rounds):
    model = cnn(channels=4, conv_layers=conv_layers, pool_rounds=pool_rounds)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    kinds = [type(m) for m in model]
    assert kinds.count(nn.Conv2d) == conv_layers
    assert kinds.count(nn.MaxPool2d) == pool_rounds
    side = 28 // 2**pool_rounds
    assert model[-1].in_features == 4 * side * side


def test_each_pooling_halves_the_image_rounding_down():
    model = cnn(channels=2, conv_layers=4, pool_rounds=4)
    x = torch.zeros(1, 1, 28, 28)
    sides = []
    for layer in model:
        x = layer(x)
        if isinstance(layer, nn.MaxPool2d):
            sides.append(x.shape[-1])
    assert sides == [14, 7, 3, 1]


def test_pool_positions_spread_evenly_and_end_on_the_last_convolution():
    assert pool_positions(6, 3) == [1, 3, 5]
    assert pool_positions(3, 2) == [1, 2]
    assert pool_positions(1, 3) == [0, 0, 0]
    assert pool_positions(2, 3) == [0, 1, 1]
    for layers in range(1, 7):
        for rounds in range(1, 5):
            positions = pool_positions(layers, rounds)
            assert positions == sorted(positions) and positions[-1] == layers - 1
            if rounds <= layers:  # never two poolings in a row when there are enough convolutions
                assert len(set(positions)) == rounds


def test_impossible_networks_are_refused():
    with pytest.raises(ValueError, match="pool_rounds >= 0"):
        cnn(conv_layers=1, pool_rounds=-1)
    with pytest.raises(ValueError, match="leave nothing"):
        cnn(conv_layers=5, pool_rounds=5)
    with pytest.raises(ValueError, match="odd"):
        cnn(kernel_size=4)


def test_cnn_learns_a_little(tiny_data):
    X, y = tiny_data
    torch.manual_seed(0)
    model = cnn(channels=4, conv_layers=2, pool_rounds=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = nn.functional.cross_entropy(model(X), y).item()
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first
