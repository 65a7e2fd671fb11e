"""The optimizer race: the reader's input, the page's field, the leaderboard, the cache, failures."""

import math
import sys
import time
import warnings
from dataclasses import replace

import pandas as pd
import pytest
import schedulefree
import torch

import idlmam
from idlmam.data import ResidentLoader
from idlmam.experiments import race, sweep
from idlmam.experiments.race import (
    EXTEND,
    GRID,
    MUON_DECAY,
    Contender,
    RaceInputError,
    RaceRuns,
    Setting,
    cache_dir,
    field,
    field_names,
    leaderboard,
    load_cached,
    load_contender,
    next_rate,
    planned_runs,
    race_one,
    readable,
    run_race,
    step_costs,
)
from idlmam.models import mlp
from idlmam.optim import SOAP, Lion, MuonWithAdamW, NAdamW, Shampoo

# --- the reader's MODULE:NAME --------------------------------------------------------------------

GOOD = """
import torch

class Mine(torch.optim.SGD):
    pass

def make_mine(params, lr):
    return torch.optim.SGD(params, lr=lr)

RATE = 3

class Net(torch.nn.Module):
    pass

def broken(params, lr):
    raise RuntimeError("no optimizer today")

def not_one(params, lr):
    return 42
"""


@pytest.fixture
def module(tmp_path):
    path = tmp_path / "readers_opt.py"
    path.write_text(GOOD)
    return path


def one_line_error(spec, match, lr=1e-3):
    with pytest.raises(RaceInputError, match=match) as caught:
        load_contender(spec, lr=lr)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def test_a_class_and_a_function_load_and_train_one_at_a_time(module):
    name, mine = load_contender(f"{module}:Mine", lr=0.01)
    assert name == "Mine" and mine.rates() == pytest.approx([0.01, 0.04, 0.16])
    assert mine.decays and not mine.elementwise and mine.grid == GRID
    assert type(mine.optimizer_at(mlp().parameters(), 0.5)).__name__ == "Mine"
    name, mine = load_contender(f"{module}:make_mine", lr=0.01)
    assert name == "make_mine" and isinstance(
        mine.optimizer_at(mlp().parameters(), 0.5), torch.optim.SGD
    )


def test_a_dotted_module_from_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "race_dotted_opt.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    assert load_contender("race_dotted_opt:Mine", lr=0.1)[0] == "Mine"


def test_no_colon():
    one_line_error("readers_opt", "not MODULE:NAME")
    one_line_error("readers_opt:", "not MODULE:NAME")


def test_a_module_that_does_not_import(tmp_path):
    (tmp_path / "needs_more.py").write_text("import a_package_nobody_has\n")
    text = one_line_error(f"{tmp_path / 'needs_more.py'}:Opt", "cannot import")
    assert "No module named 'a_package_nobody_has'" in text  # the import's own message
    (tmp_path / "bad_syntax.py").write_text("def (:\n")
    one_line_error(f"{tmp_path / 'bad_syntax.py'}:Opt", "SyntaxError")
    one_line_error("a_module_nobody_has:Opt", "No module named 'a_module_nobody_has'")
    one_line_error(f"{tmp_path / 'missing.py'}:Opt", "no file")


def test_a_name_the_module_lacks_lists_what_it_has(module):
    text = one_line_error(f"{module}:Mien", "has no 'Mien'")
    assert "Mine" in text and "make_mine" in text and "RATE" not in text
    (module.parent / "empty_opt.py").write_text("x = 1\n")
    one_line_error(f"{module.parent / 'empty_opt.py'}:Opt", "defines no optimizer")


def test_neither_an_optimizer_class_nor_callable(module):
    one_line_error(f"{module}:RATE", "neither a torch.optim.Optimizer subclass nor callable")
    one_line_error(f"{module}:Net", "not a torch.optim.Optimizer subclass")


