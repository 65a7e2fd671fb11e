import pytest

from idlmam.budget import BUDGETS, get_budget


def test_full_is_the_chapters_own_numbers():
    full = get_budget("full")
    assert (full.epochs, full.trials, full.prune_trials, full.trial_epochs) == (50, 10, 20, 10)
    assert full.train_size is None and full.seeds >= 3


def test_quick_is_smaller_everywhere():
    quick, full = BUDGETS["quick"], BUDGETS["full"]
    assert quick.epochs < full.epochs and quick.trials < full.trials
    assert quick.prune_trials < full.prune_trials and quick.trial_epochs < full.trial_epochs


def test_environment_variable_chooses(monkeypatch):
    monkeypatch.setenv("IDL_BUDGET", "quick")
    assert get_budget().name == "quick"
    monkeypatch.delenv("IDL_BUDGET")
    assert get_budget().name == "full"


def test_unknown_budget_names_the_choices(monkeypatch):
    monkeypatch.setenv("IDL_BUDGET", "medium")
    with pytest.raises(ValueError, match="IDL_BUDGET.*quick"):
        get_budget()
