import pandas as pd
import pytest
import torch

from idlmam.data import ResidentLoader
from idlmam.experiments import run
from idlmam.models import mlp


@pytest.fixture
def loaders(tiny_data):
    X, y = tiny_data
    return {
        "train": ResidentLoader(X[:80], y[:80], 20, shuffle=True, seed=9),
        "val": ResidentLoader(X[80:], y[80:], 20),
        "test": ResidentLoader(X[80:], y[80:], 20),
    }


def small():
    return mlp(hidden=8, layers=2)


def sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def test_stacked_seeds_equal_one_seed_at_a_time(loaders):
    together = run("SGD", sgd, loaders=loaders, epochs=3, seeds=[0, 1, 2], make_model=small)
    alone = pd.concat(
        [
            run("SGD", sgd, loaders=loaders, epochs=3, seeds=[s], make_model=small)
            for s in (0, 1, 2)
        ],
        ignore_index=True,
    )
    assert list(together.columns) == list(alone.columns)
    assert together["run"].eq("SGD").all() and sorted(together["seed"].unique()) == [0, 1, 2]
    for column in ("train loss", "test loss", "test Accuracy", "lr"):
        a = together.sort_values(["seed", "epoch"])[column].to_numpy()
        b = alone.sort_values(["seed", "epoch"])[column].to_numpy()
        assert abs(a - b).max() < 1e-5, column
    assert together.groupby("seed")["train loss"].first().nunique() == 3  # seeds differ


def test_plateau_and_norm_clipping_train_seed_by_seed(loaders):
    from idlmam.optim import clip_grad_norm_on_step

    plateau = run(
        "Plateau",
        sgd,
        "ReduceLROnPlateau",
        loaders=loaders,
        epochs=2,
        seeds=[0, 1],
        make_model=small,
    )
    clipped = run(
        "Norm",
        lambda p: clip_grad_norm_on_step(sgd(p), 0.01),
        loaders=loaders,
        epochs=2,
        seeds=[0, 1],
        make_model=small,
    )
    single = run(
        "Norm",
        lambda p: clip_grad_norm_on_step(sgd(p), 0.01),
        loaders=loaders,
        epochs=2,
        seeds=[1],
        make_model=small,
    )
    assert len(plateau) == len(clipped) == 4
    assert clipped[clipped["seed"] == 1]["train loss"].tolist() == single["train loss"].tolist()


def test_clip_value_hooks_do_not_outlive_the_run(loaders):
    clipped = run(
        "Clamp", sgd, loaders=loaders, epochs=1, seeds=[0], make_model=small, clip_value=1e-6
    )
    free = run("Free", sgd, loaders=loaders, epochs=1, seeds=[0], make_model=small)
    again = run("Free", sgd, loaders=loaders, epochs=1, seeds=[0], make_model=small)
    assert clipped["train loss"].iloc[0] != free["train loss"].iloc[0]
    assert free["train loss"].tolist() == again["train loss"].tolist()


def test_several_seeds_take_the_stacked_path_unless_the_setup_forbids_it(loaders, monkeypatch):
    import idlmam.experiments.runs as experiments

    calls = []
    real = experiments.train_many
    monkeypatch.setattr(
        experiments, "train_many", lambda *a, **k: calls.append(len(list(a[1]))) or real(*a, **k)
    )
    run("SGD", sgd, loaders=loaders, epochs=1, seeds=[0, 1], make_model=small)
    assert calls == [2]
    run(
        "Plateau",
        sgd,
        "ReduceLROnPlateau",
        loaders=loaders,
        epochs=1,
        seeds=[0, 1],
        make_model=small,
    )
    run(
        "BN",
        sgd,
        loaders=loaders,
        epochs=1,
        seeds=[0, 1],
        make_model=lambda: mlp(hidden=8, layers=1, batch_norm=True),
    )
    assert calls == [2]  # plateau and batch norm trained seed by seed


