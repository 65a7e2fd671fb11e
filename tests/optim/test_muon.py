"""Muon with AdamW in one optimizer, and weight decay by kind."""

import copy
import io
import math

import pytest
import torch

# Muon for the hidden matrices, AdamW for the rest ---------------------------------------------


def _linears(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)]


def _has(xs, p) -> bool:
    return any(x is p for x in xs)


def _same(xs, ys) -> bool:
    return len(xs) == len(ys) and all(x is y for x, y in zip(xs, ys))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_muon_gets_exactly_the_hidden_matrices_of_the_books_mlp(batch_norm):
    from idlmam.models import mlp
    from idlmam.optim import muon_param_groups

    model = mlp(batch_norm=batch_norm)
    hidden, other = muon_param_groups(model)
    assert _same(hidden, [m.weight for m in _linears(model)[1:-1]])  # 2 of 4 Linear weights
    assert _same(other, [p for p in model.parameters() if not any(p is q for q in hidden)])
    assert other[0] is _linears(model)[0].weight and other[-2] is _linears(model)[-1].weight
    assert all(p.ndim == 1 for p in other[1:-2])
    with_first, _ = muon_param_groups(model, first_layer=True)  # this book's split before 0.5.2
    assert _same(with_first, [m.weight for m in _linears(model)[:-1]])
    if batch_norm:
        norms = [m for m in model if isinstance(m, torch.nn.BatchNorm1d)]
        assert all(_has(other, m.weight) and _has(other, m.bias) for m in norms) and norms
    given_parameters = muon_param_groups(model.parameters())  # what run() hands make_optimizer
    assert _same(given_parameters[0], hidden) and _same(given_parameters[1], other)
    given_first = muon_param_groups(model.parameters(), first_layer=True)[0]
    assert _same(given_first, with_first)


def test_muon_leaves_embeddings_filters_and_the_head_to_adamw():
    from idlmam.models import BiRNN, cnn
    from idlmam.optim import muon_param_groups

    rnn = BiRNN(vocab=10, classes=4, layers=2)
    hidden, other = muon_param_groups(rnn)
    assert not any(p is rnn.embed.weight or p is rnn.head.weight for p in hidden)
    assert _same(hidden, [p for name, p in rnn.rnn.named_parameters() if "weight" in name])
    conv = cnn(channels=4, conv_layers=2, pool_rounds=1)
    hidden, other = muon_param_groups(conv)
    assert hidden == [] and len(other) == len(list(conv.parameters()))


def _muon_twins(steps=0):
    """Two copies of a small MLP, batches, and the loss of one batch."""
    from idlmam.models import mlp

    torch.manual_seed(0)
    model = mlp(in_features=12, hidden=16, layers=2, classes=3)
    g = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(32, 12, generator=g), torch.randint(0, 3, (32,), generator=g))
        for _ in range(steps)
    ]
    return model, copy.deepcopy(model), batches


def _step(model, optimizers, X, y, schedules=()):
    for opt in optimizers:
        opt.zero_grad()
    torch.nn.functional.cross_entropy(model(X), y).backward()
    for opt in optimizers:
        opt.step()
    for schedule in schedules:
        schedule.step()


def test_muon_with_adamw_steps_like_a_muon_and_an_adamw_side_by_side():
    from idlmam.optim import MuonWithAdamW, muon_param_groups, warmup_cosine

    model, twin, batches = _muon_twins(steps=20)
    combined = MuonWithAdamW(*muon_param_groups(model), lr=0.02, weight_decay=0.1)
    hidden, other = muon_param_groups(twin)
    muon = torch.optim.Muon(hidden, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(other, lr=0.02, weight_decay=0.1)
    schedules = [warmup_cosine(o, 20, 4) for o in (combined, muon, adamw)]
    for X, y in batches:
        _step(model, [combined], X, y, schedules[:1])
        _step(twin, [muon, adamw], X, y, schedules[1:])
    for mine, theirs in zip(model.parameters(), twin.parameters()):
        assert torch.equal(mine, theirs)
    assert not torch.equal(model[1].weight, _muon_twins()[0][1].weight)  # it trained


@pytest.mark.parametrize("kind", ["lambda", "cosine"])
def test_one_schedule_on_muon_with_adamw_sets_the_rates_of_both(kind):
    from idlmam.optim import MuonWithAdamW, muon_param_groups

    model, _, batches = _muon_twins(steps=3)
    combined = MuonWithAdamW(*muon_param_groups(model), lr=0.01)
    schedule = {
        "lambda": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 0.5**t),
        "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4),
    }[kind](combined)
    for X, y in batches:
        _step(model, [combined], X, y, [schedule])
    expected = {"lambda": 0.01 * 0.5**3, "cosine": 0.01 * (1 + math.cos(3 * math.pi / 4)) / 2}
    for inner in (combined.muon, combined.adamw):
        assert inner.param_groups[0]["lr"] == pytest.approx(expected[kind])
    assert [g["lr"] for g in combined.param_groups] == pytest.approx([expected[kind]] * 2)
    assert combined.param_groups[0] is combined.muon.param_groups[0]
    assert combined.param_groups[1] is combined.adamw.param_groups[0]


