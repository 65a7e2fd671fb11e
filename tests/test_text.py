import pytest

from idlmam.text import plural, times_ten


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


@pytest.mark.parametrize(
    "x,digits,said",
    [
        (5.2e-08, 1, "5 × 10⁻⁸"),
        (0.0089, 2, "8.9 × 10⁻³"),
        (1.8e-24, 2, "1.8 × 10⁻²⁴"),
        (12345.0, 3, "1.23 × 10⁴"),
        (-0.00021, 2, "-2.1 × 10⁻⁴"),
        (0.96, 1, "1 × 10⁰"),  # rounding carries into the exponent
        (0.0, 2, "0"),
    ],
)
def test_a_small_or_large_number_reads_in_powers_of_ten(x, digits, said):
    assert times_ten(x, digits) == said


@pytest.mark.parametrize("x,digits,error", [(float("nan"), 1, "finite"), (1.0, 0, "at least 1")])
def test_times_ten_refuses_what_it_cannot_write(x, digits, error):
    with pytest.raises(ValueError, match=error):
        times_ten(x, digits)