def test_a_seed_decides_the_order_and_a_split_drawn_per_seed(loaders, tiny_data):
    X, y = tiny_data
    seen = {}

    def split(seed):  # a validation split drawn per seed
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(80, generator=g)
        seen[seed] = order[:60]
        return {
            "train": ResidentLoader(X[order[:60]], y[order[:60]], 20, shuffle=True),
            "val": ResidentLoader(X[order[60:]], y[order[60:]], 20),
        }

    frame = run(
        "Plateau", sgd, "ReduceLROnPlateau", loaders=split, epochs=2, seeds=[0, 1], make_model=small
    )
    assert sorted(seen) == [0, 1] and not torch.equal(seen[0], seen[1])
    assert frame.groupby("seed")["val loss"].first().nunique() == 2


def test_divergence_and_on_epoch_end_behave_alike_on_both_paths(loaders):
    import warnings

    from idlmam.train import DivergenceWarning

    def broken():  # a NaN weight: the loss is NaN from the first batch on
        model = small()
        with torch.no_grad():
            model[1].weight[0, 0] = float("nan")
        return model

    for make_schedule in (None, "ReduceLROnPlateau"):  # stacked, then seed by seed
        rows = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frame = run(
                "boom",
                sgd,
                make_schedule,
                loaders=loaders,
                epochs=5,
                seeds=[0, 1],
                make_model=broken,
                on_epoch_end=lambda epoch, row, seen=rows: seen.append(row["seed"]),
            )
        assert len([w for w in caught if w.category is DivergenceWarning]) == 1
        assert frame.attrs["diverged"] is True and frame["diverged"].dtype == bool
        assert frame.groupby("seed")["diverged"].sum().to_dict() == {0: 1, 1: 1}
        assert sorted(set(rows)) == [0, 1]


def test_a_per_batch_schedule_gives_the_same_frame_on_both_paths(loaders):
    from idlmam.optim import schedule_lrs

    per_epoch = len(loaders["train"])  # 80 examples in batches of 20

    def decay(optimizer):  # linear decay to a tenth over the 3 epochs' steps
        return torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=3 * per_epoch)

    def both(make_optimizer):
        kwargs = dict(lr_schedule_every="batch", loaders=loaders, epochs=3, make_model=small)
        together = run("decay", make_optimizer, decay, seeds=[0, 1], **kwargs)
        alone = [run("decay", make_optimizer, decay, seeds=[s], **kwargs) for s in (0, 1)]
        return together, pd.concat(alone, ignore_index=True)

    together, alone = both(sgd)
    assert list(together.columns) == list(alone.columns)
    for column in ("lr", "train loss", "val loss", "test Accuracy"):
        a = together.sort_values(["seed", "epoch"])[column].to_numpy()
        b = alone.sort_values(["seed", "epoch"])[column].to_numpy()
        assert abs(a - b).max() < 1e-5, column
    rates = schedule_lrs(decay, 3 * per_epoch, 0.1)  # the whole per-batch curve
    for frame in (together, alone):
        for _, rows in frame.groupby("seed"):
            assert rows["lr"].tolist() == pytest.approx(rates[::per_epoch], rel=1e-12)
    assert rates[1] < rates[0]  # the rate falls within the first epoch


def _schedule_free(params):
    from schedulefree import AdamWScheduleFree

    return AdamWScheduleFree(params, lr=0.01, warmup_steps=4)


def _adamw_ema(params):
    from idlmam.optim import WeightEMA

    return WeightEMA(torch.optim.AdamW(params, lr=0.01), decay=0.9)


@pytest.mark.parametrize("make", [_schedule_free, _adamw_ema], ids=["schedule-free", "ema"])
def test_optimizers_with_modes_stack_and_equal_one_seed_at_a_time(loaders, monkeypatch, make):
    import idlmam.experiments.runs as experiments

    calls = []
    real = experiments.train_many
    monkeypatch.setattr(experiments, "train_many", lambda *a, **k: calls.append(1) or real(*a, **k))

    together = run("SF", make, loaders=loaders, epochs=2, seeds=[0, 1], make_model=small)
    assert calls == [1]  # elementwise: the stacked path
    alone = pd.concat(
        [run("SF", make, loaders=loaders, epochs=2, seeds=[s], make_model=small) for s in (0, 1)],
        ignore_index=True,
    )
    for column in ("train loss", "val loss", "test loss", "test Accuracy"):
        a = together.sort_values(["seed", "epoch"])[column].to_numpy()
        b = alone.sort_values(["seed", "epoch"])[column].to_numpy()
        assert abs(a - b).max() < 1e-5, column


