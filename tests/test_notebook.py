"""The page helpers: a finding is stated only on a budget that supports it, and says why not."""

import pytest

from idlmam.budget import get_budget
from idlmam.notebook import budget_banner, finding


@pytest.fixture
def displayed(monkeypatch):
    """What the helpers hand to IPython's display, as (mime type, data) pairs."""
    out = []

    def display(obj):
        kind = "text/markdown" if type(obj).__name__ == "Markdown" else "text/html"
        out.append((kind, obj.data))

    monkeypatch.setattr("IPython.display.display", display)
    return out


def test_a_finding_is_stated_on_full(displayed):
    text = "Cosine ends **1.2 ± 0.4** points above the baseline over 3 seeds."
    assert finding(text, needs="compare schedules", budget=get_budget("full")) is None
    assert displayed == [("text/markdown", text)]


def test_on_quick_a_box_replaces_the_finding_and_says_why(displayed):
    text = "Cosine ends 1.2 points above the baseline."
    finding(text, needs="tell the schedules apart", budget=get_budget("quick"))
    [(kind, markup)] = displayed
    assert kind == "text/html"
    assert "1.2" not in markup and "too small to tell the schedules apart" in markup
    assert "quick" in markup and "IDL_BUDGET=full" in markup


def test_a_finding_needs_its_text_and_its_reason():
    with pytest.raises(ValueError, match="non-empty"):
        finding("  ", needs="x")
    with pytest.raises(ValueError, match="non-empty"):
        finding("A beats B", needs="")


def test_the_banner_names_the_budget(displayed):
    budget_banner(get_budget("full"))
    budget_banner(get_budget("quick"))
    budget_banner(get_budget("full"), get_budget("full").studies)
    full, quick, studies = (markup for _, markup in displayed)
    assert "too small" not in full and "15 epochs per run" in full
    assert "quick" in quick and "7 epochs" in quick and "smoke test" in quick
    # the default says so, with how to choose another; another budget does not claim it
    assert "It is the default" in full and 'os.environ["IDL_BUDGET"]' in full
    assert "default" not in quick
    assert "10 trials (20 with pruning), 5 epochs per trial" in studies


def test_budget_banner_of_a_page_that_no_budget_sizes_says_what_it_trains(displayed):
    budget_banner(get_budget("quick"), trains="nothing on data")
    ((_, box),) = displayed
    assert "trains nothing on data" in box and "same on every budget" in box
    assert "epochs" not in box and "smoke test" not in box


def test_glue_hands_plain_numbers_to_myst_nb_and_shows_nothing_itself(monkeypatch):
    import numpy as np

    from idlmam.notebook import glue

    seen = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: seen.append((name, value)))
    assert glue("ratio", np.float64(0.25)) is None  # a cell ending with glue(...) shows nothing
    assert seen == [("ratio", 0.25)] and type(seen[0][1]) is float
