import io
import random

import numpy as np
import pytest
import torch

from idlmam.utils import get_device, move_to, progress_enabled, rng_state, set_rng_state, set_seed


def test_set_seed_repeats_every_source_of_randomness():
    def draw():
        g = set_seed(7)
        return (
            random.random(),
            np.random.rand(),
            torch.rand(1).item(),
            torch.rand(1, generator=g).item(),
        )

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
    assert get_device().type in ("cpu", "cuda", "mps", "xpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            get_device("cuda")


@pytest.mark.parametrize(
    "found,expected",
    [
        (None, torch.device("cpu")),
        (torch.device("cuda"), torch.device("cuda")),
        (torch.device("mps"), torch.device("mps")),  # an Apple GPU
        (torch.device("xpu"), torch.device("xpu")),
    ],
)
def test_get_device_chooses_whichever_accelerator_torch_finds(monkeypatch, found, expected):
    monkeypatch.delenv("IDL_DEVICE", raising=False)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: found is not None)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda *args, **kwargs: found)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # not asked any more
    assert get_device() == expected


def test_idl_device_overrides_the_accelerator_torch_finds(monkeypatch):
    # an Apple GPU found, but the nbval run asks for the CPU its reference outputs came from
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.accelerator, "current_accelerator", lambda *a, **k: torch.device("mps")
    )
    monkeypatch.setenv("IDL_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")  # an explicit choice still wins
    monkeypatch.setenv("IDL_DEVICE", "tpu9")
    with pytest.raises(ValueError, match="not a device name"):
        get_device()


def test_get_device_takes_the_cpu_when_the_accelerator_is_built_but_absent(monkeypatch):
    # a CUDA build of torch on a machine with no GPU: compiled for CUDA, none at run time
    monkeypatch.delenv("IDL_DEVICE", raising=False)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    monkeypatch.setattr(
        torch.accelerator, "current_accelerator", lambda *args, **kwargs: torch.device("cuda")
    )
    assert get_device() == torch.device("cpu")


def test_set_seed_deterministic_switches_torch_to_repeatable_kernels(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert not torch.are_deterministic_algorithms_enabled()
    try:
        set_seed(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark is False
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


def test_rng_state_round_trips_through_a_weights_only_checkpoint():
    loader_generator = torch.Generator().manual_seed(5)
    set_seed(3)
    random.random(), np.random.randn(), torch.rand(1)  # np.random.randn leaves a cached gaussian
    buffer = io.BytesIO()
    torch.save(rng_state([loader_generator]), buffer)

    def draw():
        return (
            random.random(),
            random.gauss(0, 1),
            np.random.rand(),
            np.random.randn(),
            torch.rand(1).item(),
            torch.randperm(10, generator=loader_generator).tolist(),
        )

    first = draw()
    set_seed(99)  # move every source on
    loader_generator.manual_seed(99)
    buffer.seek(0)
    set_rng_state(torch.load(buffer, weights_only=True), [loader_generator])
    assert draw() == first


def test_set_rng_state_needs_the_same_generators():
    state = rng_state([torch.Generator()])
    with pytest.raises(ValueError, match="same loaders"):
        set_rng_state(state, [])


@pytest.mark.parametrize(
    "name,message",
    [("gpu", "not a device name"), ("cuda:x", "not a device name"), ("meta", "not available")],
)
def test_get_device_names_what_is_wrong(name, message):
    with pytest.raises(ValueError, match=message):
        get_device(name)


def test_get_device_refuses_a_gpu_index_that_is_not_there():
    with pytest.raises(ValueError, match="no CUDA|does not exist"):
        get_device(f"cuda:{torch.cuda.device_count()}")


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
