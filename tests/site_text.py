"""What a reader sees on a built page that should not be there: raw MyST, raw TeX, Python reprs.

The browser test (``tests/test_site.py``) checks figures, formulas and requests; it cannot see
that a dropdown failed to parse and printed its fence, that a glued sentence shows ``$S = 3$``,
or that a cell printed ``np.float64(0.83)``. This module reads a page's HTML (no browser) and
returns each such problem with a snippet of the text around it. ``tests/test_site_text.py``
runs it over every page of a built site.

How the HTML marks what: MyST's ``dollarmath`` writes each formula as
``<span class="math notranslate nohighlight">\\(...\\)</span>`` (or a ``div.math`` for a display),
and the page tells MathJax to typeset only elements of class ``math`` (``processHtmlClass``);
a notebook page's section is even marked ``tex2jax_ignore mathjax_ignore``. So TeX outside an
element of class ``math`` is shown as typed. Glued text (``{glue:text}``) lands in a
``span.pasted-text`` as plain text, never typeset. A code cell is a ``div.cell`` holding a
``div.cell_input`` (the source) and a ``div.cell_output``; in it, the value of the cell's last
expression is a ``div.output.text_plain`` (or ``text_html``), printed text a ``div.output.stream``.

The rules (``RULES`` names them):

- ``myst``: MyST that did not render: a directive or role name in braces (``{dropdown}``,
  ``{glue:text}``, ``{literalinclude}``...), a directive option such as ``:pyobject:``, or a
  backtick fence (three or more backticks) in the text;
- ``tex``: TeX outside rendered maths: ``$...$``, ``$$``, ``\\(...\\)``, ``\\[...\\]``;
- ``repr``: Python reprs: ``np.float64(``, ``dtype: ``, ``<Figure size``, ``array([``, a pandas
  Series footer (``Name: ..., dtype``), ``<NA>`` outside a table, an object's default repr
  (``<... at 0x...>``), a dict shown as a cell's value;
- ``table``: a table cell that says only ``None``, ``NaN``, ``nan``, ``NaT`` or ``<NA>``, in an
  HTML table or in a table printed as text;
- ``glue``: a cell whose last statement is ``glue(...)`` and that shows a value (``glue`` returns
  what it glued).

Code is left alone where it is code: a cell's source is not scanned at all, and literal code
(inline ``<code>``, code blocks that are not cell outputs) is not scanned for TeX or reprs. It is
still scanned for MyST, since a broken fence turns the Markdown after it into a code block.

Example:
    >>> [p.rule for p in problems('<p>Here <span class="pasted-text">$S = 3$</span>.</p>')]
    ['tex']
    >>> problems('<p>Here <span class="math notranslate nohighlight">\\\\(S = 3\\\\)</span>.</p>')
    []
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["RULES", "Problem", "check_site", "problems"]

RULES = ("myst", "tex", "repr", "table", "glue")

# ------------------------------------------------------------------------------- the patterns

# directive and role names a page of this book may use (MyST, MyST-NB, sphinx-design, Sphinx)
_MYST_NAMES = (
    "admonition|attention|caution|danger|error|hint|important|note|seealso|tip|warning|"
    "dropdown|card|grid|grid-item|grid-item-card|tab-set|tab-item|toggle|margin|sidebar|"
    "epigraph|div|figure|image|math|eq|ref|numref|doc|term|abbr|sub|sup|download|"
    "code|code-block|code-cell|literalinclude|include|raw|table|list-table|csv-table|"
    "glue|glue:text|glue:md|glue:any|glue:figure|glue:math|index|cite|bibliography|contents"
)
_MYST = [
    (re.compile(r"\{(?:" + _MYST_NAMES + r")\}"), "a MyST directive or role in braces"),
    (
        re.compile(
            r"(?m)(?:^|\s):(?:pyobject|language|lines|emphasize-lines|start-after|end-before|"
            r"dedent|linenos|caption|name|class|open|alt|width|align|tags):\s"
        ),
        "a directive option",
    ),
    (re.compile(r"`{3,}"), "a backtick fence"),
]
# $...$ as MyST's dollarmath reads it: no space just inside the dollars, no digit just after
_DOLLARS = re.compile(r"(?<![\\$])\$(?=[^\s$])[^$\n]*?(?<=[^\s\\])\$(?![\d$])")
_TEX = [
    (_DOLLARS, "TeX in dollars"),
    (re.compile(r"\$\$"), "display TeX in dollars"),
    (re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S), "TeX in \\( \\) or \\[ \\]"),
]
_REPR = [
    (re.compile(r"\bnp\.(?:float|int|uint|bool|complex|str)\w*\("), "a NumPy scalar repr"),
    (re.compile(r"\bName: [^\n]*, dtype: \w+"), "a pandas Series footer"),
    (re.compile(r"(?m)^\s*dtype: \w+"), "a Series' dtype line"),
    (re.compile(r"\b(?:array|tensor)\(\["), "an array's repr"),
    (re.compile(r"<Figure size [^>]*>"), "a matplotlib Figure repr"),
    (re.compile(r"(?m)^\s*Text\(-?[\d.]+, -?[\d.]+, "), "a matplotlib Text repr"),
    (re.compile(r"<[\w.]+ (?:object )?at 0x[0-9a-f]+>"), "an object's default repr"),
]
_NA = [(re.compile(r"<NA>"), "pandas' missing value")]  # in a table: the table rule's
_DICT_VALUE = re.compile(r"^\s*\{\s*(?:'[^']*'|\"[^\"]*\"|\d+)\s*:.*\}\s*$", re.S)
_MISSING = {"None", "NaN", "nan", "NaT", "<NA>"}
# a line of a table printed as text: columns separated by two spaces or more
_COLUMNS = re.compile(r"\S(?: {2,}|\t)\S")

_BLOCKS = {
    "p", "li", "dt", "dd", "td", "th", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
    "caption", "figcaption", "blockquote", "summary", "div", "section", "article",
    "table", "tr", "ul", "ol", "dl", "figure", "details", "aside", "main", "body",
}  # fmt: skip
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
_SKIP = {"script", "style", "template", "head", "noscript", "svg", "button", "nav", "title"}


@dataclass(frozen=True)
class Problem:
    """One thing a reader should not see: which rule, what it is, and the text around it."""

    rule: str
    what: str
    snippet: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.what}: {self.snippet}"


# ------------------------------------------------------------------------- a small tree of tags


@dataclass(eq=False)
class _Node:
    tag: str
    classes: frozenset[str]
    parent: _Node | None
    children: list = field(default_factory=list)  # of _Node and str

    def has(self, cls: str) -> bool:
        return cls in self.classes

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, _Node):
                yield from c.iter()


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", frozenset(), None)
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        classes = frozenset((dict(attrs).get("class") or "").split())
        node = _Node(tag, classes, self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):  # close up to the matching tag, if open
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def _parse(html: str) -> _Node:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# ------------------------------------------------------------------------ text, block by block


@dataclass
class _Segment:
    """The text of one block (a paragraph, a table cell, an output...), in pieces: ``plain``
    text, ``math`` (a rendered formula) or ``code`` (inline code)."""

    node: _Node
    output: bool  # inside a cell's output
    code_block: bool  # inside a code block that is not a cell output
    pieces: list[tuple[str, str]] = field(default_factory=list)

    def full(self) -> str:  # what the reader sees, formulas left out
        return "".join(t if kind != "math" else " " * len(t) for kind, t in self.pieces)

    def prose(self) -> str:  # ``full`` with inline code blanked out, character for character
        blank = {"plain": None, "math": " ", "code": "\u2063"}
        return "".join(blank[kind] * len(t) if blank[kind] else t for kind, t in self.pieces)


def _segments(root: _Node) -> list[_Segment]:
    found: list[_Segment] = []

    def walk(node: _Node, seg: _Segment | None, output: bool, code: bool, inline: str):
        for child in node.children:
            if isinstance(child, str):
                if seg is not None and child:
                    seg.pieces.append((inline, child))
                continue
            if child.tag in _SKIP or child.has("cell_input") or child.has("headerlink"):
                continue
            c_output = output or child.has("cell_output") or child.has("output")
            c_code = (code or child.tag == "pre" or any(
                c.startswith("highlight") for c in child.classes)) and not c_output  # fmt: skip
            if child.has("math"):
                if seg is not None:
                    seg.pieces.append(("math", child.text()))
                continue
            if child.tag in _BLOCKS:
                new = _Segment(child, c_output, c_code)
                found.append(new)
                walk(child, new, c_output, c_code, "plain")
                if seg is not None:
                    seg.pieces.append(("plain", "\n"))
                continue
            c_inline = "code" if child.tag in {"code", "kbd", "samp", "tt"} else inline
            walk(child, seg, c_output, c_code, c_inline)

    walk(root, None, False, False, "plain")
    return [s for s in found if any(t.strip() for _, t in s.pieces)]


def _snippet(text: str, start: int, end: int, width: int = 60) -> str:
    left = max(0, start - width)
    right = min(len(text), end + width)
    out = ("..." if left else "") + text[left:right] + ("..." if right < len(text) else "")
    return re.sub(r"\s+", " ", out).strip()


# ------------------------------------------------------------------------------------ the rules


def _matches(rule: str, patterns, text: str, shown_text: str | None = None) -> list[Problem]:
    """One problem per pattern that matches ``text`` (a block's): what matched (each distinct
    match, in order), and the text around the matches, taken from ``shown_text`` (the same
    text, inline code not blanked out) when given."""
    found = []
    for pattern, what in patterns:
        hits = list(pattern.finditer(text))
        if hits:
            shown = list(dict.fromkeys(re.sub(r"\s+", " ", m.group().strip()) for m in hits))
            snippet = _snippet(shown_text or text, hits[0].start(), hits[-1].end())
            found.append(Problem(rule, f"{what} ({', '.join(shown)})", snippet))
    return found


def _main(root: _Node) -> _Node:
    """The page's article (sphinx-book-theme's ``article.bd-article``), else the whole document."""
    for node in root.iter():
        if node.tag == "article" and node.has("bd-article"):
            return node
    return root


def _glue_last(source: str) -> bool:
    """Whether a cell's last statement is a bare call to ``glue`` (or ``something.glue``)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython syntax: fall back to the last line that is not a comment
        lines = [ln for ln in source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        return bool(lines) and re.match(r"(?:\w+\.)*glue\(", lines[-1].strip()) is not None
    if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Call):
        return False
    func = body[-1].value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return name == "glue"


