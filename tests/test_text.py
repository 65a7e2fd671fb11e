import pytest

from idlmam.text import plural


@pytest.mark.parametrize(
    "n,noun,nouns,said",
    [
        (1, "seed", None, "1 seed"),
        (0, "seed", None, "0 seeds"),
        (3, "hidden layer", None, "3 hidden layers"),
        (12_000, "image", None, "12,000 images"),
        (1.0, "step", None, "1 step"),
        (2, "pass", "passes", "2 passes"),
        (1, "pass", "passes", "1 pass"),
    ],
)
def test_a_count_reads_as_prose(n, noun, nouns, said):
    assert plural(n, noun, nouns) == said


def test_a_fraction_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="plural counts whole things, got 1.5: round it first"):
        plural(1.5, "step")
