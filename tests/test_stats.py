"""The comparison helper against intervals computed by hand (t quantiles from tables)."""

import math

import pandas as pd
import pytest

from idlmam.stats import compare, compare_pairs, final_scores, t_interval


def frame_of(scores: dict[str, list[float]], epochs: int = 2) -> pd.DataFrame:
    """A long frame: every run over seeds 0..n-1, its final score on the last epoch."""
    rows = []
    for run, values in scores.items():
        for seed, value in enumerate(values):
            for epoch in range(epochs):
                score = value if epoch == epochs - 1 else 0.1  # only the last epoch counts
                rows.append({"run": run, "seed": seed, "epoch": epoch, "test Accuracy": score})
    return pd.DataFrame(rows)


def test_final_scores_mean_and_t_interval_by_hand():
    table = final_scores(frame_of({"A": [0.80, 0.82, 0.84], "B": [0.70, 0.71, 0.72]}))
    assert list(table.index) == ["A", "B"]  # best first
    a = table.loc["A"]
    # mean 0.82, sd 0.02, t(0.975, 2) = 4.302653: half width 4.302653 * 0.02 / sqrt(3)
    assert a["seeds"] == 3 and a["mean"] == pytest.approx(0.82)
    assert a["std"] == pytest.approx(0.02)
    assert a["half_width"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-6)
    assert a["low"] == pytest.approx(0.82 - 0.049683, abs=1e-6)


def test_paired_difference_within_the_noise_by_hand():
    frame = frame_of({"A": [0.80, 0.82, 0.84], "B": [0.78, 0.79, 0.83]})
    result = compare(frame, "A", "B")
    # per-seed differences 0.02, 0.03, 0.01: mean 0.02, sd 0.01, half width 4.302653*0.01/sqrt(3)
    assert result.paired and result.seeds == 3
    assert result.difference == pytest.approx(0.02)
    assert result.half_width == pytest.approx(0.024841, abs=1e-6)
    assert not result.differs
    assert result.sentence() == (
        "A and B end within the noise of 3 seeds (difference +2.0 ± 2.5 points)"
    )


def test_a_clear_difference_says_which_side_by_hand():
    frame = frame_of({"SGD": [0.70, 0.71, 0.72], "AdamW": [0.80, 0.80, 0.81]})
    result = compare(frame, "SGD", "AdamW")
    # differences -0.10, -0.09, -0.09: mean -0.09333, sd 0.005774, half width 0.014343
    assert result.difference == pytest.approx(-0.093333, abs=1e-6)
    assert result.half_width == pytest.approx(0.014343, abs=1e-6)
    assert result.differs
    assert result.sentence() == "SGD ends 9.3 ± 1.4 points below AdamW over 3 seeds"


def test_unpaired_runs_use_welch_by_hand():
    frame = frame_of({"A": [0.80, 0.82, 0.84], "B": [0.70, 0.72]})
    frame.loc[frame["run"] == "B", "seed"] += 10  # other seeds: not paired
    result = compare(frame, "A", "B")
    # Welch by hand: var_a/3 = 0.0004/3, var_b/2 = 0.0002/2, dof = 2.882; the t quantile lies
    # between t(0.975, 3) = 3.182446 and t(0.975, 2) = 4.302653 (tables)
    sa, sb = 0.0004 / 3, 0.0002 / 2
    assert (sa + sb) ** 2 / (sa**2 / 2 + sb**2 / 1) == pytest.approx(2.882353, abs=1e-6)
    assert not result.paired and result.difference == pytest.approx(0.11)
    assert 3.182446 < result.half_width / math.sqrt(sa + sb) < 4.302653
    assert result.differs


def test_one_seed_claims_nothing():
    result = compare(frame_of({"A": [0.9], "B": [0.5]}), "A", "B")
    assert not result.differs and "cannot be told apart with 1 seed:" in result.sentence()


