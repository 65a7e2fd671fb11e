"""idlmam: the companion package of the *Modern training techniques* course book.

Import what you need from its modules, for example::

    from idlmam.train import train_network
    from idlmam.data import fashion_mnist, resident_loader

``import idlmam`` itself stays cheap: it imports no torch, optuna or plotting library.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
