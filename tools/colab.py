"""Colab notebooks from an executed Jupyter Book build: the site's numbers, without MyST markup.

The pages in ``book/`` are written for Jupyter Book: their Markdown cells hold MyST roles and
directives (``{glue:text}`` numbers, ``{note}`` boxes, ``{dropdown}`` solutions,
``literalinclude`` source listings) that Colab shows as raw markup. This module reads the
notebooks that ``make book`` executed (myst-nb writes them, with their outputs, under
``<build>/jupyter_execute/``, mirroring the source tree, and the glued values beside each one in
``<page>.glue.json``) and writes one notebook per page of ``_toc.yml`` that is a notebook, under
``<out>/`` with the same relative path (``_build/colab/book/02_schedules.ipynb``), where:

* every output of the build is kept, except the hidden displays that only carry glued values;
* every glue role (``{glue:text}`name```, ``{glue:text}`name:.3f```, ``{glue:}`name```,
  ``{glue}`name```) is replaced by the glued value, formatted as the site formats it;
* admonitions (``{note}``, ``{warning}``, ``{tip}``, ``{important}``, ``{admonition} Title``...)
  become a bold title line and a blockquote; ``{dropdown}`` becomes HTML ``<details>``;
* ``literalinclude`` (with ``:pyobject:``, ``:lines:``, ``:start-after:``, ``:end-before:``,
  ``:dedent:``) and ``include`` are replaced by the file's text in a fenced code block;
* the roles ``{ref}``, ``{numref}``, ``{doc}``, ``{term}`` become their link text (or target),
  ``{eq}`` its label in parentheses, ``{math}`` inline math;
* citations become plain author-year text read from ``references.bib`` beside ``_toc.yml``:
  ``{cite}`key``` and ``{cite:p}`a,b``` -> "(Smith, 2015; Loshchilov and Hutter, 2017)",
  ``{cite:t}`key``` -> "Smith (2015)", ``{cite:alp}`` the same without parentheses,
  ``{cite:yearpar}`` -> "(2015)"; a ``{bibliography}`` becomes a plain list of every entry;
* MyST-only lines (``(label)=`` targets, ``%`` comments, ``+++`` breaks, ``$$ (label)`` equation
  labels) are removed;
* the Colab setup cell (the code cell that pip-installs idlmam when ``google.colab`` is loaded)
  comes first, so that Colab installs the package before the first import; given a ``pin``, it
  installs that requirement instead of the source's: the release from PyPI
  (``idlmam[tune]==X.Y.Z``) when the build is a release, else the build's own commit
  (``idlmam[tune] @ git+https://github.com/<owner>/<repo>@<40-hex sha>``), or a local wheel
  (``idlmam[tune] @ file:///.../idlmam-X.Y.Z-py3-none-any.whl``) for ``make test-colab``.

Any other directive, role option or glue kind raises :class:`ColabError` naming the page: a
notebook with markup left in it is never written silently.

Usage (after ``make book``)::

    python tools/colab.py --build _build --out _build/colab [--pin REQUIREMENT]

Example:
    >>> page = Page("book/p", Path("."), {"acc": {"data": {"text/plain": "0.87654"}}})
    >>> convert_markdown("Accuracy {glue:text}`acc:.3f`.", page)
    'Accuracy 0.877.'
"""

from __future__ import annotations

import argparse
import ast
import copy
import functools
import html
import json
import re
import sys
import textwrap
from ast import literal_eval
from dataclasses import dataclass
from pathlib import Path

from toc import notebook_pages  # tools/toc.py, beside this file

__all__ = [
    "ColabError",
    "Page",
    "convert_build",
    "convert_markdown",
    "convert_notebook",
    "format_plain_text",
    "check_pin",
    "main",
    "notebook_pages",
    "pin_of",
    "pin_problems",
]

