"""Tests of idlmam.tuning: the objective (against a hand-made training run), storages, studies."""
from __future__ import annotations

import math
import warnings

import optuna
import pytest
import torch
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import FixedTrial, TrialState
from pg_server import postgres_url  # noqa: F401  (a fixture)

from idlmam.data import ResidentLoader
from idlmam.tuning import (StudyNotFoundError, chapter_loaders, count_trials, create_study,
                           make_objective, open_storage, optimize_until)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PARAMS = {"neurons_per_layer": 20, "hidden_layers": 2, "learning_rate": 3e-3}


@pytest.fixture
def loaders(tiny_data):
    """80 training and 20 validation examples, the training ones shuffled."""
    X, y = tiny_data
    return (ResidentLoader(X[:80], y[:80], 16, shuffle=True, seed=0),
            ResidentLoader(X[80:], y[80:], 16))


@pytest.fixture
def spy(monkeypatch):
    """Record every call of train_network (the objective imports it when a trial runs)."""
    import idlmam.train

    calls = []
    real = idlmam.train.train_network

    def recording(model, loss_func, train_loader, val_loader=None, test_loader=None, **kwargs):
        frame = real(model, loss_func, train_loader, val_loader, test_loader, **kwargs)
        calls.append(dict(model=model, train_loader=train_loader, val_loader=val_loader,
                          test_loader=test_loader, frame=frame, **kwargs))
        return frame

    monkeypatch.setattr(idlmam.train, "train_network", recording)
    return calls


# --------------------------------------------------------------------------- the objective

