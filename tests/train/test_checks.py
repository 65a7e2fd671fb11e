"""The checks before the first epoch, on their own (their effect on a run is in test_train.py)."""

import numpy as np
import pytest
import torch
from torch import nn

from idlmam.train.checks import check_arguments, predicted_labels, preflight, score


def test_predicted_labels_argmax_only_class_scores():
    scores = torch.tensor([[0.1, 0.9], [2.0, -1.0]])
    assert predicted_labels(scores).tolist() == [1, 0]
    single = torch.tensor([[0.3], [0.7]])  # one column: a regression output, left alone
    assert predicted_labels(single) is single


def test_score_names_the_failing_function():
    def fussy(y_true, y_pred):
        raise ZeroDivisionError("boom")

    assert (
        score("Accuracy", lambda a, b: (a == b).mean(), np.array([1, 2]), np.array([1, 0]), "x")
        == 0.5
    )
    with pytest.raises(ValueError, match="'Fussy' .*fussy.*ZeroDivisionError: boom"):
        score("Fussy", fussy, np.zeros(2), np.zeros(2), "the test data")


def test_check_arguments_refuses_a_plateau_without_validation():
    with pytest.raises(ValueError, match="val_loader is None"):
        check_arguments(
            [(torch.zeros(1, 2), torch.zeros(1))], None, None, None, 3, "ReduceLROnPlateau"
        )


def test_preflight_leaves_random_state_and_modes_alone():
    model = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5))
    model.train()
    batches = [(torch.randn(5, 4), torch.randint(0, 3, (5,)))]
    before = torch.get_rng_state()
    preflight(model, nn.CrossEntropyLoss(), {"train_loader": batches}, None, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), before) and model.training


def test_preflight_names_a_shape_mismatch():
    batches = [(torch.randn(5, 4), torch.randn(5, 1))]
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 1\)"):
        preflight(
            nn.Linear(4, 3), nn.MSELoss(), {"train_loader": batches}, None, torch.device("cpu")
        )
