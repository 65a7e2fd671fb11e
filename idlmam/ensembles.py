"""Many models for the price of one: snapshot ensembles and stochastic weight averaging (SWA).

A cosine schedule with several dips visits several good solutions in one run. A *snapshot
ensemble* keeps a copy of the weights at each dip and averages the copies' predicted
probabilities. *SWA* averages the weights themselves, which gives one model of the usual size;
``torch.optim.swa_utils`` provides the averaging (``AveragedModel``), the learning rate to hold
while averaging (``SWALR``) and the pass that recomputes BatchNorm statistics (``update_bn``).

Example:
    >>> cosine_dips(15, 2, eta_0=0.1)  # the last dip is the last epoch
    [5, 14]
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn

from .optim import cosine_schedule, eta_min_for, schedule_lrs
from .train import train_network

__all__ = [
    "dip_epochs",
    "cosine_dips",
    "Snapshots",
    "train_snapshots",
    "SnapshotEnsemble",
    "average_weights",
    "train_swa",
]

State = dict[str, torch.Tensor]


def dip_epochs(lrs: Sequence[float], eta_min: float, *, rtol: float = 1e-6) -> list[int]:
    """The epochs whose learning rate is ``eta_min``: the bottoms of a cosine schedule.

    Args:
        lrs: the learning rate used in each epoch (the ``lr`` column of a results frame).
        eta_min: the schedule's floor.
        rtol: tolerance, relative to the largest rate in ``lrs``.

    Example:
        >>> dip_epochs([0.1, 0.05, 0.0, 0.05, 0.1, 0.05, 0.0], 0.0)
        [2, 6]
    """
    tol = rtol * max(abs(lr) for lr in lrs)
    return [epoch for epoch, lr in enumerate(lrs) if abs(lr - eta_min) <= tol]


def cosine_dips(epochs: int, dips: int, *, eta_0: float, eta_min: float | None = None) -> list[int]:
    r"""The epochs at which :func:`idlmam.optim.cosine_schedule` trains at ``eta_min``.

    The rates are read off the real scheduler, built on an optimizer with rate ``eta_0`` and
    stepped once per epoch as :func:`idlmam.train.train_network` steps it. The schedule turns at
    the epochs of :func:`idlmam.optim.cosine_extremes` (top, dip, top, ..., dip), so the dips
    are every second one of them: exactly ``dips`` epochs, the last one ``epochs - 1``.

    Args:
        epochs: the epochs of the run.
        dips: how many minima.
        eta_0: the initial (top) rate.
        eta_min: the floor (default: :func:`idlmam.optim.eta_min_for` of ``eta_0``).

    Raises:
        ValueError: fewer than ``2 * dips`` epochs, or ``eta_min`` not below ``eta_0``.

    Example:
        >>> cosine_dips(8, 2, eta_0=0.1)  # turns at epochs 0, 2, 5, 7
        [2, 7]
    """
    eta_min = eta_min_for(eta_0) if eta_min is None else eta_min
    lrs = schedule_lrs(
        lambda opt: cosine_schedule(opt, epochs, dips, eta_min=eta_min), epochs, eta_0
    )
    return dip_epochs(lrs, eta_min)


def _copy_state(model: nn.Module) -> State:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


class Snapshots:
    """An ``on_epoch_end`` hook for ``train_network`` that copies the weights at chosen epochs.

    Args:
        model: the network being trained.
        epochs: the epochs (0-based) after which to take a copy.

    Example:
        >>> snapshots = Snapshots(model, [7, 21])  # doctest: +SKIP
        >>> train_network(model, ..., on_epoch_end=snapshots); len(snapshots.states)  # doctest: +SKIP
        2
    """

    def __init__(self, model: nn.Module, epochs: Iterable[int]) -> None:
        self.model, self.epochs = model, sorted(set(epochs))
        self.states: list[State] = []

    def __call__(self, epoch: int, row: dict) -> None:
        if epoch in self.epochs:
            self.states.append(_copy_state(self.model))


def train_snapshots(
    model: nn.Module,
    loss_func: Callable,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    dips: int,
    eta_min: float | None = None,
    **train_kwargs,
):
    """Train with a cosine schedule of ``dips`` dips and keep the weights at every dip.

    The schedule is :func:`idlmam.optim.cosine_schedule` (``dips`` dips, the last on the last
    epoch), the dips are found by :func:`cosine_dips` from the optimizer's initial rate, so the
    last snapshot is the final model.

    Args:
        model, loss_func, train_loader, optimizer: as for :func:`idlmam.train.train_network`.
        epochs: epochs of the whole run.
        dips: how many times the rate should fall to ``eta_min``.
        eta_min: the rate at the bottom of each dip (default:
            :func:`idlmam.optim.eta_min_for` of the optimizer's rate).
        **train_kwargs: passed on (``test_loader``, ``score_funcs``, ``device``, ...).

    Returns:
        ``(frame, states)``: the results frame and one ``state_dict`` copy per dip, in order.
    """
    group = optimizer.param_groups[0]
    eta_0 = group.get("initial_lr", group["lr"])
    eta_min = eta_min_for(eta_0) if eta_min is None else eta_min
    lr_schedule = cosine_schedule(optimizer, epochs, dips, eta_min=eta_min)
    hook = Snapshots(model, cosine_dips(epochs, dips, eta_0=eta_0, eta_min=eta_min))
    frame = train_network(
        model,
        loss_func,
        train_loader,
        epochs=epochs,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
        on_epoch_end=hook,
        **train_kwargs,
    )
    return frame, hook.states


class SnapshotEnsemble(nn.Module):
    r"""Several copies of one architecture whose predicted probabilities are averaged.

    .. math::
        p(y \mid x) = \frac{1}{M} \sum_{m=1}^{M} \operatorname{softmax}\big(f_{\Theta_m}(x)\big)

    ``forward`` returns :math:`\log p(y \mid x)`, a valid vector of class scores: the
    training loop's ``CrossEntropyLoss`` and argmax evaluate the ensemble like any model.

    Args:
        model: the architecture (its weights are not used).
        states: one ``state_dict`` per member.

    Example:
        >>> ensemble = SnapshotEnsemble(mlp(), states)  # doctest: +SKIP
        >>> ensemble.predict_proba(X).sum(dim=1)  # doctest: +SKIP
        tensor([1.0000, 1.0000, ...])
    """

    def __init__(self, model: nn.Module, states: Sequence[State]) -> None:
        super().__init__()
        if not states:
            raise ValueError("an ensemble needs at least one snapshot, got none")
        self.members = nn.ModuleList()
        for state in states:
            member = copy.deepcopy(model)
            member.load_state_dict(state)
            self.members.append(member)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """The members' softmax outputs, averaged: ``(B, ...) -> (B, classes)``."""
        return torch.stack([member(x).softmax(dim=-1) for member in self.members]).mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_proba(x).log()  # (B, classes); log_softmax of it gives it back


def average_weights(
    model: nn.Module,
    states: Sequence[State],
    *,
    bn_loader: Iterable | None = None,
    device: torch.device | str | None = None,
) -> AveragedModel:
    r"""One model whose parameters are the mean of ``states``, via ``AveragedModel``.

    .. math::
        \Theta_{SWA} = \frac{1}{M} \sum_{m=1}^{M} \Theta_m

    ``AveragedModel`` averages the parameters only; BatchNorm's running statistics inside it
    still belong to ``model``. Give ``bn_loader`` (the training data) and ``update_bn``
    recomputes them for the averaged weights; without BatchNorm that pass changes nothing.

    Args:
        model: the architecture (copied; its own weights are not averaged in).
        states: the ``state_dict`` copies to average (snapshots at the dips, say).
        bn_loader: batches of ``(inputs, labels)`` for ``update_bn``; None skips the pass.
        device: where ``update_bn`` runs the batches.

    Returns:
        The ``AveragedModel``; call it like the model.
    """
    if not states:
        raise ValueError("nothing to average: got no states")
    swa_model = AveragedModel(model)
    work = copy.deepcopy(model)
    for state in states:
        work.load_state_dict(state)
        swa_model.update_parameters(work)  # running mean: avg + (theta - avg) / (n + 1)
    if bn_loader is not None:
        update_bn(bn_loader, swa_model, device=device)
    return swa_model


def train_swa(
    model: nn.Module,
    loss_func: Callable,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    swa_start: int,
    swa_lr: float,
    anneal_epochs: int = 1,
    lr_schedule=None,
    **train_kwargs,
):
    """Train, then average the weights of every epoch from ``swa_start`` on (PyTorch's SWA recipe).

    Phase 1 (epochs ``0 .. swa_start - 1``) trains as usual, with ``lr_schedule`` if given.
    Phase 2 holds the rate near ``swa_lr`` with ``SWALR`` (reached after ``anneal_epochs``) and
    feeds the weights after each epoch to an ``AveragedModel``. Finally ``update_bn`` recomputes
    the BatchNorm statistics of the averaged weights on ``train_loader``.

    Args:
        model, loss_func, train_loader, optimizer: as for :func:`idlmam.train.train_network`.
        epochs: epochs of the whole run.
        swa_start: the first epoch whose weights are averaged (``1 <= swa_start < epochs``).
        swa_lr: the rate ``SWALR`` holds while averaging.
        anneal_epochs: epochs ``SWALR`` takes to get from the current rate to ``swa_lr``.
        lr_schedule: the schedule of phase 1 (built on ``optimizer``), or None.
        **train_kwargs: passed on (``test_loader``, ``score_funcs``, ``device``, ...).

    Returns:
        ``(frame, swa_model)``: the results frame of both phases (``epoch`` counts on, an
        ``averaged`` column marks phase 2) and the ``AveragedModel``.
    """
    import pandas as pd

    if not 1 <= swa_start < epochs:
        raise ValueError(
            f"need 1 <= swa_start < epochs, got swa_start={swa_start}, epochs={epochs}"
        )
    first = train_network(
        model,
        loss_func,
        train_loader,
        epochs=swa_start,
        optimizer=optimizer,
        lr_schedule=lr_schedule,
        **train_kwargs,
    )
    swa_model = AveragedModel(model)
    swa_schedule = SWALR(optimizer, swa_lr=swa_lr, anneal_epochs=anneal_epochs)
    second = train_network(
        model,
        loss_func,
        train_loader,
        epochs=epochs - swa_start,
        optimizer=optimizer,
        lr_schedule=swa_schedule,
        on_epoch_end=lambda epoch, row: swa_model.update_parameters(model),
        **train_kwargs,
    )
    update_bn(train_loader, swa_model, device=train_kwargs.get("device"))
    second = second.assign(
        epoch=second["epoch"] + swa_start,
        **{"total time": second["total time"] + first["total time"].iloc[-1]},
    )
    frame = pd.concat(
        [first.assign(averaged=False), second.assign(averaged=True)], ignore_index=True
    )
    return frame, swa_model