def test_objective_returns_the_last_val_accuracy_of_the_run_it_describes(loaders):
    """Oracle: the same run made by hand (seed 0, AdamW, cosine with T_max = epochs)."""
    from sklearn.metrics import accuracy_score
    from torch.optim.lr_scheduler import CosineAnnealingLR

    from idlmam.models import mlp
    from idlmam.train import train_network
    from idlmam.utils import set_seed

    train_loader, val_loader = loaders
    next(iter(train_loader))  # move the loader's order on: the objective must reset it
    value = make_objective(train_loader, val_loader, epochs=3)(FixedTrial(PARAMS))

    set_seed(0)
    model = mlp(hidden=20, layers=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    X, y = train_loader.X, train_loader.y
    frame = train_network(model, torch.nn.CrossEntropyLoss(),
                          ResidentLoader(X, y, 16, shuffle=True, seed=0), val_loader,
                          score_funcs={"Accuracy": accuracy_score}, epochs=3, optimizer=optimizer,
                          lr_schedule=CosineAnnealingLR(optimizer, T_max=3), disable_tqdm=True)
    assert value == frame["val Accuracy"].iloc[-1]
    # and it is not a number that any run would give: another learning rate scores differently
    slower = FixedTrial({**PARAMS, "learning_rate": 1e-5})
    other = make_objective(train_loader, val_loader, epochs=3)(slower)
    assert other != value


def test_objective_builds_the_trial_model_and_a_schedule_that_fits_the_epochs(loaders, spy):
    train_loader, val_loader = loaders
    make_objective(train_loader, val_loader, epochs=4)(FixedTrial(PARAMS))
    (call,) = spy
    linear = [m for m in call["model"] if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linear] == [20, 20, 10]  # two hidden layers of 20
    assert isinstance(call["optimizer"], torch.optim.AdamW)
    assert call["lr_schedule"].T_max == 4  # not 16 with 10 epochs, the source's slip
    # the learning rate of each epoch follows the closed form and is lowest in the last one
    lrs = call["frame"]["lr"].tolist()
    assert lrs == pytest.approx([3e-3 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
    assert call["test_loader"] is None and call["val_loader"] is val_loader


def test_study_searches_the_chapter_space_and_custom_ranges(loaders):
    train_loader, val_loader = loaders
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # suggest_uniform/loguniform warn so
        study = create_study(seed=0)
        study.optimize(make_objective(train_loader, val_loader, epochs=1), n_trials=3)
    assert study.trials[0].distributions == {
        "neurons_per_layer": IntDistribution(16, 256),
        "hidden_layers": IntDistribution(1, 6),
        "learning_rate": FloatDistribution(1e-5, 1e-2, log=True)}

    study = create_study(seed=0)
    wide = make_objective(train_loader, val_loader, epochs=1, neurons=(1, 256),
                          learning_rate=(1e-5, 100.0))
    study.optimize(wide, n_trials=1)
    dist = study.trials[0].distributions
    assert dist["neurons_per_layer"] == IntDistribution(1, 256)
    assert dist["learning_rate"] == FloatDistribution(1e-5, 100.0, log=True)


@pytest.mark.parametrize("kwargs, match", [
    (dict(epochs=0), "epochs"),
    (dict(epochs=2, neurons=(0, 8)), "above 0"),
    (dict(epochs=2, layers=(3, 1)), "low must not exceed high"),
    (dict(epochs=2, learning_rate=(0.0, 1.0)), "above 0"),
])
def test_make_objective_rejects_bad_ranges(loaders, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_objective(*loaders, **kwargs)


def test_diverging_trial_is_pruned_with_its_reason_and_the_study_goes_on(loaders):
    train_loader, val_loader = loaders
    objective = make_objective(train_loader, val_loader, epochs=4, neurons=(1, 16),
                               learning_rate=(1e-3, 1e6))
    study = create_study(seed=0)
    study.enqueue_trial({"neurons_per_layer": 1, "hidden_layers": 1, "learning_rate": 1e6})
    study.enqueue_trial({"neurons_per_layer": 16, "hidden_layers": 1, "learning_rate": 1e-3})
    study.optimize(objective, n_trials=2)  # raises nothing
    bad, good = study.trials
    assert bad.state == TrialState.PRUNED
    assert bad.user_attrs["stop_reason"].startswith("diverged: train loss ")
    assert bad.user_attrs["stop_reason"].split()[3] in ("nan", "inf")
    assert bad.user_attrs["epochs_trained"] < 4  # stopped after the epoch that diverged
    assert good.state == TrialState.COMPLETE and 0 <= good.value <= 1
    assert "stop_reason" not in good.user_attrs


def test_a_finite_loss_above_max_train_loss_also_counts_as_diverged(loaders):
    """Width 1 with learning rate 100 stays finite here (AdamW's decay zeroes the weights)."""
    train_loader, val_loader = loaders
    params = {"neurons_per_layer": 1, "hidden_layers": 1, "learning_rate": 100.0}
    wide = dict(epochs=3, neurons=(1, 256), learning_rate=(1e-5, 100.0))
    study = create_study(seed=0)
    study.enqueue_trial(params)
    study.optimize(make_objective(train_loader, val_loader, **wide), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE  # finite: a (bad) result, not a failure

    study = create_study(seed=0)
    study.enqueue_trial(params)
    study.optimize(make_objective(train_loader, val_loader, max_train_loss=10.0, **wide),
                   n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["stop_reason"].startswith("diverged: train loss")
    assert trial.user_attrs["epochs_trained"] == 1


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


@pytest.mark.parametrize("prune", [False, True])
def test_pruning_reports_each_epoch_and_stops_only_when_asked(loaders, prune):
    study = create_study(seed=0, pruner=_AlwaysPrune())
    study.optimize(make_objective(*loaders, epochs=3, prune=prune), n_trials=1)
    (trial,) = study.trials
    if prune:
        assert trial.state == TrialState.PRUNED
        assert "stop_reason" not in trial.user_attrs  # kept for trials that diverged
        assert list(trial.intermediate_values) == [0] and trial.user_attrs["epochs_trained"] == 1
    else:
        assert trial.state == TrialState.COMPLETE
        assert list(trial.intermediate_values) == [0, 1, 2]
        assert trial.intermediate_values[2] == trial.value  # the score is the last epoch's


def test_seeded_sequential_study_is_reproducible(loaders):
    """12 trials: past the 10 random start-up trials, so TPE's own proposals are compared too."""
    def run(seed):
        study = create_study(seed=seed)
        study.optimize(make_objective(*loaders, epochs=1), n_trials=12)
        return [(t.params, t.value) for t in study.trials]

    first = run(0)
    assert run(0) == first
    assert [p for p, _ in run(1)] != [p for p, _ in first]


# --------------------------------------------------------------------------- data

def test_chapter_loaders_split_the_training_set_and_never_load_the_test_set(monkeypatch,
                                                                            fashion_root):
    import idlmam.data
    from idlmam.data import resident_loader, split, subset

    asked = []
    real = idlmam.data.fashion_mnist

    def training_only(train=True, root=None):
        asked.append(train)
        if not train:
            raise AssertionError("the search must not load the test set")
        return real(train=True, root=root)

    monkeypatch.setattr(idlmam.data, "fashion_mnist", training_only)
    train_loader, val_loader = chapter_loaders("quick", train_size=1000)
    assert asked == [True]
    assert (train_loader.n_examples, val_loader.n_examples) == (800, 200)
    assert train_loader.shuffle and not val_loader.shuffle
    # oracle: the documented subset and split of the training set, made by hand
    a, b = split(subset(real(train=True), 1000, seed=0), (0.8, 0.2), seed=0)
    assert torch.equal(train_loader.X, resident_loader(a).X)
    assert torch.equal(val_loader.y, resident_loader(b).y)
    assert chapter_loaders("quick", train_size=1000, seed=1)[1].y.tolist() != val_loader.y.tolist()


def test_chapter_loaders_size_comes_from_the_budget(monkeypatch):
    import idlmam.data
    from idlmam.budget import get_budget

    seen = []
    monkeypatch.setattr(idlmam.data, "subset", lambda data, n, seed=0: seen.append(n) or data[:50])
    monkeypatch.setattr(idlmam.data, "fashion_mnist",
                        lambda train=True, root=None: [(torch.zeros(1, 28, 28), 0)] * 100)
    chapter_loaders("quick")
    chapter_loaders("full")
    chapter_loaders("quick", train_size=500)
    assert seen == [get_budget("quick").train_size, get_budget("full").train_size, 500]
    assert seen[0] < 60_000 and seen[1] is None  # quick draws a subset, full uses everything


# --------------------------------------------------------------------------- storages and studies

def test_open_storage_maps_urls_to_optuna_storages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert isinstance(open_storage(None), optuna.storages.InMemoryStorage)
    assert isinstance(open_storage("memory"), optuna.storages.InMemoryStorage)
    assert isinstance(open_storage("journal:///rel.log"), optuna.storages.JournalStorage)
    assert (tmp_path / "rel.log").exists()
    open_storage(f"journal:///{tmp_path}/abs.log")  # four slashes: an absolute path
    assert (tmp_path / "abs.log").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        rdb = open_storage("sqlite:///s.db", heartbeat_interval=5, grace_period=7, max_retry=2)
    assert isinstance(rdb, optuna.storages.RDBStorage) and (tmp_path / "s.db").exists()
    assert (rdb.heartbeat_interval, rdb.grace_period) == (5, 7)
    assert isinstance(rdb.heartbeat_stale_trial_callback,
                      optuna.storages.RetryHeartbeatStaleTrialCallback)


@pytest.mark.parametrize("url, match", [
    ("foo://x", "unknown storage scheme 'foo'.*journal:///PATH"),
    ("study.db", "has no scheme"),
    ("journal://", "names no file"),
    ("sqlite:////no/such/folder/s.db", "cannot open storage"),
    ("postgresql+psycopg://me:secret@127.0.0.1:1/db", r"cannot open storage .*me:\*\*\*@"),
])
def test_open_storage_says_what_is_wrong(url, match):
    with pytest.raises(ValueError, match=match) as info:
        open_storage(url)
    assert "secret" not in str(info.value)


@pytest.mark.postgres
def test_postgres_storage_has_a_heartbeat_and_keeps_studies(postgres_url):
    storage = open_storage(postgres_url, heartbeat_interval=3)
    assert isinstance(storage, optuna.storages.RDBStorage) and storage.heartbeat_interval == 3
    study = create_study(storage, "pg", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = create_study(postgres_url, "pg", create=False)
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_sqlite_study_resumes_and_load_only_needs_an_existing_study(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    f = lambda t: t.suggest_float("x", 0, 1)  # noqa: E731
    assert optimize_until(create_study(url, "s", seed=0), f, 3) == 3
    resumed = create_study(url, "s", seed=0)  # as a new process would
    assert optimize_until(resumed, f, 5) == 2
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3, 4]
    with pytest.raises(StudyNotFoundError, match="no study named 'typo'.*create"):
        create_study(url, "typo", create=False)
    with pytest.raises(ValueError, match="maximizes its objective"):
        create_study(url, "s", direction="minimize")


def test_optimize_until_counts_running_trials_and_runs_queued_ones_first():
    study = create_study(seed=0)
    study.enqueue_trial({"x": 0.25})
    study.enqueue_trial({"x": 0.75})
    assert count_trials(study) == 0  # queued trials count once they run
    assert optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 2) == 2
    assert [t.params["x"] for t in study.trials] == [0.25, 0.75]  # ran them first, added none
    running = study.ask()  # as if another worker were running a trial
    assert optimize_until(study, lambda t: t.suggest_float("x", 0, 1), 4) == 1
    assert len(study.trials) == 4 and study.trials[running.number].state == TrialState.RUNNING
    with pytest.raises(ValueError, match="at least 0"):
        optimize_until(study, lambda t: 0.0, -1)

