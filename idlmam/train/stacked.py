r"""Train K models of one architecture in one pass: several seeds, one contract, less time.

The book repeats every comparison over several seeds. Here the K models' weights are stacked
along a new first dimension (a ``(128, 784)`` weight becomes ``(K, 128, 784)``), so each layer
of all K models is one batched matrix product, and each Python step of the loop is taken once
for all K instead of K times.

Each seed is a whole repetition: model ``k`` starts from the weights ``set_seed(seeds[k])``
gives and sees the batches in its own order (a generator seeded with
:func:`idlmam.utils.order_seed`), gathered for all K models at once
(:meth:`idlmam.data.ResidentLoader.stacked_batches`).

Why one ordinary optimizer is enough: SGD (with momentum or Nesterov), Adam, AdamW, weight decay
and gradient value clipping update every parameter value from that value's own gradient and
state only (they are *elementwise*). Minimising the sum of the K models' mean losses

.. math::
    \mathcal{L}(\Theta_1, \dots, \Theta_K) = \sum_{k=1}^{K} \frac{1}{B} \sum_{i=1}^{B}
    \ell\big(f(x_{k,i}; \Theta_k), y_{k,i}\big)

gives slice ``k`` of each stacked tensor exactly model ``k``'s own gradient, so one
``torch.optim`` optimizer over the stacked tensors performs K independent runs, and any
``torch.optim.lr_scheduler`` built on it schedules all K alike, per epoch or per batch.
Optimizers that mix values across a tensor (LBFGS, Adafactor, Muon) and ``ReduceLROnPlateau``
(one rate per model) are refused. Schedule-free AdamW (``schedulefree.AdamWScheduleFree``) is
elementwise too: its tensors of state (the iterate :math:`z`, the second moments) are updated
value by value, and its scalars (the step count, the averaging weight) depend only on the
step count and the rate, the same for all K; its ``train()``/``eval()`` modes are switched as
:func:`idlmam.train.train_network` switches them.

:func:`train_many` keeps the promises of :func:`idlmam.train.train_network`: the same checks
before the first epoch with the same errors, a run whose loss is no longer finite stopped and
flagged (``diverged``) with one :class:`~idlmam.train.DivergenceWarning`, the same score
columns, and ``on_epoch_end`` asked after every epoch of every seed.

Example:
    >>> import torch
    >>> from idlmam.data import ResidentLoader
    >>> from idlmam.models import mlp
    >>> X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    >>> frame = train_many(mlp, [0, 1, 2], torch.nn.CrossEntropyLoss(),
    ...                    ResidentLoader(X, y, 32, shuffle=True),
    ...                    optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1), epochs=2)
    >>> frame.shape[0], list(frame.columns[:4])
    (6, ['seed', 'epoch', 'total time', 'lr'])
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..utils import get_device, order_seed, progress_enabled, set_seed
from .checks import check_epochs_loaders_scores, preflight, score
from .loop import DivergenceWarning, batch_pass, check_schedule_every, set_train_mode

__all__ = [
    "seeds_frame",
    "warn_diverged_seeds",
    "StackedMLP",
    "VmapModels",
    "stack_models",
    "train_many",
    "why_not_stacked",
]

ScoreFunc = Callable[..., float]
# activations applied value by value: the same module works on (B, h) and on (K, B, h)
ELEMENTWISE = (
    nn.Identity,
    nn.Tanh,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LogSigmoid,
    nn.Tanhshrink,
)
# optimizers whose update of a value depends on other values of the same tensor
NOT_ELEMENTWISE = ("LBFGS", "Adafactor", "Muon", "MuonWithAdamW")


class _StackedLayer(torch.autograd.Function):
    """Layer l of K models at once: ``h @ W_k^T + b_k`` for each k, then ``tanh`` when fused.

    * **A shared input** ``(B, in)`` (the first layer: all K models read the same batch): the K
      weights ``(K, out, in)`` are read as one ``(K*out, in)`` matrix, so the forward pass is one
      ``(B, in) @ (in, K*out)`` product and the weight gradient one ``(K*out, B) @ (B, in)``.
    * **Separate inputs** ``(K, B, in)``: batched products (``baddbmm``, ``bmm``). The weight
      gradient is formed as ``(K, out, in)`` directly (autograd's own backward of ``baddbmm``
      forms it transposed).
    * **Fused tanh**: ``tanh(z) = 2 * sigmoid(2z) - 1``, with ``2z`` taken from the product's
      own scale factors (free) and the rest done in place (cheaper than ``torch.tanh`` on a
      CPU; see the measurements page); the two agree to about 1e-7. The backward pass is
      tanh's own, ``grad * (1 - y**2)``.

    Returns ``(K, B, out)`` (for a shared input, a transposed view of the ``(B, K*out)`` product).
    """

    @staticmethod
    def forward(
        ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, tanh: bool
    ) -> torch.Tensor:
        K, out, fan_in = weight.shape
        ctx.shared, ctx.has_bias, ctx.tanh = h.dim() == 2, bias is not None, tanh
        scale = 2.0 if tanh else 1.0
        if ctx.shared:  # (B, in) -> (B, K*out) -> (K, B, out)
            flat = weight.reshape(K * out, fan_in).t()
            z = (
                torch.addmm(bias.reshape(K * out), h, flat, beta=scale, alpha=scale)
                if bias is not None
                else torch.mm(h, flat).mul_(scale)
            )
            z = z.view(-1, K, out).transpose(0, 1)
        else:  # (K, B, in) @ (K, in, out) -> (K, B, out)
            z = (
                torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2), beta=scale, alpha=scale)
                if bias is not None
                else torch.bmm(h, weight.transpose(1, 2)).mul_(scale)
            )
        y = z.sigmoid_().mul_(2).sub_(1) if tanh else z
        ctx.save_for_backward(h, weight, y if tanh else None)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # grad: (K, B, out)
        h, weight, y = ctx.saved_tensors
        K, out, fan_in = weight.shape
        if ctx.tanh:
            grad = torch.ops.aten.tanh_backward(grad, y)  # grad * (1 - y**2)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        if ctx.shared:
            flat = grad.transpose(0, 1).reshape(-1, K * out)  # (B, K*out)
            grad_h = flat.mm(weight.reshape(K * out, fan_in)) if need_h else None  # (B, in)
            grad_w = flat.t().mm(h).view(K, out, fan_in) if need_w else None  # (K, out, in)
            grad_b = flat.sum(dim=0).view(K, out) if ctx.has_bias and need_b else None
        else:
            grad_h = torch.bmm(grad, weight) if need_h else None  # (K, B, in)
            grad_w = torch.bmm(grad.transpose(1, 2), h) if need_w else None  # (K, out, in)
            grad_b = grad.sum(dim=1) if ctx.has_bias and need_b else None  # (K, out)
        return grad_h, grad_w, grad_b, None


class StackedMLP(nn.Module):
    """K copies of an ``nn.Sequential`` of ``Flatten``/``Linear``/activation layers, as one module.

    Layer ``l`` of all K models is one weight of shape ``(K, out, in)`` and one bias ``(K, out)``;
    the forward pass is one matrix product per layer: a plain one for the first layer, whose input
    all K models share, batched ones (``torch.baddbmm``) after it. A ``Tanh`` right after a
    ``Linear`` runs inside that layer's product (see ``_StackedLayer``).

    Args:
        models: K models with the same architecture (see :func:`stack_models`).

    Example:
        >>> from idlmam.models import mlp
        >>> stacked = StackedMLP([mlp(), mlp()])
        >>> stacked(torch.zeros(5, 1, 28, 28)).shape  # (B, 1, 28, 28) -> (K, B, 10)
        torch.Size([2, 5, 10])
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        why = _why_not_mlp(models[0])
        if why:
            raise ValueError(f"StackedMLP cannot stack this model: {why}; use VmapModels")
        self.k = len(models)
        self.inputs_per_model = False  # True: forward takes (K, B, ...), one batch per model
        # the forward plan: Flatten/activation modules as they are, None where a stacked Linear goes
        self.plan: list[nn.Module | None] = [
            None if isinstance(layer, nn.Linear) else layer for layer in models[0]
        ]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        self._names: list[tuple[str, str | None]] = []  # state_dict names per stacked Linear
        for index, layer in enumerate(models[0]):
            if isinstance(layer, nn.Linear):
                w = torch.stack(
                    [m[index].weight.detach() for m in models]
                )  # K x (out, in) -> (K, out, in)
                self.weights.append(nn.Parameter(w.clone()))
                if layer.bias is not None:
                    b = torch.stack([m[index].bias.detach() for m in models])  # (K, out)
                    self.biases.append(nn.Parameter(b.clone()))
                self._names.append(
                    (f"{index}.weight", f"{index}.bias" if layer.bias is not None else None)
                )
        self.__dict__["_template"] = copy.deepcopy(
            models[0]
        )  # not a submodule: no extra parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, ...) shared by the K models, or (K, B, ...) when inputs_per_model is set
        shared = not self.inputs_per_model
        h, b_i, fused = x, 0, False
        linear = iter(zip(self.weights, self._names))
        for index, layer in enumerate(self.plan):
            if fused:  # this Tanh already ran inside the Linear before it
                fused = False
                continue
            if isinstance(layer, nn.Flatten) and not shared:  # keep the model dimension K
                end = layer.end_dim if layer.end_dim < 0 else layer.end_dim + 1
                h = h.flatten(layer.start_dim + 1, end)  # (K, B, 1, 28, 28) -> (K, B, 784)
                continue
            if layer is not None:
                h = layer(h)  # Flatten (input still shared) or an elementwise activation
                continue
            w, (_, b_name) = next(linear)
            b = None
            if b_name is not None:
                b, b_i = self.biases[b_i], b_i + 1
            if shared and h.dim() != 2:
                raise ValueError(
                    f"the first Linear layer needs (B, in) inputs, got shape "
                    f"{tuple(h.shape)}: put an nn.Flatten() before it"
                )
            following = self.plan[index + 1] if index + 1 < len(self.plan) else None
            fused = type(following) is nn.Tanh
            # (B, in) for the first Linear (shared by the K models), else (K, B, in) -> (K, B, out)
            h, shared = _StackedLayer.apply(h, w, b, fused), False
        if shared and not self.inputs_per_model:
            raise ValueError("the model has no Linear layer: there is nothing to stack")
        return h

    def unstack(self) -> list[nn.Module]:
        """The K trained models as ordinary modules (copies, on the stacked weights' device)."""
        models = []
        for k in range(self.k):
            state, b_i = {}, 0
            for (w_name, b_name), w in zip(self._names, self.weights):
                state[w_name] = w[k].detach().clone()
                if b_name is not None:
                    state[b_name] = self.biases[b_i][k].detach().clone()
                    b_i += 1
            model = copy.deepcopy(self._template).to(self.weights[0].device)
            model.load_state_dict(state)
            models.append(model)
        return models


