import pytest
import torch

from idlmam.budget import BUDGETS, DEFAULT, get_budget


def test_chapter_is_the_chapters_own_numbers():
    chapter = get_budget("chapter")
    assert (chapter.epochs, chapter.trials, chapter.prune_trials, chapter.trial_epochs) == (
        50,
        10,
        20,
        10,
    )
    assert chapter.train_size is None and chapter.exercise_train_size is None and chapter.seeds >= 3


def test_full_keeps_the_seeds_data_and_trials_of_the_chapter():
    full, chapter = get_budget("full"), get_budget("chapter")
    assert full.seeds >= 3 and full.train_size is None
    assert (full.trials, full.prune_trials) == (chapter.trials, chapter.prune_trials)
    assert full.epochs < chapter.epochs and full.trial_epochs < chapter.trial_epochs


@pytest.mark.parametrize("larger", ["full", "chapter"])
def test_quick_is_smaller_everywhere(larger):
    quick, big = BUDGETS["quick"], BUDGETS[larger]
    assert quick.epochs < big.epochs and quick.trials < big.trials and quick.seeds < big.seeds
    assert quick.prune_trials < big.prune_trials and quick.trial_epochs < big.trial_epochs
    assert quick.exercise_epochs <= big.exercise_epochs
    assert quick.since_epochs < big.since_epochs
    assert quick.since_train_size < (big.since_train_size or 60_000)


def test_environment_variable_chooses(monkeypatch):
    monkeypatch.setenv("IDL_BUDGET", "quick")
    assert get_budget().name == "quick"
    monkeypatch.delenv("IDL_BUDGET")
    assert get_budget().name == "full"


@pytest.mark.parametrize("gpu", ["cuda", "mps", None])
def test_the_default_is_full_on_any_machine(monkeypatch, gpu):
    # one default, the one the README and every page's budget box state (Colab's GPU included)
    monkeypatch.delenv("IDL_BUDGET", raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: gpu == "cuda")
    monkeypatch.setattr("torch.backends.mps.is_available", lambda: gpu == "mps")
    monkeypatch.setattr("torch.accelerator.is_available", lambda: gpu is not None)
    device = torch.device(gpu or "cpu")
    monkeypatch.setattr("torch.accelerator.current_accelerator", lambda *a, **k: device)
    assert DEFAULT == "full" and get_budget().name == DEFAULT


def test_only_quick_is_too_small_for_findings():
    assert [b.name for b in BUDGETS.values() if not b.findings] == ["quick"]
    assert get_budget("quick").describe() == (
        "the `quick` budget: 7 epochs per run, 2 seeds, 12,000 training images"
    )
    assert "all 60,000" in get_budget("full").describe()


def test_unknown_budget_names_the_choices(monkeypatch):
    monkeypatch.setenv("IDL_BUDGET", "medium")
    with pytest.raises(ValueError, match="IDL_BUDGET.*quick"):
        get_budget()


def test_quick_trains_several_seeds_so_ci_runs_the_published_path():
    """Wherever full repeats a run over seeds, quick does too: the stacked path runs under CI."""
    quick, full = get_budget("quick"), get_budget("full")
    assert full.seeds > 1 and quick.seeds >= 2


def test_the_exercises_budget_describes_what_they_train():
    full = get_budget("full").exercises()
    assert (full.name, full.epochs, full.train_size) == ("full", 8, 12_000)
    assert "8 epochs per run" in full.describe() and "12,000" in full.describe()


def test_the_pages_after_the_chapter_describe_what_they_train():
    full = get_budget("full").since()
    assert (full.name, full.epochs, full.train_size) == ("full", 10, 12_000)
    assert "10 epochs per run" in full.describe() and "12,000" in full.describe()
    assert get_budget("chapter").since().train_size is None


@pytest.mark.parametrize("larger", ["full", "chapter"])
def test_the_search_comparisons_are_smaller_on_quick(larger):
    quick, big = BUDGETS["quick"], BUDGETS[larger]
    for field in ("search_trials", "search_prune_trials", "search_prune_epochs"):
        assert getattr(quick, field) < getattr(big, field), field
    assert quick.search_epochs <= big.search_epochs
    assert quick.search_train_size < (big.search_train_size or 60_000)
    # bands and intervals need two studies at least, on quick too (the published path runs in CI)
    assert 2 <= quick.search_studies <= big.search_studies


def test_search_trials_reach_past_the_random_start_of_tpe_and_gp():
    # TPE and GPSampler propose their first 10 trials at random: fewer would compare nothing
    assert all(b.search_trials > 10 for b in BUDGETS.values())
    # a pruner needs epochs to stop a trial early: more than the first rung's
    assert all(b.search_prune_epochs >= 3 for b in BUDGETS.values())


def test_the_search_budget_describes_its_two_kinds_of_study():
    search = get_budget("full").search()
    assert (search.trials, search.trial_epochs, search.train_size) == (20, 2, 3_000)
    assert (search.prune_trials, search.prune_epochs) == (12, 6)
    assert (search.epochs, search.seeds) == (2, 3)  # a run there, and how often it repeats
    assert (
        search.describe() == "the `full` budget: 2 epochs per run, 3 seeds, 3,000 training images"
    )
    assert search.describe(trials=True) == (
        "the `full` budget: studies of 20 trials of 2 epochs, and of 12 trials of up to 6 "
        "epochs with pruning, 3,000 training images"
    )
    # the other pages' line is unchanged: their pruning studies train trial_epochs
    assert get_budget("full").describe(trials=True) == (
        "the `full` budget: studies of 10 trials (20 with pruning), 5 epochs per trial, "
        "all 60,000 training images"
    )


def test_the_readme_and_the_first_page_state_the_default_the_code_has():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    intro = (root / "book" / "intro.md").read_text(encoding="utf-8")
    for name in BUDGETS:
        said = (
            f"| `{name}` (the default" in readme,
            f"`IDL_BUDGET={name}` is the default" in intro,
        )
        assert said == ((True, True) if name == DEFAULT else (False, False)), (name, said)