def test_a_diverged_seed_is_left_out_and_a_missing_run_is_named():
    frame = frame_of({"A": [0.80, float("nan"), 0.84], "B": [0.70, 0.71, 0.72]})
    assert final_scores(frame).loc["A", "seeds"] == 2
    with pytest.raises(ValueError, match="run 'C' is not in the frame"):
        compare(frame, "A", "C")
    with pytest.raises(ValueError, match="lacks the columns"):
        final_scores(frame.drop(columns="seed"))


def test_the_t_interval_by_hand():
    # mean 0.91, sd 0.01, n 3: half-width t(0.975, 2) * 0.01 / sqrt(3) = 4.302653 * 0.0057735
    low, high = t_interval([0.90, 0.91, 0.92])
    assert (high - low) / 2 == pytest.approx(4.302653 * 0.01 / 3**0.5, rel=1e-6)
    assert (low + high) / 2 == pytest.approx(0.91)
    assert all(math.isnan(v) for v in t_interval([0.5]))


def test_frames_joined_with_repeated_index_labels_count_each_seed_once():
    one = pd.DataFrame(
        {"run": ["A", "A"], "seed": [0, 1], "epoch": [0, 0], "test Accuracy": [0.8, 0.9]}
    )
    other = one.assign(run="B", **{"test Accuracy": [0.7, 0.8]})
    joined = pd.concat([one, other])  # index 0, 1, 0, 1
    assert final_scores(joined).loc["A", "seeds"] == 2
    assert compare(joined, "A", "B").seeds == 2


def test_compare_pairs_is_one_bullet_per_pair_by_hand():
    frame = frame_of({"A": [0.80, 0.82, 0.84], "B": [0.78, 0.79, 0.83], "C": [0.70, 0.71, 0.72]})
    assert compare_pairs(frame, [("A", "B"), ("C", "A")]) == (
        "- A and B end within the noise of 3 seeds (difference +2.0 ± 2.5 points).\n"
        "- C ends 11.0 ± 2.5 points below A over 3 seeds."
    )


def test_compare_pairs_passes_its_confidence_on_bonferroni():
    frame = frame_of({"A": [0.80, 0.82, 0.84], "C": [0.70, 0.71, 0.72]})
    # C - A = -0.10, -0.11, -0.12: sd 0.01; t(1 - 0.025 / 2, 2 dof) = 6.2053 -> 6.2053 * 0.01 / sqrt 3
    assert compare_pairs(frame, [("C", "A")], confidence=1 - 0.05 / 2) == (
        "- C ends 11.0 ± 3.6 points below A over 3 seeds."
    )


def test_a_difference_that_rounds_like_its_interval_gets_more_decimals():
    from idlmam.stats import Comparison

    close = Comparison("A", "B", -0.0071, 0.0066, 3, True, True)  # 0.7 +- 0.7 would read as a tie
    assert close.sentence() == "A ends 0.71 ± 0.66 points below B over 3 seeds"
    closer = Comparison("A", "B", -0.00662, 0.00657, 3, True, True)  # 0.66 +- 0.66 too
    assert closer.sentence() == "A ends 0.662 ± 0.657 points below B over 3 seeds"
    clear = Comparison("A", "B", -0.0071, 0.0036, 3, True, True)
    assert clear.sentence() == "A ends 0.7 ± 0.4 points below B over 3 seeds"


def test_a_difference_that_rounds_to_zero_is_written_without_a_minus_sign():
    from idlmam.stats import Comparison

    tiny = Comparison("A", "B", -0.0004, 0.005, 3, True, False)
    assert "(difference +0.0 ± 0.5 points)" in tiny.sentence()


def test_compare_pairs_starts_each_bullet_with_a_capital():
    rows = [
        {"run": r, "seed": s, "epoch": 0, "test Accuracy": v}
        for r, vs in {"cosine": [0.80, 0.82, 0.84], "SGD": [0.78, 0.79, 0.83]}.items()
        for s, v in enumerate(vs)
    ]
    assert compare_pairs(pd.DataFrame(rows), [("cosine", "SGD")]).startswith("- Cosine and SGD")
