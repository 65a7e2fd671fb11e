"""The Colab notebooks of ``make colab`` (tools/colab.py): numbers and plain Markdown, no MyST.

Each conversion is checked on a small hand-written notebook against the exact Markdown it must
give; then the quick build that tests/test_site.py makes (the ``executed_build`` fixture of
tests/site_build.py, built once per session) is converted whole, and every page must come out
with no MyST syntax left in its Markdown, every output of the build still there, and the Colab
setup cell first.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("colab", ROOT / "tools" / "colab.py")
colab = importlib.util.module_from_spec(spec)
sys.modules["colab"] = colab  # its dataclasses look their module up there
spec.loader.exec_module(colab)
ColabError, Page, convert_markdown = colab.ColabError, colab.Page, colab.convert_markdown
convert_notebook, format_plain_text = colab.convert_notebook, colab.format_plain_text
SETUP = (
    'if "google.colab" in sys.modules:\n'
    '    subprocess.run([sys.executable, "-m", "pip", "install", "idlmam[tune]==0.0.1"])'
)
SHA = "0123456789abcdef0123456789abcdef01234567"
# MyST that Colab would show as raw text
LEFTOVER = re.compile(
    r"\{glue|\{(note|warning|tip|important|admonition|dropdown|ref|numref|doc|eq|cite)\}"
    r"|```\{|:::\{|literalinclude|^\([\w.:-]+\)=\s*$",
    re.M,
)


def page(glue: dict | None = None, root: Path = ROOT, name: str = "book/p") -> Page:
    """A page with glued values given as ``{name: text/plain}``."""
    data = {key: {"data": {"text/plain": value}} for key, value in (glue or {}).items()}
    return Page(name, root, data)


def glue_output(name: str, text_plain: str):
    """The hidden display ``glue(name, value, display=False)`` leaves in a fresh execution."""
    prefix = "application/papermill.record/"
    return new_output(
        "display_data",
        data={prefix + "text/plain": text_plain},
        metadata={"scrapbook": {"name": name, "mime_prefix": prefix}},
    )


def leftover_myst(notebook) -> list[str]:
    """Each MyST construct left in a Markdown cell, as ``cell N: <match>``."""
    return [
        f"cell {number}: {match.group(0)!r}"
        for number, cell in enumerate(notebook.cells, start=1)
        if cell.cell_type == "markdown"
        for match in LEFTOVER.finditer(cell.source)
    ]


# ------------------------------------------------------------------------------------ glue


def test_glue_roles_with_and_without_a_format_become_the_value():
    text = (
        "Accuracy {glue:text}`acc:.3f` ({glue:text}`gap:+.1%`), best **{glue:text}`name`**,"
        " {glue:}`acc` and {glue}`drops` drops."
    )
    glued = {"acc": "0.87654", "gap": "0.0123", "name": "'SGD'", "drops": "4"}
    assert convert_markdown(text, page(glued)) == (
        "Accuracy 0.877 (+1.2%), best **SGD**, 0.87654 and 4 drops."
    )


@pytest.mark.parametrize(
    ("text", "spec"),
    [("0.87654", ".3f"), ("'SGD'", ""), ("3", "d"), ("0.5", ".0%"), ("12.0", ".0f"), ("x y", "")],
)
def test_glue_formats_as_myst_nb_does(text, spec):
    from myst_nb.core.variables import format_plain_text as myst_format

    assert format_plain_text(text, spec) == myst_format(text, spec)


def test_glue_outputs_are_read_then_dropped_and_other_outputs_kept():
    code = new_code_cell("glue('acc', 0.9)\nprint('hi')", execution_count=3)
    code.outputs = [new_output("stream", name="stdout", text="hi\n"), glue_output("acc", "0.9")]
    notebook = new_notebook(
        cells=[new_markdown_cell("It ends at {glue:text}`acc:.2f`."), new_code_cell(SETUP), code]
    )
    converted = convert_notebook(notebook, page())
    assert converted.cells[1].source == "It ends at 0.90."
    assert [out.output_type for out in converted.cells[2].outputs] == ["stream"]
    assert len(notebook.cells[2].outputs) == 2, "the input notebook must not change"


def test_a_glued_picture_becomes_an_inline_image():
    glued = Page("book/p", ROOT, {"fig": {"data": {"image/png": "iVBO\n", "text/plain": "<F>"}}})
    assert convert_markdown("{glue}`fig` and {glue:text}`fig`", glued) == (
        "![fig](data:image/png;base64,iVBO) and <F>"
    )


def test_a_missing_glued_value_names_the_page_and_the_value():
    with pytest.raises(ColabError, match=r"book/p: no glued value named 'acc'"):
        convert_markdown("{glue:text}`acc:.3f`", page())


# ----------------------------------------------------------------- admonitions and dropdowns


def test_an_admonition_becomes_a_bold_title_and_a_blockquote():
    text = "Before.\n\n```{note}\nIt was {glue:text}`n` times faster.\n\nSecond line.\n```\nAfter."
    assert convert_markdown(text, page({"n": "13"})) == (
        "Before.\n\n> **Note**\n>\n> It was 13 times faster.\n>\n> Second line.\nAfter."
    )


def test_an_admonition_with_a_title_and_options_in_a_colon_fence():
    text = ":::{admonition} Cosine's friends\n:class: tip\n\nSnapshots.\n:::"
    assert convert_markdown(text, page()) == "> **Cosine's friends**\n>\n> Snapshots."


def test_a_dropdown_becomes_details_with_its_title_as_summary():
    text = "````{dropdown} The source of `train_network`\n:open:\nSee {ref}`the loop <sec-loop>`.\n````"
    assert convert_markdown(text, page()) == (
        "<details>\n<summary>The source of <code>train_network</code></summary>\n\n"
        "See the loop.\n\n</details>"
    )


# ------------------------------------------------------------------------- included source

MODULE = '''"""A module."""


def helper():
    return 1


@decorated
def target(x):
    """Doubles."""
    return 2 * x


class Box:
    def size(self):
        return 3
'''


@pytest.fixture
def book(tmp_path):
    """A source root with ``pkg/mod.py``; the page ``book/p`` sits one folder below it."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(MODULE)
    return tmp_path


