"""Tests of idlmam.tune.folds: k-fold loaders and the cross-validated objective, on tiny data."""

from __future__ import annotations

import warnings

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution
from optuna.trial import FixedTrial, TrialState, create_trial

from idlmam.models import mlp
from idlmam.tune import (
    BY_DIVERGENCE,
    FOLDS_SCORED,
    STOPPED_BY,
    adamw_cosine,
    kfold_loaders,
    make_fold_objective,
    make_pruner,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

K = 5


def build(trial, epochs):
    return adamw_cosine(
        mlp(hidden=8, layers=1), trial.suggest_float("lr", 1e-9, 1e-1, log=True), epochs
    )


def test_folds_partition_the_examples_and_train_on_the_rest(tiny_data):
    X, y = tiny_data
    index = torch.arange(len(X))
    pairs = kfold_loaders(X, index, K, seed=3)  # labels = row numbers, to follow the rows
    validated = [val.y.tolist() for _, val in pairs]
    assert sorted(sum(validated, [])) == list(range(len(X)))  # each row validated on once
    assert [len(v) for v in validated] == [20] * K
    for (train, _), rows in zip(pairs, validated):
        assert set(train.y.tolist()) == set(range(len(X))) - set(rows)
        assert torch.equal(train.X, X[train.y])  # the inputs travel with their labels
    assert [v.y.tolist() for _, v in kfold_loaders(X, index, K, seed=3)] == validated
    assert [v.y.tolist() for _, v in kfold_loaders(X, index, K, seed=4)] != validated
    sizes = [v.n_examples for _, v in kfold_loaders(X[:7], y[:7], 3)]
    assert sorted(sizes) == [2, 2, 3]


@pytest.mark.parametrize("folds", [1, 0, 101, 2.5, True])
def test_bad_fold_counts_are_refused(tiny_data, folds):
    X, y = tiny_data
    with pytest.raises(ValueError, match="folds must be a whole number from 2 to 100"):
        kfold_loaders(X, y, folds)


def test_the_objective_is_the_mean_of_one_seeded_run_per_fold(tiny_data, spy):
    X, y = tiny_data
    pairs = kfold_loaders(X, y, K)
    study = optuna.create_study(direction="maximize")
    study.optimize(make_fold_objective(pairs, epochs=2, build=build), n_trials=1)
    trial = study.trials[0]
    assert len(spy) == K
    scores = {}
    for call in spy:  # each fold trained on its own training loader, scored on its own fold
        (i,) = [i for i, (train, _) in enumerate(pairs) if train is call["train_loader"]]
        assert call["val_loader"] is pairs[i][1]
        scores[i] = float(call["frame"]["val Accuracy"].iloc[-1])
    assert trial.intermediate_values == scores  # step = the fold's id
    assert trial.value == pytest.approx(sum(scores.values()) / K)
    assert trial.user_attrs["epochs_trained"] == 2 * K and trial.user_attrs[FOLDS_SCORED] == K
    # a fold's run is the seeded run: the same network on the same fold scores the same
    again = make_fold_objective(pairs[:2], epochs=2, build=build, shuffle=False)
    fixed = FixedTrial({"lr": trial.params["lr"]})
    assert again(fixed) == pytest.approx((scores[0] + scores[1]) / 2)


def test_folds_run_in_an_order_drawn_from_the_seed_and_the_trial_number(tiny_data, spy):
    X, y = tiny_data
    pairs = kfold_loaders(X, y, K)
    trains = [train for train, _ in pairs]

    def order(number, shuffle=True):
        spy.clear()
        make_fold_objective(pairs, epochs=1, build=build, shuffle=shuffle)(
            FixedTrial({"lr": 1e-3}, number=number)
        )
        return [trains.index(call["train_loader"]) for call in spy]

    assert order(0, shuffle=False) == list(range(K))
    assert sorted(order(0)) == list(range(K))
    assert order(0) == order(0)
    assert len({tuple(order(n)) for n in range(6)}) > 1  # not the same order in every trial


def test_the_wilcoxon_pruner_stops_a_trial_worse_on_every_fold_after_the_fourth(tiny_data):
    # the best trial scored 1.0 on every fold; a network that cannot learn scores less on each.
    # Signed-rank test, all differences negative: p = 1/2^n, 0.125 after 3 folds (kept at
    # p_threshold 0.1), 0.0625 after 4: stopped there, the fifth fold never trained.
    X, y = tiny_data
    pairs = kfold_loaders(X, y, K)

    def study_with_a_perfect_trial(pruner):
        study = optuna.create_study(direction="maximize", pruner=pruner)
        study.add_trial(
            create_trial(
                value=1.0,
                params={"lr": 1e-3},
                distributions={"lr": FloatDistribution(1e-9, 1e-1, log=True)},
                intermediate_values={i: 1.0 for i in range(K)},
            )
        )
        study.enqueue_trial({"lr": 1e-9})
        return study

    for prune, folds in ((True, 4), (False, K)):
        study = study_with_a_perfect_trial(make_pruner("wilcoxon", reports="instances"))
        study.optimize(make_fold_objective(pairs, epochs=1, build=build, prune=prune), n_trials=1)
        stopped = study.trials[1]
        assert stopped.state == TrialState.COMPLETE  # the mean so far, as Optuna advises
        assert stopped.user_attrs[FOLDS_SCORED] == folds == len(stopped.intermediate_values)
        assert stopped.user_attrs["epochs_trained"] == folds
        mean = sum(stopped.intermediate_values.values()) / folds
        assert stopped.value == pytest.approx(mean) and stopped.value < 1.0


def test_a_fold_that_diverges_ends_the_trial_as_pruned_by_divergence(tiny_data):
    X, y = tiny_data

    def broken(trial, epochs):
        model, optimizer, schedule = build(trial, epochs)
        with torch.no_grad():
            model[-1].weight.fill_(float("nan"))  # every output NaN: the loss too
        return model, optimizer, schedule

    study = optuna.create_study(direction="maximize")
    objective = make_fold_objective(kfold_loaders(X, y, K), epochs=3, build=broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the DivergenceWarning stays inside the objective
        study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs[STOPPED_BY] == BY_DIVERGENCE
    assert trial.user_attrs["epochs_trained"] == 1 and trial.user_attrs[FOLDS_SCORED] == 0


def test_bad_arguments_are_refused(tiny_data):
    X, y = tiny_data
    pairs = kfold_loaders(X, y, K)
    with pytest.raises(ValueError, match="at least 2 folds"):
        make_fold_objective(pairs[:1], epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        make_fold_objective(pairs, epochs=0)
