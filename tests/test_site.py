"""The site as readers meet it: every page of the table of contents in headless Chromium.

The session builds the book on the quick budget into ``_build/site-quick/`` (once; a few minutes;
the ``site`` fixture of ``tests/site_build.py``, which the Colab notebook test shares),
serves it on 127.0.0.1 with a throwaway ``http.server`` on a free port, and opens each page of
``_toc.yml`` in Chromium through Playwright. A page passes when it loads with no console error,
no failed request and no missing resource; every ``<img>`` decoded (non-zero ``naturalWidth``) and,
outside a collapsed toggle, drawn at a non-zero size; at least as many figures as its notebook's
reference outputs (``book/<name>.ipynb``) hold, so a figure that silently drops out of a page is
caught; no stderr or traceback block printed into the page; plotly plots (if any) drew their
SVG; every piece of math typeset by MathJax; and, on a chapter, a Colab button that opens
``book/<name>.ipynb`` on the ``colab`` branch, where the book workflow publishes the Colab
notebooks. Every content image (in a figure or a cell's output) must carry alt text that says
something: docutils fills a missing ``alt`` with the image's path, which a screen reader would
read out as a file name. The site search must find "Nesterov".
A screenshot of each page lands in ``_build/screenshots/``.

``IDL_SITE=<folder>`` checks a site that is already built instead (``make site-check`` does
this for the ``_build/html`` that ``make book`` made). The test is skipped only where no Chromium
can be found (``make system-deps`` installs Debian's ``chromium`` as root); ``CHROMIUM=<path>``
names another binary.

Nothing may come from outside 127.0.0.1: a request that leaves it is blocked and reported, since
a reader without that host would see a broken page. One exception: if the pages load MathJax 3
from the jsDelivr CDN (Sphinx's default, unless the book ships MathJax with the
``sphinx-mathjax-offline`` extension), the test answers from that package's copy (MathJax 3.2.2,
the build the CDN serves), so that the math is still checked offline.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import mimetypes
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
import toc  # tools/toc.py (tests/conftest.py puts tools/ on the path)
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SCREENSHOTS = ROOT / "_build" / "screenshots"
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/"
VIEWPORT = {"width": 1280, "height": 900}
# Noise that is not the book's: each entry says why it is tolerated.
KNOWN_CONSOLE_ERRORS = [
    # pydata-sphinx-theme, first visit with an empty localStorage: the page starts with
    # data-mode="" and the theme logs this before falling back to "auto". Nothing a reader sees;
    # `html_context: {default_mode: auto}` under `sphinx: config:` in _config.yml removes it.
    "Got invalid theme mode: . Resetting to auto.",
]
# Sphinx 7.4 writes the inline script that sphinx-thebe adds (`const THEBE_JS_URL = ...`) twice on
# every page (it re-adds body-only scripts registered after the builder started: None != ''), and
# the second copy throws. Harmless while both copies are identical, which `visit` checks; the
# tolerance is void as soon as they differ.
THEBE_DUPLICATE = "Identifier 'THEBE_JS_URL' has already been declared"


PAGES = toc.pages(ROOT)


def notebook_of(page: str) -> Path | None:
    """The paired notebook Colab opens for a page, or None for a plain markdown page."""
    nb = ROOT / f"{page}.ipynb"
    return nb if nb.exists() and (ROOT / f"{page}.py").exists() else None


CHAPTERS = [p for p in PAGES if notebook_of(p)]


# The branch that .github/workflows/book.yml pushes `make colab`'s notebooks to, at the paths they
# have in the repository; _ext/colab_branch.py points the buttons there (tests/test_workflows.py
# checks that the workflow and _config.yml name this same branch).
COLAB_BRANCH = "colab"


def expected_colab_url(page: str) -> str:
    repo = CONFIG["repository"]["url"].rstrip("/").removesuffix(".git")
    repo = repo.removeprefix("https://github.com/")
    colab = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    return f"{colab}/github/{repo}/blob/{COLAB_BRANCH}/{page}.ipynb"


def stored_figures(notebook: Path) -> int:
    """How many figures the notebook's reference run displayed (outputs with an image/* type)."""
    nb = nbformat.read(notebook, as_version=4)
    count = 0
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-output", "remove-cell"}:
            continue
        count += sum(
            any(k.startswith("image/") for k in out.get("data", {}))
            for out in cell.get("outputs", [])
        )
    return count