def test_literalinclude_with_pyobject_inlines_the_object_decorators_included(book):
    text = "```{literalinclude} ../pkg/mod.py\n:pyobject: target\n:language: python\n```"
    assert convert_markdown(text, page(root=book)) == (
        '```python\n@decorated\ndef target(x):\n    """Doubles."""\n    return 2 * x\n```'
    )


def test_literalinclude_of_a_method_with_lines_and_dedent(book):
    text = "```{literalinclude} ../pkg/mod.py\n:pyobject: Box.size\n:lines: 2-\n:dedent:\n```"
    assert convert_markdown(text, page(root=book)) == "```python\nreturn 3\n```"


def test_literalinclude_inside_a_dropdown_in_a_colon_fence(book):
    text = (
        ":::{dropdown} Solution\nThe helper:\n```{literalinclude} ../pkg/mod.py\n"
        ":pyobject: helper\n```\n:::"
    )
    assert convert_markdown(text, page(root=book)) == (
        "<details>\n<summary>Solution</summary>\n\nThe helper:\n"
        "```python\ndef helper():\n    return 1\n```\n\n</details>"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (":pyobject: missing", "defines no 'missing'"),
        (":tab-width: 4", r"option\(s\) \['tab-width'\] are not supported"),
        (":start-after: nowhere", "'nowhere' not found"),
    ],
)
def test_literalinclude_refuses_what_it_cannot_honour(book, options, message):
    text = f"```{{literalinclude}} ../pkg/mod.py\n{options}\n```"
    with pytest.raises(ColabError, match=message):
        convert_markdown(text, page(root=book))


def test_an_included_markdown_file_is_inlined_as_markdown(book):
    (book / "pkg" / "notes.md").write_text("(notes)=\nSee {doc}`the intro <intro>`.\n")
    assert convert_markdown("```{include} ../pkg/notes.md\n```", page(root=book)) == (
        "See the intro.\n"
    )


def test_an_included_file_that_does_not_exist_is_an_error(book):
    with pytest.raises(ColabError, match="does not exist"):
        convert_markdown("```{literalinclude} ../pkg/gone.py\n```", page(root=book))


# --------------------------------------------------------------- roles, labels and the rest


def test_cross_reference_roles_become_plain_text():
    text = (
        "(sec-x)=\n## Title\n% a MyST comment\n"
        "See {ref}`the full build <measurements-full-build>`, {ref}`sec-x`,\n"
        "{numref}`Figure %s <fig-a>`, {doc}`Plateau <ex1_plateau>`, {eq}`eq-sgd`,"
        " {cite}`smith2015cyclical,loshchilov2017sgdr` and {math}`\\eta_0`.\n$$x = 1$$ (eq-sgd)"
    )
    assert convert_markdown(text, page()) == (
        "## Title\nSee the full build, sec-x,\nFigure fig-a, Plateau, (eq-sgd),"
        " (Smith, 2015; Loshchilov and Hutter, 2017) and $\\eta_0$.\n$$x = 1$$"
    )


def test_plain_code_fences_are_left_alone():
    text = "````markdown\n```{note}\n{glue:text}`x`\n```\n````"
    assert convert_markdown(text, page()) == text


