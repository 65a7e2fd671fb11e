"""List the digits a page's prose types by hand: every Markdown line of the book's notebooks that
still holds a digit once glue roles, math, inline code, links, MyST directives' options and
citations are removed. Numbers that come from a run must be glued; what this lists should be
facts (dataset sizes, years, paper identifiers) and settings, not results.

    python tools/prose_digits.py [book/02_schedules.py ...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
STRIP = [
    re.compile(r"\{glue:[a-z]+\}`[^`]*`"),  # glued values
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\$[^$]*\$"),  # inline math
    re.compile(r"`[^`]*`"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"arXiv:\s*\d+\.\d+"),  # paper identifiers
    re.compile(r"\(\d{4}[a-z]?\)|\b(19|20)\d{2}\b"),  # years
]


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    """(cell number, source) for every Markdown cell of the page ``path``."""
    cells = jupytext.read(path).cells
    return [
        (number, cell.source) for number, cell in enumerate(cells) if cell.cell_type == "markdown"
    ]


def prose_digits(path: Path) -> list[tuple[int, str]]:
    """(cell number, line) for every Markdown line of ``path`` with a digit left after STRIP."""
    found = []
    for number, text in markdown_cells(path):
        for pattern in STRIP:
            text = pattern.sub("", text)
        for line in text.splitlines():
            if re.search(r"\d", line) and not line.lstrip().startswith(":"):
                found.append((number, line.strip()))
    return found


def main(paths: list[str]) -> None:
    files = [Path(p) for p in paths] or sorted((ROOT / "book").rglob("*.py"))
    for path in files:
        for number, line in prose_digits(path):
            print(f"{path.relative_to(ROOT)} cell {number}: {line}")


if __name__ == "__main__":
    main(sys.argv[1:])
