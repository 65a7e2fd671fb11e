r"""Train K models of one architecture on the same batches in one pass: multi-seed runs, cheaper.

The book compares optimizers over several seeds, which normally costs K separate trainings. Here
the K models' weights are stacked along a new first dimension (a ``(128, 784)`` weight becomes
``(K, 128, 784)``), so each layer of all K models is one batched matrix product, and each batch is
gathered, and each Python step of the loop taken, once for all K instead of K times.

Why one ordinary optimizer is enough: SGD (with momentum or Nesterov), Adam, AdamW, weight decay
and gradient value clipping update every parameter value from that value's own gradient and
state only (they are *elementwise*). Minimising the sum of the K models' mean losses

.. math::
    \mathcal{L}(\Theta_1, \dots, \Theta_K) = \sum_{k=1}^{K} \frac{1}{B} \sum_{i=1}^{B}
    \ell\big(f(x_i; \Theta_k), y_i\big),
    \qquad \frac{\partial \mathcal{L}}{\partial \Theta_k} = \nabla_{\Theta_k}
    \frac{1}{B} \sum_{i=1}^{B} \ell\big(f(x_i; \Theta_k), y_i\big)

gives slice ``k`` of each stacked tensor exactly model ``k``'s own gradient, so one
``torch.optim`` optimizer over the stacked tensors performs K independent runs, and any
``torch.optim.lr_scheduler`` built on it schedules all K alike. Optimizers that mix values across
a tensor (LBFGS, Adafactor, Muon) and ``ReduceLROnPlateau`` (one rate per model) are refused.

All K models see the same batches in the same order: the seeds differ only in the initial
weights. The result equals K calls of :func:`idlmam.train.train_network` that each use a fresh
loader with the same shuffling seed.

Example:
    >>> import torch
    >>> from idlmam.data import ResidentLoader
    >>> from idlmam.models import mlp
    >>> X, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    >>> frame = train_many(mlp, [0, 1, 2], torch.nn.CrossEntropyLoss(), ResidentLoader(X, y, 32),
    ...                    optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1), epochs=2)
    >>> frame.shape[0], list(frame.columns[:4])
    (6, ['seed', 'epoch', 'total time', 'lr'])
"""
from __future__ import annotations

import copy
import time
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from .checks import check_epochs_loaders_scores
from .loop import batch_pass
from ..utils import get_device, progress_enabled, set_seed

__all__ = ["StackedMLP", "VmapModels", "stack_models", "train_many"]

ScoreFunc = Callable[..., float]
# activations applied value by value: the same module works on (B, h) and on (K, B, h)
ELEMENTWISE = (nn.Identity, nn.Tanh, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.ELU,
               nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Softsign,
               nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.LogSigmoid, nn.Tanhshrink)
# optimizers whose update of a value depends on other values of the same tensor
NOT_ELEMENTWISE = ("LBFGS", "Adafactor", "Muon")


