import random

import numpy as np
import pytest
import torch

from idlmam.utils import get_device, move_to, progress_enabled, set_seed


def test_set_seed_repeats_every_source_of_randomness():
    def draw():
        g = set_seed(7)
        return random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item()

    assert draw() == draw()
    first = draw()
    set_seed(8)
    assert random.random() != first[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        set_seed(bad)


def test_get_device():
    assert get_device("cpu").type == "cpu"
    assert get_device().type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            get_device("cuda")


def test_move_to_nested():
    obj = {"a": [torch.zeros(1), (torch.ones(2), 3)], "b": "text"}
    moved = move_to(obj, "cpu")
    assert moved["b"] == "text" and moved["a"][1][1] == 3
    assert torch.equal(moved["a"][1][0], torch.ones(2))


def test_progress_bars_off_in_ci(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert progress_enabled() and not progress_enabled(disable=True)
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled()
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not progress_enabled()
