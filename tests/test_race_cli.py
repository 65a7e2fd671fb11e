"""``python -m idlmam.race``: one line and status 2 for bad input; a real race on the quick budget."""

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from idlmam.experiments import sweep
from idlmam.race import main

ROOT = Path(__file__).resolve().parents[1]

READERS = """
import torch


class Signum(torch.optim.Optimizer):
    \"\"\"SGD by the sign of a momentum.\"\"\"

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                m.mul_(group["momentum"]).add_(p.grad, alpha=1 - group["momentum"])
                p.add_(m.sign(), alpha=-group["lr"])


class StepFails(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("step is not written yet")


def broken(params, lr):
    raise RuntimeError("not yet")


def not_one(params, lr):
    return "an optimizer"


RATE = 0.1
"""


@pytest.fixture
def opt(tmp_path):
    path = tmp_path / "myopt.py"
    path.write_text(READERS)
    return path


def bad(argv, capsys, *match):
    """main(argv) refuses: status 2, one line on stderr saying ``match``, nothing on stdout."""
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("python -m idlmam.race: error: ")
    for text in match:
        assert text in err, err
    return err


def test_bad_specs(opt, capsys):
    bad(["myopt"], capsys, "not MODULE:NAME")
    bad(["no_such_module_here:Opt"], capsys, "cannot import", "No module named")
    bad([f"{opt.parent / 'missing.py'}:Signum"], capsys, "no file")
    bad([f"{opt}:Signumm"], capsys, "has no 'Signumm'", "Signum", "broken")
    bad([f"{opt}:RATE"], capsys, "neither a torch.optim.Optimizer subclass nor callable")
    bad([f"{opt}:broken"], capsys, "raised RuntimeError: not yet")
    bad([f"{opt}:not_one"], capsys, "returned a str, not a torch.optim.Optimizer")
    bad(["torch.optim:AdamW"], capsys, "'AdamW' is a name of the field", "--name")


def test_bad_options(opt, capsys):
    spec = f"{opt}:Signum"
    err = bad([spec, "--field", "AdamW,Adam"], capsys, "unknown name(s) 'Adam'")
    assert "SGD w/ Nesterov, AdamW, NAdamW" in err  # the valid names
    bad([spec, "--grid", "1,2"], capsys, "--grid '1,2'", "BELOW,ABOVE,FACTOR")
    bad([spec, "--grid", "0,2,1"], capsys, "a ratio above 1")
    bad([spec, "--grid", "0,-1,4"], capsys, "two whole numbers >= 0")
    bad([spec, "--lr", "0"], capsys, "--lr must be above 0")
    bad([spec, "--lr", "fast"], capsys, "invalid float value")
    bad([spec, "--budget", "huge"], capsys, "invalid choice: 'huge'")
    bad([], capsys, "MODULE:NAME")


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for line in ("0  the race finished", "1  your optimizer failed", "2  bad input"):
        assert line in out


def test_a_process_exits_2_with_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "idlmam.race", "nocolon"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "not MODULE:NAME" in done.stderr


@pytest.mark.slow
def test_a_quick_race_writes_its_files_and_reuses_the_field(
    opt, tmp_path, fashion_root, monkeypatch, capsys
):
    monkeypatch.setenv("IDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("IDL_DATA", str(fashion_root))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("IDL_DEVICE", "cpu")
    runs, real = [], sweep.run

    def spy(label, *args, **kwargs):  # the label of every run the race trains
        runs.append(label)
        return real(label, *args, **kwargs)

    monkeypatch.setattr(sweep, "run", spy)
    out = tmp_path / "out"
    argv = [
        f"{opt}:Signum",
        "--budget",
        "quick",
        "--field",
        "AdamW",
        "--lr",
        "1e-4",
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    assert main(argv) == 0
    first = time.perf_counter() - start
    printed = capsys.readouterr().out
    assert "budget: the quick budget" in printed and "field: 0 of 1 from the cache" in printed
    assert str(tmp_path / "cache" / "race") in printed and "Signum *" in printed
    assert any(r.startswith("AdamW") for r in runs) and any(r.startswith("Signum") for r in runs)
    names = {"leaderboard.csv", "runs.csv", "test_accuracy.png", "report.html"}
    assert names <= {p.name for p in out.iterdir()}
    board = pd.read_csv(out / "leaderboard.csv", index_col="optimizer")
    assert set(board.index) == {"AdamW", "Signum"} and board["status"].eq("ok").all()
    assert set(pd.read_csv(out / "runs.csv")["stage"]) == {"trial", "tuned"}
    assert (out / "test_accuracy.png").read_bytes().startswith(b"\x89PNG")
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and "<table" in report and "quick" in report

    runs.clear()
    start = time.perf_counter()
    assert main(argv) == 0
    second = time.perf_counter() - start
    assert "field: 1 of 1 from the cache" in capsys.readouterr().out
    assert runs and not any(r.startswith("AdamW") for r in runs)  # only yours trained
    assert second < first

    failed = [f"{opt}:StepFails", *argv[1:-1], str(tmp_path / "failed")]
    assert main(failed) == 1  # yours failed; the leaderboard is still written
    printed = capsys.readouterr().out
    assert "StepFails: raised: RuntimeError: step is not written yet" in printed
    board = pd.read_csv(tmp_path / "failed" / "leaderboard.csv", index_col="optimizer")
    assert board.loc["AdamW", "status"] == "ok" and board.loc["StepFails", "status"].startswith(
        "raised"
    )
    assert (tmp_path / "failed" / "report.html").exists()
