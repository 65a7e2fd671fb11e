"""The references page labels each entry as the pages cite it, author and year, not with a number.

A pybtex formatting style, ``author_year_plain``: pybtex's ``plain`` (the same entries, sorted by
author) with labels such as "Loshchilov and Hutter, 2019" or "Kasimbeg et al., 2025", the words
a reader saw in the text. Loaded as a Sphinx extension (``local_extensions`` in ``_config.yml``)
so that the plugin exists before sphinxcontrib-bibtex formats the bibliography.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surnames(entry) -> list[str]:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    return [" ".join(person.prelast_names + person.last_names) for person in persons]


class AuthorYearLabels(BaseLabelStyle):
    """'A, 2019', 'A and B, 2019', 'A et al., 2019' (or the title where no author is given)."""

    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            names = [name.replace("{", "").replace("}", "") for name in _surnames(entry)]
            cut = "others" in names  # "and others" in the entry: a list cut short
            names = [name for name in names if name != "others"]
            if names and (cut or len(names) > 2):
                who = f"{names[0]} et al."
            elif len(names) == 2:
                who = f"{names[0]} and {names[1]}"
            elif names:
                who = names[0]
            else:
                who = entry.fields.get("title", entry.key).replace("{", "").replace("}", "")
            yield f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearPlainStyle(PlainStyle):
    default_label_style = "author_year"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "author_year_plain", AuthorYearPlainStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