# ---------------------------------------------------------------- the site, served and browsed


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # quiet: failures are collected in the browser
        pass

    def send_head(self):
        # A page that declares no icon makes the browser ask for /favicon.ico on its own; that
        # request is the browser's, not the book's, so it is answered empty instead of with a 404.
        if self.path == "/favicon.ico" and not Path(self.translate_path(self.path)).exists():
            self.send_response(204)
            self.end_headers()
            return None
        return super().send_head()


@contextlib.contextmanager
def serve(folder: Path):
    """``http.server`` on 127.0.0.1 and a free port, serving ``folder``; yields the base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def base_url(site):
    with serve(site) as url:
        yield url


# ---------------------------------------------------------------------- one page, one report


@dataclass
class Report:
    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    plotly: list[dict] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    colab_links: list[str] = field(default_factory=list)
    download_links: list[str] = field(default_factory=list)
    stray_outputs: list[str] = field(default_factory=list)
    thebe_scripts_identical: bool = False
    extra: object = None

    def missing_alt(self) -> list[str]:
        """The ``src`` of every content image without real alt text (see :func:`has_alt`)."""
        return [img["src"] for img in self.images if img.get("content") and not has_alt(img)]

    def problems(self, *, min_figures: int = 0) -> list[str]:
        """Everything a reader would notice, one line each (empty when the page is fine)."""
        found = [
            f"console error: {e}"
            for e in self.console_errors
            if not (THEBE_DUPLICATE in e and self.thebe_scripts_identical)
        ]
        found += [f"failed request: {r}" for r in self.failed_requests]
        for img in self.images:
            if not img["naturalWidth"]:
                found.append(f"figure not drawn (naturalWidth 0): {img['src']}")
            elif img["figure"] and not img["drawn"] and not img["inToggle"]:
                found.append(f"figure drawn at zero size: {img['src']}")
        figures = sum(1 for img in self.images if img["figure"])
        if figures < min_figures:
            found.append(
                f"{figures} figures on the page, but its notebook's reference run "
                f"displayed {min_figures}"
            )
        found += [f"plotly plot without SVG: #{p['id']}" for p in self.plotly if not p["svg"]]
        found += [f"stderr or traceback shown on the page: {text!r}" for text in self.stray_outputs]
        if self.math.get("sources"):
            if not self.math["loaded"]:
                found.append("page has math but MathJax never started")
            elif self.math["typeset"] < self.math["sources"] or self.math["errors"]:
                found.append(
                    f"math: {self.math['typeset']} of {self.math['sources']} formulas "
                    f"typeset, {self.math['errors']} MathJax errors"
                )
        return found


IMAGE_PATH = re.compile(r"\.(png|jpe?g|gif|svg|webp)$", re.I)


def has_alt(img: dict) -> bool:
    """Whether an image's ``alt`` describes it: not empty, and not a file path (docutils writes
    the image's own path as ``alt`` when the figure's metadata gives none)."""
    alt = (img.get("alt") or "").strip()
    src = img.get("src") or ""
    return bool(alt) and alt != src and not IMAGE_PATH.search(alt)


def _route(route, request, blocked: list[str]):
    """Let 127.0.0.1 through, answer MathJax's CDN from the local copy, block everything else."""
    url = request.url
    if urlsplit(url).hostname == "127.0.0.1":
        return route.continue_()
    if url.startswith(MATHJAX_CDN):
        local = mathjax_dir() / urlsplit(url).path.removeprefix(urlsplit(MATHJAX_CDN).path)
        if local.is_file():
            kind = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
            return route.fulfill(status=200, body=local.read_bytes(), content_type=kind)
        return route.fulfill(status=404, body=b"")
    blocked.append(f"{url} (leaves the site: a reader offline would miss it)")
    return route.abort()


@functools.cache
def mathjax_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    assert spec is not None, "sphinx-mathjax-offline (the test extra) is not installed"
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"