def test_a_factory_is_tried_once_on_a_small_model(module):
    one_line_error(f"{module}:broken", "raised RuntimeError: no optimizer today")
    one_line_error(f"{module}:not_one", "returned a int, not a torch.optim.Optimizer")


# --- the field ---------------------------------------------------------------------------------


def test_the_field_is_the_pages():
    contenders = field(warmup_steps=7)
    assert (
        list(contenders)
        == field_names()
        == [
            "SGD w/ Nesterov",
            "AdamW",
            "NAdamW",
            "RAdam",
            "Adafactor",
            "Muon",
            "Lion",
            "Shampoo",
            "SOAP",
            "Schedule-free AdamW",
        ]
    )
    usual = {name: c.usual_rate for name, c in contenders.items()}
    assert usual == {
        "SGD w/ Nesterov": 0.1,
        "AdamW": 1e-3,
        "NAdamW": 2e-3,
        "RAdam": 1e-3,
        "Adafactor": 1e-2,
        "Muon": 1e-3,
        "Lion": 1e-4,
        "Shampoo": 1e-3,
        "SOAP": 3e-3,
        "Schedule-free AdamW": 2.5e-3,
    }
    for name, c in contenders.items():  # one grid for all; the rule grows it (next_rate)
        assert c.rates() == pytest.approx([c.usual_rate * 4**k for k in range(3)]), name
        assert c.decays == (name != "Schedule-free AdamW") and c.elementwise


def test_the_fields_factories_build_the_pages_optimizers():
    built = {name: c.optimizer_at(mlp().parameters(), 0.5) for name, c in field(7).items()}
    kinds = {name: type(opt) for name, opt in built.items()}
    assert kinds == {
        "SGD w/ Nesterov": torch.optim.SGD,
        "AdamW": torch.optim.AdamW,
        "NAdamW": NAdamW,
        "RAdam": torch.optim.RAdam,
        "Adafactor": torch.optim.Adafactor,
        "Muon": MuonWithAdamW,
        "Lion": Lion,
        "Shampoo": Shampoo,
        "SOAP": SOAP,
        "Schedule-free AdamW": schedulefree.AdamWScheduleFree,
    }
    group = {name: opt.param_groups[0] for name, opt in built.items()}
    assert all(g["lr"] == 0.5 for g in group.values())
    assert group["SGD w/ Nesterov"]["nesterov"] and group["SGD w/ Nesterov"]["momentum"] == 0.9
    assert group["AdamW"]["weight_decay"] == 0.01  # torch's default
    assert group["RAdam"]["decoupled_weight_decay"] and group["RAdam"]["weight_decay"] == 0.01
    assert group["NAdamW"]["weight_decay"] == 0.01 and group["NAdamW"]["betas"][0] == 0.9
    assert group["Adafactor"]["weight_decay"] == 0  # torch's default: see field()
    muon = built["Muon"].param_groups
    assert [g["weight_decay"] for g in muon] == [MUON_DECAY, 0.01] and MUON_DECAY == 0.1
    assert [tuple(p.shape) for p in muon[0]["params"]] == [(128, 128), (128, 128)]
    assert group["Lion"]["weight_decay"] == pytest.approx(0.1)
    assert group["Shampoo"]["momentum"] == 0.9 and group["Shampoo"]["update_interval"] == 10
    assert group["Shampoo"]["grafting"] == "adagrad" and group["Shampoo"]["weight_decay"] == 0.01
    assert group["SOAP"]["precondition_frequency"] == 10 and group["SOAP"]["weight_decay"] == 0.01
    assert group["Schedule-free AdamW"]["warmup_steps"] == 7
    assert group["Schedule-free AdamW"]["weight_decay"] == 0.01


# --- the leaderboard on frames worked out by hand -----------------------------------------------


def tuned(name, test, val, epochs=2):
    """Seeds 0..n-1 of ``name``: the last epoch scores ``test`` and ``val``, the first 0.5."""
    rows = [
        {
            "run": name,
            "seed": seed,
            "epoch": epoch,
            "total time": 1.0 + epoch,
            "test Accuracy": t if epoch == epochs - 1 else 0.5,
            "val Accuracy": v if epoch == epochs - 1 else 0.5,
        }
        for seed, (t, v) in enumerate(zip(test, val))
        for epoch in range(epochs)
    ]
    return pd.DataFrame(rows)