ADMONITIONS = {
    "note": "Note",
    "warning": "Warning",
    "tip": "Tip",
    "important": "Important",
    "hint": "Hint",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
    "admonition": "",
}
TOGGLES = {"dropdown": "Show", "toggle": "Show"}
# options that only style the site's rendering; they change no text
COSMETIC = {"class", "name", "open", "color", "icon", "linenos", "lineno-start", "emphasize-lines"}
INCLUDE_OPTIONS = {"language", "pyobject", "lines", "start-after", "end-before", "dedent"}
INCLUDE_OPTIONS |= {"caption", "literal", "code"}
LANGUAGES = {".py": "python", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml"}

GLUE_ROLE = re.compile(r"\{glue(?::(?P<kind>[\w-]*))?\}`(?P<key>[^`]+)`")
XREF_ROLE = re.compile(r"\{(?P<role>ref|numref|doc|term|eq|math|cite(?::\w+)?)\}`(?P<body>[^`]+)`")
# the bibliography of every {cite} role, beside _toc.yml (as _config.yml's bibtex_bibfiles says)
BIBLIOGRAPHY = "references.bib"
CITE_FORMS = ("cite", "cite:p", "cite:t", "cite:alp", "cite:yearpar", "cite:year", "cite:author")
LINK_TEXT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
DIRECTIVE = re.compile(
    r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}(?P<arg>.*)$"
)
CODE_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")
OPTION = re.compile(r"^:(?P<key>[\w-]+):(?:\s+(?P<value>.*))?$")
MYST_ONLY = re.compile(r"^\s*(\([\w.:-]+\)=|%.*|\+\+\+.*)\s*$")
EQUATION_LABEL = re.compile(r"(\$\$)\s*\([\w.:-]+\)\s*$")
# the quoted requirement in the setup cell: idlmam with its extras, then a version or a URL
SETUP_REQUIREMENT = re.compile(r"""(?P<quote>["'])(?P<requirement>idlmam\[[^"']*)(?P=quote)""")


class ColabError(ValueError):
    """A page holds markup this module cannot turn into plain Markdown, or the build is missing."""


@dataclass
class Page:
    """One page being converted.

    Args:
        name: the page's path in ``_toc.yml`` without suffix (``book/02_schedules``).
        root: the book's source root; directive paths resolve against ``root / name``'s folder.
        glue: glued values by name, each an output dict with ``data`` (``{"text/plain": ...}``).
    """

    name: str
    root: Path
    glue: dict

    @property
    def folder(self) -> Path:
        return (self.root / self.name).parent

    def resolve(self, path: str) -> Path:
        """A directive's path: relative to the page, or to the root when it starts with ``/``."""
        return self.root / path[1:] if path.startswith("/") else self.folder / path

    def error(self, message: str) -> ColabError:
        return ColabError(f"{self.name}: {message}")


# ----------------------------------------------------------------------------- glued values


