"""``python -m idlmam.tune``: the search worker's command (:mod:`idlmam.tune.worker`)."""

from .worker import main

raise SystemExit(main())
