"""``python -m idlmam.tune.dashboard``: watch a study in the browser while its workers fill it.

Opens a storage with :func:`~idlmam.tune.storage.open_storage`, so every storage the book uses
works (``sqlite:///PATH``, ``journal:///PATH``, ``postgresql+psycopg://...``), and serves
`optuna-dashboard <https://optuna-dashboard.readthedocs.io>`_ (the ``tune`` extra) on it: the
studies, each trial's parameters and value, the optimization history, parameter importances. The
page reads the storage again as it refreshes, so the trials of running workers appear as they
finish. ``make dashboard STORAGE=URL [STUDY=NAME] [PORT=8080]`` runs it::

    python -m idlmam.tune.dashboard --storage journal:///study.log --study ch5

then open the URL it prints (http://127.0.0.1:8080/ by default). It listens on 127.0.0.1 only:
the dashboard can also create, rename and delete studies, so it is not for an open port.
``--host 0.0.0.0`` shares it, on a network you trust. (``optuna-dashboard URL``, the package's own
command, does the same for an RDB URL, but reads a journal file only by its bare path and knows
nothing of ``journal:///``.)

Options:
    --storage URL   where the studies live; a bare path to an existing file works too (an SQLite
                    database or a journal file, told apart by the file's first bytes).
    --study NAME    check that this study is there before serving, and print its page's URL.
    --port P        default 8080.
    --host H        default 127.0.0.1.

Bad input (a storage that cannot be opened, a database or journal file that does not exist, a
study that is not in the storage) ends with one line on stderr, listing the studies there where
that helps, and exit status 2, before anything is served.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

__all__ = ["main", "build_parser", "storage_url", "study_names", "check_study"]

PROG = "python -m idlmam.tune.dashboard"
SQLITE_MAGIC = b"SQLite format 3\x00"


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = _OneLineParser(prog=PROG, description="Serve optuna-dashboard on a study storage.")
    parser.add_argument(
        "--storage",
        required=True,
        metavar="URL",
        help="sqlite:///PATH, journal:///PATH, postgresql+psycopg://..., or a file's path",
    )
    parser.add_argument("--study", default=None, metavar="NAME", help="a study that must exist")
    parser.add_argument("--port", type=int, default=8080, metavar="P", help="default 8080")
    parser.add_argument("--host", default="127.0.0.1", metavar="H", help="default 127.0.0.1")
    return parser


def storage_url(text: str) -> str:
    """The storage URL for ``text``: a URL as it is, a bare file path as ``sqlite:///`` or
    ``journal:///`` after the file's first bytes (SQLite databases start with a fixed header).

    Raises:
        ValueError: ``text`` is neither a URL nor the path of an existing file.

    Example:
        >>> storage_url("sqlite:///study.db")
        'sqlite:///study.db'
        >>> import pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     log = pathlib.Path(folder) / "study.log"
        ...     _ = log.write_text("")  # an empty journal
        ...     storage_url(str(log)) == f"journal:///{log}"
        True
    """
    if "://" in text:
        return text
    path = Path(text)
    if not path.is_file():
        raise ValueError(
            f"{text!r} is neither a storage URL nor an existing file: "
            "give sqlite:///PATH, journal:///PATH or postgresql+psycopg://..."
        )
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    return f"{'sqlite' if head == SQLITE_MAGIC else 'journal'}:///{text}"


def _local_file(url: str) -> Path | None:
    """The file an ``sqlite:///`` or ``journal:///`` URL names (None for other storages)."""
    scheme, _, rest = url.partition(":///")
    if scheme.split("+", 1)[0].lower() in ("sqlite", "journal") and rest:
        path = rest.split("?", 1)[0]
        return None if path == ":memory:" else Path(path)
    return None


def study_names(storage) -> list[str]:
    """The names of the studies in ``storage`` (an ``optuna.storages`` object), sorted.

    Example:
        >>> from idlmam.tune import create_study, open_storage
        >>> storage = open_storage("memory")
        >>> _ = create_study(storage, "b"), create_study(storage, "a")
        >>> study_names(storage)
        ['a', 'b']
    """
    return sorted(s.study_name for s in storage.get_all_studies())


def check_study(storage, name: str) -> int:
    """The id of study ``name`` in ``storage`` (its page is ``/dashboard/studies/<id>``).

    Raises:
        StudyNotFoundError: there is no such study; the message lists the studies there.

    Example:
        >>> from idlmam.tune import create_study, open_storage
        >>> storage = open_storage("memory")
        >>> _ = create_study(storage, "ch5")
        >>> check_study(storage, "ch5") >= 0
        True
        >>> check_study(storage, "ch6")
        Traceback (most recent call last):
        ...
        idlmam.tune.storage.StudyNotFoundError: there is no study named 'ch6' in this storage; it holds: 'ch5'
    """
    from .storage import StudyNotFoundError

    names = study_names(storage)
    if name not in names:
        held = ", ".join(repr(n) for n in names) if names else "no study at all"
        raise StudyNotFoundError(
            f"there is no study named {name!r} in this storage; it holds: {held}"
        )
    return storage.get_study_id_from_name(name)


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Check the storage (and the study), then serve the dashboard until interrupted.

    Returns the exit status: 0 once the server stops, 2 for bad input (nothing served).

    Example:
        >>> main(["--storage", "sqlite:///no/such/study.db"])
        2
        >>> main(["--storage", "sqlite:///study.db", "--study", "ch5"])  # doctest: +SKIP
        Optuna dashboard of sqlite:///study.db: http://127.0.0.1:8080/dashboard/studies/1 (Ctrl-C stops it)
    """
    args = build_parser().parse_args(argv)
    from .storage import StudyNotFoundError, hide_password, open_storage

    try:
        url = storage_url(args.storage)
        path = _local_file(url)
        if path is not None and not path.is_file():
            # opening it would create an empty storage: a mistyped path would show no study
            raise ValueError(f"{url!r}: there is no file {str(path)!r}")
        storage = open_storage(url, heartbeat_interval=None)
        study_id = check_study(storage, args.study) if args.study is not None else None
    except (ValueError, StudyNotFoundError) as err:
        return _fail(str(err))
    try:
        import optuna_dashboard
    except ImportError:
        return _fail("optuna-dashboard is not installed: pip install 'idlmam[tune]'")

    address = f"http://{args.host}:{args.port}/dashboard/"
    if study_id is not None:
        address += f"studies/{study_id}"
    print(
        f"Optuna dashboard of {hide_password(url)}: {address} (Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
