"""Tests of idlmam.tune.compare's curves over several studies and against the epochs spent:
hand-built studies, values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from idlmam.tune import best_by_epochs, best_so_far_band, epochs_spent, savings_sentence
from idlmam.tune.compare import best_by_epochs_band, best_within, stop_at_epochs

optuna.logging.set_verbosity(optuna.logging.WARNING)

C, P, F = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL


def study_of(trials: list[tuple], direction: str = "maximize") -> optuna.Study:
    """A study from (state, value, epochs reported, user attributes) tuples, in order."""
    study = optuna.create_study(direction=direction)
    for state, value, epochs, attrs in trials:
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                intermediate_values={step: 0.1 for step in range(epochs)},
                user_attrs=attrs,
            )
        )
    return study


def test_band_is_the_mean_and_t_interval_of_the_carried_forward_curves():
    a = study_of([(C, 0.2, 1, {}), (P, None, 1, {}), (C, 0.8, 1, {})])  # best: .2 .2 .8
    b = study_of([(C, 0.4, 1, {}), (C, 0.3, 1, {}), (C, 0.5, 1, {})])  # best: .4 .4 .5
    band = best_so_far_band({"seed 0": a, "seed 1": b})
    assert band.index.name == "trial" and band.index.tolist() == [0, 1, 2]
    assert band["studies"].tolist() == [2, 2, 2]
    assert band["mean"].tolist() == pytest.approx([0.3, 0.3, 0.65])
    # two values: half-width = t(0.975, 1) * sd / sqrt(2) = 12.706 * |a - b| / 2
    half = 12.7062047 * abs(0.8 - 0.5) / 2
    assert band.loc[2, "low"] == pytest.approx(0.65 - half)
    assert band.loc[2, "high"] == pytest.approx(0.65 + half)


def test_band_counts_only_the_studies_that_have_a_value():
    late = study_of([(P, None, 1, {}), (C, 0.6, 1, {}), (C, 0.7, 1, {})])  # nothing at trial 0
    short = study_of([(C, 0.5, 1, {})])  # ran one trial: lends no value to trials 1 and 2
    band = best_so_far_band([late, short])
    assert band["studies"].tolist() == [1, 1, 1]
    assert band["mean"].tolist() == pytest.approx([0.5, 0.6, 0.7])
    assert band[["low", "high"]].isna().all().all()  # one value: no interval


def test_band_follows_the_direction_and_refuses_mixed_or_none():
    low = study_of([(C, 0.5, 1, {}), (C, 0.3, 1, {}), (C, 0.4, 1, {})], "minimize")
    assert best_so_far_band([low])["mean"].tolist() == pytest.approx([0.5, 0.3, 0.3])
    with pytest.raises(ValueError, match="different directions"):
        best_so_far_band([low, study_of([(C, 0.5, 1, {})])])
    with pytest.raises(ValueError, match="at least one study"):
        best_so_far_band([])


def test_best_by_epochs_adds_up_the_epochs_and_keeps_the_running_best():
    study = study_of(
        [
            (P, None, 1, {}),  # pruned after 1 epoch: no value yet
            (C, 0.5, 3, {}),
            (F, None, 2, {}),  # failed: not counted by default
            (P, None, 2, {"epochs_trained": 3}),  # diverged in an epoch it did not report
            (C, 0.4, 3, {}),
            (C, 0.9, 3, {}),
        ]
    )
    curve = best_by_epochs(study)
    assert curve["trial"].tolist() == [0, 1, 3, 4, 5]
    assert curve["epochs"].tolist() == [1, 4, 7, 10, 13]
    assert curve["epochs"].iloc[-1] == epochs_spent(study)
    assert math.isnan(curve["best value"].iloc[0])
    assert curve["best value"].tolist()[1:] == [0.5, 0.5, 0.5, 0.9]
    lowest = best_by_epochs(
        study_of([(C, 0.5, 2, {}), (C, 0.4, 2, {}), (C, 0.6, 2, {})], "minimize")
    )
    assert lowest["best value"].tolist() == [0.5, 0.4, 0.4]
    with_failed = best_by_epochs(study, states=[C, P, F])
    assert with_failed["epochs"].iloc[-1] == 15


def test_best_by_epochs_of_an_empty_study_and_of_several_objectives():
    assert best_by_epochs(optuna.create_study()).empty
    with pytest.raises(ValueError, match="single-objective"):
        best_by_epochs(optuna.create_study(directions=["maximize", "minimize"]))


def frame_of(rows: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """Per-study rows: run -> [(epochs spent, best accuracy) for seeds 0, 1, ...]."""
    return pd.DataFrame(
        [
            {"run": run, "seed": seed, "epoch": 0, "epochs spent": e, "best accuracy": a}
            for run, studies in rows.items()
            for seed, (e, a) in enumerate(studies)
        ]
    )


T2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (3 paired studies)


def test_savings_sentence_states_both_differences_with_their_paired_intervals():
    frame = frame_of(
        {
            "none": [(70, 0.80), (72, 0.70), (68, 0.90)],
            "halving": [(40, 0.78), (44, 0.68), (42, 0.89)],  # saved 30, 28, 26; lost 2, 2, 1
        }
    )
    # epochs: mean -28, sd 2 -> 28 ± T2*2/sqrt(3) = 4.97; 28 of 70 = 40%
    # accuracy: -2, -2, -1 points: mean -1.67, sd 0.577 -> ± 1.43: below, beyond the noise
    half = T2 * np.std([-2, -2, -1], ddof=1) / math.sqrt(3)
    assert savings_sentence(frame, "halving", "none") == (
        f"- **Halving** spent 28 ± 5 epochs fewer than none (40% of its 70); its best accuracy "
        f"was 1.7 ± {half:.1f} points below none's."
    )


def test_savings_sentence_says_when_a_difference_is_noise_or_nothing():
    frame = frame_of(
        {
            "none": [(70, 0.80), (72, 0.70), (68, 0.90)],
            "median": [(40, 0.80), (72, 0.70), (68, 0.90)],  # saved 30, 0, 0: same bests
            "wide": [(70, 0.85), (72, 0.65), (68, 0.90)],  # +5, -5, 0 points
        }
    )
    median = savings_sentence(frame, "median", "none")
    assert median.startswith("- **Median** spent 10 ± 43 epochs fewer than none (14% of its 70), ")
    assert (
        "within the noise of 3 studies; its best accuracy was the same as none's in every" in median
    )
    wide = savings_sentence(frame, "wide", "none")
    assert "spent 0 ± 0 epochs more than none (0% of its 70), within the noise" in wide
    assert wide.endswith("was +0.0 ± 12.4 points against none's, within the noise of 3 studies.")


def test_savings_sentence_with_one_study_claims_no_interval():
    frame = frame_of({"none": [(70, 0.8)], "median": [(50, 0.8)]})
    sentence = savings_sentence(frame, "median", "none")
    assert "with 1 study, no interval" in sentence and "within the noise" not in sentence
    with pytest.raises(ValueError, match="not in the frame"):
        savings_sentence(frame, "hyperband", "none")


def test_savings_sentence_capitalises_the_run_that_starts_it():
    frame = frame_of(
        {
            "no pruning": [(70, 0.80), (72, 0.70), (68, 0.90)],
            "successive halving": [(40, 0.80), (44, 0.70), (42, 0.90)],
            "Hyperband": [(50, 0.80), (50, 0.70), (50, 0.90)],
        }
    )
    halving = savings_sentence(frame, "successive halving", "no pruning")
    assert halving.startswith("- **Successive halving** spent 28 ± 5 epochs fewer than no pruning")
    assert halving.endswith("the same as no pruning's in every study.")  # the reference as given
    assert savings_sentence(frame, "Hyperband", "no pruning").startswith("- **Hyperband** spent")


def epochs_objective(epochs_of_trial: list[int], values: list[float]):
    """An objective whose trial ``k`` reports ``epochs_of_trial[k]`` epochs, then returns
    ``values[k]`` (prune it early by giving it fewer epochs: the count is what matters here)."""

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        for epoch in range(epochs_of_trial[trial.number]):
            trial.report(0.1, epoch)
        return values[trial.number]

    return objective


def test_stop_at_epochs_stops_once_the_budget_is_spent_and_counts_the_overshoot():
    # trials of 3, 1, 4, 2, ... epochs: 3, 4, 8 spent after three trials; a budget of 6 is
    # crossed by the third, which runs to its end: 2 epochs over, counted
    study = optuna.create_study(direction="maximize")
    objective = epochs_objective([3, 1, 4, 2, 5, 5], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    study.optimize(objective, n_trials=6, callbacks=[stop_at_epochs(6)])
    assert len(study.trials) == 3 and epochs_spent(study) == 8
    # exactly on the budget: no overshoot, no further trial
    exact = optuna.create_study()
    exact.optimize(
        epochs_objective([2] * 10, [0.0] * 10), n_trials=10, callbacks=[stop_at_epochs(6)]
    )
    assert len(exact.trials) == 3 and epochs_spent(exact) == 6
    # n_trials still caps a study that has not spent its budget
    short = optuna.create_study()
    short.optimize(
        epochs_objective([1] * 10, [0.0] * 10), n_trials=4, callbacks=[stop_at_epochs(6)]
    )
    assert len(short.trials) == 4
    assert repr(stop_at_epochs(72)) == "stop_at_epochs(72)"
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="at least 1"):
            stop_at_epochs(bad)


def test_stop_at_epochs_counts_pruned_trials_and_not_failed_ones_unless_asked():
    spent = study_of([(P, None, 2, {}), (F, None, 3, {}), (C, 0.5, 1, {})])
    stops = []
    spent.stop = lambda: stops.append(True)  # record the call instead of stopping
    stop_at_epochs(3)(spent, spent.trials[-1])  # 2 + 1: the failed trial's 3 not counted
    assert stops == [True]
    stop_at_epochs(4)(spent, spent.trials[-1])
    assert stops == [True]  # 3 < 4: goes on
    stop_at_epochs(4, states=[C, P, F])(spent, spent.trials[-1])  # 6 with the failed one
    assert stops == [True, True]


def test_best_within_leaves_out_the_trial_that_crossed_the_budget():
    study = study_of([(C, 0.5, 3, {}), (P, None, 1, {}), (C, 0.4, 2, {}), (C, 0.9, 3, {})])
    # epochs spent after each trial: 3, 4, 6, 9
    assert math.isnan(best_within(study, 2))  # nothing finished within 2 epochs
    assert [best_within(study, e) for e in (3, 5, 6, 8, 9, 100)] == [0.5, 0.5, 0.5, 0.5, 0.9, 0.9]
    low = study_of([(C, 0.5, 2, {}), (C, 0.3, 2, {})], "minimize")
    assert (best_within(low, 3), best_within(low, 4)) == (0.5, 0.3)


def test_best_by_epochs_band_is_the_mean_and_t_interval_at_each_epoch():
    a = study_of([(C, 0.2, 2, {}), (P, None, 1, {}), (C, 0.8, 2, {})])  # epochs 2, 3, 5
    b = study_of([(C, 0.4, 1, {}), (C, 0.3, 3, {}), (C, 0.6, 1, {})])  # epochs 1, 4, 5
    band = best_by_epochs_band({"seed 0": a, "seed 1": b}, 6)
    assert band.index.name == "epochs" and band.index.tolist() == [1, 2, 3, 4, 5, 6]
    assert band["studies"].tolist() == [1, 2, 2, 2, 2, 2]
    # a: nan .2 .2 .2 .8 .8; b: .4 .4 .4 .4 .6 .6
    assert band["mean"].tolist() == pytest.approx([0.4, 0.3, 0.3, 0.3, 0.7, 0.7])
    assert band[["low", "high"]].iloc[0].isna().all()  # one study: no interval
    half = 12.7062047 * abs(0.8 - 0.6) / 2
    assert (band.loc[5, "low"], band.loc[5, "high"]) == pytest.approx((0.7 - half, 0.7 + half))
    # each study's curve at e is best_within(e)
    for e in band.index:
        values = [v for v in (best_within(a, e), best_within(b, e)) if not math.isnan(v)]
        assert band.loc[e, "mean"] == pytest.approx(np.mean(values))
    with pytest.raises(ValueError, match="at least one study"):
        best_by_epochs_band([], 3)
    with pytest.raises(ValueError, match="different directions"):
        best_by_epochs_band([a, study_of([(C, 0.5, 1, {})], "minimize")], 3)
