"""The text of the built pages: no raw MyST, no raw TeX, no Python reprs (``tests/site_text.py``).

The rules are tested on small HTML snippets, each shaped like what Jupyter Book writes: every
rule fails on a bad snippet and passes the good one beside it. Then every page of ``_toc.yml``
on the built site (the ``site`` fixture of ``tests/site_build.py``: the quick build, or
``IDL_SITE``; ``make site-check`` runs this on ``_build/html``) must have no problem at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import site_text
import toc  # tools/toc.py (tests/conftest.py puts tools/ on the path)

ROOT = Path(__file__).resolve().parents[1]

MATH = '<span class="math notranslate nohighlight">\\({}\\)</span>'
GLUED = '<span class="pasted-text">{}</span>'


def cell(source: str, output: str = "", kind: str = "text_plain") -> str:
    """A code cell as MyST-NB writes it: its source, then (if any) one output of ``kind``."""
    html = (
        '<div class="cell docutils container"><div class="cell_input docutils container">'
        f'<div class="highlight-ipython3 notranslate"><div class="highlight"><pre>{source}'
        "</pre></div></div></div>"
    )
    if output:
        html += (
            '<div class="cell_output docutils container">'
            f'<div class="output {kind} highlight-myst-ansi notranslate">'
            f'<div class="highlight"><pre><span></span>{output}</pre></div></div></div>'
        )
    return html + "</div>"


def table(*rows: tuple[str, ...]) -> str:
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="dataframe"><tbody>{body}</tbody></table>'


# (rule, a snippet the rule must flag, the same thing done right)
CASES = {
    "dropdown title with backticks": (
        "myst",
        "<p>````{dropdown} The source of <code>train_network</code></p>",
        '<details class="sd-dropdown"><summary>The source of train_network</summary></details>',
    ),
    "a fence shown as text": (
        "myst",
        "<p>```python\nx = 1\n```</p>",
        '<div class="highlight-python notranslate"><pre>x = 1</pre></div>',
    ),
    "glue role not rendered": (
        "myst",
        "<p>It ends at {glue:text}<code>final</code>.</p>",
        f"<p>It ends at {GLUED.format('0.85')}.</p>",
    ),
    "bare glue role": (
        "myst",
        "<p>See {glue}<code>fig</code>.</p>",
        "<p>See the figure.</p>",
    ),
    "literalinclude swallowed into a code block": (
        "myst",
        '<div class="highlight-default notranslate"><pre>```{literalinclude} ../idlmam/x.py\n'
        ":pyobject: f\n```</pre></div>",
        '<div class="highlight-python notranslate"><pre>def f():\n    pass</pre></div>',
    ),
    "a directive option in the text": (
        "myst",
        "<p>the source\n:pyobject: SnapshotEnsemble\n</p>",
        "<p>the source of <code>SnapshotEnsemble</code></p>",
    ),
    "TeX in a glued sentence": (
        "tex",
        "<p>Here " + GLUED.format("$S = 3$ gives 4 drops, each by $\\gamma = 0.316$") + ".</p>",
        f"<p>Here {GLUED.format('S = 3 gives 4 drops, each by γ = 0.316')}.</p>",
    ),
    "TeX in a printed output": (
        "tex",
        cell("print(story)", "with $T_{max} = 4$ the dips fall at epochs 4, 12", "stream"),
        cell("print(story)", "with T_max = 4 the dips fall at epochs 4, 12", "stream"),
    ),
    "TeX in parentheses outside maths": (
        "tex",
        "<p>the rate \\(\\eta_0\\) halves</p>",
        "<p>the rate " + MATH.format("\\eta_0") + " halves</p>",
    ),
    "display TeX outside maths": (
        "tex",
        "<p>$$\\eta_t = \\eta_0 \\gamma^t$$</p>",
        '<div class="math notranslate nohighlight">\\[\\eta_t = \\eta_0 \\gamma^t\\]</div>',
    ),
    "NumPy scalar repr": (
        "repr",
        cell("print(f'{decay}')", "{0.01: np.float64(0.985), 0.1: np.float64(0.859)}", "stream"),
        cell("print(f'{decay}')", "weight decay 0.01: 0.985; 0.1: 0.859", "stream"),
    ),
    "pandas Series repr": (
        "repr",
        cell("final", "constant lr=0.1   -1.089\nName: 120, dtype: float64"),
        cell("final", "constant lr=0.1   -1.089"),
    ),
    "unnamed Series repr": (
        "repr",
        cell("steps", "SGD    211\nAdam    54\ndtype: int64"),
        cell("steps", "SGD    211\nAdam    54"),
    ),
    "Figure repr": (
        "repr",
        cell("fig", "&lt;Figure size 640x480 with 1 Axes&gt;"),
        cell("fig", ""),
    ),
    "NumPy array repr": (
        "repr",
        cell("x", "array([0.5, 0.25])"),
        cell("x", "0.5, 0.25"),
    ),
    "pandas NA in prose": (
        "repr",
        f"<p>the step was {GLUED.format('&lt;NA&gt;')}</p>",
        f"<p>the step was {GLUED.format('never reached')}</p>",
    ),
    "a dict as a cell's value": (
        "repr",
        cell("valley_steps", "{'SGD': 211, 'momentum 0.7': 54}"),
        cell("valley_steps", "SGD: 211 steps; momentum 0.7: 54 steps", "stream"),
    ),
    "None in an HTML table": (
        "table",
        table(("SGD", "None", "True")),
        table(("SGD", "-", "True")),
    ),
    "NaN in an HTML table": (
        "table",
        table(("exploding", "NaN")),
        table(("exploding", "diverged")),
    ),
    "NA in an HTML table": (
        "table",
        table(("noisy", "&lt;NA&gt;", "0.202")),
        table(("noisy", "not reached", "0.202")),
    ),
    "NaN in a table printed as text": (
        "table",
        cell("print(frame)", "          lr  steps\nSGD      0.1    NaN", "stream"),
        cell("print(frame)", "          lr  steps\nSGD      0.1      -", "stream"),
    ),
    "a cell ending with glue": (
        "glue",
        cell('glue("n_seeds", len(SEEDS), display=False)', "3"),
        cell('glue("n_seeds", len(SEEDS), display=False)\nSEEDS[:2]', "[0, 1]"),
    ),
    "a cell ending with a multi-line glue": (
        "glue",
        cell('x = 1\nnb.glue(\n    "x", x,\n    display=False,\n)', "1"),
        cell('x = 1\nnb.glue(\n    "x", x,\n    display=False,\n)'),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_rule_flags_the_bad_snippet_and_passes_the_good_one(case):
    rule, bad, good = CASES[case]
    found = site_text.problems(bad)
    assert [p.rule for p in found] and {p.rule for p in found} == {rule}, found
    assert site_text.problems(good) == []


def test_rendered_maths_and_code_are_left_alone():
    html = (
        "<p>With " + MATH.format("\\eta = 0.1") + " and <code>f'${x}$'</code>, "
        "nothing is raw.</p>"
        '<div class="math notranslate nohighlight">\\[a^2 + b^2\\]</div>'
        + cell('ax.set_xlabel("$\\\\eta$")  # {glue:text} in code is code\nglue("x", 1)')
        + '<div class="highlight-python notranslate"><pre>label = "$\\eta_0$"</pre></div>'
        + "<p>It cost $5 and $10, and None of the runs failed.</p>"
    )
    assert site_text.problems(html) == []


def test_only_the_article_is_read():
    """The theme's navigation and scripts are not the page's text."""
    html = (
        "<html><head><script>var x = '$a$';</script></head><body>"
        "<nav><p>{dropdown}</p></nav>"
        '<article class="bd-article"><p>clean</p></article>'
        "<footer><p>$raw$</p></footer></body></html>"
    )
    assert site_text.problems(html) == []


def test_a_problem_names_what_it_found_and_shows_the_text_around_it():
    (problem,) = site_text.problems(
        "<p>Here " + GLUED.format("$S = 3$ gives 4 drops, each by $\\gamma = 0.316$") + ".</p>"
    )
    assert problem.rule == "tex"
    assert "$S = 3$" in problem.what and "$\\gamma = 0.316$" in problem.what
    assert problem.snippet.startswith("Here $S = 3$ gives 4 drops")
    assert str(problem).startswith("[tex] TeX in dollars")


def test_check_site_reports_only_the_pages_with_problems(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "good.html").write_text("<p>fine</p>")
    (tmp_path / "book" / "bad.html").write_text("<p>$x$</p>")
    report = site_text.check_site(tmp_path, ["book/good", "book/bad"])
    assert list(report) == ["book/bad"]


def test_the_built_pages_show_no_raw_myst_tex_or_reprs(site):
    """Every page of the table of contents on the built site (quick, or IDL_SITE)."""
    report = site_text.check_site(site, toc.pages(ROOT))
    lines = [f"{page}: {problem}" for page, found in report.items() for problem in found]
    if lines:
        pytest.fail(
            f"{len(lines)} problems a reader would see on {site}:\n" + "\n".join(lines),
            pytrace=False,
        )