def finished(name, test, val, rate=0.01, edge="-"):
    return RaceRuns(name, [rate], pd.DataFrame(), tuned(name, test, val), rate, edge, "ok", 10)


def test_the_leaderboard_by_hand():
    results = {
        "AdamW": finished("AdamW", [0.80, 0.80, 0.81], [0.8695, 0.8745, 0.8723]),
        "A": finished("A", [0.90, 0.91, 0.92], [0.88, 0.88, 0.88], edge="top"),
        "C": finished("C", [0.905, 0.915, 0.905], [0.86, 0.865, 0.86]),
        "Broken": RaceRuns(
            "Broken", [1.0], pd.DataFrame(), pd.DataFrame(), None, "-", "raised: X", 10
        ),
    }
    board = leaderboard(results)
    assert list(board.index) == ["A", "C", "AdamW", "Broken"]  # best first, failures last
    assert board.loc["A", "test acc."] == pytest.approx(0.91)
    t = 4.302652729911275  # Student's t, 97.5%, 2 degrees of freedom
    assert board.loc["A", "±"] == pytest.approx(t * 0.01 / math.sqrt(3))
    assert board.loc["A", "verdict"] == "leader" and board.loc["A", "vs leader"] == 0
    # C - A, paired: +0.005, +0.005, -0.015: mean -1/600, sd 0.011547, inside the noise
    assert board.loc["C", "vs leader"] == pytest.approx(-1 / 600)
    assert board.loc["C", "vs leader ±"] == pytest.approx(t * 0.0115470 / math.sqrt(3), rel=1e-4)
    assert board.loc["C", "verdict"] == "within the noise"
    # AdamW - A: -0.10, -0.11, -0.11: mean -0.10667, sd 0.005774: below by more than the noise
    assert board.loc["AdamW", "vs leader"] == pytest.approx(-0.32 / 3)
    assert board.loc["AdamW", "verdict"] == "below the leader"
    # the target: AdamW's mean final validation accuracy 0.8721, down to 0.5 points: 0.87
    assert board.attrs["target"] == pytest.approx(0.87)
    assert board.attrs["target_rule"].startswith("AdamW's mean final validation accuracy")
    assert board.loc["A", "steps to target"] == 20 and board.loc["A", "reached"] == "3/3"
    assert board.loc["AdamW", "reached"] == "2/3"  # seed 0 ends at 0.8695, below 0.87
    assert math.isnan(board.loc["C", "steps to target"]) and board.loc["C", "reached"] == "0/3"
    assert board.loc["A", "edge"] == "top" and board.loc["A", "rate"] == 0.01
    assert board.loc["Broken", "status"] == "raised: X" and math.isnan(
        board.loc["Broken", "test acc."]
    )
    assert board.loc["Broken", "seeds"] == 0
    text = readable(board, mine="C")
    assert list(text.index) == ["A", "C *", "AdamW", "Broken"]
    assert text.loc["A", "test acc. (%)"] == f"91.00 ± {100 * t * 0.01 / math.sqrt(3):.2f}"
    assert text.loc["C *", "vs leader (points)"].startswith("-0.17 ± ")
    assert text.loc["A", "vs leader (points)"] == "+0.00"  # the leader against itself
    board.loc["C", "vs leader"] = -0.000004  # rounds to zero: no "-0.00"
    assert readable(board).loc["C", "vs leader (points)"].startswith("+0.00 ± ")
    assert text.loc["A", "steps to target"] == "20 (3/3)"
    assert text.loc["C *", "steps to target"] == "not reached"
    assert text.loc["Broken", "test acc. (%)"] == "-" and text.loc["Broken", "rate"] == "-"


