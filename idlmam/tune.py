"""``python -m idlmam.tune``: the command of a hyperparameter-search worker.

The code lives in :mod:`idlmam.tuning.worker` (options, output and exit statuses are documented
there); this module only keeps the short command name working.

Example::

    python -m idlmam.tune --storage journal:///study.log --study ch5 --create --n-trials 16
"""

from __future__ import annotations

from .tuning.worker import build_parser, main

__all__ = ["main", "build_parser"]

if __name__ == "__main__":
    raise SystemExit(main())
