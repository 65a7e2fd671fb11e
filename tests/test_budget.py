from dataclasses import fields, replace

import pytest
import torch

from idlmam.budget import BUDGETS, DEFAULT, Runs, Search, Studies, get_budget


def test_chapter_is_the_chapters_own_numbers():
    chapter = get_budget("chapter")
    assert chapter.chapter.epochs == 50 and chapter.chapter.seeds >= 3
    studies = chapter.studies
    assert (studies.trials, studies.prune_trials, studies.epochs) == (10, 20, 10)
    assert chapter.chapter.train_size is None and chapter.exercises.train_size is None


def test_full_keeps_the_seeds_data_and_trials_of_the_chapter():
    full, chapter = get_budget("full"), get_budget("chapter")
    assert full.chapter.seeds >= 3 and full.chapter.train_size is None
    assert full.studies.trials == chapter.studies.trials
    assert full.studies.prune_trials == chapter.studies.prune_trials
    assert full.chapter.epochs < chapter.chapter.epochs
    assert full.studies.epochs < chapter.studies.epochs


@pytest.mark.parametrize("larger", ["full", "chapter"])
@pytest.mark.parametrize("group", ["chapter", "exercises", "since"])
def test_quick_runs_are_smaller_everywhere(larger, group):
    quick, big = getattr(BUDGETS["quick"], group), getattr(BUDGETS[larger], group)
    assert quick.epochs <= big.epochs and quick.seeds < big.seeds
    assert (quick.train_size or 60_000) <= (big.train_size or 60_000)
    assert (quick.epochs, quick.train_size) != (big.epochs, big.train_size)


@pytest.mark.parametrize("larger", ["full", "chapter"])
def test_quick_studies_are_smaller(larger):
    quick, big = BUDGETS["quick"].studies, BUDGETS[larger].studies
    assert quick.trials < big.trials and quick.prune_trials < big.prune_trials
    assert quick.epochs < big.epochs


def test_every_group_of_every_budget_is_typed_and_positive():
    """The groups are what the pages read; a field of one group never stands in for another's."""
    for budget in BUDGETS.values():
        assert {f.name for f in fields(budget)} == {
            "name",
            "chapter",
            "studies",
            "exercises",
            "since",
            "search",
            "findings",
        }
        for group in (budget.chapter, budget.exercises, budget.since):
            assert isinstance(group, Runs) and group.epochs > 0 and group.seeds > 0
        assert isinstance(budget.studies, Studies) and isinstance(budget.search, Search)


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
    for group in ("chapter", "exercises", "since"):
        assert getattr(full, group).seeds > 1 and getattr(quick, group).seeds >= 2, group


def test_the_exercises_budget_describes_what_they_train():
    full = get_budget("full")
    assert (full.exercises.epochs, full.exercises.train_size) == (8, 12_000)
    assert full.describe(full.exercises) == (
        "the `full` budget: 8 epochs per run, 3 seeds, 12,000 training images"
    )


def test_the_pages_after_the_chapter_describe_what_they_train():
    full = get_budget("full")
    assert (full.since.epochs, full.since.train_size) == (10, 12_000)
    assert "10 epochs per run" in full.describe(full.since)
    assert "12,000" in full.describe(full.since)
    assert get_budget("chapter").since.train_size is None


@pytest.mark.parametrize("larger", ["full", "chapter"])
def test_the_search_comparisons_are_smaller_on_quick(larger):
    quick, big = BUDGETS["quick"].search, BUDGETS[larger].search
    for field in ("trials", "prune_trials", "prune_epochs"):
        assert getattr(quick, field) < getattr(big, field), field
    assert quick.epochs <= big.epochs
    assert quick.train_size < (big.train_size or 60_000)
    # bands and intervals need two studies at least, on quick too (the published path runs in CI)
    assert 2 <= quick.studies <= big.studies
    assert 2 <= quick.prune_studies <= big.prune_studies
    assert 2 <= quick.cv_studies <= big.cv_studies
    assert quick.prune_budget < big.prune_budget


def test_search_trials_reach_past_the_random_start_of_tpe_and_gp():
    # TPE and GPSampler propose their first 10 trials at random: fewer would compare nothing
    assert all(b.search.trials > 10 for b in BUDGETS.values())
    # a pruner needs epochs to stop a trial early: more than the first rung's
    assert all(b.search.prune_epochs >= 3 for b in BUDGETS.values())


def test_the_search_budget_describes_its_two_kinds_of_study():
    full = get_budget("full")
    search = full.search
    assert (search.trials, search.epochs, search.train_size) == (20, 2, 3_000)
    assert (search.prune_trials, search.prune_epochs) == (12, 6)
    # ten studies per sampler: Bonferroni over four comparisons leaves room for a verdict
    assert (search.studies, search.prune_studies, search.cv_studies) == (10, 4, 3)
    # every pruner's study spends what a study without pruning spends on its trials
    assert search.prune_budget == 12 * 6
    assert full.describe(search) == (
        "the `full` budget: 10 studies per sampler of 20 trials of 2 epochs, and 4 per pruner "
        "of 72 epochs each (trials of up to 6 epochs), 3,000 training images"
    )
    assert full.describe(full.studies) == (
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


def test_the_first_page_states_the_default_budget_s_sizes():
    """The intro's paragraph on the default budget says each group's sizes as the code has them."""
    from pathlib import Path

    intro = (Path(__file__).resolve().parents[1] / "book" / "intro.md").read_text(encoding="utf-8")
    intro = " ".join(intro.split())
    full = get_budget(DEFAULT)
    assert f"with {full.chapter.seeds} seeds on all 60,000 training images" in intro
    assert full.chapter.train_size is None
    assert f"for {full.chapter.epochs} epochs" in intro
    studies = full.studies
    assert (
        f"({studies.trials} and {studies.prune_trials} trials, of {studies.epochs} epochs" in intro
    )
    since, exercises = full.since, full.exercises
    assert f"train {since.epochs} epochs on {since.train_size:,} images" in intro
    assert f"exercises 2 to 5 train {exercises.epochs} epochs on {exercises.train_size:,}" in intro
    assert f"trains its trials on {full.search.train_size:,}." in intro


def test_one_seed_is_said_in_the_singular():
    one = Runs(epochs=5, seeds=1, train_size=48_000)
    assert get_budget("full").describe(one) == (
        "the `full` budget: 5 epochs per run, 1 seed, 48,000 training images"
    )


def test_a_page_on_other_data_names_what_it_trains_on():
    full = get_budget("full")
    rnn = replace(full.exercises, train_size=4096, items="synthetic training sequences")
    assert full.describe(rnn) == (
        "the `full` budget: 8 epochs per run, 3 seeds, 4,096 synthetic training sequences"
    )


def test_a_page_can_say_its_sizes_in_words_where_no_group_describes_them():
    full = get_budget("full")
    said = "two studies of 4 trials of 2 epochs each, with no pruner"
    assert full.describe(said) == f"the `full` budget: {said}"
