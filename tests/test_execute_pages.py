"""tools/execute_pages.py: which pages it executes, and that MyST-NB's cache then finds them."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("execute_pages", ROOT / "tools/execute_pages.py")
execute_pages = importlib.util.module_from_spec(spec)
sys.modules["execute_pages"] = execute_pages
spec.loader.exec_module(execute_pages)


def test_every_page_of_the_book_is_in_the_toc_in_order():
    listed = execute_pages.toc_pages()
    on_disk = sorted(ROOT.glob("book/*.py")) + sorted(ROOT.glob("book/exercises/*.py"))
    assert sorted(listed) == sorted(on_disk)  # a page missing from _toc.yml would not be built
    names = [p.stem for p in listed]
    assert names.index("03_gradients") < names.index("03b_schedules_since")


def test_a_nested_toc_is_read_depth_first(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text("# %%\n1\n")
    toc = tmp_path / "_toc.yml"
    toc.write_text(
        "root: intro\nchapters:\n  - file: b\n    sections:\n      - file: c\n  - file: a\n"
    )
    execute_pages.ROOT, root = tmp_path, execute_pages.ROOT
    try:
        assert [p.stem for p in execute_pages.toc_pages(toc)] == ["b", "c", "a"]
    finally:
        execute_pages.ROOT = root


def test_an_executed_page_is_what_the_cache_matches(tmp_path):
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    page = tmp_path / "page.py"
    page.write_text("# %%\nprint(6 * 7)\n")
    nb, seconds, error = execute_pages._execute(page)
    assert error is None and nb.cells[0].outputs[0]["text"] == "42\n"
    cache = get_cache(str(tmp_path / "cache"))
    cache.cache_notebook_bundle(CacheBundleIn(nb, str(page)), check_validity=False)
    cache.match_cache_notebook(execute_pages._read(page))  # the same page: found
    page.write_text("# %%\nprint(6 * 9)\n")
    with pytest.raises(KeyError):
        cache.match_cache_notebook(execute_pages._read(page))  # its code changed: not found
