"""Numbers as a page's prose writes them: a count with its noun in the right number.

Example:
    >>> plural(1, "seed"), plural(3, "seed"), plural(12_000, "image")
    ('1 seed', '3 seeds', '12,000 images')
"""

from __future__ import annotations

__all__ = ["plural"]


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