def test_an_unknown_directive_is_refused_with_the_page_and_cell():
    notebook = new_notebook(
        cells=[new_code_cell(SETUP), new_markdown_cell("```{figure} a.png\n```")]
    )
    with pytest.raises(ColabError, match=r"book/p: directive \{figure\}.*\(Markdown cell 2\)"):
        convert_notebook(notebook, page())


def test_the_setup_cell_moves_first_and_its_absence_is_an_error():
    cells = [new_markdown_cell("# Title"), new_code_cell("import torch"), new_code_cell(SETUP)]
    converted = convert_notebook(new_notebook(cells=cells), page())
    assert [cell.source for cell in converted.cells] == [SETUP, "# Title", "import torch"]
    with pytest.raises(ColabError, match="no Colab setup cell"):
        convert_notebook(new_notebook(cells=cells[:2]), page())


def test_the_leftover_check_sees_raw_myst():
    """The whole-build test below relies on this check: it must flag what Colab shows raw."""
    raw = new_notebook(
        cells=[
            new_markdown_cell("```{note}\nx\n```"),
            new_markdown_cell(":::{dropdown} S\n{glue:text}`a`\n:::\n(lbl)=\n{doc}`p`"),
        ]
    )
    assert leftover_myst(raw) == [
        "cell 1: '```{'",
        "cell 2: ':::{'",
        "cell 2: '{glue'",
        "cell 2: '(lbl)='",
        "cell 2: '{doc}'",
    ]


# ------------------------------------------------------------------------------- the pin


@pytest.mark.parametrize(
    "pin",
    [
        "idlmam[tune]==0.2.1",
        f"idlmam[tune] @ git+https://github.com/o/r@{SHA}",
        "idlmam[tune] @ file:///tmp/dist/idlmam-0.2.1-py3-none-any.whl",
    ],
)
def test_a_pin_of_one_build_is_accepted(pin):
    assert colab.check_pin(pin) == pin


@pytest.mark.parametrize(
    "pin",
    [
        "idlmam[tune]",  # whatever is newest
        "idlmam[tune]>=0.2",  # a range
        "idlmam[tune]==0.2",  # not X.Y.Z
        "idlmam[tune] @ git+https://github.com/o/r@main",  # a branch moves
        "idlmam[tune] @ git+https://github.com/o/r@v0.2.1",  # so can a tag
        "idlmam==0.2.1",  # without the extra the pages need
        "other[tune]==0.2.1",
        "idlmam[tune] @@ nonsense",
    ],
)
def test_a_pin_that_can_move_or_is_not_idlmam_is_refused(pin):
    with pytest.raises(ColabError, match="pin"):
        colab.check_pin(pin)


def test_the_setup_cell_installs_the_pin_it_was_given():
    cells = [new_markdown_cell("# Title"), new_code_cell(SETUP)]
    pin = f"idlmam[tune] @ git+https://github.com/o/r@{SHA}"
    converted = convert_notebook(new_notebook(cells=cells), page(), pin)
    assert converted.cells[0].source == SETUP.replace("idlmam[tune]==0.0.1", pin)
    assert colab.pin_of(converted) == pin
    assert (
        colab.pin_of(convert_notebook(new_notebook(cells=cells), page())) == "idlmam[tune]==0.0.1"
    )
    with pytest.raises(ColabError, match="book/p: the pin 'idlmam' does not"):
        convert_notebook(new_notebook(cells=cells), page(), "idlmam")


# ---------------------------------------------------------------------- the command line


