"""references.bib and the book's citations agree: every ``{cite}`` key of a page is an entry,
every entry is cited somewhere (no dead entries), and every entry says who, what and when.

The pages are the sources ``_toc.yml`` lists (``book/*.py`` for a notebook page, ``.md``
otherwise); only their Markdown is read (for a ``.py``, its ``#`` comment lines). Jupyter Book
fails the build on an unknown key too (``-W``), but only after executing every page; this check
takes a second.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import toc  # noqa: E402  (tools/toc.py)

BIB = ROOT / "references.bib"
# {cite}`a`, {cite:p}`a,b`, {cite:t}`a` ...: the role and its comma-separated keys
CITE = re.compile(r"\{cite(?::\w+)?\}`(?P<keys>[^`]+)`")
REQUIRED = ("author", "title", "year")


def page_source(page: str, root: Path = ROOT) -> Path:
    """The file a page of ``_toc.yml`` is written in: ``.py`` (jupytext), else ``.md``."""
    for suffix in (".py", ".md", ".ipynb"):
        if (root / f"{page}{suffix}").is_file():
            return root / f"{page}{suffix}"
    raise FileNotFoundError(f"{page}: no .py, .md or .ipynb source")


def cited_keys(text: str) -> list[str]:
    """Every key cited in ``text``, in order, repeats kept."""
    return [key.strip() for m in CITE.finditer(text) for key in m["keys"].split(",")]


def entries(bib_text: str) -> dict[str, dict[str, str]]:
    """The entries of a BibTeX text by key, each a dict of its (lower-case) field names."""
    from pybtex.database import parse_string

    data = parse_string(bib_text, "bibtex")
    found = {}
    for key, entry in data.entries.items():
        fields = {name.lower(): value for name, value in entry.fields.items()}
        if entry.persons.get("author"):
            fields["author"] = " and ".join(str(p) for p in entry.persons["author"])
        found[key] = fields
    return found


def problems(citations: dict[str, list[str]], bib: dict[str, dict[str, str]]) -> list[str]:
    """What is wrong between the keys each page cites and the bibliography, one line each."""
    found = []
    used = set()
    for page, keys in citations.items():
        used.update(keys)
        for key in sorted(set(keys) - set(bib)):
            found.append(f"{page} cites {key!r}, which references.bib lacks")
    for key in sorted(set(bib) - used):
        found.append(f"references.bib: {key!r} is cited by no page (remove it or cite it)")
    for key, fields in bib.items():
        missing = [name for name in REQUIRED if not fields.get(name, "").strip()]
        if missing:
            found.append(f"references.bib: {key!r} has no {', '.join(missing)}")
    return found


def book_citations(root: Path = ROOT) -> dict[str, list[str]]:
    """The keys each page of the contents cites, from its Markdown."""
    return {page: cited_keys(page_source(page, root).read_text()) for page in toc.pages(root)}


def test_every_cited_key_is_an_entry_and_every_entry_is_cited_and_complete():
    citations = book_citations()
    assert sum(map(len, citations.values())) > 0, "no page cites anything: is CITE still right?"
    assert problems(citations, entries(BIB.read_text())) == []


def test_the_bibliography_page_lists_them_and_is_in_the_contents():
    assert "book/references" in toc.pages(ROOT)
    assert "```{bibliography}" in (ROOT / "book" / "references.md").read_text()


def test_the_bibliography_is_the_one_the_config_names():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["bibtex_bibfiles"] == [BIB.name]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("{cite}`a`", ["a"]),
        ("x {cite:p}`a, b` y {cite:t}`c` z {cite:alp}`a`", ["a", "b", "c", "a"]),
        ("{glue:text}`a` and `cite` and {ref}`b`", []),
    ],
)
def test_cited_keys_reads_every_form_of_the_role(text, keys):
    assert cited_keys(text) == keys


def test_the_check_catches_an_unknown_key_a_dead_entry_and_a_missing_field():
    bib = entries(
        "@misc{used, author = {A, B}, title = {T}, year = {2020}}\n"
        "@misc{dead, author = {C, D}, title = {U}, year = {2021}}\n"
        "@misc{undated, author = {E, F}, title = {V}}\n"
    )
    citations = {"book/p": ["used", "nosuchkey", "undated"]}
    assert problems(citations, bib) == [
        "book/p cites 'nosuchkey', which references.bib lacks",
        "references.bib: 'dead' is cited by no page (remove it or cite it)",
        "references.bib: 'undated' has no year",
    ]
    assert problems({"book/p": ["used"]}, {"used": bib["used"]}) == []


def test_the_check_reads_the_pages_of_a_book(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/p\n"
    )
    (tmp_path / "book" / "intro.md").write_text("# Intro {cite}`a`\n")
    (tmp_path / "book" / "p.py").write_text("# %% [markdown]\n# See {cite:t}`b,c`.\n")
    assert book_citations(tmp_path) == {"book/intro": ["a"], "book/p": ["b", "c"]}
