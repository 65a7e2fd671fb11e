"""Two copies of one small network trained side by side: the harness of the oracle tests."""

import copy
import io

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


def filters_and_matrix(make, steps):
    """A (3, 2, 2, 2) conv weight and its (3, 8) reshape, each stepped by its own ``make([p])``
    on the same random gradients, ``steps`` times.

    Returns:
        ``(filters, matrix, optimizers)``.
    """
    torch.manual_seed(0)
    filters = torch.nn.Parameter(torch.randn(3, 2, 2, 2, dtype=torch.float64))
    matrix = torch.nn.Parameter(filters.detach().reshape(3, 8).clone())
    opts = [make([p]) for p in (filters, matrix)]
    for _ in range(steps):
        grad = torch.randn(3, 2, 2, 2, dtype=torch.float64)
        filters.grad, matrix.grad = grad, grad.reshape(3, 8)
        for opt in opts:
            opt.step()
    return filters, matrix, opts


def resumed_halfway(make, after_load=None):
    """One small network trained 12 steps by ``make(params)`` without a break, and its twin
    trained 6 steps, its optimizer saved with ``state_dict``, loaded into a fresh ``make``, then
    6 more steps. ``after_load(optimizer, twin)`` runs right after the load.

    Returns:
        ``(uninterrupted, resumed)``: the two networks.
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    twin = copy.deepcopy(model)
    batches = [torch.randn(8, 5) for _ in range(12)]

    def train(net, opt, xs):
        for X in xs:
            opt.zero_grad()
            net(X).pow(2).mean().backward()
            opt.step()

    train(model, make(model.parameters()), batches)
    first = make(twin.parameters())
    train(twin, first, batches[:6])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    second = make(twin.parameters())
    second.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    if after_load is not None:
        after_load(second, twin)
    train(twin, second, batches[6:])
    return model, twin