def mini_book(tmp_path: Path) -> Path:
    """A book of one notebook page, ``book/p``, with an executed build in ``_build``."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n  - file: book/p\n"
    )
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "book" / "p.py").write_text("# %%\n")
    executed = tmp_path / "_build" / "jupyter_execute" / "book"
    executed.mkdir(parents=True)
    plot = new_code_cell("plot()", outputs=[new_output("stream", name="stdout", text="ok\n")])
    notebook = new_notebook(
        cells=[new_markdown_cell("Acc {glue:text}`acc:.2f`"), new_code_cell(SETUP), plot],
        metadata={"jupytext": {"formats": "ipynb,py:percent"}},
    )
    nbformat.write(notebook, executed / "p.ipynb")
    glue = {"acc": {"output_type": "display_data", "data": {"text/plain": "0.8765"}}}
    (executed / "p.glue.json").write_text(json.dumps(glue))
    return tmp_path


def test_main_writes_one_notebook_per_notebook_page(tmp_path, capsys):
    root = mini_book(tmp_path)
    build, out = root / "_build", root / "_build" / "colab"
    assert colab.main(["--build", str(build), "--out", str(out), "--root", str(root)]) == 0
    assert capsys.readouterr().out.split() == [str(out / "book" / "p.ipynb")]
    written = nbformat.read(out / "book" / "p.ipynb", as_version=4)
    nbformat.validate(written)
    assert [cell.source for cell in written.cells] == [SETUP, "Acc 0.88", "plot()"]
    assert written.cells[2].outputs[0].text == "ok\n"
    assert "jupytext" not in written.metadata


def test_main_pins_every_notebook_and_the_pin_check_fails_on_any_other(tmp_path, capsys):
    root = mini_book(tmp_path)
    out = root / "_build" / "colab"
    pin = f"idlmam[tune] @ git+https://github.com/o/r@{SHA}"
    argv = ["--build", str(root / "_build"), "--out", str(out), "--root", str(root)]
    assert colab.main([*argv, "--pin", pin]) == 0
    assert f"every setup cell installs {pin}" in capsys.readouterr().out
    written = out / "book" / "p.ipynb"
    assert colab.pin_problems([written], pin) == []
    # the same notebook, pinned to anything else, fails the check
    for other in ("idlmam[tune]==0.0.1", pin.replace(SHA, SHA[::-1])):
        notebook = nbformat.read(written, as_version=4)
        notebook.cells[0].source = notebook.cells[0].source.replace(pin, other)
        nbformat.write(notebook, written)
        assert colab.pin_problems([written], pin) == [f"{written} installs {other!r}, not {pin!r}"]
        nbformat.write(nbformat.read(written, as_version=4), written)
        assert colab.main([*argv, "--pin", pin]) == 0
    assert colab.main([*argv, "--pin", "idlmam[tune] @ git+https://github.com/o/r@main"]) == 1
    assert "does not name one build" in capsys.readouterr().err


def test_main_without_a_build_says_to_run_make_book(tmp_path, capsys):
    root = mini_book(tmp_path)
    assert colab.main(["--build", str(tmp_path / "nowhere"), "--root", str(root)]) == 1
    assert "run `make book` first" in capsys.readouterr().err
    (root / "_build" / "jupyter_execute" / "book" / "p.ipynb").unlink()
    assert colab.main(["--build", str(root / "_build"), "--root", str(root)]) == 1
    assert "lacks book/p: run `make book` first" in capsys.readouterr().err


# ------------------------------------------------------------ the quick build, converted


BUILD_PIN = f"idlmam[tune] @ git+https://github.com/idlmam/modern-training-techniques@{SHA}"


@pytest.fixture(scope="module")
def colab_out(executed_build, tmp_path_factory):
    """The folder of the quick build converted with a commit's pin."""
    out = tmp_path_factory.mktemp("colab")
    colab.convert_build(executed_build, out, ROOT, BUILD_PIN)
    return out


def test_every_colab_notebook_of_the_build_installs_the_pin_it_was_given(colab_out):
    written = sorted(colab_out.rglob("*.ipynb"))
    assert len(written) == len(colab.notebook_pages(ROOT))
    assert colab.pin_problems(written, BUILD_PIN) == []
    assert len(colab.pin_problems(written, BUILD_PIN.replace(SHA, "f" * 40))) == len(written)


@pytest.fixture(scope="module")
def converted(executed_build, colab_out):
    """Every notebook page of the quick build, converted: {page: (executed, colab)}."""
    return {
        page: (
            nbformat.read(executed_build / "jupyter_execute" / f"{page}.ipynb", as_version=4),
            nbformat.read(colab_out / f"{page}.ipynb", as_version=4),
        )
        for page in colab.notebook_pages(ROOT)
    }


@pytest.mark.parametrize("page_name", colab.notebook_pages(ROOT))
def test_the_built_page_converts_to_a_clean_colab_notebook(converted, page_name):
    executed, notebook = converted[page_name]
    nbformat.validate(notebook)
    assert colab.is_setup_cell(notebook.cells[0]), f"{page_name}: the first cell is not the setup"
    left = leftover_myst(notebook)
    assert not left, f"{page_name}: MyST left in the Colab notebook:\n  " + "\n  ".join(left)
    built = [cell for cell in executed.cells if cell.cell_type == "code"]
    # every page shows at least its budget box: a page written without any output is one taken
    # from the execution cache without its outputs (what _ext/cached_outputs.py prevents)
    assert any(cell.outputs for cell in built), f"{page_name}: the build wrote no output"
    built = colab.setup_first(built, page(name=page_name))
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # the same code, but for the setup cell's requirement: the pin it was given
    expected = [cell.source for cell in built]
    expected[0] = expected[0].replace(
        colab.pin_of(nbformat.v4.new_notebook(cells=built[:1])), BUILD_PIN
    )
    assert [cell.source for cell in code] == expected
    lost = [
        number
        for number, (before, after) in enumerate(zip(built, code, strict=True), start=1)
        if [o for o in before.outputs if not colab.is_glue_only(o)] and not after.outputs
    ]
    assert not lost, f"{page_name}: code cells {lost} had outputs in the build and have none"
