"""Tests of idlmam.tune.samplers (samplers and pruners by name) and idlmam.tune.compare
(best-so-far curves, epochs spent), on cheap toy objectives: no training."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from packaging.version import Version

from idlmam.tune import (
    PRUNERS,
    SAMPLERS,
    best_so_far,
    epochs_spent,
    make_pruner,
    make_sampler,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

EPOCHS = 8
# the model-based samplers start after 3 random trials, so that 10 trials exercise the model
STARTUP = {"tpe": {"n_startup_trials": 3}, "gp": {"n_startup_trials": 3}}


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3, 3)
    y = trial.suggest_float("y", -3, 3)
    return (x - 1) ** 2 + (y + 0.5) ** 2


def sampled(name: str, seed: int, n_trials: int = 10, **kwargs) -> list[dict]:
    study = optuna.create_study(
        sampler=make_sampler(name, seed, **{**STARTUP.get(name, {}), **kwargs})
    )
    study.optimize(quadratic, n_trials=n_trials)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_seeded_sampler_proposes_the_same_trials_again_and_another_seed_others(name):
    with warnings.catch_warnings():
        # no experimental or deprecation noise on a page (on Optuna 4.9 or 5)
        for noise in (optuna.exceptions.ExperimentalWarning, FutureWarning, DeprecationWarning):
            warnings.simplefilter("error", noise)
        first = sampled(name, seed=0)
    assert sampled(name, seed=0) == first
    other = sampled(name, seed=1)
    assert other != first
    # after the random start, the model's proposals differ too, not only the first draws
    assert other[-1] != first[-1]


def test_the_samplers_are_the_classes_they_are_named_after():
    classes = {name: type(make_sampler(name)).__name__ for name in SAMPLERS}
    assert classes == {
        "random": "RandomSampler",
        "tpe": "TPESampler",
        "gp": "GPSampler",
        "cmaes": "CmaEsSampler",
        "qmc": "QMCSampler",
    }
    assert make_sampler("TPE", 0, n_startup_trials=4)._n_startup_trials == 4


def test_tpe_is_optuna_5s_default_spelled_out():
    tpe = make_sampler("tpe", 0)
    assert (tpe._multivariate, tpe._constant_liar) == (True, True)
    assert make_sampler("tpe", 0, constant_liar=False)._constant_liar is False
    if Version(optuna.__version__) >= Version("5.0"):
        # the same proposals as Optuna's own default TPESampler, model phase included
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3))
        study.optimize(quadratic, n_trials=10)
        assert [t.params for t in study.trials] == sampled("tpe", seed=0)


def test_qmc_is_a_scrambled_sobol_sequence_after_the_first_random_trial():
    qmc = make_sampler("qmc", 0)
    assert (qmc._qmc_type, qmc._scramble, qmc._seed) == ("sobol", True, 0)
    # the first trial is drawn by a RandomSampler with the same seed: random search's first trial
    first = sampled("qmc", seed=0)
    assert first[0] == sampled("random", seed=0)[0]
    # then the scrambled Sobol points, in order: trial k is point k - 1 of the seeded sequence
    from scipy.stats import qmc

    points = qmc.Sobol(2, seed=0, scramble=True).random(8)
    proposed = np.array([[p["x"], p["y"]] for p in first[1:9]])
    np.testing.assert_allclose(proposed, 6 * points - 3, rtol=0, atol=1e-12)
    # unscrambled, every seed would give the same points: the seeds would not repeat a study
    assert sampled("qmc", seed=0, scramble=False)[1:] == sampled("qmc", seed=1, scramble=False)[1:]


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: make_sampler("grid"),
            "unknown sampler 'grid': choose one of random, tpe, gp, cmaes, qmc",
        ),
        (lambda: make_sampler(None), "unknown sampler None"),
        (lambda: make_sampler("tpe", seed=1.5), "seed must be a whole number"),
        (
            lambda: make_pruner("patient"),
            "unknown pruner 'patient': choose one of none, median, halving, hyperband, wilcoxon",
        ),
        (lambda: make_pruner("median", reports="folds"), "choose one of epochs, instances"),
        (lambda: make_pruner("wilcoxon"), "one score per instance.*reports='instances'"),
        (lambda: make_pruner("median", reports="instances"), "epoch by epoch.*wilcoxon"),
    ],
)
def test_bad_names_and_mismatched_reports_are_refused_with_the_valid_choices(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_none_pruner_takes_either_kind_of_report_and_no_arguments():
    assert isinstance(make_pruner("none", reports="instances"), optuna.pruners.NopPruner)
    with pytest.raises(TypeError, match="takes no arguments"):
        make_pruner("none", n_startup_trials=3)


# --------------------------------------------------------------------------- pruners


def learning_curve(trial: optuna.Trial) -> float:
    """A synthetic learning curve: accuracy rises towards a ceiling set by x (best at x = 0.7)."""
    x = trial.suggest_float("x", 0, 1)
    ceiling = 0.9 - (x - 0.7) ** 2
    for epoch in range(1, EPOCHS + 1):
        accuracy = ceiling * (1 - math.exp(-epoch / 2))
        trial.report(accuracy, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return accuracy


INSTANCES = np.linspace(-0.05, 0.05, 12)  # the instances' own difficulty, the same every trial


def per_instance(trial: optuna.Trial) -> float:
    """One score per instance (step = its id), in a shuffled order, as WilcoxonPruner expects."""
    x = trial.suggest_float("x", 0, 1)
    order = np.random.default_rng(trial.number).permutation(len(INSTANCES))
    scores = []
    for instance in order:
        scores.append(0.9 - (x - 0.7) ** 2 + INSTANCES[instance])
        trial.report(scores[-1], int(instance))
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(np.mean(scores))


PRUNER_CASES = {
    "none": {},
    "median": {"n_startup_trials": 3},
    "halving": {},
    "hyperband": {},
    "wilcoxon": {"p_threshold": 0.1},
}


def pruned(name: str, n_trials: int = 20, enqueue: tuple[float, ...] = ()) -> list[int]:
    reports = "instances" if name == "wilcoxon" else "epochs"
    study = optuna.create_study(
        study_name="fixed",  # hyperband's brackets hash the study's name
        direction="maximize",
        sampler=make_sampler("random", 0),
        pruner=make_pruner(name, reports=reports, **PRUNER_CASES[name]),
    )
    for x in enqueue:
        study.enqueue_trial({"x": x})
    study.optimize(per_instance if name == "wilcoxon" else learning_curve, n_trials=n_trials)
    return [t.number for t in study.trials if t.state == TrialState.PRUNED]


@pytest.mark.parametrize("name", PRUNERS)
def test_each_pruner_prunes_the_same_trials_again(name):
    first = pruned(name)
    assert pruned(name) == first
    if name == "none":
        assert first == []
    else:  # 20 random trials on this curve: each pruner stops some, never the first one
        assert 0 < len(first) < 20 and 0 not in first, first


def test_the_median_pruner_stops_the_trials_below_the_median():
    # three good trials set the median at every epoch; the two poor ones fall below it at once
    assert pruned("median", n_trials=5, enqueue=(0.7, 0.6, 0.8, 0.0, 0.1)) == [3, 4]
    assert pruned("median", n_trials=5, enqueue=(0.0, 0.1, 0.2, 0.7, 0.65)) == []


def test_the_wilcoxon_pruner_stops_a_trial_worse_on_the_same_instances():
    # x = 0.69 scores 0.0001 below the best on every instance, far less than the instances
    # differ among themselves (0.1), yet paired instance by instance it is worse every time:
    # pruned. A trial as good as the best (x = 0.7 again) runs to the end.
    assert pruned("wilcoxon", n_trials=4, enqueue=(0.7, 0.1, 0.69, 0.7)) == [1, 2]


# --------------------------------------------------------------------------- comparing studies


def study_of(direction: str, trials: list[tuple]) -> optuna.Study:
    """A study from (state, value, intermediate values, user attributes) tuples, in order."""
    study = optuna.create_study(direction=direction)
    for state, value, curve, attrs in trials:
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                intermediate_values=dict(enumerate(curve, start=1)),
                user_attrs=attrs,
            )
        )
    return study


C, P, F = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL
TRIALS = [
    (C, 0.50, [0.3, 0.4, 0.5], {}),  # 0
    (P, None, [0.1], {}),  # 1: pruned after 1 epoch
    (C, 0.40, [0.2, 0.3, 0.4], {}),  # 2
    (F, None, [0.2, 0.2], {}),  # 3: failed: no value, its epochs not counted by default
    (C, 0.80, [0.5, 0.7, 0.8], {}),  # 4
    (P, None, [0.3, 0.35], {"epochs_trained": 3}),  # 5: diverged in epoch 3, not reported
    (C, 0.60, [0.4, 0.5, 0.6], {}),  # 6
]


def test_best_so_far_is_the_running_best_of_the_completed_trials():
    best = best_so_far(study_of("maximize", TRIALS))
    assert best.index.tolist() == [0, 2, 4, 6] and best.index.name == "trial"
    assert best.tolist() == [0.5, 0.5, 0.8, 0.8] and best.name == "best value"
    lowest = best_so_far(study_of("minimize", TRIALS))
    assert lowest.tolist() == [0.5, 0.4, 0.4, 0.4]
    assert best_so_far(optuna.create_study()).empty


def test_best_so_far_needs_one_objective():
    with pytest.raises(ValueError, match="single-objective.*2 objectives"):
        best_so_far(optuna.create_study(directions=["maximize", "minimize"]))


def test_epochs_spent_adds_every_trials_epochs_pruned_ones_included():
    study = study_of("maximize", TRIALS)
    # 3 + 1 + 3 + 3 + 3 (the diverged trial's own count) + 3; the failed trial's 2 left out
    assert epochs_spent(study) == 16
    assert epochs_spent(study, states=[F]) == 2
    assert epochs_spent(study, states=[C]) == 12
    assert epochs_spent(optuna.create_study()) == 0


def test_a_pruner_spends_fewer_epochs_than_none():
    def spent(name):
        study = optuna.create_study(
            study_name="fixed",
            direction="maximize",
            sampler=make_sampler("random", 0),
            pruner=make_pruner(name, **PRUNER_CASES[name]),
        )
        study.optimize(learning_curve, n_trials=20)
        return epochs_spent(study)

    assert spent("none") == 20 * EPOCHS
    assert spent("median") < 20 * EPOCHS
