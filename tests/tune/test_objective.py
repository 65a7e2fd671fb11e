"""Tests of idlmam.tune.objective: the objective (against hand-made training runs), for the
chapter's MLP and for any builder, its data, and the count of how trials ended."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FixedTrial, TrialState

from idlmam.data import ResidentLoader
from idlmam.tune import (
    TrialOutcomes,
    adamw_cosine,
    chapter_loaders,
    create_study,
    make_objective,
    mlp_search,
    outcomes_frame,
    trial_outcome,
    trial_outcomes,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMS = {"neurons_per_layer": 20, "hidden_layers": 2, "learning_rate": 3e-3}


def hand_schedule(optimizer, factors):
    """The learning rate of each epoch, as a multiple of the initial one, written out by hand."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: factors[min(epoch, len(factors) - 1)]
    )


# half a cosine from 1 to the floor 1/100 over T epochs, 0.01 + 0.495 * (1 + cos(pi t / (T-1))):
COSINE_3 = [1.0, 0.505, 0.01]  # t = 0, 1, 2 of 3: cos = 1, 0, -1
COSINE_2 = [1.0, 0.01]  # a 2-epoch trial: the top, then the floor


# --------------------------------------------------------------------------- the objective


def test_objective_returns_the_last_val_accuracy_of_the_run_it_describes(loaders):
    """Oracle: the same run made by hand (seed 0, AdamW, the half cosine written out)."""
    from sklearn.metrics import accuracy_score

    from idlmam.models import mlp
    from idlmam.train import train_network
    from idlmam.utils import order_seed, set_seed

    train_loader, val_loader = loaders
    next(iter(train_loader))  # move the loader's order on: the objective must reset it
    value = make_objective(train_loader, val_loader, epochs=3)(FixedTrial(PARAMS))

    set_seed(0)
    model = mlp(hidden=20, layers=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    X, y = train_loader.X, train_loader.y
    frame = train_network(
        model,
        torch.nn.CrossEntropyLoss(),
        ResidentLoader(X, y, 16, shuffle=True, seed=order_seed(0)),  # seed 0's batch order
        val_loader,
        score_funcs={"Accuracy": accuracy_score},
        epochs=3,
        optimizer=optimizer,
        lr_schedule=hand_schedule(optimizer, COSINE_3),
        disable_tqdm=True,
    )
    assert value == frame["val Accuracy"].iloc[-1]
    # and it is not a number that any run would give: another learning rate scores differently
    slower = FixedTrial({**PARAMS, "learning_rate": 1e-5})
    other = make_objective(train_loader, val_loader, epochs=3)(slower)
    assert other != value


def test_a_trial_with_seed_s_trains_what_seed_s_of_run_trains(loaders, spy):
    """Oracle: idlmam.experiments.run, same model and optimizer: the same weights and batches."""
    from idlmam.experiments import run
    from idlmam.models import mlp

    train_loader, val_loader = loaders

    def build(trial, epochs):
        model = mlp(hidden=20, layers=2)
        return model, torch.optim.SGD(model.parameters(), lr=0.05), None

    losses = {}
    for seed in (0, 3):
        calls = len(spy)
        make_objective(train_loader, val_loader, epochs=2, build=build, seed=seed)(FixedTrial({}))
        losses[seed] = spy[calls]["frame"]["train loss"].tolist()  # the trial's own run
        frame = run(
            "the same run",
            lambda params: torch.optim.SGD(params, lr=0.05),
            loaders={"train": train_loader, "val": val_loader},
            epochs=2,
            seeds=[seed],
            make_model=lambda: mlp(hidden=20, layers=2),
        )
        assert losses[seed] == frame["train loss"].tolist(), f"seed {seed}"
    assert losses[0] != losses[3]  # and the seed matters


def test_objective_builds_the_trial_model_and_a_schedule_that_fits_the_epochs(loaders, spy):
    train_loader, val_loader = loaders
    make_objective(train_loader, val_loader, epochs=4)(FixedTrial(PARAMS))
    (call,) = spy
    linear = [m for m in call["model"] if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [20, 20, 10]  # two hidden layers of 20
    assert isinstance(call["optimizer"], torch.optim.AdamW)
    # the half cosine spans the trial's epochs: from 3e-3 to the book's floor, 3e-3 / 100, which
    # the last epoch trains at (never 0)
    lrs = call["frame"]["lr"].tolist()
    eta_min = 3e-5
    closed_form = [
        eta_min + (3e-3 - eta_min) * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(4)
    ]
    assert lrs == pytest.approx(closed_form)
    assert lrs[0] == pytest.approx(3e-3) and lrs[-1] == pytest.approx(eta_min) and min(lrs) > 0
    assert call["test_loader"] is None and call["val_loader"] is val_loader


def test_a_one_epoch_trial_trains_at_its_learning_rate(loaders, spy):
    make_objective(*loaders, epochs=1)(FixedTrial(PARAMS))
    (call,) = spy
    assert call["lr_schedule"] is None and call["frame"]["lr"].tolist() == [3e-3]


def test_study_searches_the_chapter_space_and_custom_ranges(loaders):
    train_loader, val_loader = loaders
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # suggest_uniform/loguniform warn so
        study = create_study(seed=0)
        study.optimize(make_objective(train_loader, val_loader, epochs=1), n_trials=3)
    assert study.trials[0].distributions == {
        "neurons_per_layer": IntDistribution(16, 256),
        "hidden_layers": IntDistribution(1, 6),
        "learning_rate": FloatDistribution(1e-5, 1e-2, log=True),
    }

    study = create_study(seed=0)
    wide = make_objective(
        train_loader, val_loader, epochs=1, neurons=(1, 256), learning_rate=(1e-5, 100.0)
    )
    study.optimize(wide, n_trials=1)
    dist = study.trials[0].distributions
    assert dist["neurons_per_layer"] == IntDistribution(1, 256)
    assert dist["learning_rate"] == FloatDistribution(1e-5, 100.0, log=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epochs=0), "epochs"),
        (dict(epochs=2, neurons=(0, 8)), "above 0"),
        (dict(epochs=2, layers=(3, 1)), "low must not exceed high"),
        (dict(epochs=2, learning_rate=(0.0, 1.0)), "above 0"),
        (
            dict(epochs=2, build=mlp_search(), neurons=(1, 8)),
            "neurons shape the default MLP search",
        ),
        (dict(epochs=2, max_train_loss=0.0), "max_train_loss"),
    ],
)
def test_make_objective_rejects_bad_ranges(loaders, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_objective(*loaders, **kwargs)


def test_diverging_trial_is_pruned_with_its_reason_and_the_study_goes_on(loaders):
    train_loader, val_loader = loaders
    objective = make_objective(
        train_loader, val_loader, epochs=4, neurons=(1, 16), learning_rate=(1e-3, 1e6)
    )
    study = create_study(seed=0)
    study.enqueue_trial({"neurons_per_layer": 1, "hidden_layers": 1, "learning_rate": 1e6})
    study.enqueue_trial({"neurons_per_layer": 16, "hidden_layers": 1, "learning_rate": 1e-3})
    study.optimize(objective, n_trials=2)  # raises nothing
    bad, good = study.trials
    assert bad.state == TrialState.PRUNED and bad.user_attrs["stopped_by"] == "divergence"
    assert bad.user_attrs["stop_reason"].startswith("diverged: train loss ")
    assert bad.user_attrs["stop_reason"].split()[3] in ("nan", "inf")
    assert bad.user_attrs["epochs_trained"] < 4  # stopped after the epoch that diverged
    assert good.state == TrialState.COMPLETE and 0 <= good.value <= 1
    assert "stopped_by" not in good.user_attrs and "stop_reason" not in good.user_attrs


def test_a_finite_loss_above_max_train_loss_also_counts_as_diverged(loaders):
    """Width 1 with learning rate 100 stays finite here (AdamW's decay zeroes the weights)."""
    train_loader, val_loader = loaders
    params = {"neurons_per_layer": 1, "hidden_layers": 1, "learning_rate": 100.0}
    wide = dict(epochs=3, neurons=(1, 256), learning_rate=(1e-5, 100.0))
    study = create_study(seed=0)
    study.enqueue_trial(params)
    study.optimize(make_objective(train_loader, val_loader, **wide), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE  # finite: a (bad) result, not a failure

    study = create_study(seed=0)
    study.enqueue_trial(params)
    study.optimize(
        make_objective(train_loader, val_loader, max_train_loss=10.0, **wide), n_trials=1
    )
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED and trial.user_attrs["stopped_by"] == "divergence"
    assert trial.user_attrs["stop_reason"].startswith("diverged: train loss")
    assert trial.user_attrs["epochs_trained"] == 1


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


@pytest.mark.parametrize("prune", [False, True])
def test_pruning_reports_each_epoch_and_stops_only_when_asked(loaders, prune):
    study = create_study(seed=0, pruner=_AlwaysPrune())
    study.optimize(make_objective(*loaders, epochs=3, prune=prune), n_trials=1)
    (trial,) = study.trials
    if prune:
        assert trial.state == TrialState.PRUNED and trial.user_attrs["stopped_by"] == "pruner"
        assert trial.user_attrs["stop_reason"].endswith("after epoch 0 was below the pruner's bar")
        assert list(trial.intermediate_values) == [0] and trial.user_attrs["epochs_trained"] == 1
    else:
        assert trial.state == TrialState.COMPLETE and "stopped_by" not in trial.user_attrs
        assert list(trial.intermediate_values) == [0, 1, 2]
        assert trial.intermediate_values[2] == trial.value  # the score is the last epoch's


def test_seeded_sequential_study_is_reproducible(loaders):
    """12 trials: past the 10 random start-up trials, so TPE's own proposals are compared too."""

    def run(seed):
        study = create_study(seed=seed)
        study.optimize(make_objective(*loaders, epochs=1), n_trials=12)
        return [(t.params, t.value) for t in study.trials]

    first = run(0)
    assert run(0) == first
    assert [p for p, _ in run(1)] != [p for p, _ in first]


def build_cnn(trial, epochs):
    """A second kind of model: a small CNN whose pooling rounds are searched."""
    from idlmam.models import cnn

    channels = trial.suggest_int("channels", 2, 8)
    pool_rounds = trial.suggest_int("pool_rounds", 0, 2)
    learning_rate = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    return adamw_cosine(cnn(channels, 1, pool_rounds), learning_rate, epochs)


CNN_PARAMS = {"channels": 3, "pool_rounds": 1, "learning_rate": 2e-3}


def test_objective_trains_any_builder_like_the_run_it_describes(loaders, spy):
    """Oracle: the CNN run made by hand (seed 0, AdamW, the half cosine, seeded order)."""
    from idlmam.models import cnn
    from idlmam.train import accuracy, train_network
    from idlmam.utils import set_seed

    train_loader, val_loader = loaders
    next(iter(train_loader))  # move the loader's order on: the objective must reset it
    value = make_objective(train_loader, val_loader, epochs=2, build=build_cnn)(
        FixedTrial(CNN_PARAMS)
    )
    (call,) = spy
    assert isinstance(call["model"][0], torch.nn.Conv2d) and call["model"][0].out_channels == 3

    set_seed(0)
    model = cnn(3, 1, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    frame = train_network(
        model,
        torch.nn.CrossEntropyLoss(),
        ResidentLoader(train_loader.X, train_loader.y, 16, shuffle=True, seed=0),
        val_loader,
        score_funcs={"Accuracy": accuracy},
        epochs=2,
        optimizer=optimizer,
        lr_schedule=hand_schedule(optimizer, COSINE_2),
        disable_tqdm=True,
    )
    assert value == frame["val Accuracy"].iloc[-1]
    study = create_study(seed=0)
    study.optimize(make_objective(*loaders, epochs=1, build=build_cnn), n_trials=2)
    assert set(study.trials[0].distributions) == set(CNN_PARAMS)


def test_a_builder_that_returns_something_else_is_told_what_to_return(loaders):
    with pytest.raises(TypeError, match="callable"):
        make_objective(*loaders, epochs=1, build="mlp")
    objective = make_objective(*loaders, epochs=1, build=lambda trial, epochs: "a model")
    with pytest.raises(TypeError, match=r"must return \(model, optimizer, lr_schedule\)"):
        objective(FixedTrial({}))


# --------------------------------------------------------------------------- how trials ended


def test_trial_outcomes_tell_the_pruner_from_divergence(loaders):
    """A real study: one trial completes, one diverges, the pruner stops the third."""

    class PruneThird(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return trial.number == 2

    objective = make_objective(
        *loaders,
        epochs=2,
        prune=True,
        neurons=(1, 16),
        learning_rate=(1e-3, 1e6),
        max_train_loss=10.0,
    )
    study = create_study(seed=0, pruner=PruneThird())
    for lr in (1e-3, 1e6, 1e-3):
        study.enqueue_trial({"neurons_per_layer": 16, "hidden_layers": 1, "learning_rate": lr})
    study.optimize(objective, n_trials=3)
    # both stopped trials are PRUNED in Optuna's states; only one was stopped by the pruner
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.PRUNED,
    ]
    assert [trial_outcome(t) for t in study.trials] == ["complete", "diverged", "pruned"]
    assert trial_outcomes(study) == TrialOutcomes(
        complete=1, pruned=1, diverged=1, failed=0, running=0, waiting=0
    )
    assert [t.user_attrs.get("stopped_by") for t in study.trials] == [None, "divergence", "pruner"]
    frame = outcomes_frame(study)
    assert frame["outcome"].tolist() == ["complete", "diverged", "pruned"]
    assert frame["epochs_trained"].tolist() == [2, 1, 1]
    reasons = frame["stop_reason"].tolist()
    assert reasons[0] == "" and reasons[1].startswith("diverged") and "pruner" in reasons[2]


# validation accuracy per epoch of each trial of a fake search; "diverges": the run blows up in
# its first epoch, before it has a score. Under MedianPruner(n_startup_trials=2) (judging from
# epoch 0), worked out by hand:
FAKE_CURVES = [
    [0.5, 0.6, 0.7],  # 0: complete (no finished trial to compare with)
    "diverges",  # 1: diverged; it does not finish, so it does not count towards the 2 start-up
    [0.3, 0.4, 0.45],  # 2: complete, though poor: only one trial has finished yet
    [0.2, 0.3, 0.35],  # 3: pruned after epoch 0: 0.2 < median(0.5, 0.3) = 0.4
    [0.6, 0.7, 0.8],  # 4: complete: 0.6 > 0.4, then 0.7 > median(0.6, 0.4) = 0.5, then 0.8 > 0.575
    [0.45, 0.5, 0.55],  # 5: pruned after epoch 0: 0.45 < median(0.5, 0.3, 0.6) = 0.5
    [0.55, 0.58, 0.9],  # 6: pruned after epoch 1: its best, 0.58 < median(0.6, 0.4, 0.7) = 0.6
    "fails",  # 7: diverged, recorded as FAIL (the objective returned NaN) with stopped_by
]


def fake_objective(trial):
    """Reports a fixed curve per epoch, as make_objective does, and stops the way it would."""
    curve = FAKE_CURVES[trial.number]
    trial.suggest_float("x", 0, 1)  # a study trial has parameters; this one plays no role
    if isinstance(curve, str):
        trial.set_user_attr("stopped_by", "divergence")
        if curve == "fails":
            return float("nan")  # Optuna records a NaN value as a failed trial
        raise optuna.TrialPruned("diverged: train loss nan after epoch 0")
    for epoch, accuracy in enumerate(curve):
        trial.report(accuracy, epoch)
        if trial.should_prune():
            trial.set_user_attr("stopped_by", "pruner")
            raise optuna.TrialPruned()
    return curve[-1]


def test_the_median_pruner_and_divergence_are_counted_apart():
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(fake_objective, n_trials=len(FAKE_CURVES))
    P, C, F = TrialState.PRUNED, TrialState.COMPLETE, TrialState.FAIL
    # Optuna's own states: both kinds of stop are PRUNED (or FAIL), ...
    assert [t.state for t in study.trials] == [C, P, C, P, C, P, P, F]
    # ... the user attribute tells them apart
    assert [trial_outcome(t) for t in study.trials] == [
        "complete",
        "diverged",
        "complete",
        "pruned",
        "complete",
        "pruned",
        "pruned",
        "diverged",
    ]
    counts = trial_outcomes(study)
    assert counts == TrialOutcomes(complete=3, pruned=3, diverged=2, failed=0, running=0, waiting=0)
    assert counts.summary() == "pruned by the pruner: 3; diverged: 2; completed: 3"
    assert [len(t.intermediate_values) for t in study.trials] == [3, 0, 3, 1, 3, 1, 2, 0]


def test_a_pruner_stop_without_the_attribute_is_still_the_pruners():
    """An objective of one's own that only raises TrialPruned: Optuna's state decides."""

    def objective(trial):
        trial.report(0.1, 0)
        raise optuna.TrialPruned()

    study = optuna.create_study()
    study.optimize(objective, n_trials=1)
    assert trial_outcomes(study).pruned == 1 and trial_outcome(study.trials[0]) == "pruned"


def test_the_chapter_objective_is_pruned_by_a_real_median_pruner(loaders):
    """make_objective and MedianPruner: a run that cannot learn (lr 0) falls below the median."""

    def build(trial, epochs):
        from idlmam.models import mlp

        lr = trial.suggest_float("learning_rate", 0.0, 1e6)
        model = mlp(hidden=16, layers=1)
        return model, torch.optim.SGD(model.parameters(), lr=lr), None

    objective = make_objective(*loaders, epochs=3, build=build, prune=True, max_train_loss=10.0)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    study = create_study(seed=0, pruner=pruner)
    for lr in (0.5, 0.5, 1e6, 0.0):  # two that learn, one that blows up, one that cannot learn
        study.enqueue_trial({"learning_rate": lr})
    study.optimize(objective, n_trials=4)
    assert [trial_outcome(t) for t in study.trials] == [
        "complete",
        "complete",
        "diverged",
        "pruned",
    ]
    assert trial_outcomes(study).summary() == "pruned by the pruner: 1; diverged: 1; completed: 2"
    assert study.trials[3].user_attrs["epochs_trained"] == 1  # stopped after its first epoch


def test_trial_outcomes_count_every_state_once():
    from optuna.distributions import FloatDistribution as F
    from optuna.trial import create_trial

    study = optuna.create_study()
    made = [
        (TrialState.COMPLETE, {}),
        (TrialState.COMPLETE, {}),
        (TrialState.PRUNED, {"stopped_by": "pruner"}),
        (TrialState.PRUNED, {"stopped_by": "divergence"}),
        (TrialState.FAIL, {"stopped_by": "divergence"}),
        (TrialState.FAIL, {}),
        (TrialState.PRUNED, {"stop_reason": "diverged: a reason alone does not decide"}),
        (TrialState.WAITING, {}),
    ]
    study.ask()  # a running one (asked first: ask() would run a waiting trial)
    for state, attrs in made:
        study.add_trial(
            create_trial(
                state=state,
                user_attrs=attrs,
                params={"x": 0.5},
                distributions={"x": F(0, 1)},
                value=0.5 if state == TrialState.COMPLETE else None,
            )
        )
    counts = trial_outcomes(study)
    assert counts == TrialOutcomes(complete=2, pruned=2, diverged=2, failed=1, running=1, waiting=1)
    assert counts.total == len(study.trials) == 9
    assert counts.summary() == (
        "pruned by the pruner: 2; diverged: 2; completed: 2; failed: 1; running: 1; waiting: 1"
    )
    assert trial_outcomes(optuna.create_study()).total == 0
    assert outcomes_frame(optuna.create_study()).empty


# --------------------------------------------------------------------------- data


def test_chapter_loaders_split_the_training_set_and_never_load_the_test_set(
    monkeypatch, fashion_root
):
    import idlmam.data
    from idlmam.data import resident_loader, split, subset

    asked = []
    real = idlmam.data.fashion_mnist

    def training_only(train=True, root=None):
        asked.append(train)
        if not train:
            raise AssertionError("the search must not load the test set")
        return real(train=True, root=root)

    monkeypatch.setattr(idlmam.data, "fashion_mnist", training_only)
    train_loader, val_loader = chapter_loaders("quick", train_size=1000)
    assert asked == [True]
    assert (train_loader.n_examples, val_loader.n_examples) == (800, 200)
    assert train_loader.shuffle and not val_loader.shuffle
    # oracle: the documented subset and split of the training set, made by hand
    a, b = split(subset(real(train=True), 1000, seed=0), (0.8, 0.2), seed=0)
    assert torch.equal(train_loader.X, resident_loader(a).X)
    assert torch.equal(val_loader.y, resident_loader(b).y)
    assert chapter_loaders("quick", train_size=1000, seed=1)[1].y.tolist() != val_loader.y.tolist()


def test_chapter_loaders_size_comes_from_the_budget(monkeypatch):
    import idlmam.data
    from idlmam.budget import get_budget

    seen = []
    monkeypatch.setattr(idlmam.data, "subset", lambda data, n, seed=0: seen.append(n) or data[:50])
    monkeypatch.setattr(
        idlmam.data,
        "fashion_mnist",
        lambda train=True, root=None: [(torch.zeros(1, 28, 28), 0)] * 100,
    )
    chapter_loaders("quick")
    chapter_loaders("full")
    chapter_loaders("quick", train_size=500)
    assert seen == [
        get_budget("quick").studies.train_size,
        get_budget("full").studies.train_size,
        500,
    ]
    assert seen[0] < 60_000 and seen[1] is None  # quick draws a subset, full uses everything
