"""Page 04's hand-written Optuna objective scores trials exactly as the package's `make_objective`.

The page writes the objective out (suggest, seed, build with `adamw_cosine`, a plain training
loop, `trial.report` after every epoch, `trial.should_prune`) and runs it once on a small study;
its searches then use `idlmam.tune.make_objective`. Both are run here in studies that try the
same hyperparameters (enqueued) under the same median pruner, on the same small synthetic data:
the reported validation accuracies, the trials the pruner stops and the returned scores must be
equal, to the last bit.
"""

import optuna
import pytest
import torch
from lessons import lesson, lesson_sources
from optuna.trial import FixedTrial, TrialState

from idlmam.data import ResidentLoader
from idlmam.tune import make_objective

optuna.logging.set_verbosity(optuna.logging.WARNING)

PAGE = "04_optuna"
EPOCHS = 3
# small networks, a rate from each part of the range; the third and fourth learn too slowly and
# are stopped by the pruner, the others run to the end
TRIALS = [
    {"neurons_per_layer": 32, "hidden_layers": 2, "learning_rate": 1e-2},
    {"neurons_per_layer": 24, "hidden_layers": 1, "learning_rate": 3e-3},
    {"neurons_per_layer": 16, "hidden_layers": 1, "learning_rate": 1e-5},
    {"neurons_per_layer": 16, "hidden_layers": 3, "learning_rate": 1e-4},
]


@pytest.fixture(scope="module")
def loaders():
    """400 random 'images', labelled by a fixed random linear map: 10 classes a net can learn."""
    g = torch.Generator().manual_seed(0)
    X = torch.rand(400, 1, 28, 28, generator=g)
    y = ((X.flatten(1) - 0.5) @ torch.randn(28 * 28, 10, generator=g)).argmax(dim=1)
    train = ResidentLoader(X[:300], y[:300], batch_size=32, shuffle=True, seed=5)
    val = ResidentLoader(X[300:], y[300:], batch_size=32)
    return train, val


def _study(objective):
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1)
    )
    for params in TRIALS:
        study.enqueue_trial(params)
    study.optimize(objective, n_trials=len(TRIALS))
    return study


def _record(study):
    return [(t.params, t.state, t.intermediate_values, t.value) for t in study.trials]


def test_the_pages_objective_reports_and_returns_what_make_objective_does(loaders):
    train, val = loaders
    page = lesson(PAGE)["objective_for"](train, val, epochs=EPOCHS)
    by_hand = _record(_study(page))
    packaged = _record(_study(make_objective(train, val, epochs=EPOCHS, prune=True)))
    assert by_hand == packaged  # floats compared exactly
    states = [state for _, state, _, _ in packaged]
    assert states.count(TrialState.COMPLETE) >= 2 and states.count(TrialState.PRUNED) >= 1
    scores = [v for _, _, values, _ in packaged for v in values.values()]
    assert len(set(scores)) > 3  # the accuracies vary: the comparison can tell runs apart


def test_a_fixed_trial_scores_the_same(loaders):
    train, val = loaders
    page = lesson(PAGE)["objective_for"](train, val, epochs=EPOCHS)
    packaged = make_objective(train, val, epochs=EPOCHS)
    assert page(FixedTrial(TRIALS[1])) == packaged(FixedTrial(TRIALS[1]))


@pytest.mark.parametrize(
    ("lines", "changed"),
    [
        ("schedule.step()", "pass"),  # forgets the schedule: the rate stays at its top
        ("trial.report(score, epoch)", "trial.report(score, epoch + 1)"),  # steps counted from 1
        ("seed_run(seed, train_loader)", "torch.manual_seed(seed)"),  # the batch order unseeded
    ],
)
def test_the_comparison_fails_for_an_objective_that_differs(loaders, lines, changed):
    sources = lesson_sources(PAGE)
    assert sum(source.count(lines) for source in sources) == 1, f"the lesson has no {lines!r}"
    namespace: dict = {}
    for source in sources:
        exec(source.replace(lines, changed), namespace)
    train, val = loaders
    wrong = _record(_study(namespace["objective_for"](train, val, epochs=EPOCHS)))
    packaged = _record(_study(make_objective(train, val, epochs=EPOCHS, prune=True)))
    assert wrong != packaged
