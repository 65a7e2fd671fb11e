import math

import pytest
import torch
from torch import nn

from idlmam.models import BiRNN
from idlmam.sequences import (
    bayes_accuracy,
    log_likelihood,
    markov_task,
    sample_sequences,
    sequence_loaders,
)


def test_task_is_a_function_of_its_seed_and_rows_are_distributions():
    a, b = markov_task(seed=3), markov_task(seed=3)
    assert torch.equal(a.transitions, b.transitions) and torch.equal(a.start, b.start)
    assert not torch.equal(a.transitions, markov_task(seed=4).transitions)
    torch.testing.assert_close(a.transitions.sum(dim=-1), torch.ones(a.classes, a.vocab))
    torch.testing.assert_close(a.start.sum(dim=-1), torch.ones(a.classes))
    assert (a.transitions > 0).all()


def test_samples_are_seeded_balanced_and_in_range():
    task = markov_task(classes=3, vocab=6, length=10)
    X, y = sample_sequences(task, 300, seed=1)
    X2, y2 = sample_sequences(task, 300, seed=1)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert X.shape == (300, 10) and X.dtype == torch.long
    assert X.min() >= 0 and X.max() < 6
    assert torch.bincount(y).tolist() == [100, 100, 100]


def test_samples_follow_their_class_chain():
    task = markov_task(classes=2, vocab=4, length=50, seed=0)
    X, y = sample_sequences(task, 2000, seed=0)
    for c in range(2):
        seqs = X[y == c]
        counts = torch.zeros(4, 4)
        counts.index_put_(
            (seqs[:, :-1].reshape(-1), seqs[:, 1:].reshape(-1)),
            torch.ones(seqs[:, 1:].numel()),
            accumulate=True,
        )
        empirical = counts / counts.sum(dim=1, keepdim=True)
        torch.testing.assert_close(empirical, task.transitions[c], atol=0.02, rtol=0)


def test_log_likelihood_matches_a_hand_computed_sequence():
    task = markov_task(classes=2, vocab=3, length=4, seed=5)
    X = torch.tensor([[0, 2, 2, 1]])
    for c in range(2):
        by_hand = (
            math.log(task.start[c, 0])
            + math.log(task.transitions[c, 0, 2])
            + math.log(task.transitions[c, 2, 2])
            + math.log(task.transitions[c, 2, 1])
        )
        assert log_likelihood(task, X)[0, c].item() == pytest.approx(by_hand, rel=1e-5)


def test_the_bayes_classifier_is_far_above_chance_but_sharing_makes_it_harder():
    easy, hard = markov_task(shared=0.0), markov_task(shared=0.9)
    X_easy, y_easy = sample_sequences(easy, 2000, seed=1)
    X_hard, y_hard = sample_sequences(hard, 2000, seed=1)
    assert bayes_accuracy(easy, X_easy, y_easy) > 0.95
    assert (
        1 / hard.classes
        < bayes_accuracy(hard, X_hard, y_hard)
        < bayes_accuracy(easy, X_easy, y_easy)
    )


def test_loaders_hold_independent_sets():
    loaders = sequence_loaders(16, task=markov_task(length=8), n_train=64, n_val=32, n_test=48)
    assert {k: v.n_examples for k, v in loaders.items()} == {"train": 64, "val": 32, "test": 48}
    assert not torch.equal(loaders["train"].X[:32], loaders["val"].X)
    assert "val" not in sequence_loaders(16, n_train=8, n_test=8)


def test_birnn_learns_the_task():
    torch.manual_seed(0)
    task = markov_task(classes=2, vocab=4, length=12, shared=0.0, seed=1)
    X, y = sample_sequences(task, 256, seed=0)
    model = BiRNN(task.vocab, task.classes, hidden=16, layers=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert (model(X).argmax(dim=1) == y).float().mean() > 0.8
