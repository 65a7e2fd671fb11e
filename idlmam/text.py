"""Numbers as a page's prose writes them: a count with its noun in the right number, a very
small or large number in powers of ten.

Example:
    >>> plural(1, "seed"), plural(3, "seed"), plural(12_000, "image")
    ('1 seed', '3 seeds', '12,000 images')
    >>> times_ten(5.2e-08), times_ten(0.0089, 2)
    ('5 × 10⁻⁸', '8.9 × 10⁻³')
"""

from __future__ import annotations

__all__ = ["plural", "times_ten"]

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and ``noun``, the noun in the plural unless ``n`` is 1, thousands separated.

    Args:
        n: the count (an int, or a float that is a whole number: ``1.0`` reads "1").
        noun: the singular, e.g. ``"hidden layer"``.
        nouns: the plural where adding "s" is wrong (``plural(2, "pass", "passes")``).

    Raises:
        ValueError: ``n`` is not a whole number.
    """
    if n != int(n):
        raise ValueError(f"plural counts whole things, got {n!r}: round it first")
    n = int(n)
    return f"{n:,} {noun if n == 1 else nouns or noun + 's'}"


def times_ten(x: float, digits: int = 1) -> str:
    """``x`` in scientific notation as a book prints it: ``"8.9 × 10⁻³"``, not ``"8.9e-03"``.

    Args:
        x: a finite number (0 reads "0").
        digits: significant digits of the mantissa (at least 1).

    Raises:
        ValueError: ``x`` is not finite, or ``digits`` is below 1.
    """
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"times_ten writes finite numbers, got {x!r}")
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits!r}")
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"
