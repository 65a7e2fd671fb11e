"""Execute the book's pages into Jupyter Book's cache, several at a time, before the build.

``make book`` runs this, then ``jupyter-book build``, which finds every page in the cache
("Using cached notebook") and only renders. Jupyter Book 1.x executes one page after the other;
the book's networks are small, so one page gains little from a second CPU thread, while two
pages, each on one thread, keep both cores busy. Each kernel gets ``OMP_NUM_THREADS=1`` (torch's
threads): two kernels that each want every core slow each other down far more than twofold.

The cache is MyST-NB's own (``_build/.jupyter_cache``, the ``execute_notebooks: cache`` of
``_config.yml``): a page is matched by its code cells and kernel, read from its ``.py`` the way
``_config.yml`` reads it (jupytext, percent format), so a page whose code did not change is not
executed again. Executed pages are written to the cache by this process alone, one at a time.

Usage: ``python tools/execute_pages.py [--jobs N] [--cache PATH]`` from the repository root.
Exit status 1 when a page fails (its traceback is printed; the others still run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import jupytext
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from toc import pages  # tools/toc.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 1800  # seconds per cell, as _config.yml's execute.timeout

# the pages that take longest go first, so the last to finish is a short one
SLOW_FIRST = ("ex2_ex3", "03_gradients", "04b_", "03c_", "02_schedules", "ex6_ex7", "03b_")


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[Path]:
    """The ``.py`` pages that ``toc`` lists, in its order (:mod:`toc` reads it)."""
    return [ROOT / f"{name}.py" for name in pages(ROOT, toc) if (ROOT / f"{name}.py").exists()]


def _rank(path: Path) -> int:
    return next((i for i, key in enumerate(SLOW_FIRST) if key in path.name), len(SLOW_FIRST))


def _read(path: Path):
    return jupytext.read(path, fmt="py:percent")


def _execute(path: Path):
    """Run one page in a fresh kernel on one thread (in a worker process)."""
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ["OMP_NUM_THREADS"] = "1"  # the kernel inherits it; torch reads it at import
    result = single_nb_execution(
        _read(path), cwd=str(path.parent), allow_errors=False, timeout=TIMEOUT, meta_override=True
    )
    return result.nb, result.time, result.exc_string if result.err else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="pages executed at once (default 2)")
    parser.add_argument("--cache", default=str(ROOT / "_build" / ".jupyter_cache"))
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    cache = get_cache(args.cache)
    todo = []
    for path in toc_pages():
        try:
            cache.match_cache_notebook(_read(path))
            print(f"cached   {path.relative_to(ROOT)}", flush=True)
        except KeyError:
            todo.append(path)
    todo.sort(key=_rank)
    failed, start = [], time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_execute, path): path for path in todo}
        for future in as_completed(futures):
            path = futures[future]
            nb, seconds, error = future.result()
            name = path.relative_to(ROOT)
            if error:
                failed.append(name)
                print(f"FAILED   {name} after {seconds:.0f} s\n{error}", flush=True)
                continue
            bundle = CacheBundleIn(nb, str(path), data={"execution_seconds": seconds})
            cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
            print(f"executed {name} in {seconds:.1f} s", flush=True)
    wall = time.perf_counter() - start
    print(f"{len(todo)} page(s) executed, {args.jobs} at a time, in {wall:.1f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(map(str, failed))}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