def _cells(main: _Node) -> list[Problem]:
    found = []
    for cell in main.iter():
        if not cell.has("cell"):
            continue
        source = next((n.text() for n in cell.iter() if n.has("cell_input")), "")
        values = [
            n
            for n in cell.iter()
            if n.has("output") and (n.has("text_plain") or n.has("text_html"))
        ]
        if values and _glue_last(source):
            shown = re.sub(r"\s+", " ", values[-1].text()).strip()
            found.append(Problem("glue", "a cell ending with glue(...) shows its value", shown))
        for value in values:
            text = value.text()
            if _DICT_VALUE.match(text):
                found.append(
                    Problem("repr", "a dict shown as a cell's value", _snippet(text, 0, 0))
                )
    return found


def problems(html: str) -> list[Problem]:
    """Every problem on one page (its HTML), in the order of the page."""
    main = _main(_parse(html))
    found: list[Problem] = []
    for seg in _segments(main):
        full, prose = seg.full(), seg.prose()
        if not full.strip():  # formulas only
            continue
        found += _matches("myst", _MYST, full)
        if not seg.code_block:
            found += _matches("tex", _TEX, prose, full)
            found += _matches("repr", _REPR, prose, full)
            if seg.node.tag not in {"td", "th", "pre"}:  # in a table, the table rule's
                found += _matches("repr", _NA, prose, full)
        if seg.node.tag in {"td", "th"} and full.strip() in _MISSING:
            row = seg.node.parent.text() if seg.node.parent else full
            found.append(Problem("table", "a missing value in a table", _snippet(row, 0, 0)))
        if seg.output and seg.node.tag == "pre":
            for line in full.splitlines():
                cells = re.split(r" {2,}|\t", line.strip())
                if _COLUMNS.search(line) and _MISSING & set(cells):
                    found.append(Problem("table", "a missing value in a table", line.strip()))
                else:
                    found += _matches("repr", _NA, line)
    found += _cells(main)
    return _dedupe(found)


def _dedupe(found: list[Problem]) -> list[Problem]:
    """The same problem with the same snippet, reported once."""
    seen, out = set(), []
    for p in found:
        if (p.rule, p.what, p.snippet) not in seen:
            seen.add((p.rule, p.what, p.snippet))
            out.append(p)
    return out


def check_site(site: Path, pages: list[str]) -> dict[str, list[Problem]]:
    """The problems of each page of a built site (``pages`` as in ``_toc.yml``: ``book/02_x``),
    only the pages that have some."""
    report = {}
    for page in pages:
        found = problems((site / f"{page}.html").read_text(encoding="utf-8"))
        if found:
            report[page] = found
    return report
