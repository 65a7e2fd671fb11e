"""Fixtures shared by the tests of idlmam.tune: tiny loaders, and a spy on the training loop.

(pytest finds them here, in the folder's conftest.py, for every test module beside it.)
"""

from __future__ import annotations

import pytest

from idlmam.data import ResidentLoader

__all__ = ["loaders", "spy"]


@pytest.fixture
def loaders(tiny_data):
    """80 training and 20 validation examples, the training ones shuffled."""
    X, y = tiny_data
    return (
        ResidentLoader(X[:80], y[:80], 16, shuffle=True, seed=0),
        ResidentLoader(X[80:], y[80:], 16),
    )


@pytest.fixture
def spy(monkeypatch):
    """Record every call of train_network (the objective looks it up when a trial runs)."""
    import idlmam.train

    calls = []
    real = idlmam.train.train_network

    def recording(model, loss_func, train_loader, val_loader=None, test_loader=None, **kwargs):
        frame = real(model, loss_func, train_loader, val_loader, test_loader, **kwargs)
        calls.append(
            dict(
                model=model,
                train_loader=train_loader,
                val_loader=val_loader,
                test_loader=test_loader,
                frame=frame,
                **kwargs,
            )
        )
        return frame

    monkeypatch.setattr(idlmam.train, "train_network", recording)
    return calls
