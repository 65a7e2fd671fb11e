"""The checkpoint file format on its own (train_network's use of it is in tests/train/test_loop.py)."""

import pickle

import pytest
import torch

from idlmam.data import ResidentLoader, classic_loader
from idlmam.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_KEYS,
    CheckpointError,
    checkpoint_state,
    continue_from,
    load_checkpoint,
    loader_generators,
    restore,
    save_checkpoint,
)


def full_state(**overrides):
    state = {key: None for key in CHECKPOINT_KEYS}
    state.update({"format": CHECKPOINT_FORMAT, "epoch": 0, "results": {"epoch": [0]}, **overrides})
    return state


def test_save_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "run.pt"
    save_checkpoint(path, full_state(epoch=1))
    save_checkpoint(path, full_state(epoch=2))
    assert load_checkpoint(path)["epoch"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["run.pt"]


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, full_state(epoch=1))
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        save_checkpoint(path, {"bad": lambda: None})  # cannot be pickled
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]


@pytest.mark.parametrize(
    "content,message", [(b"", "cannot be read"), (b"not a zip file at all", "cannot be read")]
)
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"broken.pt.*{message}.*resume=False"):
        load_checkpoint(path)


def test_other_formats_are_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": 1, "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="old.pt is not in train_network's format"):
        load_checkpoint(path)
    torch.save({k: v for k, v in full_state().items() if k != "rng"}, path)
    with pytest.raises(CheckpointError, match=r"lacks \['rng'\]"):
        load_checkpoint(path)


def test_loader_generators_finds_each_generator_once():
    X, y = torch.zeros(8, 2), torch.zeros(8)
    resident = ResidentLoader(X, y, 4, shuffle=True)
    classic = classic_loader(torch.utils.data.TensorDataset(X, y), 4, shuffle=True)
    found = loader_generators([resident, classic, resident])
    assert found[0] is resident.generator and found[1] is classic.generator and len(found) == 2


def test_restore_and_continue_from_read_what_checkpoint_state_wrote(tmp_path):
    path = tmp_path / "run.pt"
    model, loader = torch.nn.Linear(3, 2), ResidentLoader(torch.zeros(8, 3), torch.zeros(8), 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    rows = [{"epoch": 0, "lr": 0.1, "train loss": 1.5}, {"epoch": 1, "lr": 0.1, "train loss": 1.0}]
    state = checkpoint_state(
        epoch=1,
        model=model,
        optimizer=optimizer,
        lr_schedule=None,
        generators=loader_generators([loader]),
        device=torch.device("cpu"),
        rows=rows,
        total_time=2.5,
        diverged=False,
    )
    save_checkpoint(path, state)
    again = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(again.parameters(), lr=0.1, momentum=0.9)
    start, seconds, restored, diverged = restore(
        path, load_checkpoint(path), again, opt, None, loader_generators([loader]), set(rows[0])
    )
    assert (start, seconds, restored, diverged) == (2, 2.5, rows, False)
    assert torch.equal(again.weight, model.weight)
    branch = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(branch.parameters(), lr=0.1, momentum=0.9)
    assert continue_from(path, branch, opt, [loader, None, None]) == (2, 2.5)
    assert torch.equal(branch.weight, model.weight)
    momentum = [opt.state[p]["momentum_buffer"] for p in branch.parameters()]
    assert all(
        torch.equal(m, optimizer.state[p]["momentum_buffer"])
        for m, p in zip(momentum, model.parameters())
    )
    with pytest.raises(CheckpointError, match="(?s)does not fit this run.*build the model"):
        wider = torch.nn.Linear(4, 2)
        continue_from(path, wider, torch.optim.SGD(wider.parameters(), lr=0.1), [loader])