def test_muon_with_adamw_resumes_from_a_checkpoint():
    from idlmam.optim import MuonWithAdamW, muon_param_groups, warmup_linear_decay

    model, twin, batches = _muon_twins(steps=10)
    combined = MuonWithAdamW(*muon_param_groups(model), lr=0.01)
    schedule = warmup_linear_decay(combined, 10, 3)
    for X, y in batches:  # uninterrupted
        _step(model, [combined], X, y, [schedule])

    first = MuonWithAdamW(*muon_param_groups(twin), lr=0.01)
    first_schedule = warmup_linear_decay(first, 10, 3)
    for X, y in batches[:4]:
        _step(twin, [first], X, y, [first_schedule])
    buffer = io.BytesIO()
    torch.save({"opt": first.state_dict(), "sched": first_schedule.state_dict()}, buffer)
    saved = torch.load(io.BytesIO(buffer.getvalue()))
    assert len(saved["opt"]["state"]) == len(list(twin.parameters()))  # Muon's and AdamW's state

    second = MuonWithAdamW(*muon_param_groups(twin), lr=0.01)
    second_schedule = warmup_linear_decay(second, 10, 3)
    second.load_state_dict(saved["opt"])
    second_schedule.load_state_dict(saved["sched"])
    assert second.muon.state is second.state and second.adamw.state is second.state
    assert _same(second.muon.param_groups + second.adamw.param_groups, second.param_groups)
    for X, y in batches[4:]:
        _step(twin, [second], X, y, [second_schedule])
    for mine, theirs in zip(model.parameters(), twin.parameters()):
        assert torch.equal(mine, theirs)


def test_muon_with_adamw_zero_grad_hooks_and_copies():
    from idlmam.optim import MuonWithAdamW, muon_param_groups, record_grad_norms

    model, twin, batches = _muon_twins(steps=2)
    log = []
    combined = record_grad_norms(MuonWithAdamW(*muon_param_groups(model), lr=0.01), log)
    torch.nn.functional.cross_entropy(model(batches[0][0]), batches[0][1]).backward()
    combined.step()
    assert len(log) == 1 and log[0][0] > 0  # a step hook sees every gradient
    combined.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    duplicate = copy.deepcopy(combined)
    assert duplicate.muon.state is duplicate.state
    assert _same(duplicate.muon.param_groups, duplicate.param_groups[:1])


@pytest.mark.parametrize(
    "model_name,given",  # a model with an embedding must be given as a module
    [(m, g) for m in ("mlp", "mlp_batch_norm") for g in ("module", "parameters")]
    + [("birnn", "module")],
)
def test_muon_with_adamw_never_sees_a_parameter_that_is_not_2d(model_name, given):
    from idlmam.models import BiRNN, mlp
    from idlmam.optim import MuonWithAdamW, muon_param_groups

    model = {
        "mlp": lambda: mlp(in_features=12, hidden=8, layers=3),
        "mlp_batch_norm": lambda: mlp(in_features=12, hidden=8, layers=3, batch_norm=True),
        "birnn": lambda: BiRNN(vocab=7, classes=3, layers=2),
    }[model_name]()
    source = model if given == "module" else model.parameters()
    optimizer = MuonWithAdamW(*muon_param_groups(source))  # no ValueError from Muon
    X = torch.randint(0, 7, (4, 5)) if model_name == "birnn" else torch.randn(4, 12)
    model(X).sum().backward()
    optimizer.step()
    assert all(p.ndim == 2 for group in optimizer.muon.param_groups for p in group["params"])


def test_muon_with_adamw_refuses_what_it_cannot_step():
    from idlmam.models import cnn
    from idlmam.optim import MuonWithAdamW, muon_param_groups

    with pytest.raises(ValueError, match="no parameters for Muon"):
        MuonWithAdamW(*muon_param_groups(cnn(channels=4, conv_layers=1, pool_rounds=0)))
    w = torch.nn.Parameter(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="more than one parameter group"):
        MuonWithAdamW([w], [w])
    with pytest.raises(ValueError, match="2D parameters"):
        MuonWithAdamW([w, torch.nn.Parameter(torch.zeros(3))], [])


# Weight decay only for matrices and filters ---------------------------------------------------


@pytest.mark.parametrize("given", ["module", "parameters"])
def test_decay_param_groups_never_decays_a_bias_or_a_norm_weight(given):
    from idlmam.models import mlp
    from idlmam.optim import decay_param_groups

    model = mlp(in_features=12, hidden=8, layers=2, batch_norm=True)
    groups = decay_param_groups(model if given == "module" else model.parameters(), 0.1)
    decayed, spared = groups[0]["params"], groups[1]["params"]
    assert _same(decayed, [m.weight for m in _linears(model)])
    norms = [m for m in model if isinstance(m, torch.nn.BatchNorm1d)]
    assert _same(spared, [p for p in model.parameters() if p.ndim == 1]) and len(norms) == 2
    assert all(_has(spared, m.weight) and _has(spared, m.bias) for m in norms)
    before = copy.deepcopy(model)
    optimizer = torch.optim.AdamW(groups, lr=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decay acts
    optimizer.step()
    for p, q in zip(model.parameters(), before.parameters()):
        assert torch.allclose(p, q * (1 - 0.5 * 0.1) if p.ndim >= 2 else q)
    assert not torch.equal(decayed[0], _linears(before)[0].weight)


def test_decay_param_groups_decays_convolution_filters():
    from idlmam.models import cnn
    from idlmam.optim import decay_param_groups

    model = cnn(channels=4, conv_layers=2, pool_rounds=1)
    decayed, spared = (g["params"] for g in decay_param_groups(model, 0.05))
    assert sorted(p.ndim for p in decayed) == [2, 4, 4] and all(p.ndim == 1 for p in spared)
    with pytest.raises(ValueError, match="weight_decay must be non-negative"):
        decay_param_groups(model, -0.1)
