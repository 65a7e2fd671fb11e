"""idlmam: the companion package of the *Modern training techniques* course book.

Import what you need from its modules, for example::

    from idlmam.train import train_network
    from idlmam.data import fashion_mnist, resident_loader

``import idlmam`` itself stays cheap: it imports no torch, optuna or plotting library.
"""

from importlib import metadata as _metadata

try:
    # the version pip installed (pyproject.toml's), so that it cannot drift from a second copy
    __version__ = _metadata.version("idlmam")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