class VmapModels(nn.Module):
    """K models of any architecture without buffers or randomness, run with ``torch.func.vmap``.

    General, but slower than :class:`StackedMLP` for an MLP (vmap turns each layer into batched
    products with extra reshapes and copies); :func:`stack_models` uses it only when
    :class:`StackedMLP` cannot express the model.

    Args:
        models: K models with the same architecture.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        from torch.func import stack_module_state

        if any(True for _ in models[0].buffers()):
            raise ValueError(
                "the model has buffers (BatchNorm running statistics?), which "
                "vmap cannot update per model: train the seeds one by one with "
                "idlmam.train.train_network"
            )
        params, _ = stack_module_state(list(models))  # name -> (K, ...)
        self.k = len(models)
        self.inputs_per_model = False  # True: forward takes (K, B, ...), one batch per model
        self.names = list(params)
        self.stacked = nn.ParameterList(
            [nn.Parameter(params[n].detach().clone()) for n in self.names]
        )
        self.__dict__["_template"] = copy.deepcopy(models[0])
        self.__dict__["_skeleton"] = copy.deepcopy(models[0]).to("meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params: dict, inputs: torch.Tensor) -> torch.Tensor:
            return functional_call(self._skeleton, params, (inputs,))

        params = dict(zip(self.names, self.stacked))
        in_dims = (0, 0 if self.inputs_per_model else None)
        return vmap(one, in_dims=in_dims)(params, x)  # (B, ...) or (K, B, ...) -> (K, B, ...)

    def unstack(self) -> list[nn.Module]:
        """The K trained models as ordinary modules (copies)."""
        models = []
        for k in range(self.k):
            model = copy.deepcopy(self._template).to(self.stacked[0].device)
            model.load_state_dict(
                {n: p[k].detach().clone() for n, p in zip(self.names, self.stacked)}
            )
            models.append(model)
        return models


def _why_not_mlp(model: nn.Module) -> str:
    """Why :class:`StackedMLP` cannot hold ``model`` (empty string: it can)."""
    if not isinstance(model, nn.Sequential):
        return f"it is a {type(model).__name__}, not an nn.Sequential"
    seen_linear = False
    for layer in model:
        if isinstance(layer, nn.Linear):
            seen_linear = True
        elif isinstance(layer, nn.Flatten) and not seen_linear:
            pass
        elif type(layer) not in ELEMENTWISE:
            return f"layer {layer!r} is not Flatten (before the first Linear), Linear or an elementwise activation"
    return "" if seen_linear else "it has no Linear layer"


def stack_models(models: Sequence[nn.Module]) -> StackedMLP | VmapModels:
    """Stack K models of the same architecture into one module mapping ``(B, ...)`` to ``(K, B, ...)``.

    Uses :class:`StackedMLP` (batched matrix products) when the models are ``nn.Sequential``
    MLPs, else :class:`VmapModels`. Both have ``unstack()`` to get the K models back.

    Raises:
        ValueError: the models differ in architecture, or one uses dropout (its masks would
            differ from those of separate runs).

    Example:
        >>> from idlmam.models import mlp
        >>> stacked = stack_models([mlp(), mlp(), mlp()])
        >>> type(stacked).__name__, len(stacked.unstack())
        ('StackedMLP', 3)
    """
    if len(models) < 1:
        raise ValueError("stack_models needs at least one model")
    shapes = [[(n, tuple(p.shape)) for n, p in m.named_parameters()] for m in models]
    for k, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0] or type(models[k]) is not type(models[0]):
            raise ValueError(
                f"model {k} has another architecture than model 0: stacked models "
                "must come from the same model_fn"
            )
    for m in models:
        if any(isinstance(mod, nn.modules.dropout._DropoutNd) for mod in m.modules()):
            raise ValueError(
                "the model uses dropout, whose random masks would differ from those "
                "of separate runs: train the seeds one by one with train_network"
            )
        if any(getattr(p, "_backward_hooks", None) for p in m.parameters()):
            raise ValueError(
                "the model's parameters carry gradient hooks (clamp_gradients?), "
                "which stacking drops: pass clip_value=... to train_many instead"
            )
    return StackedMLP(models) if not _why_not_mlp(models[0]) else VmapModels(models)


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


def _run_epoch(
    stacked: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    batches: Iterable,
    loss_func: Callable,
    device: torch.device,
    rows: list[dict],
    score_funcs: Mapping[str, ScoreFunc] | None,
    prefix: str,
    running: torch.Tensor,
    on_step: Callable[[], object] | None = None,
) -> float:
    """One pass for all K models, as :func:`idlmam.train.run_epoch` does for one.

    Writes ``"<prefix> loss"`` and the score columns into ``rows[k]`` for every model whose
    ``running[k]`` is True (the others are stopped and get nothing). When training, each model
    reads its own batch (``(K, B, ...)`` inputs); when evaluating, all read the same batch.
    ``on_step`` is called after every optimizer step (a per-batch schedule's ``step``).
    Returns the seconds spent.
    """
    per_model = optimizer is not None
    stacked.inputs_per_model = per_model
    zero = torch.zeros((), device=device)

    def loss_of(y_hat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # stopped models add nothing to the sum that is minimised
        return torch.where(running, _per_model_loss(loss_func, y_hat, labels, per_model), zero)

    start = time.perf_counter()
    try:
        running_loss, y_true, y_pred = batch_pass(
            stacked,
            optimizer,
            batches,
            loss_of,
            device,
            keep_outputs=bool(score_funcs),
            name=prefix,
            batch_dim=1 if per_model else 0,
            on_step=on_step,
        )
    finally:
        stacked.inputs_per_model = False
    mean_loss = running_loss.tolist()  # one sync per epoch
    alive = running.tolist()
    if score_funcs:
        labels = torch.cat(y_true, dim=1 if per_model else 0).cpu().numpy()  # (K, N) or (N,)
        predicted = torch.cat(y_pred, dim=1)  # (K, N, classes)
        if predicted.dim() == 3 and predicted.shape[2] > 1:
            predicted = predicted.argmax(dim=2)  # (K, N, classes) -> (K, N) labels
        predicted = predicted.cpu().numpy()
    for k, row in enumerate(rows):
        if not alive[k]:
            continue
        row[f"{prefix} loss"] = mean_loss[k]
        for name, score_func in (score_funcs or {}).items():
            row[f"{prefix} {name}"] = (
                score(
                    name,
                    score_func,
                    labels[k] if per_model else labels,
                    predicted[k],
                    f"the {prefix} data",
                )
                if math.isfinite(mean_loss[k])
                else float("nan")
            )
    return time.perf_counter() - start


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


def why_not_stacked(
    model_fn: Callable[[], nn.Module],
    optimizer_fn: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    lr_schedule_fn: Callable | str | None = None,
) -> str:
    """Why K seeds of this setup cannot train in one pass (empty string: they can).

    Not when the model cannot be stacked (batch norm, dropout, gradient hooks), nor with an
    optimizer that mixes values across a tensor or rewrites the gradients as a whole before its
    step (norm clipping), nor with ``ReduceLROnPlateau`` (each model would need its own rate).

    Example:
        >>> from idlmam.models import mlp
        >>> why_not_stacked(mlp, lambda p: torch.optim.SGD(p, lr=0.1))
        ''
        >>> why_not_stacked(mlp, lambda p: torch.optim.SGD(p, lr=0.1), "ReduceLROnPlateau")
        'ReduceLROnPlateau needs one learning rate per model'
    """
    if isinstance(lr_schedule_fn, str):
        return _PLATEAU
    model = model_fn()
    try:
        stacked = stack_models([model])
    except ValueError as err:
        return str(err)
    if isinstance(stacked, VmapModels) and any(True for _ in model.buffers()):
        return "the model has buffers (batch norm statistics?), which vmap cannot update"
    probe = optimizer_fn(model.parameters())
    return _coupling(probe, lr_schedule_fn(probe) if lr_schedule_fn is not None else None)


_PLATEAU = "ReduceLROnPlateau needs one learning rate per model"


def _coupling(optimizer: torch.optim.Optimizer, lr_schedule: object) -> str:
    """What in this optimizer or schedule would couple stacked models (empty string: nothing)."""
    for one in (optimizer, getattr(optimizer, "inner", None)):  # a wrapper (WeightEMA) too
        if type(one).__name__ in NOT_ELEMENTWISE:
            return f"{type(one).__name__} mixes values within a tensor"
    if getattr(optimizer, "_optimizer_step_pre_hooks", None):
        return "the optimizer rewrites the gradients before its step (norm clipping?)"
    if lr_schedule == "ReduceLROnPlateau" or isinstance(lr_schedule, ReduceLROnPlateau):
        return _PLATEAU
    return ""


def warn_diverged_seeds(where: Sequence[str], stacklevel: int = 2) -> None:
    """The one :class:`~idlmam.train.DivergenceWarning` of a multi-seed run (``where``: the
    seeds that diverged, e.g. ``["seed 1 at epoch 3 (nan)"]``)."""
    warnings.warn(
        f"the training loss became NaN or infinite for {', '.join(where)}: those seeds "
        "stopped, the others went on. The frame keeps their rows, the last with "
        "diverged=True; lower the learning rate or clip the gradients",
        DivergenceWarning,
        stacklevel=stacklevel,
    )


def seeds_frame(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The per-seed frames (each with a ``seed`` column) one below the other.

    ``diverged`` is a boolean column when any seed diverged (True on each diverged seed's last
    row) and ``frame.attrs["diverged"]`` says whether one did.
    """
    frame = pd.concat(frames, ignore_index=True)
    diverged = "diverged" in frame
    if diverged:
        frame["diverged"] = frame["diverged"].astype("boolean").fillna(False).astype(bool)
    first = ["seed", "epoch", "total time", "lr"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame.attrs["diverged"] = diverged
    return frame


def train_many(
    model_fn: Callable[[], nn.Module],
    seeds: Iterable[int],
    loss_func: Callable,
    train_loader,
    *,
    optimizer_fn: Callable[[list], torch.optim.Optimizer] | None = None,
    lr_schedule_fn: Callable[[torch.optim.Optimizer], object] | None = None,
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

    Equivalent to, for each ``seed``: ``set_seed(seed); model = model_fn()``, then
    ``train_network(model, loss_func, train_loader, ...)`` with ``optimizer_fn(model.parameters())``
    and ``lr_schedule_fn(optimizer)``, after ``train_loader.generator.manual_seed(order_seed(seed))``
    (see :func:`idlmam.utils.order_seed`): every seed draws its own batch order.

    The contract of :func:`idlmam.train.train_network` holds: the same checks before training
    (run on one model built by ``model_fn``, with the same errors); a seed whose training loss
    becomes NaN or infinite stops after that epoch, its last row gets ``diverged=True`` (the
    column is there when any seed diverged; ``frame.attrs["diverged"]`` says whether one did)
    and one :class:`~idlmam.train.DivergenceWarning` names the seeds; the other seeds go on.
    An optimizer with ``train()``/``eval()`` modes (schedule-free) is switched with the stacked
    model, ``train()`` before each epoch's training batches and ``eval()`` right after them, so
    evaluations, ``on_epoch_end`` and the models returned see its averaged weights.

    Args:
        model_fn: builds one model; called right after ``set_seed(seed)`` for each seed.
        seeds: one model per seed (distinct non-negative ints).
        loss_func: ``loss_func(y_hat, y)`` returning one model's mean loss on a batch.
        train_loader: a :class:`idlmam.data.ResidentLoader` (it gathers each model's batch).
        optimizer_fn: ``params -> optimizer`` over the stacked ``(K, ...)`` tensors; must be
            elementwise (SGD, Adam, AdamW, RMSprop, ...). ``AdamW`` with its defaults when None.
        lr_schedule_fn: ``optimizer -> torch.optim.lr_scheduler`` object (not
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
        ...                    optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        ...                    epochs=10)  # doctest: +SKIP
        >>> sns.lineplot(frame, x="epoch", y="test loss")  # a band over the seeds  # doctest: +SKIP
    """
    from tqdm import tqdm

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
    device = get_device(str(device))
    models = []
    for seed in seeds:
        set_seed(seed)
        models.append(model_fn())
    loaders = {
        name: loader
        for name, loader in (
            ("train_loader", train_loader),
            ("val_loader", val_loader),
            ("test_loader", test_loader),
        )
        if loader is not None
    }
    # train_network's own checks, on one plain model: the same errors for the same mistakes
    preflight(copy.deepcopy(models[0]).to(device), loss_func, loaders, score_funcs, device)
    stacked = stack_models(models).to(device)
    del models
    params = list(stacked.parameters())
    optimizer = (optimizer_fn or torch.optim.AdamW)(params)
    if not any(p is q for group in optimizer.param_groups for p in group["params"] for q in params):
        raise ValueError(
            "optimizer_fn built an optimizer that holds none of the parameters it "
            "was given: build it as optimizer_fn=lambda params: SGD(params, ...)"
        )
    lr_schedule = lr_schedule_fn(optimizer) if lr_schedule_fn is not None else None
    check_schedule_every(lr_schedule_every, lr_schedule)  # train_network's error for plateau
    coupled = _coupling(optimizer, lr_schedule)
    if coupled:
        raise ValueError(
            f"{coupled}, so on stacked weights it would couple the K models: train the seeds "
            "one by one with train_network (idlmam.experiments.run does so by itself)"
        )
    if lr_schedule is not None and getattr(lr_schedule, "optimizer", None) is not optimizer:
        raise ValueError("lr_schedule_fn must build its schedule on the optimizer it is given")
    hooks = []
    if clip_value is not None:
        hooks = [p.register_hook(lambda grad: grad.clamp(-clip_value, clip_value)) for p in params]
    orders = [torch.Generator().manual_seed(order_seed(seed)) for seed in seeds]
    per_batch = None if lr_schedule is None or lr_schedule_every == "epoch" else lr_schedule.step

    K = len(seeds)
    rows: dict[int, list[dict]] = {seed: [] for seed in seeds}
    running = torch.ones(K, dtype=torch.bool, device=device)  # models still training
    stopped_models: dict[int, nn.Module] = {}
    diverged: list[str] = []
    total_time = 0.0
    try:
        for epoch in tqdm(range(epochs), desc="Epoch", disable=not progress_enabled(disable_tqdm)):
            lr = float(optimizer.param_groups[0]["lr"])
            row = [{"epoch": epoch, "lr": lr} for _ in seeds]
            set_train_mode(stacked, optimizer, True)
            total_time += _run_epoch(
                stacked,
                optimizer,
                train_loader.stacked_batches(orders),
                loss_func,
                device,
                row,
                score_funcs,
                "train",
                running,
                on_step=per_batch,
            )
            set_train_mode(stacked, optimizer, False)  # the weights to evaluate and return
            alive = running.tolist()
            bad = [k for k in range(K) if alive[k] and not math.isfinite(row[k]["train loss"])]
            evaluate = running.clone()
            evaluate[bad] = False  # a diverged model has nothing to evaluate: NaN, as one run
            for prefix, loader in (("val", val_loader), ("test", test_loader)):
                if loader is None:
                    continue
                batches = (
                    loader.eval_batches(max(128, 1024 // K))
                    if hasattr(loader, "eval_batches")
                    else loader
                )
                _run_epoch(
                    stacked, None, batches, loss_func, device, row, score_funcs, prefix, evaluate
                )
                for k in bad:
                    for column in ["loss", *(score_funcs or {})]:
                        row[k][f"{prefix} {column}"] = float("nan")
            if lr_schedule is not None and lr_schedule_every == "epoch":
                lr_schedule.step()
            stop = []
            for k, seed in enumerate(seeds):
                if not alive[k]:
                    continue
                row[k]["total time"] = total_time
                if k in bad:
                    row[k]["diverged"] = True
                    diverged.append(f"seed {seed} at epoch {epoch} ({row[k]['train loss']})")
                rows[seed].append(row[k])
                asked = on_epoch_end is not None and on_epoch_end(epoch, {**row[k], "seed": seed})
                if k in bad or asked:
                    stop.append(k)
            if stop and return_models:
                unstacked = stacked.unstack()
                stopped_models.update({k: unstacked[k] for k in stop})
            running[stop] = False
            if not running.any():
                break
    finally:
        for hook in hooks:
            hook.remove()
    if diverged:
        warn_diverged_seeds(diverged, stacklevel=3)
    frame = seeds_frame([pd.DataFrame(rows[seed]).assign(seed=seed) for seed in seeds])
    if not return_models:
        return frame
    models = stacked.unstack()
    return frame, [stopped_models.get(k, model) for k, model in enumerate(models)]
