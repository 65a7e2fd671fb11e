"""After the search: retrain the best trial on all the training images, score it once on the test set.

A search chooses with a validation split; it does not measure. The number to report comes from
:func:`retrain_and_test`: the best trial's parameters, the same builder, optimizer, schedule,
epochs and seed as a trial, trained on the search's training *and* validation images together,
and scored once on the test set, which the search never loaded.

Example:
    >>> train_loader, val_loader = chapter_loaders("quick")                   # doctest: +SKIP
    >>> study = create_study(seed=0)                                          # doctest: +SKIP
    >>> study.optimize(make_objective(train_loader, val_loader, epochs=2), 4)  # doctest: +SKIP
    >>> final = retrain_and_test(study, train_loader, val_loader, epochs=2)   # doctest: +SKIP
    >>> final.n_train, final.n_test                                           # doctest: +SKIP
    (12000, 10000)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from .objective import check_epochs, mlp_search, train_built

if TYPE_CHECKING:  # pragma: no cover - for the type hints only
    import pandas as pd
    import torch

    from .objective import Builder

__all__ = ["Retrained", "retrain_and_test", "combine_loaders"]


@dataclass(frozen=True)
class Retrained:
    """The final model of a search and its one test score (see :func:`retrain_and_test`).

    Attributes:
        test_accuracy: accuracy on the test set, measured once, after training.
        model: the trained network (in eval mode).
        results: the results frame of its training, one row per epoch (training columns only:
            no validation or test set was evaluated while it trained).
        params: the hyperparameters it was built with.
        n_train: training examples (the search's training and validation images together).
        n_test: test examples it was scored on.
    """

    test_accuracy: float
    model: torch.nn.Module
    results: pd.DataFrame
    params: dict
    n_train: int
    n_test: int


def _tensors(loader: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    if hasattr(loader, "X") and hasattr(loader, "y"):
        return loader.X, loader.y
    batches = loader.eval_batches() if hasattr(loader, "eval_batches") else loader
    xs, ys = zip(*batches)
    return torch.cat(xs), torch.cat(ys)


def combine_loaders(
    train_loader: Iterable, val_loader: Iterable, *, seed: int = 0, batch_size: int | None = None
):
    """One shuffled loader over every example of ``train_loader`` and ``val_loader``.

    Args:
        train_loader: a :class:`idlmam.data.ResidentLoader` (its ``X`` and ``y`` are used), or
            any iterable of ``(inputs, labels)`` batches (all of them are collected).
        val_loader: the same kinds.
        seed: seed of the new loader's batch order.
        batch_size: examples per batch (``None``: ``train_loader.batch_size``, else 256).

    Returns:
        A shuffling :class:`idlmam.data.ResidentLoader` on the training tensors' device, the
        training examples first, then the validation ones.

    Raises:
        ValueError: the two loaders' inputs differ in shape beyond the first dimension.

    Example:
        >>> import torch
        >>> from idlmam.data import ResidentLoader
        >>> a = ResidentLoader(torch.zeros(8, 2), torch.zeros(8), 4)
        >>> b = ResidentLoader(torch.ones(2, 2), torch.ones(2), 4)
        >>> combine_loaders(a, b).n_examples
        10
    """
    import torch

    from ..data import ResidentLoader

    (X_train, y_train), (X_val, y_val) = _tensors(train_loader), _tensors(val_loader)
    if X_train.shape[1:] != X_val.shape[1:]:
        raise ValueError(
            f"training inputs {tuple(X_train.shape[1:])} and validation inputs "
            f"{tuple(X_val.shape[1:])} differ in shape: not the same data set"
        )
    if batch_size is None:
        batch_size = getattr(train_loader, "batch_size", None) or 256
    X = torch.cat([X_train, X_val.to(X_train.device)])
    y = torch.cat([y_train, y_val.to(y_train.device)])
    return ResidentLoader(X, y, batch_size, shuffle=True, seed=seed, device=X.device)


def _best_params(best: Any) -> dict:
    if isinstance(best, optuna.Study):
        return dict(best.best_params)  # raises ValueError when no trial is complete
    if isinstance(best, optuna.trial.FrozenTrial):
        return dict(best.params)
    if isinstance(best, Mapping):
        return dict(best)
    raise TypeError(
        f"expected a study, a trial or a mapping of parameters, got {type(best).__name__}"
    )


def retrain_and_test(
    best: optuna.Study | optuna.trial.FrozenTrial | Mapping[str, Any],
    train_loader: Iterable,
    val_loader: Iterable,
    test_loader: Iterable | None = None,
    *,
    epochs: int,
    build: Builder | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> Retrained:
    """Train the best trial's network on train + validation as a trial would; test it once.

    The network, optimizer and schedule come from ``build`` fed the best parameters (an
    :class:`optuna.trial.FixedTrial`), so they are exactly those of the trial, and it trains
    like a trial of :func:`~idlmam.tune.objective.make_objective`: same seed for the weights
    and the batch order, ``CrossEntropyLoss``, ``epochs`` epochs. The data is every image the
    search used, its training and validation loaders combined (:func:`combine_loaders`).
    Nothing is evaluated while it trains; afterwards the test set is predicted once and scored
    with :func:`idlmam.train.accuracy`.

    Args:
        best: a study (its ``best_params``), a trial (its ``params``) or the parameters.
        train_loader: the search's training loader.
        val_loader: the search's validation loader.
        test_loader: the test batches (``None``: the Fashion-MNIST test set, loaded only after
            training, onto ``device``).
        epochs: epochs of the final training (a trial's, ``Budget.trial_epochs``, keeps the
            recipe the search scored).
        build: the builder the search used (``None``: :func:`~idlmam.tune.objective.mlp_search`,
            the default of ``make_objective``).
        device: where to train and predict.
        seed: the seed of the weights and of the batch order (the search's).

    Returns:
        A :class:`Retrained`: ``test_accuracy``, the ``model``, its training ``results``,
        ``params``, ``n_train`` and ``n_test``.

    Raises:
        ValueError: ``epochs`` below 1; the study has no complete trial; ``build`` asks for a
            parameter ``best`` lacks, or leaves one unused (not the search's builder).
        TypeError: ``best`` is none of the kinds above.

    Example:
        >>> final = retrain_and_test(study, train_loader, val_loader, epochs=2)  # doctest: +SKIP
        >>> final.n_train, final.n_test                                        # doctest: +SKIP
        (12000, 10000)
        >>> retrain_and_test(cnn_study, train_loader, val_loader, epochs=2,
        ...                  build=build_cnn)                                  # doctest: +SKIP
    """
    epochs = check_epochs(epochs)
    params = _best_params(best)
    build = mlp_search() if build is None else build

    def build_best(trial: optuna.trial.FixedTrial, n_epochs: int) -> tuple:
        try:
            built = build(trial, n_epochs)
        except ValueError as err:
            if "is not found" not in str(err):
                raise
            raise ValueError(
                f"{err} The parameters {sorted(params)} do not fit this builder: "
                "pass the build the search used"
            ) from None
        unused = sorted(set(params) - set(trial.params))
        if unused:
            raise ValueError(
                f"the builder never asked for {unused}: pass the build the search used"
            )
        return built

    from .. import train
    from ..data import fashion_mnist, resident_loader

    data = combine_loaders(train_loader, val_loader, seed=seed)
    model, results = train_built(
        build_best,
        optuna.trial.FixedTrial(params),
        data,
        None,
        epochs=epochs,
        device=device,
        seed=seed,
    )
    if test_loader is None:
        test_loader = resident_loader(fashion_mnist(train=False), 1024, device=device)
    y_true, y_pred = train.predict(
        model, test_loader, device=device
    )  # the one look at the test set
    return Retrained(
        test_accuracy=train.accuracy(y_true, y_pred),
        model=model,
        results=results,
        params=params,
        n_train=data.n_examples,
        n_test=len(y_true),
    )
