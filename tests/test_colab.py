"""Colab: the first cells of every notebook install idlmam, and pip can install what they name.

Each chapter's second cell runs, in Colab only, ``pip install "idlmam[tune]==<version>"`` (the
latest release, from PyPI); the notebooks ``make colab`` writes for the ``colab`` branch install
the release or the commit the site was built from (``idlmam[tune] @ git+<repository>@<sha>``),
and the site's launch button opens them from the repository in ``_config.yml``. These tests
check that the line is a valid pip requirement for an extra the package has, and that pip builds
the package from a git URL of this repository at a commit (a local clone stands in for GitHub,
which this machine cannot reach).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
NOTEBOOKS = sorted(
    p.with_suffix(".ipynb")
    for p in (ROOT / "book").rglob("*.py")
    if "jupytext" in p.read_text()[:2000]
)
REQUIREMENT = re.compile(r"""["'](idlmam\[[^"']*)["']""")


def install_requirement(notebook: Path) -> Requirement:
    """The pip requirement in the notebook's setup cell (its second cell)."""
    setup = nbformat.read(notebook, as_version=4).cells[1]
    found = REQUIREMENT.findall(setup.source)
    assert len(found) == 1, (
        f"{notebook.name}: expected one idlmam[...] requirement in the setup cell"
    )
    return Requirement(found[0])


def test_config_names_a_github_repository_and_its_main_branch():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL), REPO_URL
    assert CONFIG["repository"].get("branch", "main") == "main"
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_setup_cell_installs_a_release_with_extras_the_package_has(notebook):
    req = install_requirement(notebook)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert req.name == "idlmam" and req.url is None
    assert str(req.specifier) == f"=={project['version']}", f"{notebook.name}: {req}"
    assert req.extras <= set(extras), f"{notebook.name}: unknown extras {req.extras - set(extras)}"


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(),
    reason="needs git and a git checkout",
)
def test_pip_builds_the_package_from_a_git_url_at_a_commit(tmp_path):
    """What the colab branch installs between releases, with this checkout in place of GitHub."""
    req = install_requirement(NOTEBOOKS[0])
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    local = f"{req.name}[{','.join(sorted(req.extras))}] @ git+file://{ROOT}@{head}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            local,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("idlmam-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    # every subpackage ships: a wheel without idlmam/train/ would import nothing in Colab
    for module in (
        "idlmam/__init__.py",
        "idlmam/train/loop.py",
        "idlmam/train/stacked.py",
        "idlmam/tune/__init__.py",
        "idlmam/tune/worker.py",
    ):
        assert module in names, module
    for extra in req.extras:
        assert f"Provides-Extra: {extra}" in metadata


# ------------------------------------------------------- citations in the Colab notebooks


def _colab_module():
    """tools/colab.py, loaded as tests/test_colab_notebooks.py loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("colab", ROOT / "tools" / "colab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["colab"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BIB = """@misc{smith2015cyclical,
  author = {Smith, Leslie N.},
  title = {Cyclical Learning Rates for Training Neural Networks},
  year = {2015},
  eprint = {1506.01186},
}
@inproceedings{loshchilov2017sgdr,
  author = {Loshchilov, Ilya and Hutter, Frank},
  title = {{SGDR}: Stochastic Gradient Descent with Warm Restarts},
  year = {2017},
}
@misc{goyal2017accurate,
  author = {Goyal, Priya and Doll{\\'a}r, Piotr and Girshick, Ross},
  title = {Accurate, Large Minibatch {SGD}},
  year = {2017},
}
@misc{hu2024minicpm,
  author = {Hu, Shengding and others},
  title = {{MiniCPM}},
  year = {2024},
}
"""


@pytest.fixture
def cite_page(tmp_path):
    """A page of a book whose references.bib holds the four entries of BIB."""
    colab = _colab_module()
    (tmp_path / "references.bib").write_text(BIB)
    return colab, colab.Page("book/p", tmp_path, {})


def test_a_cite_of_one_key_becomes_author_and_year_in_parentheses(cite_page):
    colab, page = cite_page
    assert colab.convert_markdown("Cycles {cite}`smith2015cyclical` came first.", page) == (
        "Cycles (Smith, 2015) came first."
    )
    assert colab.convert_markdown("{cite:p}`loshchilov2017sgdr`", page) == (
        "(Loshchilov and Hutter, 2017)"
    )


def test_a_cite_of_two_keys_joins_them_with_a_semicolon(cite_page):
    colab, page = cite_page
    text = "See {cite:p}`smith2015cyclical, loshchilov2017sgdr` and {cite}`goyal2017accurate`."
    assert colab.convert_markdown(text, page) == (
        "See (Smith, 2015; Loshchilov and Hutter, 2017) and (Goyal et al., 2017)."
    )


def test_the_textual_and_bare_forms(cite_page):
    colab, page = cite_page
    text = (
        "{cite:t}`smith2015cyclical` showed it; {cite:t}`hu2024minicpm` named WSD "
        "(WSD; {cite:alp}`goyal2017accurate,hu2024minicpm`), in {cite:yearpar}`loshchilov2017sgdr`."
    )
    assert colab.convert_markdown(text, page) == (
        "Smith (2015) showed it; Hu et al. (2024) named WSD "
        "(WSD; Goyal et al., 2017; Hu et al., 2024), in (2017)."
    )


def test_an_unknown_key_names_the_key_and_the_file_to_fix(cite_page):
    colab, page = cite_page
    with pytest.raises(colab.ColabError) as err:
        colab.convert_markdown("As {cite:t}`smith2015cyclical,nosuchkey` showed.", page)
    message = str(err.value)
    assert "book/p" in message and "'nosuchkey'" in message
    assert str(page.root / "references.bib") in message


def test_an_unsupported_cite_form_and_a_missing_bibliography_are_errors(cite_page, tmp_path):
    colab, page = cite_page
    with pytest.raises(colab.ColabError, match=r"\{cite:ps\} is not supported"):
        colab.convert_markdown("{cite:ps}`smith2015cyclical`", page)
    (tmp_path / "references.bib").unlink()
    with pytest.raises(colab.ColabError, match="references.bib"):
        colab.convert_markdown("{cite}`smith2015cyclical`", page)


def test_the_bibliography_directive_becomes_a_plain_list(cite_page):
    colab, page = cite_page
    listed = colab.convert_markdown("# References\n\n```{bibliography}\n```", page)
    assert listed.split("\n")[:3] == [
        "# References",
        "",
        "- Goyal et al. (2017). Accurate, Large Minibatch SGD.",
    ]
    assert (
        "- Smith (2015). Cyclical Learning Rates for Training Neural Networks. "
        "<https://arxiv.org/abs/1506.01186>" in listed
    )
    assert "{bibliography}" not in listed


def test_every_cite_of_the_book_converts_with_the_real_bibliography():
    """Each page's Markdown cells, with their glue roles set aside, convert without an error."""
    colab = _colab_module()
    import jupytext

    for source in (ROOT / "book").rglob("*.py"):
        if "jupytext" not in source.read_text()[:2000]:
            continue
        page = colab.Page(str(source.relative_to(ROOT).with_suffix("")), ROOT, {})
        for cell in jupytext.read(source).cells:
            if cell.cell_type == "markdown" and "{cite" in cell.source:
                for line in cell.source.split("\n"):
                    cites = "".join(m.group(0) for m in colab.XREF_ROLE.finditer(line))
                    assert "{cite" not in colab.replace_xrefs(cites, page)