INSPECT = """() => {
  const imgs = Array.from(document.images).map(img => {
    const box = img.getBoundingClientRect();
    return {src: img.getAttribute('src'), naturalWidth: img.naturalWidth,
            drawn: box.width > 0 && box.height > 0,
            inToggle: !!img.closest('details:not([open]), .toggle-hidden, [class*="tag_hide"]'),
            figure: !!img.closest('article')
                    && /(^|\\/)_images\\//.test(img.getAttribute('src') || ''),
            content: !!img.closest('article figure, article .cell_output, article .output'),
            alt: img.getAttribute('alt') || ''};
  });
  const plotly = Array.from(document.querySelectorAll('.js-plotly-plot, .plotly-graph-div'))
    .map(div => ({id: div.id, svg: !!div.querySelector('svg.main-svg')}));
  const links = document.querySelectorAll('a[href^="https://colab.research.google.com"]');
  const colab = Array.from(links, a => a.href);
  const raw = document.querySelectorAll('a[href^="https://github.com/"][href*="/raw/"]');
  const downloads = Array.from(raw, a => a.href);
  const thebe = Array.from(document.scripts).map(s => s.textContent)
    .filter(text => text.includes('const THEBE_JS_URL'));
  const printed = document.querySelectorAll('article .output.stderr, article .output.traceback');
  const stray = Array.from(printed, div => div.textContent.trim().slice(0, 160));
  const thebeIdentical = thebe.length > 1 && new Set(thebe).size === 1;
  return {imgs, plotly, colab, downloads, stray, thebeIdentical};
}"""

MATH = """async () => {
  const maths = Array.from(document.querySelectorAll('article .math'));
  if (!maths.length) return {sources: 0};
  const started = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
  for (let i = 0; i < 300 && !started(); i++) await new Promise(r => setTimeout(r, 100));
  if (!started()) return {sources: maths.length, loaded: false};
  await MathJax.startup.promise;
  return {sources: maths.length, loaded: true,
          typeset: maths.filter(m => m.querySelector('mjx-container')).length,
          errors: document.querySelectorAll('article mjx-merror').length};
}"""


def visit(browser, url: str, screenshot: Path | None = None, then=None) -> Report:
    """Open ``url`` in a fresh browser context (empty profile, as a first-time reader).

    ``then(page)``, when given, runs once the page has loaded; what it returns is ``report.extra``.
    """
    report = Report(url)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    context.route("**/*", lambda route, request: _route(route, request, report.failed_requests))
    page = context.new_page()
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and msg.text not in KNOWN_CONSOLE_ERRORS
            and report.console_errors.append(f"{msg.text} ({msg.location.get('url', '')})")
        ),
    )
    page.on("pageerror", lambda exc: report.console_errors.append(f"uncaught: {exc}"))
    page.on(
        "requestfailed",
        lambda req: (
            urlsplit(req.url).hostname == "127.0.0.1"
            and report.failed_requests.append(f"{req.url}: {req.failure}")
        ),
    )
    page.on(
        "response",
        lambda resp: (
            resp.status >= 400 and report.failed_requests.append(f"{resp.url}: HTTP {resp.status}")
        ),
    )
    try:
        response = page.goto(url, wait_until="load")
        if response is None:
            report.failed_requests.append(f"{url}: no response")
        page.wait_for_load_state("networkidle")
        report.math = page.evaluate(MATH)
        found = page.evaluate(INSPECT)
        report.images, report.plotly = found["imgs"], found["plotly"]
        report.colab_links = found["colab"]
        report.download_links = found["downloads"]
        report.thebe_scripts_identical = found["thebeIdentical"]
        report.stray_outputs = found["stray"]
        if then is not None:
            report.extra = then(page)
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
    finally:
        context.close()
    return report


@pytest.fixture(scope="session")
def reports(browser, base_url):
    """Each page of the table of contents visited once; the tests below read the reports."""
    return {
        page: visit(
            browser, base_url + page + ".html", SCREENSHOTS / (page.replace("/", "-") + ".png")
        )
        for page in PAGES
    }


# ------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_cleanly_with_every_figure_and_formula(reports, page):
    nb = notebook_of(page)
    problems = reports[page].problems(min_figures=stored_figures(nb) if nb else 0)
    assert not problems, f"{page}.html:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_has_alt_text(reports, page):
    """Figures and images in cell outputs need alt text: ``image: {alt: ...}`` in the cell's
    ``mystnb`` metadata (a figure's caption is not its alt text)."""
    missing = reports[page].missing_alt()
    assert not missing, (
        f"{page}.html: {len(missing)} image(s) without alt text (set mystnb image.alt in the "
        "cell's metadata):\n  " + "\n  ".join(missing)
    )