def test_the_target_leaves_a_margin_for_the_validation_splits_noise():
    results = {"AdamW": finished("AdamW", [0.80, 0.80, 0.81], [0.8695, 0.8745, 0.8723])}
    results["AdamW"].val_examples = 2400
    board = leaderboard(results)  # 0.8721 - sqrt(0.8721 * 0.1279 / 2400) = 0.8653 -> 0.865
    assert board.attrs["target"] == pytest.approx(0.865)
    assert "less one standard error" in board.attrs["target_rule"]
    assert "(0.7 points)" in board.attrs["target_rule"]


def test_a_given_target_and_a_field_without_adamw():
    results = {"A": finished("A", [0.9, 0.9], [0.833, 0.838])}
    board = leaderboard(results)  # the leader's own mean 0.8355 -> 0.835
    assert board.attrs["target"] == pytest.approx(0.835)
    assert board.attrs["target_rule"].startswith("A's")
    assert leaderboard(results, target=0.99).loc["A", "reached"] == "0/2"


# --- racing on tiny data -----------------------------------------------------------------------


def small():
    return mlp(hidden=8, layers=1)


@pytest.fixture
def race_setting(tiny_data):
    X, y = tiny_data
    loaders = {
        "train": ResidentLoader(X[:60], y[:60], 20, shuffle=True, seed=3),
        "val": ResidentLoader(X[60:80], y[60:80], 20),
        "test": ResidentLoader(X[80:], y[80:], 20),
    }
    return Setting(loaders, epochs=2, seeds=[0, 1], budget="tiny", make_model=small)


@pytest.fixture
def trained(monkeypatch):
    """Counts the seeds every run of the sweep trains."""
    counts = []
    real = sweep.run

    def spy(label, make_optimizer, *args, seeds=(0,), **kwargs):
        counts.append(len(list(seeds)))
        return real(label, make_optimizer, *args, seeds=seeds, **kwargs)

    monkeypatch.setattr(sweep, "run", spy)
    return counts


def sgd(params, lr):
    return torch.optim.SGD(params, lr=lr)


def test_setting_and_a_race_of_one(race_setting, trained):
    assert race_setting.steps == 6 and race_setting.warmup_steps == 1
    adamw = field(race_setting.warmup_steps)["AdamW"]
    ticks = []
    result = race_one("AdamW", adamw, race_setting, done=ticks.append)
    assert result.ok and sum(ticks) == planned_runs(adamw, race_setting) == 3 + EXTEND + 1
    assert set(adamw.rates()) <= set(result.rates) and result.rate in result.rates
    assert sum(trained) == len(result.rates) + 1  # its trials, then seed 1 (seed 0 is a trial)
    assert result.tuned["run"].eq("AdamW").all() and sorted(result.tuned["seed"].unique()) == [0, 1]
    assert set(result.trials["rate"]) == set(result.rates)
    assert race_setting.make_schedule(field(1)["Schedule-free AdamW"]) is None


