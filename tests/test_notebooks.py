"""The notebook sources (.py) and the notebooks Colab opens (.ipynb) must say the same thing.

The outputs themselves are checked by nbval (`make notebooks`); this file checks the pairing
and the conventions every chapter follows.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest
import toc  # tools/toc.py (tests/conftest.py puts tools/ on the path)

BOOK = Path(__file__).resolve().parents[1] / "book"
SOURCES = sorted(p for p in BOOK.rglob("*.py") if "jupytext" in p.read_text()[:2000])


def cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_py_and_ipynb_have_the_same_cells(source):
    paired = source.with_suffix(".ipynb")
    assert paired.exists(), (
        f"{paired} is missing: run `make sync NB={source.relative_to(BOOK.parent)}`"
    )
    text = jupytext.read(source)
    stored = nbformat.read(paired, as_version=4)
    assert cells(text) == cells(stored), (
        f"{source.name} and {paired.name} drifted apart: run `make sync NB=book/{source.name}`"
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_asks_colab_for_a_gpu_and_can_install_itself(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert nb.metadata.get("accelerator") == "GPU"
    setup = nb.cells[1]
    assert setup.cell_type == "code" and '"google.colab" in sys.modules' in setup.source
    assert (
        "pip" in setup.source and "idlmam[tune]" in setup.source and "torch==" not in setup.source
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_notebook_has_stored_outputs_to_compare(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    compared = [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and "nbval-ignore-output" not in c.metadata.get("tags", [])
        and c.get("outputs")
    ]
    assert compared, f"{source.name}: no code cell has a stored output for nbval to compare"


def test_every_notebook_is_in_the_table_of_contents():
    listed = set(toc.pages(BOOK.parent))
    for source in SOURCES:
        assert str(source.relative_to(BOOK.parent).with_suffix("")) in listed


def _figures(nb):
    """The code cells whose stored outputs hold an image."""
    return [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and any(
            any(m.startswith("image/") for m in o.get("data", {}))
            for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result")
        )
    ]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_figure_has_a_caption_and_alt_text(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    for cell in _figures(nb):
        options = cell.metadata.get("mystnb", {})
        caption = options.get("figure", {}).get("caption", "")
        alt = options.get("image", {}).get("alt", "")
        first = cell.source.strip().splitlines()[0][:60]
        assert caption.strip(), f"{source.name}: the figure of `{first}` has no caption"
        assert len(alt.split()) >= 4, f"{source.name}: the figure of `{first}` has no alt text"
        images = sum(any(m.startswith("image/") for m in o.get("data", {})) for o in cell.outputs)
        assert images == 1, f"{source.name}: `{first}` draws {images} images; one figure a cell"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_every_page_says_which_budget_made_its_numbers(source):
    nb = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("budget_banner(" in s for s in code[:4]), (
        f"{source.name}: call idlmam.notebook.budget_banner() in one of the first code cells"
    )
