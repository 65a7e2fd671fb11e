"""Shared fixtures: small fake data for fast tests, the real Fashion-MNIST for slow ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# the build tools (tools/*.py) import each other as the scripts they are, from their own folder
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

# the postgres_url fixture (a throwaway PostgreSQL server), the quick build of the book that
# the site and Colab tests share (site, executed_build), and the one headless Chromium of the
# browser tests (browser), for any test that asks for them
pytest_plugins = ["pg_server", "site_build", "browser"]

torch.set_num_threads(1)


@pytest.fixture
def tiny_data():
    """100 random 28x28 'images' with labels that depend on them, so a model can learn."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(100, 1, 28, 28, generator=g)
    y = (X.mean(dim=(1, 2, 3)) * 10 % 10).long()  # (100,)
    return X, y


@pytest.fixture(scope="session")
def fashion_root():
    """The real data root (fetched the way `make data` does); skips when it cannot be had."""
    from idlmam.data import DataUnavailableError, ensure_fashion_mnist

    try:
        return ensure_fashion_mnist(download=False)
    except DataUnavailableError as err:  # pragma: no cover - only off the supported machines
        pytest.skip(str(err))
