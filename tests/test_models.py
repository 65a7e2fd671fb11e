import pytest
import torch
from torch import nn

from idlmam.models import (
    BiRNN,
    clamp_gradients,
    cnn,
    count_parameters,
    mlp,
    pool_positions,
    weight_reset,
)


def test_mlp_is_the_chapters_network():
    model = mlp()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 128),
        (128, 128),
        (128, 128),
        (128, 10),
    ]
    # hand count: 784*128+128 + 2*(128*128+128) + 128*10+10
    assert count_parameters(model) == 784 * 128 + 128 + 2 * (128 * 128 + 128) + 128 * 10 + 10


def test_mlp_depth_is_variable():
    for layers in (1, 4, 6):
        model = mlp(hidden=16, layers=layers)
        assert sum(isinstance(m, nn.Tanh) for m in model) == layers
        assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_weight_reset_draws_new_weights():
    model = mlp(hidden=8)
    before = [p.detach().clone() for p in model.parameters()]
    model.apply(weight_reset)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_weight_reset_removes_gradient_hooks():
    # regression: the source chapter's clamp hooks silently clipped every later experiment
    model = nn.Linear(1, 1, bias=False)
    clamp_gradients(model, 5)
    x = torch.tensor([[1000.0]])
    model(x).sum().backward()
    assert model.weight.grad.item() == 5.0
    model.apply(weight_reset)
    model.weight.grad = None
    model(x).sum().backward()
    assert model.weight.grad.item() == 1000.0


def test_clamp_gradients_is_the_chapters_example():
    params = nn.ParameterList([nn.Parameter(torch.zeros(5))])
    handles = clamp_gradients(params, 5)
    (params[0] * torch.tensor([1.0, -2.0, 1000.0, 3.0, -7.0])).sum().backward()
    assert params[0].grad.tolist() == [1.0, -2.0, 5.0, 3.0, -5.0]
    for h in handles:
        h.remove()
    params[0].grad = None
    (params[0] * torch.tensor([1000.0] * 5)).sum().backward()
    assert params[0].grad.tolist() == [1000.0] * 5


@pytest.mark.parametrize(
    "conv_layers,pool_rounds", [(1, 0), (1, 1), (2, 1), (3, 2), (4, 4), (6, 3), (1, 3), (2, 4)]
)
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


def test_mlp_with_batch_norm_puts_it_between_each_linear_and_its_activation():
    kinds = [type(layer).__name__ for layer in mlp(hidden=8, layers=2, batch_norm=True)]
    assert kinds == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Linear",
    ]
    assert mlp(hidden=8, layers=2, batch_norm=True)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_birnn_shapes_and_both_directions_matter():
    torch.manual_seed(0)
    model = BiRNN(vocab=5, classes=3, hidden=8, layers=3)
    assert model.rnn.bidirectional and model.rnn.num_layers == 3
    X = torch.randint(0, 5, (4, 12))
    assert model(X).shape == (4, 3)
    first, last = X.clone(), X.clone()
    first[:, 0] = (X[:, 0] + 1) % 5
    last[:, -1] = (X[:, -1] + 1) % 5
    with torch.no_grad():
        assert not torch.allclose(model(first), model(X))  # the backward direction ends on token 0
        assert not torch.allclose(model(last), model(X))  # the forward direction ends on the last
