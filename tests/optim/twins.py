"""Two copies of one small network trained side by side: the harness of the oracle tests."""

import copy

import torch


def small_net() -> torch.nn.Sequential:
    """5 -> 4 -> 4 -> 10 with tanh, float64, seeded: matrices (4, 5), (4, 4), (10, 4) and biases.

    Non-square both ways, square, and vectors: every case a preconditioner treats apart.
    """
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 4), torch.nn.Tanh(),
        torch.nn.Linear(4, 10),
    ).double()  # fmt: skip


def train_pair(make_ours, make_oracle, steps=100):
    """Train two copies of :func:`small_net`, one per optimizer, on the same batches.

    Returns:
        ``(ours, oracle's)``: the two trained networks.
    """
    net = small_net()
    twin = copy.deepcopy(net)
    opts = [make_ours(net.parameters()), make_oracle(twin.parameters())]
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        X = torch.randn(16, 5, generator=g, dtype=torch.float64)
        y = torch.randint(0, 10, (16,), generator=g)
        for model, opt in zip((net, twin), opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
    return net, twin