@pytest.mark.parametrize(
    "make_schedule,every,message",
    [
        (None, "steps", "must be 'epoch' or 'batch'"),
        ("ReduceLROnPlateau", "batch", "once per epoch"),
        (lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o), "batch", "once per epoch"),
    ],
)
def test_lr_schedule_every_is_checked_on_both_paths(loaders, make_schedule, every, message):
    for seeds in ([0], [0, 1]):  # one seed alone, several stacked (or seed by seed: plateau)
        trained = []
        with pytest.raises(ValueError, match=message):
            run(
                "bad",
                sgd,
                make_schedule,
                lr_schedule_every=every,
                loaders=loaders,
                epochs=1,
                seeds=seeds,
                make_model=small,
                on_epoch_end=lambda epoch, row, seen=trained: seen.append(epoch),
            )
        assert trained == []


def _adamw(params):
    return torch.optim.AdamW(params, lr=0.01)


def test_a_cooldown_branch_is_the_wsd_run_of_its_length(loaders):
    from idlmam.experiments import branch_runs
    from idlmam.optim import cooldown_schedule, warmup_constant, wsd_schedule

    steps, warm = len(loaders["train"]), 2  # 4 batches an epoch
    frame = branch_runs(
        "trunk",
        _adamw,
        lambda o: warmup_constant(o, warm),
        lambda o, n: cooldown_schedule(o, n * steps, shape="linear"),
        at={2: 1, 3: 2},
        loaders=loaders,
        epochs=4,
        seeds=[0, 1],
        make_model=small,
    )
    constant = run(
        "trunk",
        _adamw,
        lambda o: warmup_constant(o, warm),
        lr_schedule_every="batch",
        loaders=loaders,
        epochs=4,
        seeds=[0, 1],
        make_model=small,
    )
    trunk = frame[frame["branch"] == 0]
    for column in ("train loss", "test loss", "lr"):
        assert abs(trunk[column].to_numpy() - constant[column].to_numpy()).max() < 1e-5
    for b, n in ((2, 1), (3, 2)):
        for seed in (0, 1):
            wsd = run(
                "WSD",
                _adamw,
                lambda o, b=b, n=n: wsd_schedule(
                    o, (b + n) * steps, warm, n * steps, shape="linear"
                ),
                lr_schedule_every="batch",
                loaders=loaders,
                epochs=b + n,
                seeds=[seed],
                make_model=small,
            )
            ours = frame[(frame["branch"] == b) & (frame["seed"] == seed)]
            assert ours["run"].eq(f"trunk, branch at {b}").all()
            assert ours["epoch"].tolist() == list(range(b, b + n))
            tail = wsd[wsd["epoch"] >= b]
            for column in ("train loss", "test loss", "test Accuracy", "lr"):
                assert ours[column].tolist() == tail[column].tolist(), (b, seed, column)
    assert frame.groupby("branch")["total time"].min().loc[3] > 0


def test_a_branch_outside_the_trunk_is_refused(loaders):
    from idlmam.experiments import branch_runs

    with pytest.raises(ValueError, match="branch at 5"):
        branch_runs(
            "x", _adamw, lambda o: None, lambda o, n: None, at={5: 1}, loaders=loaders, epochs=4
        )


@pytest.mark.parametrize("seeds", [[0], [0, 1]], ids=["one seed", "stacked"])
def test_run_takes_the_loss(loaders, seeds):
    """Twice the cross-entropy at half the rate is the same plain-SGD trajectory: the
    training loss doubles and the test scores stay (so the loss reaches the training step)."""
    ce = torch.nn.CrossEntropyLoss()
    plain = run(
        "CE",
        lambda p: torch.optim.SGD(p, lr=0.1),
        loaders=loaders,
        epochs=2,
        seeds=seeds,
        make_model=small,
    )
    doubled = run(
        "2 CE",
        lambda p: torch.optim.SGD(p, lr=0.05),
        loaders=loaders,
        epochs=2,
        seeds=seeds,
        make_model=small,
        loss_func=lambda y_hat, y: 2 * ce(y_hat, y),
    )
    assert (doubled["train loss"] - 2 * plain["train loss"]).abs().max() < 1e-5
    assert (doubled["test Accuracy"] - plain["test Accuracy"]).abs().max() < 1e-6
