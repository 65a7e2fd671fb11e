"""Sphinx extension: the site's Colab buttons open the notebooks of the ``colab`` branch.

sphinx-book-theme builds every launch link from the one ``repository.branch`` of ``_config.yml``
(``.../blob/<branch>/book/<name>.ipynb``), the branch that "edit this page" must also use: ``main``,
where the ``.py`` sources live. Colab should open something else: the notebooks ``make colab``
writes (the site's outputs, MyST turned into plain Markdown), which ``.github/workflows/book.yml``
publishes to a branch of their own at the same paths. This extension rewrites the Colab button of
each page to that branch, adds the same notebook to the page's download menu ("Colab .ipynb"),
and leaves every other button alone.

Set in ``_config.yml`` (``sphinx.local_extensions: {colab_branch: _ext}``)::

    sphinx:
      config:
        colab_branch: colab

With ``colab_branch`` empty (the default) nothing changes. A Colab link that does not have the
``/blob/<branch>/`` the theme writes stops the build instead of silently pointing at ``main``.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

__all__ = ["download_link", "retarget", "setup"]


def retarget(url: str, branch: str, colab_branch: str) -> str:
    """The Colab ``url`` with its ``/blob/<branch>/`` replaced by ``/blob/<colab_branch>/``.

    Raises:
        ExtensionError: ``url`` has no ``/blob/<branch>/``, so the theme's links changed shape.

    Example:
        >>> retarget("https://colab.research.google.com/github/o/r/blob/main/book/a.ipynb",
        ...          "main", "colab")
        'https://colab.research.google.com/github/o/r/blob/colab/book/a.ipynb'
    """
    old = f"/blob/{branch}/"
    if old not in url:
        raise ExtensionError(f"colab_branch: expected {old!r} in the Colab link {url!r}")
    return url.replace(old, f"/blob/{colab_branch}/", 1)


def download_link(colab_link: str, colab_url: str) -> str:
    """The file behind a Colab link to a GitHub notebook: GitHub's ``raw`` address of it.

    Raises:
        ExtensionError: ``colab_link`` is not ``<colab_url>/github/<owner>/<repo>/blob/<path>``.

    Example:
        >>> download_link("https://colab.research.google.com/github/o/r/blob/colab/book/a.ipynb",
        ...               "https://colab.research.google.com")
        'https://github.com/o/r/raw/colab/book/a.ipynb'
    """
    prefix = colab_url.rstrip("/") + "/github/"
    owner_repo, sep, path = colab_link.removeprefix(prefix).partition("/blob/")
    if not colab_link.startswith(prefix) or not sep or owner_repo.count("/") != 1:
        raise ExtensionError(f"colab_branch: {colab_link!r} is not a Colab link to a GitHub file")
    return f"https://github.com/{owner_repo}/raw/{path}"


def _retarget_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    colab_branch = app.config.colab_branch
    options = app.config.html_theme_options
    colab_url = options.get("launch_buttons", {}).get("colab_url", "").rstrip("/")
    if not colab_branch or not colab_url:
        return
    branch = options.get("repository_branch") or "master"  # the theme's own default
    groups = {group.get("label"): group for group in context.get("header_buttons", [])}
    for button in groups.get("launch-buttons", {}).get("buttons", []):
        if button.get("url", "").startswith(colab_url + "/"):
            button["url"] = retarget(button["url"], branch, colab_branch)
            if "download-buttons" in groups:
                groups["download-buttons"]["buttons"].insert(
                    0,
                    {
                        "type": "link",
                        "url": download_link(button["url"], colab_url),
                        "text": "Colab .ipynb",
                        "icon": "fas fa-book-open",
                        "tooltip": "Download the Colab notebook (this page's outputs, plain Markdown)",
                        "label": "download-colab-notebook-button",
                    },
                )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("colab_branch", "", "html", types=[str])
    # after sphinx-book-theme's add_launch_buttons (priority 501); the template renders the list later
    app.connect("html-page-context", _retarget_buttons, priority=600)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