def format_plain_text(text: str, spec: str) -> str:
    """A glued ``text/plain`` value formatted with ``spec`` exactly as myst-nb's glue roles do.

    The text is read back with ``literal_eval`` (so ``'SGD'`` loses its quotes and ``0.7`` is a
    number), then formatted: ``s`` as str, ``bcdoxX`` as int, ``eEfFgGn%`` as float.
    """
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def glue_values(notebook, saved: dict | None = None) -> dict:
    """Glued values by name: those myst-nb saved (``<page>.glue.json``), then any the notebook
    still holds as outputs with ``scrapbook`` metadata (their mime prefix removed)."""
    values = dict(saved or {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook:
                cut = len(scrapbook.get("mime_prefix", ""))
                data = {key[cut:]: value for key, value in output.get("data", {}).items()}
                values[scrapbook["name"]] = {"data": data}
    return values


def is_glue_only(output) -> bool:
    """Whether an output is the hidden display ``glue(..., display=False)`` makes."""
    scrapbook = output.get("metadata", {}).get("scrapbook")
    return bool(scrapbook and scrapbook.get("mime_prefix"))


def _glue_role(match: re.Match, page: Page) -> tuple[str, str, str]:
    """A glue role's kind (``text``, ``md`` or ``""`` for the plain role), key and format."""
    kind, key = match["kind"] or "", match["key"]
    if "::" in key:
        raise page.error(f"glue from another page ({key!r}) is not supported")
    if kind not in ("", "any", "text", "md"):
        raise page.error(f"{{glue:{kind}}} is not supported (only text, md and the plain role)")
    spec = ""
    if kind in ("text", "md") and ":" in key:
        key, _, spec = key.rpartition(":")
    if key not in page.glue:
        raise page.error(f"no glued value named {key!r} in the build (did its cell run?)")
    return ("" if kind == "any" else kind), key, spec


def _glued(match: re.Match, page: Page) -> str:
    """The Markdown a glue role becomes: text/plain (formatted for ``text``), text/markdown for
    ``md``, an inline image for the plain role when the value is a picture."""
    kind, key, spec = _glue_role(match, page)
    data = page.glue[key]["data"]
    if kind == "md" and "text/markdown" in data:
        return data["text/markdown"]
    images = [kind_ for kind_ in ("image/png", "image/jpeg") if kind_ in data]
    if not kind and images:
        return f"![{key}](data:{images[0]};base64,{data[images[0]].strip()})"
    if "text/plain" not in data:
        raise page.error(f"glued value {key!r} has no text/plain form")
    return format_plain_text(data["text/plain"], spec if kind == "text" else "")


def replace_glue(text: str, page: Page) -> str:
    """Every glue role in ``text`` replaced by its value."""
    return GLUE_ROLE.sub(lambda m: _glued(m, page), text)


# --------------------------------------------------------------------------------- citations


def _plain(text: str) -> str:
    """A BibTeX field as plain text: protective braces and ``--`` ranges undone."""
    return text.replace("{", "").replace("}", "").replace("--", "\u2013")


def cite_name(persons: list) -> str:
    """The author part of an author-year citation, as sphinxcontrib-bibtex writes it: "Smith",
    "Loshchilov and Hutter", "Goyal et al." (three or more, or a list ending in "others")."""
    lasts = [_plain(" ".join(p.prelast_names + p.last_names)) for p in persons]
    if len(lasts) > 2 or (len(lasts) == 2 and lasts[-1] == "others"):
        return f"{lasts[0]} et al."
    return " and ".join(lasts)


@functools.lru_cache(maxsize=8)
def _read_bibliography(path: str, mtime: float) -> dict[str, dict[str, str]]:
    from pybtex.database import parse_file  # pybtex comes with jupyter-book (sphinxcontrib-bibtex)

    entries = {}
    for key, entry in parse_file(path, bib_format="bibtex").entries.items():
        persons = entry.persons.get("author", [])
        entries[key] = {
            "name": cite_name(persons),
            "year": entry.fields.get("year", "n.d."),
            "title": _plain(entry.fields.get("title", "")),
            "eprint": entry.fields.get("eprint", ""),
            "url": entry.fields.get("url", ""),
        }
    return entries


def bibliography(page: Page) -> dict[str, dict[str, str]]:
    """The entries of the book's ``references.bib`` by key: ``name`` (as cited), ``year``,
    ``title``, ``eprint``, ``url``; ColabError when the file is missing."""
    path = page.root / BIBLIOGRAPHY
    if not path.is_file():
        raise page.error(f"cites a paper, but there is no {path} to read it from")
    return _read_bibliography(str(path), path.stat().st_mtime)


def cite_text(role: str, body: str, page: Page) -> str:
    """A ``{cite...}`` role as plain author-year text (see the module's docstring)."""
    if role not in CITE_FORMS:
        raise page.error(f"{{{role}}} is not supported (only {', '.join(CITE_FORMS)})")
    entries, path = bibliography(page), page.root / BIBLIOGRAPHY
    cited = []
    for key in (key.strip() for key in body.split(",")):
        if key not in entries:
            raise page.error(f"cites {key!r}, which is not an entry of {path}: add it there")
        cited.append(entries[key])
    if role == "cite:t":
        return ", ".join(f"{e['name']} ({e['year']})" for e in cited)
    if role == "cite:author":
        return ", ".join(e["name"] for e in cited)
    if role in ("cite:year", "cite:yearpar"):
        years = "; ".join(e["year"] for e in cited)
        return f"({years})" if role == "cite:yearpar" else years
    both = "; ".join(f"{e['name']}, {e['year']}" for e in cited)
    return both if role == "cite:alp" else f"({both})"


def bibliography_block(page: Page) -> list[str]:
    """A ``{bibliography}`` directive: every entry as one line of a Markdown list."""
    lines = []
    for entry in sorted(bibliography(page).values(), key=lambda e: (e["name"], e["year"])):
        link = entry["url"] or (
            f"https://arxiv.org/abs/{entry['eprint']}" if entry["eprint"] else ""
        )
        where = f" <{link}>" if link else ""
        title = entry["title"] if entry["title"].endswith(("?", "!", ".")) else entry["title"] + "."
        lines.append(f"- {entry['name']} ({entry['year']}). {title}{where}")
    return lines


# ------------------------------------------------------------------------------ inline roles


def _xref(match: re.Match, page: Page | None = None) -> str:
    role, body = match["role"], match["body"]
    if role == "eq":
        return f"({body})"
    if role == "math":
        return f"${body}$"
    if role.startswith("cite"):
        if page is None:
            raise ColabError(f"{{{role}}}`{body}`: citations need the page (its book root)")
        return cite_text(role, body, page)
    link = LINK_TEXT.match(body)
    if link and link["text"]:
        text = link["text"]
        return text.replace("%s", link["target"]).replace("{number}", link["target"])
    return link["target"] if link else body


def replace_xrefs(text: str, page: Page | None = None) -> str:
    """``{ref}``, ``{numref}``, ``{doc}``, ``{term}`` -> link text or target; ``{eq}`` ->
    ``(label)``; ``{cite...}`` -> author-year text (:func:`cite_text`, needs ``page``);
    ``{math}`` -> ``$...$``."""
    return XREF_ROLE.sub(lambda match: _xref(match, page), text)


def convert_line(line: str, page: Page) -> str | None:
    """One line of prose: roles replaced; None for a MyST-only line (label, comment, break)."""
    if MYST_ONLY.match(line):
        return None
    return replace_xrefs(replace_glue(EQUATION_LABEL.sub(r"\1", line), page), page)


# ------------------------------------------------------------------------------- directives


def fenced(code: str, language: str = "") -> list[str]:
    """``code`` in a backtick fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, *code.rstrip("\n").split("\n"), fence]


def split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive body's leading ``:key: value`` lines as a dict, and the rest of the body."""
    options: dict[str, str] = {}
    index = 0
    while index < len(body) and (option := OPTION.match(body[index].strip())):
        options[option["key"]] = (option["value"] or "").strip()
        index += 1
    rest = body[index:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    return options, rest


def parse_lines(spec: str, count: int) -> list[int]:
    """Sphinx's ``:lines:`` syntax (``1-3,5,8-``; 1-based, inclusive) as 0-based indices."""
    chosen: list[int] = []
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        start = int(first) if first else 1
        stop = (int(last) if last else count) if dash else start
        chosen.extend(range(start - 1, min(stop, count)))
    return chosen


def python_object(source: str, name: str) -> str:
    """The lines of the top-level function or class ``name`` (or ``Class.method``), decorators
    included, as Sphinx's ``:pyobject:`` shows them; KeyError saying so when there is none."""
    nodes = ast.parse(source).body
    found = None
    for part in name.split("."):
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        found = next((n for n in nodes if isinstance(n, kinds) and n.name == part), None)
        if found is None:
            raise KeyError(f"defines no {name!r}")
        nodes = found.body
    first = min([found.lineno, *(d.lineno for d in found.decorator_list)])
    return "\n".join(source.split("\n")[first - 1 : found.end_lineno]) + "\n"


def between_markers(text: str, options: dict[str, str]) -> str:
    """The lines after the one holding ``:start-after:`` and before the one holding
    ``:end-before:``, as Sphinx cuts them; KeyError naming a marker that is not there."""
    for option in ("start-after", "end-before"):
        if (marker := options.get(option)) and marker not in text:
            raise KeyError(f":{option}: {marker!r} not found")
    if marker := options.get("start-after"):
        text = text.split(marker, 1)[1].split("\n", 1)[-1]
    if marker := options.get("end-before"):
        text = text.split(marker, 1)[0].rpartition("\n")[0] + "\n"
    return text


def dedent(text: str, width: str) -> str:
    """Sphinx's ``:dedent:``: the common indentation removed, or ``width`` characters."""
    if not width:
        return textwrap.dedent(text)
    return "\n".join(line[int(width) :] for line in text.split("\n"))


def read_included(path: Path, options: dict[str, str], page: Page) -> str:
    """The text a ``literalinclude`` shows, filtered in Sphinx's order: pyobject, start-after,
    end-before, lines, dedent."""
    if not path.is_file():
        raise page.error(f"included file {path} does not exist")
    text = path.read_text()
    try:
        text = python_object(text, options["pyobject"]) if "pyobject" in options else text
        text = between_markers(text, options)
    except KeyError as err:
        raise page.error(f"{path.name}: {err.args[0]}") from None
    if "lines" in options:
        lines = text.split("\n")
        text = "\n".join(lines[i] for i in parse_lines(options["lines"], len(lines))) + "\n"
    return dedent(text, options["dedent"]) if "dedent" in options else text


def include_block(name: str, arg: str, body: list[str], page: Page) -> list[str]:
    """A ``literalinclude`` or ``include``: the file's text, in a fenced code block (an
    ``include`` of a Markdown file is inlined as Markdown instead)."""
    options, _ = split_options(body)
    unknown = set(options) - INCLUDE_OPTIONS - COSMETIC
    if unknown:
        raise page.error(f"{name} option(s) {sorted(unknown)} are not supported")
    path = page.resolve(arg.strip())
    text = read_included(path, options, page)
    literal = name == "literalinclude" or "literal" in options or "code" in options
    if not literal and path.suffix == ".md":
        return convert_markdown(text, page).split("\n")
    language = options.get("language") or options.get("code") or LANGUAGES.get(path.suffix, "")
    caption = [f"*{options['caption']}*", ""] if options.get("caption") else []
    return caption + fenced(text, language)


def inline_html(markdown: str) -> str:
    """A one-line title for an HTML tag: escaped, with ``code`` and **bold** kept."""
    escaped = html.escape(markdown, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def admonition_block(name: str, arg: str, body: list[str], page: Page) -> list[str]:
    """A bold title line and the converted body, as one blockquote."""
    _, rest = split_options(body)
    title = ADMONITIONS[name]
    if name == "admonition":
        title = arg.strip() or "Note"
    elif arg.strip():
        rest = [arg.strip(), *rest]
    inner = convert_markdown("\n".join(rest), page).split("\n")
    quoted = [f"> {line}" if line.strip() else ">" for line in inner]
    return [f"> **{convert_line(title, page)}**", ">", *quoted]


def toggle_block(name: str, arg: str, body: list[str], page: Page) -> list[str]:
    """A collapsed ``<details>`` with the title as its ``<summary>``."""
    _, rest = split_options(body)
    summary = inline_html(convert_line(arg.strip(), page) or "") or TOGGLES[name]
    inner = convert_markdown("\n".join(rest), page)
    return ["<details>", f"<summary>{summary}</summary>", "", inner, "", "</details>"]


def code_block(name: str, arg: str, body: list[str], page: Page) -> list[str]:
    """``{code-block} python`` and ``{math}``: a plain fence, or display math."""
    _, rest = split_options(body)
    if name == "math":
        return ["$$", *rest, "$$"]
    return fenced("\n".join(rest), arg.strip())


def render_directive(name: str, arg: str, body: list[str], page: Page) -> list[str]:
    """A MyST directive as plain Markdown lines; ColabError for one this module does not know."""
    if name in ADMONITIONS:
        return admonition_block(name, arg, body, page)
    if name in TOGGLES:
        return toggle_block(name, arg, body, page)
    if name in ("literalinclude", "include"):
        return include_block(name, arg, body, page)
    if name in ("code-block", "code", "sourcecode", "math"):
        return code_block(name, arg, body, page)
    if name == "bibliography":
        return bibliography_block(page)
    raise page.error(
        f"directive {{{name}}} cannot be shown in Colab (convert it in tools/colab.py)"
    )


# --------------------------------------------------------------------------- Markdown blocks


def closing_line(lines: list[str], start: int, fence: str) -> int:
    """Index of the line that closes ``fence`` opened before ``start`` (the same character, at
    least as long, nothing else); ``len(lines)`` when none does, as in CommonMark."""
    close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    return next((i for i in range(start, len(lines)) if close.match(lines[i])), len(lines))


def convert_markdown(text: str, page: Page) -> str:
    """One Markdown cell's MyST turned into Markdown that Colab (and GitHub) render.

    Plain code fences are copied untouched; directive fences (```` ```{name} ```` or
    ``:::{name}``) are rendered by :func:`render_directive`; other lines go through
    :func:`convert_line`.
    """
    lines, out, index = text.split("\n"), [], 0
    while index < len(lines):
        line = lines[index]
        directive, code = DIRECTIVE.match(line), CODE_FENCE.match(line)
        if directive:
            end = closing_line(lines, index + 1, directive["fence"])
            body = [s[len(directive["indent"]) :] for s in lines[index + 1 : end]]
            out += render_directive(directive["name"], directive["arg"], body, page)
        elif code:
            end = closing_line(lines, index + 1, code["fence"])
            out += lines[index : end + 1]
        else:
            end = index
            if (converted := convert_line(line, page)) is not None:
                out.append(converted)
        index = end + 1
    return "\n".join(out)


# ------------------------------------------------------------------------------- notebooks


def is_setup_cell(cell) -> bool:
    """The Colab setup cell: code that checks for ``google.colab`` and pip-installs idlmam."""
    source = cell.get("source", "")
    return (
        cell.get("cell_type") == "code"
        and "google.colab" in source
        and "pip" in source
        and "idlmam" in source
    )


def setup_first(cells: list, page: Page) -> list:
    """``cells`` with the Colab setup cell moved to the front; ColabError when there is none."""
    index = next((i for i, cell in enumerate(cells) if is_setup_cell(cell)), None)
    if index is None:
        raise page.error("no Colab setup cell (code that pip-installs idlmam under google.colab)")
    return [cells[index], *cells[:index], *cells[index + 1 :]]


def check_pin(requirement: str) -> str:
    """``requirement`` if it names one exact build of idlmam, else ColabError saying why.

    Exact: a release (``idlmam[tune]==0.2.1``), a commit of a git repository
    (``idlmam[tune] @ git+https://github.com/o/r@<40 hex digits>``) or a wheel file
    (``idlmam[tune] @ file:///.../idlmam-0.2.1-py3-none-any.whl``); a branch, a tag that can
    move, a range or no version at all are refused.

    Example:
        >>> check_pin("idlmam[tune]==0.2.1")
        'idlmam[tune]==0.2.1'
    """
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as err:
        raise ColabError(f"the pin {requirement!r} is not a pip requirement: {err}") from None
    specs = list(parsed.specifier)
    exact = (
        parsed.url is None
        and len(specs) == 1
        and specs[0].operator == "=="
        and re.fullmatch(r"\d+\.\d+\.\d+", specs[0].version)
    ) or (
        parsed.url is not None
        and (
            re.fullmatch(r"git\+https://\S+@[0-9a-f]{40}", parsed.url)
            or re.fullmatch(r"file:///\S+\.whl", parsed.url)
        )
    )
    if parsed.name != "idlmam" or "tune" not in parsed.extras or not exact:
        raise ColabError(
            f"the pin {requirement!r} does not name one build of idlmam[tune]: give "
            "'idlmam[tune]==X.Y.Z' (a release), 'idlmam[tune] @ git+<repository URL>@<commit "
            "sha>' or 'idlmam[tune] @ file:///<path>.whl'"
        )
    return requirement


def pin_of(notebook) -> str:
    """The requirement the notebook's Colab setup cell installs; ColabError when not one."""
    setup = next((cell for cell in notebook.cells if is_setup_cell(cell)), None)
    found = SETUP_REQUIREMENT.findall(setup.source) if setup is not None else []
    if len(found) != 1:
        raise ColabError(
            f"expected one quoted idlmam[...] requirement in the setup cell, got {found}"
        )
    return found[0][1]


def pin_problems(paths: list[Path], pin: str) -> list[str]:
    """One line for each notebook in ``paths`` that does not install exactly ``pin``."""
    import nbformat

    problems = []
    for path in paths:
        try:
            found = pin_of(nbformat.read(path, as_version=4))
        except ColabError as err:
            problems.append(f"{path}: {err}")
            continue
        if found != pin:
            problems.append(f"{path} installs {found!r}, not {pin!r}")
    return problems


def _pinned(cell, pin: str):
    cell = copy.deepcopy(cell)
    matches = SETUP_REQUIREMENT.findall(cell.source)
    if len(matches) != 1:
        raise ColabError(
            f"expected one quoted idlmam[...] requirement in the setup cell, got {matches}"
        )
    cell.source = SETUP_REQUIREMENT.sub(lambda m: m["quote"] + pin + m["quote"], cell.source)
    return cell


def convert_notebook(notebook, page: Page, pin: str | None = None):
    """A copy of an executed notebook ready for Colab (see the module's docstring).

    ``page.glue`` should hold the build's saved glue values; values the notebook still carries
    as hidden outputs are added (:func:`glue_values`) before those outputs are dropped. With
    ``pin`` (checked by :func:`check_pin`), the setup cell installs it.
    """
    notebook = copy.deepcopy(notebook)
    page = Page(page.name, page.root, glue_values(notebook, page.glue))
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "markdown":
            try:
                cell.source = convert_markdown(cell.source, page)
            except ColabError as err:
                raise ColabError(f"{err} (Markdown cell {number})") from None
        elif cell.cell_type == "code":
            cell.outputs = [out for out in cell.get("outputs", []) if not is_glue_only(out)]
    notebook.cells = setup_first(notebook.cells, page)
    if pin is not None:
        try:
            notebook.cells[0] = _pinned(notebook.cells[0], check_pin(pin))
        except ColabError as err:
            raise page.error(str(err)) from None
    notebook.metadata.pop("jupytext", None)  # no paired .py beside the Colab copy
    return notebook


# ---------------------------------------------------------------------------------- a build


def executed_notebooks(build: Path, pages: list[str]) -> dict[str, Path]:
    """Each page's executed notebook in ``build/jupyter_execute``; ColabError if any is missing."""
    executed = build / "jupyter_execute"
    if not executed.is_dir():
        raise ColabError(f"no executed build in {executed}: run `make book` first")
    found = {page: executed / f"{page}.ipynb" for page in pages}
    missing = [page for page, path in found.items() if not path.is_file()]
    if missing:
        raise ColabError(f"{executed} lacks {', '.join(missing)}: run `make book` first")
    return found


def convert_build(
    build: Path, out: Path, root: Path = Path("."), pin: str | None = None
) -> list[Path]:
    """Write the Colab notebook of every notebook page of ``root/_toc.yml``, made from the
    executed build in ``build``, to ``out/<page>.ipynb``, each installing ``pin`` if given
    (else what its source installs); returns the paths written.

    Raises:
        ColabError: the build is missing or incomplete, or a page holds markup this module
            cannot convert (the message names the page and the cell).
    """
    import nbformat

    written = []
    for page, path in executed_notebooks(build, notebook_pages(root)).items():
        saved = path.with_name(path.stem + ".glue.json")
        glue = json.loads(saved.read_text()) if saved.is_file() else {}
        notebook = convert_notebook(nbformat.read(path, as_version=4), Page(page, root, glue), pin)
        target = out / f"{page}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python tools/colab.py [--build _build] [--out _build/colab] [--root .] [--pin REQ]``."""
    parser = argparse.ArgumentParser(prog="tools/colab.py", description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path, default=Path("_build"), help="the executed build")
    parser.add_argument("--out", type=Path, default=None, help="default: <build>/colab")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book's source root")
    parser.add_argument(
        "--pin",
        default=None,
        help="the requirement every setup cell installs (default: the source's, the latest "
        "release): idlmam[tune]==X.Y.Z, idlmam[tune] @ git+URL@SHA or @ file:///...whl",
    )
    args = parser.parse_args(argv)
    try:
        pin = check_pin(args.pin) if args.pin else None
        written = convert_build(args.build, args.out or args.build / "colab", args.root, pin)
        problems = pin_problems(written, pin) if pin else []
    except ColabError as err:
        print(f"tools/colab.py: {err}", file=sys.stderr)
        return 1
    if problems:
        print("tools/colab.py:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    if pin:
        print(f"every setup cell installs {pin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