class _StackedLayer(torch.autograd.Function):
    """Layer l of K models at once: ``h @ W_k^T + b_k`` for each k, then ``tanh`` when fused.

    * **A shared input** ``(B, in)`` (the first layer: all K models read the same batch): the K
      weights ``(K, out, in)`` are read as one ``(K*out, in)`` matrix, so the forward pass is one
      ``(B, in) @ (in, K*out)`` product and the weight gradient one ``(K*out, B) @ (B, in)``.
    * **Separate inputs** ``(K, B, in)``: batched products (``baddbmm``, ``bmm``). The weight
      gradient is formed as ``(K, out, in)`` directly (autograd's own backward of ``baddbmm``
      forms it transposed, which MKL computes more slowly here).
    * **Fused tanh**: ``tanh(z) = 2 * sigmoid(2z) - 1``, with ``2z`` taken from the product's
      own scale factors (free) and the rest done in place. On the book's 2-core CPU
      ``torch.tanh`` costs about 1.4 ns per value and this about 0.4 ns; the two agree to about
      1e-7. The backward pass is tanh's own, ``grad * (1 - y**2)``.

    Returns ``(K, B, out)`` (for a shared input, a transposed view of the ``(B, K*out)`` product).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                tanh: bool) -> torch.Tensor:
        K, out, fan_in = weight.shape
        ctx.shared, ctx.has_bias, ctx.tanh = h.dim() == 2, bias is not None, tanh
        scale = 2.0 if tanh else 1.0
        if ctx.shared:  # (B, in) -> (B, K*out) -> (K, B, out)
            flat = weight.reshape(K * out, fan_in).t()
            z = (torch.addmm(bias.reshape(K * out), h, flat, beta=scale, alpha=scale)
                 if bias is not None else torch.mm(h, flat).mul_(scale))
            z = z.view(-1, K, out).transpose(0, 1)
        else:  # (K, B, in) @ (K, in, out) -> (K, B, out)
            z = (torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2), beta=scale, alpha=scale)
                 if bias is not None else torch.bmm(h, weight.transpose(1, 2)).mul_(scale))
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
        # the forward plan: Flatten/activation modules as they are, None where a stacked Linear goes
        self.plan: list[nn.Module | None] = [None if isinstance(layer, nn.Linear) else layer
                                             for layer in models[0]]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        self._names: list[tuple[str, str | None]] = []  # state_dict names per stacked Linear
        for index, layer in enumerate(models[0]):
            if isinstance(layer, nn.Linear):
                w = torch.stack([m[index].weight.detach() for m in models])  # K x (out, in) -> (K, out, in)
                self.weights.append(nn.Parameter(w.clone()))
                if layer.bias is not None:
                    b = torch.stack([m[index].bias.detach() for m in models])  # (K, out)
                    self.biases.append(nn.Parameter(b.clone()))
                self._names.append((f"{index}.weight", f"{index}.bias" if layer.bias is not None else None))
        self.__dict__["_template"] = copy.deepcopy(models[0])  # not a submodule: no extra parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, shared, b_i, fused = x, True, 0, False
        linear = iter(zip(self.weights, self._names))
        for index, layer in enumerate(self.plan):
            if fused:  # this Tanh already ran inside the Linear before it
                fused = False
                continue
            if layer is not None:
                h = layer(h)  # Flatten (input still shared) or an elementwise activation
                continue
            w, (_, b_name) = next(linear)
            b = None
            if b_name is not None:
                b, b_i = self.biases[b_i], b_i + 1
            if shared and h.dim() != 2:
                raise ValueError(f"the first Linear layer needs (B, in) inputs, got shape "
                                 f"{tuple(h.shape)}: put an nn.Flatten() before it")
            following = self.plan[index + 1] if index + 1 < len(self.plan) else None
            fused = type(following) is nn.Tanh
            # (B, in) for the first Linear (shared by the K models), else (K, B, in) -> (K, B, out)
            h, shared = _StackedLayer.apply(h, w, b, fused), False
        if shared:
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

    General, but for the book's MLP on a 2-core CPU it was slower than K separate runs (vmap
    turns each layer into batched products with extra reshapes and copies); :func:`stack_models`
    uses it only when :class:`StackedMLP` cannot express the model.

    Args:
        models: K models with the same architecture.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        from torch.func import stack_module_state

        if any(True for _ in models[0].buffers()):
            raise ValueError("the model has buffers (BatchNorm running statistics?), which "
                             "vmap cannot update per model: train the seeds one by one with "
                             "idlmam.train.train_network")
        params, _ = stack_module_state(list(models))  # name -> (K, ...)
        self.k = len(models)
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[n].detach().clone()) for n in self.names])
        self.__dict__["_template"] = copy.deepcopy(models[0])
        self.__dict__["_skeleton"] = copy.deepcopy(models[0]).to("meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params: dict, inputs: torch.Tensor) -> torch.Tensor:
            return functional_call(self._skeleton, params, (inputs,))

        params = dict(zip(self.names, self.stacked))
        return vmap(one, in_dims=(0, None))(params, x)  # (B, ...) -> (K, B, ...)

    def unstack(self) -> list[nn.Module]:
        """The K trained models as ordinary modules (copies)."""
        models = []
        for k in range(self.k):
            model = copy.deepcopy(self._template).to(self.stacked[0].device)
            model.load_state_dict({n: p[k].detach().clone() for n, p in zip(self.names, self.stacked)})
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
            raise ValueError(f"model {k} has another architecture than model 0: stacked models "
                             "must come from the same model_fn")
    for m in models:
        if any(isinstance(mod, nn.modules.dropout._DropoutNd) for mod in m.modules()):
            raise ValueError("the model uses dropout, whose random masks would differ from those "
                             "of separate runs: train the seeds one by one with train_network")
        if any(getattr(p, "_backward_hooks", None) for p in m.parameters()):
            raise ValueError("the model's parameters carry gradient hooks (clamp_gradients?), "
                             "which stacking drops: pass clip_value=... to train_many instead")
    return StackedMLP(models) if not _why_not_mlp(models[0]) else VmapModels(models)


def _per_model_loss(loss_func: Callable, y_hat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each model's mean loss on the batch: ``(K, B, C)`` scores, ``(B,)`` labels -> ``(K,)``."""
    plain_ce = (isinstance(loss_func, nn.CrossEntropyLoss) and loss_func.weight is None
                and loss_func.reduction == "mean" and loss_func.label_smoothing == 0.0
                and labels.dtype == torch.long and labels.dim() == 1 and y_hat.dim() == 3)
    if plain_ce:  # one call for all K instead of K small ones
        K, B, C = y_hat.shape
        losses = F.cross_entropy(y_hat.reshape(K * B, C), labels.repeat(K), reduction="none",
                                 ignore_index=loss_func.ignore_index)  # (K*B,)
        counted = (labels != loss_func.ignore_index).sum()  # what "mean" divides by; no sync
        return losses.view(K, B).sum(dim=1) / counted  # (K*B,) -> (K,)
    return torch.stack([loss_func(y_hat[k], labels) for k in range(y_hat.shape[0])])


