"""The benchmark command works and reports sane numbers; no timing threshold is tested here."""

import json
import math
import statistics

import pytest
import torch

from idlmam.bench import chapter_epochs, epoch_flops, main
from idlmam.budget import BUDGETS
from idlmam.models import mlp

KEYS = {
    "classic_s_per_epoch",
    "fast_s_per_epoch",
    "speedup",
    "floor_s_per_epoch",
    "k_models",
    "k_models_s_per_epoch",
    "k_single_s_per_epoch",
    "chapter_full_minutes",
    "gather_s_per_epoch",  # one order of batches
    "k_gather_s_per_epoch",  # K orders, one per stacked model
}


def test_flops_and_chapter_arithmetic():
    # per training example: 2*784*128*2 + 2*(128*128*3)*2 + 2*128*10*3, per test example the forward
    train = 2 * 784 * 128 * 2 + 2 * 128 * 128 * 3 * 2 + 2 * 128 * 10 * 3
    test = 2 * (784 * 128 + 128 * 128 * 2 + 128 * 10)
    assert epoch_flops(mlp()) == 60_000 * train + 10_000 * test
    assert epoch_flops(mlp()) / 1e9 == pytest.approx(39.0, abs=0.1)
    full, quick = BUDGETS["full"], BUDGETS["quick"]
    studies = full.studies
    trials = (studies.trials + studies.prune_trials) * studies.epochs
    epochs = full.chapter.epochs
    assert chapter_epochs(full) == 13 * epochs + trials  # 345: 13 runs of 15, 30 trials of 5
    assert chapter_epochs(BUDGETS["chapter"]) == 950  # the source: 13 runs of 50, 30 trials of 10
    assert chapter_epochs(full, seeds=3) == 13 * epochs * 3 + trials
    runs, studies = quick.chapter, quick.studies
    assert chapter_epochs(quick) == pytest.approx(
        13 * runs.epochs * runs.train_size / 60_000
        + (studies.trials + studies.prune_trials) * studies.epochs * studies.train_size / 60_000
    )


@pytest.mark.slow
def test_quick_run_writes_the_json(tmp_path, fashion_root, capsys):
    path = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "classic" in out and "floor" in out and "scaled" in out  # says what was scaled
    results = json.loads(path.read_text())
    assert set(results) >= KEYS
    for key in KEYS:
        assert math.isfinite(results[key]) and results[key] > 0, key
    # ratios are taken within each round (one round here), then their median
    assert results["speedup_per_round"] == pytest.approx(
        [c / f for c, f in zip(results["classic_times"], results["fast_epoch_times"])]
    )
    assert results["speedup"] == pytest.approx(statistics.median(results["speedup_per_round"]))
    assert results["k_speedup"] == pytest.approx(
        results["k_models"] * results["fast_epoch_times"][0] / results["k_epoch_times"][0]
    )
    assert results["k_single_s_per_epoch"] == pytest.approx(
        results["k_models"] * results["fast_s_per_epoch"]
    )
    assert results["chapter_full_minutes"] == pytest.approx(
        chapter_epochs(BUDGETS["full"]) * results["fast_s_per_epoch"] / 60
    )
    assert results["gflop_per_epoch"] == pytest.approx(39.0, abs=0.1)
    for name, budget in BUDGETS.items():
        assert results["budget_minutes"][name]["fast"] == pytest.approx(
            chapter_epochs(budget) * results["fast_s_per_epoch"] / 60
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_is_a_clear_error(capsys):
    assert main(["--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
