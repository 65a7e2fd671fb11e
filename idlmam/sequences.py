"""A sequence task made on the spot (the RNN that classifies it is :class:`idlmam.models.BiRNN`).

The previous chapter classified names by the language they come from. This module makes a task
of the same kind without downloading anything: each class is a "language", a Markov chain over
a small alphabet (its own first-token probabilities and its own table of next-token
probabilities), and every example is a sequence drawn from one of them. The chains share a
common part, so they overlap and the task is not trivially easy. Because the chains are known,
the best possible classifier (Bayes' rule on the exact likelihoods) is known too, and a trained
network can be compared with that ceiling.

Example:
    >>> task = markov_task(classes=3, vocab=8, length=12, seed=0)
    >>> X, y = sample_sequences(task, 5, seed=1)
    >>> X.shape, y.shape
    (torch.Size([5, 12]), torch.Size([5]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "MarkovTask",
    "markov_task",
    "sample_sequences",
    "log_likelihood",
    "bayes_accuracy",
    "sequence_loaders",
]


@dataclass(frozen=True)
class MarkovTask:
    """One Markov chain per class over tokens ``0 .. vocab-1``.

    Attributes:
        start: ``(classes, vocab)`` probabilities of the first token.
        transitions: ``(classes, vocab, vocab)``; row ``[c, a]`` is the distribution of the
            token after ``a`` in class ``c``.
        length: tokens per sequence.
    """

    start: torch.Tensor
    transitions: torch.Tensor
    length: int

    @property
    def classes(self) -> int:
        return self.start.shape[0]

    @property
    def vocab(self) -> int:
        return self.start.shape[1]


def markov_task(
    classes: int = 4,
    vocab: int = 10,
    length: int = 16,
    *,
    shared: float = 0.5,
    concentration: float = 0.5,
    seed: int = 0,
) -> MarkovTask:
    r"""Draw ``classes`` Markov chains that overlap by ``shared``.

    Every row of every table mixes one chain common to all classes with the class's own:

    .. math::
        P_c(a \to b) = s \cdot P_{shared}(a \to b) + (1 - s) \cdot P_{own, c}(a \to b)

    with each row of :math:`P` drawn from a Dirichlet distribution. The larger :math:`s`, the
    more alike the classes and the longer a sequence must be read to tell them apart.

    Args:
        classes: number of chains (labels).
        vocab: alphabet size.
        length: tokens per sequence (at least 2).
        shared: :math:`s`, in ``[0, 1)``.
        concentration: of the Dirichlet rows; small values make peaked, distinctive rows.
        seed: the chains are a function of the arguments only.
    """
    if classes < 2 or vocab < 2 or length < 2:
        raise ValueError(
            f"need classes, vocab and length of at least 2, got {classes}, {vocab}, {length}"
        )
    if not 0 <= shared < 1:
        raise ValueError(f"shared must be in [0, 1), got {shared}")
    import numpy as np

    rng = np.random.default_rng(seed)

    def rows(*shape: int) -> torch.Tensor:  # Dirichlet rows over the alphabet
        return torch.from_numpy(rng.dirichlet([concentration] * vocab, size=shape))

    common_start, common_table = rows(1), rows(1, vocab)  # (1, vocab), (1, vocab, vocab)
    start = shared * common_start + (1 - shared) * rows(classes)  # (classes, vocab)
    transitions = shared * common_table + (1 - shared) * rows(
        classes, vocab
    )  # (classes, vocab, vocab)
    return MarkovTask(start.float(), transitions.float(), length)


def sample_sequences(
    task: MarkovTask, n: int, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` labelled sequences, classes in equal shares (shuffled).

    Returns:
        ``X`` of shape ``(n, length)`` (token ids, int64) and ``y`` of shape ``(n,)``.
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % task.classes
    y = y[torch.randperm(n, generator=g)]  # (n,)
    X = torch.empty(n, task.length, dtype=torch.long)
    X[:, 0] = torch.multinomial(task.start[y], 1, generator=g).squeeze(1)
    for t in range(1, task.length):
        next_rows = task.transitions[y, X[:, t - 1]]  # (n, vocab): each sequence's next-token law
        X[:, t] = torch.multinomial(next_rows, 1, generator=g).squeeze(1)
    return X, y


def log_likelihood(task: MarkovTask, X: torch.Tensor) -> torch.Tensor:
    """``log P(X | class)`` of each sequence under each chain: ``(n, length) -> (n, classes)``."""
    log_start, log_table = task.start.log(), task.transitions.log()
    ll = log_start[:, X[:, 0]].T  # (n, classes)
    for t in range(1, X.shape[1]):
        ll = ll + log_table[:, X[:, t - 1], X[:, t]].T  # (classes, n) -> (n, classes)
    return ll


def bayes_accuracy(task: MarkovTask, X: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of the best possible classifier (equal priors): the most likely chain wins."""
    return (log_likelihood(task, X).argmax(dim=1) == y).float().mean().item()


def sequence_loaders(
    batch_size: int = 64,
    *,
    task: MarkovTask | None = None,
    n_train: int = 4000,
    n_val: int = 0,
    n_test: int = 2000,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> dict:
    """Training, optional validation and test loaders over sequences of ``task``.

    The three sets are drawn independently (different seeds), so no sequence is shared by
    accident of construction.

    Args:
        batch_size: of the training loader.
        task: the chains (default ``markov_task()``).
        n_train, n_val, n_test: sequences per set (``n_val=0``: no validation loader).
        device: where the tensors live.
        seed: seed of the sets and of the training order.

    Returns:
        ``{"train", "test"}`` (and ``"val"``) :class:`idlmam.data.ResidentLoader` objects.
    """
    from .data import ResidentLoader

    task = task or markov_task()
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    loaders = {}
    for offset, (name, n) in enumerate(sizes.items()):
        if n == 0:
            continue
        X, y = sample_sequences(task, n, seed=seed * 3 + offset)
        loaders[name] = ResidentLoader(
            X,
            y,
            batch_size if name == "train" else 1024,
            shuffle=name == "train",
            seed=seed,
            device=device,
        )
    return loaders
