"""The book's table of contents, read once for the build tools and the tests.

``_toc.yml`` (Jupyter Book 1.x) names a root page and, under ``chapters``, ``parts`` or
``sections`` at any depth, one ``file:`` per page, without suffix or with one. Everything that
walks the book (``tools/execute_pages.py``, ``tools/colab.py``, the site and notebook tests)
asks this module for the pages, in the order of the contents.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "_toc.yml").write_text(
    ...     "root: intro\\nparts:\\n  - chapters:\\n    - file: a.py\\n      sections:\\n        - file: b\\n")
    >>> pages(root)
    ['intro', 'a', 'b']
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["notebook_pages", "pages"]

ROOT = Path(__file__).resolve().parent.parent


def pages(root: Path = ROOT, toc: Path | None = None) -> list[str]:
    """Every page of ``toc`` (default ``root/_toc.yml``), root page first, as paths relative to
    ``root`` without suffix (``book/02_schedules``)."""
    import yaml

    data = yaml.safe_load((toc or root / "_toc.yml").read_text())
    found = [str(data["root"])]

    def walk(node):
        if isinstance(node, dict):
            found.extend([str(node["file"])] if "file" in node else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({key: value for key, value in data.items() if key != "root"})
    return [re.sub(r"\.(md|py|ipynb)$", "", page) for page in found]


def notebook_pages(root: Path = ROOT, toc: Path | None = None) -> list[str]:
    """The pages of the contents that are notebooks (a ``.py`` or ``.ipynb`` source)."""
    return [
        page
        for page in pages(root, toc)
        if (root / f"{page}.py").is_file() or (root / f"{page}.ipynb").is_file()
    ]