def test_alt_text_check_tells_a_description_from_a_path():
    """The rule of the test above, on the three cases a built page can hold."""
    src = "../_images/0a1b.png"
    report = Report("page.html")
    report.images = [
        {"src": src, "alt": src, "content": True},  # docutils' fallback: the path
        {"src": "../_images/2c3d.png", "alt": " ", "content": True},
        {"src": "../_images/4e5f.png", "alt": "Test accuracy per epoch, rising", "content": True},
        {"src": "../_static/logo.png", "alt": "", "content": False},  # the theme's, not ours
    ]
    assert report.missing_alt() == [src, "../_images/2c3d.png"]
    assert not has_alt({"src": "x.png", "alt": "figure.svg"})


def test_math_is_typeset_somewhere(reports):
    """The checks above pass vacuously on a page without math: make sure some page has it."""
    with_math = [p for p, r in reports.items() if r.math.get("sources")]
    assert with_math, "no page has math: did dollarmath stop working?"
    assert all(reports[p].math["typeset"] for p in with_math)


@pytest.mark.parametrize("page", CHAPTERS)
def test_colab_button_opens_the_notebook_on_the_colab_branch(reports, page):
    links = set(reports[page].colab_links)
    assert links == {expected_colab_url(page)}, f"{page}: Colab links {sorted(links)}"
    repo = CONFIG["repository"]["url"].rstrip("/")
    downloads = set(reports[page].download_links)
    assert downloads == {f"{repo}/raw/{COLAB_BRANCH}/{page}.ipynb"}, f"{page}: {sorted(downloads)}"
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", f"{page}.ipynb"], cwd=ROOT, capture_output=True
    )
    assert tracked.returncode == 0 or not (ROOT / ".git").exists(), (
        f"{page}.ipynb is not committed: the theme links a page's .ipynb only when it sits "
        "next to the .py (otherwise the .py, which Colab cannot open)"
    )


def test_root_redirects_to_the_first_page(browser, base_url):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(base_url, wait_until="load")
        page.wait_for_url(re.compile(re.escape(PAGES[0]) + r"\.html$"), timeout=30_000)
    finally:
        context.close()


def test_search_finds_nesterov(browser, base_url):
    def hits(page):
        page.wait_for_selector("#search-results ul.search li a", timeout=60_000)
        return page.eval_on_selector_all(
            "#search-results ul.search li a", "links => links.map(a => a.getAttribute('href'))"
        )

    report = visit(
        browser, base_url + "search.html?q=Nesterov", SCREENSHOTS / "search-Nesterov.png", then=hits
    )
    assert not report.problems(), report.problems()
    assert any(
        hit.split("#")[0].removesuffix(".html").endswith(page)
        for hit in report.extra
        for page in CHAPTERS
    ), report.extra


# ------------------------------------------------- the checks above catch a figure that goes


@pytest.fixture
def broken_copy(site, tmp_path):
    """A copy of the site with one chapter's page edited: returns (folder, page, figure src)."""
    for page in CHAPTERS:
        if stored_figures(notebook_of(page)):
            break
    else:
        pytest.skip("no chapter displays a figure")
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    html = (copy / f"{page}.html").read_text()
    src = re.search(r'<img[^>]*src="([^"]*_images/[^"]+)"', html).group(1)
    return copy, page, src


def test_a_figure_with_a_missing_file_fails(browser, broken_copy):
    copy, page, src = broken_copy
    html = copy / f"{page}.html"
    html.write_text(
        html.read_text().replace(
            f'src="{src}"', f'src="{src.replace("_images/", "_images/missing-")}"', 1
        )
    )
    with serve(copy) as url:
        problems = visit(browser, url + page + ".html").problems(
            min_figures=stored_figures(notebook_of(page))
        )
    assert any("naturalWidth 0" in p for p in problems), problems
    assert any("HTTP 404" in p for p in problems), problems


def test_a_figure_removed_from_the_page_fails(browser, broken_copy):
    copy, page, src = broken_copy
    html = copy / f"{page}.html"
    text = html.read_text()
    tag = re.search(r'<img[^>]*src="' + re.escape(src) + r'"[^>]*>', text).group(0)
    html.write_text(text.replace(tag, "", 1))
    with serve(copy) as url:
        problems = visit(browser, url + page + ".html").problems(
            min_figures=stored_figures(notebook_of(page))
        )
    assert any("reference run displayed" in p for p in problems), problems