def test_the_cache_trains_only_what_it_lacks(race_setting, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("IDL_CACHE", str(tmp_path))
    cache = cache_dir(race_setting)
    assert cache == tmp_path / "race" / f"tiny-{idlmam.__version__}-cpu"
    mine = Contender(0.1, sgd, grid=dict(below=1, above=0, factor=2.0), extend=0)
    first = run_race({"SGD": mine}, race_setting, cache=cache)
    assert sum(trained) == 3 and not first["SGD"].cached
    trained.clear()
    adamw = replace(field(1)["AdamW"], extend=0)
    both = run_race({"SGD": mine, "AdamW": adamw}, race_setting, cache=cache)
    assert sum(trained) == 4  # AdamW's alone
    assert both["SGD"].cached and not both["AdamW"].cached and list(both) == ["SGD", "AdamW"]
    for part in ("trials", "tuned"):  # the cached frames are the trained ones
        pd.testing.assert_frame_equal(getattr(both["SGD"], part), getattr(first["SGD"], part))
    assert (both["SGD"].rate, both["SGD"].edge) == (first["SGD"].rate, first["SGD"].edge)
    trained.clear()
    run_race({"SGD": mine, "AdamW": adamw}, race_setting, cache=cache, fresh=True)
    assert sum(trained) == 7
    trained.clear()
    wider = Contender(0.1, sgd, grid=dict(below=1, above=1, factor=2.0), extend=0)  # stale
    run_race({"SGD": wider}, race_setting, cache=cache)
    assert sum(trained) == 4


def test_a_corrupted_cache_file_warns_and_reruns(race_setting, trained, tmp_path):
    mine = {"SGD": Contender(0.1, sgd, grid=dict(below=0, above=1, factor=2.0), extend=0)}
    run_race(mine, race_setting, cache=tmp_path)
    path = tmp_path / "SGD.csv"
    good = path.read_text()
    head, body = good.split("\n", 1)  # the key and checksum; the runs
    altered = f"{head}\n{body.replace('0.', '1.', 1)}"
    for bad in ("# {not json\n1,2\n", "", good[:-20], altered):
        path.write_text(bad)
        trained.clear()
        with pytest.warns(RuntimeWarning, match="cannot be read"):
            assert load_cached(mine, race_setting, tmp_path) == {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            again = run_race(mine, race_setting, cache=tmp_path)
        assert sum(trained) == planned_runs(mine["SGD"], race_setting) == 3 and again["SGD"].ok
        assert load_cached(mine, race_setting, tmp_path)["SGD"].cached  # rewritten whole


# --- the grid-extension rule ---------------------------------------------------------------------


def _scored(rates_and_scores):
    """Final validation accuracies of one optimizer's trials, as best_rates reads them."""
    rates, scores = zip(*rates_and_scores)
    return pd.DataFrame(
        {
            "optimizer": "A",
            "rate": rates,
            "run": [f"A, lr {r:g}" for r in rates],
            "seed": 0,
            "epoch": 0,
            "val Accuracy": scores,
        }
    )


@pytest.mark.parametrize(
    "trials, expected",
    [
        ([(1.0, 0.5), (4.0, 0.6), (16.0, 0.7)], 64.0),  # best at the top: up
        ([(1.0, 0.7), (4.0, 0.6), (16.0, 0.1)], 0.25),  # best at the bottom: down
        ([(1.0, 0.5), (4.0, 0.7), (16.0, 0.6)], None),  # inside: done
        ([(1.0, math.nan), (4.0, math.nan)], 0.25),  # every rate failed: down
        ([(1.0, 0.5), (4.0, 0.7), (16.0, 0.6), (64.0, math.nan)], None),
    ],
)
def test_next_rate_follows_the_rule(trials, expected):
    assert next_rate(_scored(trials), "A", 4.0) == expected


def _fake_sweep(best_at):
    """An lr_sweep whose one-seed trial scores highest at ``best_at`` (log distance)."""

    def sweep_(name, optimizer_at, rates, **kwargs):
        (rate,) = rates
        score = 0.9 - 0.1 * abs(math.log(rate / best_at, 4))
        frame = pd.DataFrame(
            {
                "optimizer": name,
                "rate": rate,
                "run": f"{name}, lr {rate:.2g}",
                "seed": 0,
                "epoch": [0],
                "val Accuracy": score,
                "test Accuracy": score,
                "total time": 1.0,
            }
        )
        frame.attrs["diverged"] = False
        return frame

    return sweep_


@pytest.mark.parametrize(
    "best_at, rates, chosen, edge",
    [
        (4.0, [1, 4, 16], 4.0, "-"),  # inside the grid: nothing added
        (64.0, [1, 4, 16, 64, 256], 64.0, "-"),  # found by the first added rate
        (1024.0, [1, 4, 16, 64, 256], 256.0, "top"),  # still at the top after two: flagged
        (1 / 16, [1 / 16, 1 / 4, 1, 4, 16], 1 / 16, "bottom"),
    ],
)
def test_a_race_grows_the_grid_by_the_rule(race_setting, monkeypatch, best_at, rates, chosen, edge):
    monkeypatch.setattr(race, "lr_sweep", _fake_sweep(best_at))
    one_seed = replace(race_setting, seeds=[0])
    ticks = []
    result = race_one("A", Contender(1.0, sgd), one_seed, done=ticks.append)
    assert result.rates == pytest.approx(rates) and result.rate == pytest.approx(chosen)
    assert result.edge == edge and sum(ticks) == planned_runs(Contender(1.0, sgd), one_seed) == 5


class RaisesInStep(torch.optim.SGD):
    def step(self, closure=None):
        raise RuntimeError("this step is not written yet")


class WritesNaN(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.fill_(math.nan)


def test_failures_are_rows_and_the_others_finish(race_setting, tmp_path):
    contenders = {
        "Raises": Contender(0.1, lambda p, lr: RaisesInStep(p, lr=lr)),
        "NaN": Contender(0.1, lambda p, lr: WritesNaN(p, lr=lr)),
        "Unbuilt": Contender(0.1, lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=-1)),
        "SGD": Contender(0.1, sgd),
    }
    ticks = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failure is a row, not a warning
        results = run_race(contenders, race_setting, cache=tmp_path, done=ticks.append)
    assert sum(ticks) == sum(planned_runs(c, race_setting) for c in contenders.values())
    assert results["Raises"].status == "raised: RuntimeError: this step is not written yet"
    assert results["NaN"].status == "diverged at every rate"
    assert results["NaN"].rates == pytest.approx([0.1 / 16, 0.1 / 4, 0.1, 0.4, 1.6])  # down
    assert results["Unbuilt"].status.startswith("raised: ValueError: Invalid momentum value")
    assert results["SGD"].ok and not any(r.ok for n, r in results.items() if n != "SGD")
    board = leaderboard(results)
    assert list(board.index) == ["SGD", "Raises", "NaN", "Unbuilt"]
    assert board.loc["NaN", "status"] == "diverged at every rate"
    # a diverged contender is cached (it will diverge again); one that raised is not
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["NaN.csv", "SGD.csv"]


# --- what a step costs ---------------------------------------------------------------------------


class Sleepy(torch.optim.SGD):
    """SGD whose every step also waits 5 ms, and which logs its steps."""

    log: list = []

    def __init__(self, params, lr, label):
        super().__init__(params, lr=lr)
        self.label = label

    def step(self, closure=None):
        Sleepy.log.append(self.label)
        time.sleep(0.005)
        return super().step(closure)


def test_step_costs_time_each_step_in_interleaved_rounds():
    Sleepy.log = []
    makers = {
        "SGD": lambda p: torch.optim.SGD(p, lr=0.1),
        "A": lambda p: Sleepy(p, 0.1, "A"),
        "B": lambda p: Sleepy(p, 0.1, "B"),
        "Schedule-free": lambda p: schedulefree.AdamWScheduleFree(p, lr=1e-3),  # needs train()
    }
    costs = step_costs(makers, make_model=small, steps=3, rounds=2, reference="SGD")
    assert Sleepy.log == (["A"] * 3 + ["B"] * 3) * 3  # a warm-up round, then 2, in turns
    assert list(costs.index) == list(makers) and costs.loc["SGD", "x ref"] == 1
    assert (costs.loc[["A", "B"], "ms per step"] - costs.loc["SGD", "ms per step"] > 4.5).all()
    assert (costs["ms min"] <= costs["ms per step"]).all()
    assert (costs["ms per step"] <= costs["ms max"]).all()
    assert costs.loc["A", "x min"] > 1


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(steps=0), "steps >= 1"), (dict(rounds=0), "rounds >= 1"), (dict(reference="C"), "'C'")],
)
def test_step_costs_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        step_costs({"SGD": lambda p: torch.optim.SGD(p, lr=0.1)}, make_model=small, **kwargs)
