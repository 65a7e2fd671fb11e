r"""The K-model engine: several seeds of one setup trained in one pass, one contract, less time.

Each seed is a whole repetition: model ``k`` starts from the weights ``set_seed(seeds[k])``
gives and sees the batches in its own order (a generator seeded with
:func:`idlmam.utils.order_seed`), gathered for all K models at once
(:meth:`idlmam.data.ResidentLoader.stacked_batches`). The K models are stacked into one module
(:mod:`idlmam.train.stacking`, which also says what may be stacked) and trained by the one loop,
:func:`idlmam.train.loop.fit`: :class:`StackedModels` is what differs from one model (how the
batches are gathered, each model's loss, the outputs per model, the models kept when they stop).

:func:`train_many` keeps the promises of :func:`idlmam.train.train_network`: the same checks
before the first epoch with the same errors, a run whose loss is no longer finite stopped and
flagged (``diverged``) with one :class:`~idlmam.train.DivergenceWarning`, the same score
columns, ``on_epoch_end`` asked after every epoch of every seed, and an optimizer with
``train()``/``eval()`` modes switched around every evaluation.

Example:
    >>> import torch
    >>> from idlmam.data import ResidentLoader
    >>> from idlmam.models import mlp
    >>> X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    >>> frame = train_many(mlp, [0, 1, 2], torch.nn.CrossEntropyLoss(),
    ...                    ResidentLoader(X, y, 32, shuffle=True),
    ...                    make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1), epochs=2)
    >>> frame.shape[0], list(frame.columns[:4])
    (6, ['seed', 'epoch', 'total time', 'lr'])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import get_device, order_seed, set_seed
from .checks import check_epochs_loaders_scores, check_schedule_every
from .frame import results_frame, seeds_frame
from .loop import batch_pass, fit
from .stacking import coupling, stack_models

__all__ = ["StackedModels", "train_many"]

ScoreFunc = Callable[..., float]


def _per_model_loss(
    loss_func: Callable, y_hat: torch.Tensor, labels: torch.Tensor, per_model: bool
) -> torch.Tensor:
    """Each model's mean loss on its batch: ``(K, B, C)`` scores -> ``(K,)``.

    ``labels`` is ``(K, B)`` when every model has its own batch (``per_model``), else ``(B,)``.
    """
    K, B = y_hat.shape[:2]
    plain_ce = (
        isinstance(loss_func, nn.CrossEntropyLoss)
        and loss_func.weight is None
        and loss_func.reduction == "mean"
        and loss_func.label_smoothing == 0.0
        and labels.dtype == torch.long
        and y_hat.dim() == 3
        and labels.dim() == (2 if per_model else 1)
    )
    if plain_ce:  # one call for all K instead of K small ones
        flat = labels.reshape(K * B) if per_model else labels.repeat(K)  # (K*B,)
        losses = F.cross_entropy(
            y_hat.reshape(K * B, -1), flat, reduction="none", ignore_index=loss_func.ignore_index
        ).view(K, B)
        counted = (flat != loss_func.ignore_index).view(K, B).sum(dim=1)  # what "mean" divides by
        return losses.sum(dim=1) / counted  # (K,)
    return torch.stack([loss_func(y_hat[k], labels[k] if per_model else labels) for k in range(K)])


class StackedModels:
    """The engine of :func:`train_many`: K models of one architecture, one per seed, stacked.

    Builds model ``k`` right after ``set_seed(seeds[k])``; when training, model ``k`` reads its
    own batch, in the order of a generator seeded with ``order_seed(seeds[k])``; when
    evaluating, all K read the same batch. The loss minimised is the sum of the running models'
    mean losses (a stopped model adds nothing).

    Args:
        make_model: builds one model.
        seeds: one model per seed.
        loss_func: one model's mean loss on a batch.
        device: where to train.
        keep_stopped: keep a copy of each model when it stops (for ``return_models``).

    Example:
        >>> from idlmam.models import mlp
        >>> engine = StackedModels(mlp, [0, 1], nn.CrossEntropyLoss(), torch.device("cpu"))
        >>> engine.k, type(engine.module).__name__, len(engine.models())
        (2, 'StackedMLP', 2)
    """

    def __init__(
        self,
        make_model: Callable[[], nn.Module],
        seeds: Sequence[int],
        loss_func: Callable,
        device: torch.device,
        *,
        keep_stopped: bool = False,
    ) -> None:
        models = []
        for seed in seeds:
            set_seed(seed)
            models.append(make_model())
        self.k, self.seeds, self.loss_func, self.device = len(seeds), list(seeds), loss_func, device
        self.plain = copy.deepcopy(models[0]).to(device)  # the loop's checks run on one model
        self.module = stack_models(models).to(device)
        self.orders = [torch.Generator().manual_seed(order_seed(seed)) for seed in seeds]
        self.keep_stopped, self.stopped = keep_stopped, {}

    def check(self, optimizer: torch.optim.Optimizer, lr_schedule: object) -> None:
        """Refuse an optimizer or schedule that would couple the K models (:func:`coupling`)."""
        coupled = coupling(optimizer, lr_schedule)
        if coupled:
            raise ValueError(
                f"{coupled}, so on stacked weights it would couple the K models: train the "
                "seeds one by one with train_network (idlmam.experiments.run does so by itself)"
            )

    def pass_over(self, optimizer, loader, running, *, keep_outputs, name, on_step=None):
        """One pass of the running models: each its own batches when training, shared ones
        (larger the fewer the models) when evaluating."""
        per_model = optimizer is not None
        if per_model:
            batches = loader.stacked_batches(self.orders)  # (K, B, ...) inputs, (K, B) labels
        elif hasattr(loader, "eval_batches"):
            batches = loader.eval_batches(max(128, 1024 // self.k))
        else:
            batches = loader
        mask, zero = torch.tensor(running, device=self.device), torch.zeros((), device=self.device)

        def loss_of(y_hat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            # stopped models add nothing to the sum that is minimised
            return torch.where(
                mask, _per_model_loss(self.loss_func, y_hat, labels, per_model), zero
            )

        self.module.inputs_per_model = per_model
        try:
            mean_loss, y_true, y_pred = batch_pass(
                self.module,
                optimizer,
                batches,
                loss_of,
                self.device,
                keep_outputs=keep_outputs,
                name=name,
                batch_dim=1 if per_model else 0,
                on_step=on_step,
            )
        finally:
            self.module.inputs_per_model = False
        losses = mean_loss.tolist()  # one sync per pass
        if not keep_outputs:
            return losses, [], []
        labels = torch.cat(y_true, dim=1 if per_model else 0).cpu().numpy()  # (K, N) or (N,)
        predicted = torch.cat(y_pred, dim=1)  # (K, N, classes)
        if predicted.dim() == 3 and predicted.shape[2] > 1:
            predicted = predicted.argmax(dim=2)  # (K, N, classes) -> (K, N) labels
        predicted = predicted.cpu().numpy()
        return losses, list(labels) if per_model else [labels] * self.k, list(predicted)

    def stopping(self, models: list[int]) -> None:
        """Keep a copy of each of ``models`` as it is now (the optimizer still moves them)."""
        if self.keep_stopped:
            unstacked = self.module.unstack()
            self.stopped.update({k: unstacked[k] for k in models})

    def models(self) -> list[nn.Module]:
        """The K models as ordinary modules, in ``seeds`` order; a stopped one as it stopped."""
        return [self.stopped.get(k, model) for k, model in enumerate(self.module.unstack())]


def _check_seeds(seeds: Iterable[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=range(3)")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seeds must be non-negative ints, got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat ({seeds}): each seed would train the same model twice")
    return seeds


def train_many(
    make_model: Callable[[], nn.Module],
    seeds: Iterable[int],
    loss_func: Callable,
    train_loader,
    *,
    make_optimizer: Callable[[list], torch.optim.Optimizer] | None = None,
    make_schedule: Callable[[torch.optim.Optimizer], object] | None = None,
    lr_schedule_every: str = "epoch",
    val_loader: Iterable | None = None,
    test_loader: Iterable | None = None,
    score_funcs: Mapping[str, ScoreFunc] | None = None,
    epochs: int = 50,
    device: torch.device | str = "cpu",
    clip_value: float | None = None,
    return_models: bool = False,
    disable_tqdm: bool = False,
    on_epoch_end: Callable[[int, dict], bool | None] | None = None,
):
    """Train one model per seed, all K in one pass; return the long results frame.

    Equivalent to, for each ``seed``: ``set_seed(seed); model = make_model()``, then
    ``train_network(model, loss_func, train_loader, ...)`` with ``make_optimizer(model.parameters())``
    and ``make_schedule(optimizer)``, after ``train_loader.generator.manual_seed(order_seed(seed))``
    (see :func:`idlmam.utils.order_seed`): every seed draws its own batch order.

    The contract of :func:`idlmam.train.train_network` holds: the same checks before training
    (run on one model built by ``make_model``, with the same errors); a seed whose training loss
    becomes NaN or infinite stops after that epoch, its last row gets ``diverged=True`` (the
    column is there when any seed diverged; ``frame.attrs["diverged"]`` says whether one did)
    and one :class:`~idlmam.train.DivergenceWarning` names the seeds; the other seeds go on.
    An optimizer with ``train()``/``eval()`` modes (schedule-free) is switched with the stacked
    model, ``train()`` before each epoch's training batches and ``eval()`` right after them, so
    evaluations, ``on_epoch_end`` and the models returned see its averaged weights.

    Args:
        make_model: builds one model; called right after ``set_seed(seed)`` for each seed.
        seeds: one model per seed (distinct non-negative ints).
        loss_func: ``loss_func(y_hat, y)`` returning one model's mean loss on a batch.
        train_loader: a :class:`idlmam.data.ResidentLoader` (it gathers each model's batch).
        make_optimizer: ``params -> optimizer`` over the stacked ``(K, ...)`` tensors; must be
            elementwise (SGD, Adam, AdamW, RMSprop, ...). ``AdamW`` with its defaults when None.
        make_schedule: ``optimizer -> torch.optim.lr_scheduler`` object (not
            ``ReduceLROnPlateau``: it would need one rate per model).
        lr_schedule_every: ``"epoch"`` (step the schedule after each epoch) or ``"batch"``
            (after every optimizer step), as in :func:`idlmam.train.train_network`; the ``lr``
            column holds the rate at the start of each epoch either way. The schedule is
            shared: it steps while any seed trains.
        val_loader: evaluated after each epoch (the same batches for every model).
        test_loader: evaluated after each epoch.
        score_funcs: ``{"Accuracy": accuracy}``, computed per model once per epoch.
        epochs: passes over the training data.
        device: where to train.
        clip_value: clamp every gradient value into ``[-clip_value, clip_value]`` (what
            :func:`idlmam.models.clamp_gradients` does to a single model).
        return_models: also return the K trained models (ordinary modules, in ``seeds`` order;
            a stopped model as it was when it stopped).
        disable_tqdm: no progress bar.
        on_epoch_end: called as ``on_epoch_end(epoch, row)`` for each seed still training,
            ``row["seed"]`` saying which; return True to stop that seed after this epoch.

    Returns:
        A pandas DataFrame with one row per (seed, epoch): ``seed``, then the columns of
        :func:`idlmam.train.train_network`. ``total time`` is the training time of the joint
        run so far, the same for every seed. With ``return_models``: ``(frame, models)``.

    Raises:
        ValueError, TypeError: bad seeds, arguments (``lr_schedule_every`` included), loaders,
            model output, score function, an optimizer or schedule that would couple the
            models, before any training.

    Example:
        >>> frame = train_many(mlp, range(3), nn.CrossEntropyLoss(), loader, test_loader=test,
        ...                    make_optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        ...                    epochs=10)  # doctest: +SKIP
        >>> sns.lineplot(frame, x="epoch", y="test loss")  # a band over the seeds  # doctest: +SKIP
    """
    # the checks of this entry point's arguments (fit makes the rest)
    seeds = _check_seeds(seeds)
    check_epochs_loaders_scores(epochs, train_loader, val_loader, test_loader, score_funcs)
    check_schedule_every(lr_schedule_every)
    if not hasattr(train_loader, "stacked_batches"):
        raise TypeError(
            f"train_many gives every seed its own batch order, which needs an "
            f"idlmam.data.ResidentLoader, got a {type(train_loader).__name__}: use "
            "idlmam.data.resident_loader(dataset, ...) or train the seeds one by "
            "one with train_network"
        )
    if clip_value is not None and clip_value <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    engine = StackedModels(
        make_model, seeds, loss_func, get_device(str(device)), keep_stopped=return_models
    )
    hooks = []
    if clip_value is not None:  # what clamp_gradients does to one model, on the stacked weights
        hooks = [
            p.register_hook(lambda grad: grad.clamp(-clip_value, clip_value))
            for p in engine.module.parameters()
        ]
    try:
        history, diverged = fit(
            engine,
            train_loader,
            val_loader,
            test_loader,
            make_optimizer=make_optimizer,
            make_schedule=make_schedule,
            lr_schedule_every=lr_schedule_every,
            score_funcs=score_funcs,
            epochs=epochs,
            on_epoch_end=on_epoch_end,
            disable_tqdm=disable_tqdm,
        )
    finally:
        for hook in hooks:
            hook.remove()
    frame = seeds_frame(
        [results_frame(rows, d).assign(seed=s) for s, rows, d in zip(seeds, history, diverged)]
    )
    return (frame, engine.models()) if return_models else frame