def _run_epoch(stacked: nn.Module, optimizer: torch.optim.Optimizer | None, data_loader: Iterable,
               loss_func: Callable, device: torch.device, results: list[dict],
               score_funcs: Mapping[str, ScoreFunc] | None, prefix: str) -> float:
    """One pass for all K models, like :func:`idlmam.train.run_epoch`; appends to each ``results[k]``."""
    K = len(results)
    if optimizer is None and hasattr(data_loader, "eval_batches"):
        # K models multiply the activations by K: keep one batch's worth about the single size
        data_loader = data_loader.eval_batches(max(128, 1024 // K))
    start = time.perf_counter()
    # the sum of the K losses is minimised: slice k of every gradient is model k's own gradient
    running_loss, y_true, y_pred = batch_pass(
        stacked, optimizer, data_loader, lambda y_hat, labels: _per_model_loss(loss_func, y_hat, labels),
        device, keep_outputs=bool(score_funcs), name=prefix)
    mean_loss = running_loss.tolist()  # one sync per epoch
    for k in range(K):
        results[k][f"{prefix} loss"] = mean_loss[k]
    if score_funcs:
        y_true_np = torch.cat(y_true).cpu().numpy()
        scores = torch.cat(y_pred, dim=1)  # (K, N, classes)
        if scores.dim() == 3 and scores.shape[2] > 1:
            scores = scores.argmax(dim=2)  # (K, N, classes) -> (K, N) predicted labels
        scores = scores.cpu().numpy()
        for k in range(K):
            for name, score_func in score_funcs.items():
                results[k][f"{prefix} {name}"] = float(score_func(y_true_np, scores[k]))
    return time.perf_counter() - start


def _check(seeds, epochs, train_loader, val_loader, test_loader, score_funcs) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=range(3)")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seeds must be non-negative ints, got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat ({seeds}): each seed would train the same model twice")
    check_epochs_loaders_scores(epochs, train_loader, val_loader, test_loader, score_funcs)
    return seeds


def train_many(model_fn: Callable[[], nn.Module], seeds: Iterable[int], loss_func: Callable,
               train_loader: Iterable, *,
               optimizer_fn: Callable[[list], torch.optim.Optimizer] | None = None,
               lr_schedule_fn: Callable[[torch.optim.Optimizer], object] | None = None,
               val_loader: Iterable | None = None, test_loader: Iterable | None = None,
               score_funcs: Mapping[str, ScoreFunc] | None = None, epochs: int = 50,
               device: torch.device | str = "cpu", clip_value: float | None = None,
               return_models: bool = False, disable_tqdm: bool = False,
               on_epoch_end: Callable[[int, list], "bool | None"] | None = None):
    """Train one model per seed, all K in one pass over the same batches; return the long frame.

    Equivalent to, for each ``seed``: ``set_seed(seed); model = model_fn()``, then
    ``train_network(model, loss_func, train_loader, ...)`` with ``optimizer_fn(model.parameters())``
    and ``lr_schedule_fn(optimizer)``, where every run's ``train_loader`` yields the same batches
    in the same order (a fresh loader with the same shuffling seed).

    Args:
        model_fn: builds one model; called right after ``set_seed(seed)`` for each seed, so each
            model starts from the weights a single run with that seed gets.
        seeds: one model per seed (distinct non-negative ints).
        loss_func: ``loss_func(y_hat, y)`` returning one model's mean loss on a batch.
        train_loader: yields ``(inputs, labels)``; iterated once per epoch for all K models.
        optimizer_fn: ``params -> optimizer`` over the stacked ``(K, ...)`` tensors; must be
            elementwise (SGD, Adam, AdamW, RMSprop, ...). ``AdamW`` with its defaults when None.
        lr_schedule_fn: ``optimizer -> torch.optim.lr_scheduler`` object, stepped once per epoch
            (not ``ReduceLROnPlateau``: it would need one rate per model).
        val_loader: evaluated after each epoch.
        test_loader: evaluated after each epoch.
        score_funcs: ``{"Accuracy": accuracy_score}``, computed per model once per epoch.
        epochs: passes over ``train_loader``.
        device: where to train.
        clip_value: clamp every gradient value into ``[-clip_value, clip_value]`` (what
            :func:`idlmam.models.clamp_gradients` does to a single model).
        return_models: also return the K trained models (ordinary modules, in ``seeds`` order).
        disable_tqdm: no progress bar.
        on_epoch_end: called as ``on_epoch_end(epoch, rows)`` with that epoch's K rows (dicts, in
            ``seeds`` order); return True to stop after it.

    Returns:
        A pandas DataFrame with one row per (seed, epoch): ``seed``, then the columns of
        :func:`idlmam.train.train_network` (``epoch``, ``total time``, ``lr``, ``train loss``,
        ``train <score>``, ``val ...``, ``test ...``). ``total time`` is the training time of the
        joint run so far, the same for every seed. With ``return_models``: ``(frame, models)``.

    Example:
        >>> frame = train_many(mlp, range(3), nn.CrossEntropyLoss(), loader, test_loader=test,
        ...                    optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        ...                    epochs=10)  # doctest: +SKIP
        >>> sns.lineplot(frame, x="epoch", y="test loss")  # a band over the seeds  # doctest: +SKIP
    """
    import pandas as pd
    from tqdm import tqdm

    seeds = _check(seeds, epochs, train_loader, val_loader, test_loader, score_funcs)
    device = get_device(str(device))
    models = []
    for seed in seeds:
        set_seed(seed)
        models.append(model_fn())
    stacked = stack_models(models).to(device)
    del models
    params = list(stacked.parameters())
    optimizer = (optimizer_fn or torch.optim.AdamW)(params)
    if type(optimizer).__name__ in NOT_ELEMENTWISE:
        raise ValueError(f"{type(optimizer).__name__} mixes values within a tensor, so on stacked "
                         "weights it would couple the K models: train the seeds one by one")
    if not any(p is q for group in optimizer.param_groups for p in group["params"] for q in params):
        raise ValueError("optimizer_fn built an optimizer that holds none of the parameters it "
                         "was given: build it as optimizer_fn=lambda params: SGD(params, ...)")
    lr_schedule = lr_schedule_fn(optimizer) if lr_schedule_fn is not None else None
    if lr_schedule == "ReduceLROnPlateau" or isinstance(lr_schedule, ReduceLROnPlateau):
        raise ValueError("ReduceLROnPlateau lowers the rate when one run's validation loss "
                         "stalls, so the K models would need different rates: train the seeds "
                         "one by one with train_network, or use a fixed schedule")
    if lr_schedule is not None and getattr(lr_schedule, "optimizer", None) is not optimizer:
        raise ValueError("lr_schedule_fn must build its schedule on the optimizer it is given")
    hooks = []
    if clip_value is not None:
        if clip_value <= 0:
            raise ValueError(f"clip_value must be positive, got {clip_value}")
        hooks = [p.register_hook(lambda grad: grad.clamp(-clip_value, clip_value)) for p in params]

    rows: list[list[dict]] = [[] for _ in seeds]  # rows[k][epoch]
    total_time = 0.0
    for epoch in tqdm(range(epochs), desc="Epoch", disable=not progress_enabled(disable_tqdm)):
        row = [{"epoch": epoch, "lr": optimizer.param_groups[0]["lr"]} for _ in seeds]
        total_time += _run_epoch(stacked, optimizer, train_loader, loss_func, device, row,
                                 score_funcs, "train")
        for r in row:
            r["total time"] = total_time
        for prefix, loader in (("val", val_loader), ("test", test_loader)):
            if loader is not None:
                _run_epoch(stacked, None, loader, loss_func, device, row, score_funcs, prefix)
        if lr_schedule is not None:
            lr_schedule.step()
        for k, r in enumerate(row):
            rows[k].append(r)
        if on_epoch_end is not None and on_epoch_end(epoch, row):
            break
    for hook in hooks:
        hook.remove()

    frame = pd.concat([pd.DataFrame(r).assign(seed=seed) for seed, r in zip(seeds, rows)],
                      ignore_index=True)
    first = ["seed", "epoch", "total time", "lr"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    return (frame, stacked.unstack()) if return_models else frame
