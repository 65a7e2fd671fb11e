import numpy as np
import pytest
import torch
from torch import nn

from idlmam.data import ResidentLoader
from idlmam.train import accuracy, predict


def test_accuracy_is_the_fraction_of_equal_labels():
    assert accuracy(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
    assert accuracy([3], [3]) == 1.0


def test_accuracy_refuses_mismatched_or_empty_arrays():
    with pytest.raises(ValueError, match="same, non-empty shape"):
        accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="same, non-empty shape"):
        accuracy(np.array([]), np.array([]))


def test_predict_takes_the_argmax_of_each_example():
    model = nn.Identity()
    X = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = torch.tensor([0, 1, 1, 1])
    y_true, y_pred = predict(model, ResidentLoader(X, y, 2))
    assert y_true.tolist() == [0, 1, 1, 1] and y_pred.tolist() == [0, 1, 0, 1]
    assert accuracy(y_true, y_pred) == 0.75
