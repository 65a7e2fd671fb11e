r"""Stacked models: K models of one architecture as one module, and what may be stacked.

The book repeats every comparison over several seeds. Here the K models' weights are stacked
along a new first dimension (a ``(128, 784)`` weight becomes ``(K, 128, 784)``), so each layer
of all K models is one batched matrix product (:class:`StackedMLP`, with a fused autograd layer),
or, for any other architecture without buffers, one ``torch.func.vmap`` call
(:class:`VmapModels`). :func:`stack_models` picks one; :func:`why_not_stacked` says why a setup
cannot be stacked.

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
(one rate per model) are refused (:func:`coupling`). Schedule-free AdamW
(``schedulefree.AdamWScheduleFree``) is elementwise too: its tensors of state (the iterate
:math:`z`, the second moments) are updated value by value, and its scalars (the step count, the
averaging weight) depend only on the step count and the rate, the same for all K.

The training loop that uses them is :func:`idlmam.train.train_many` (:mod:`.stacked`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

__all__ = [
    "ELEMENTWISE",
    "NOT_ELEMENTWISE",
    "StackedMLP",
    "VmapModels",
    "stack_models",
    "why_not_stacked",
    "coupling",
]

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
NOT_ELEMENTWISE = ("LBFGS", "Adafactor", "Muon", "MuonWithAdamW", "Shampoo", "SOAP")


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
                "must come from the same make_model"
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


def why_not_stacked(
    make_model: Callable[[], nn.Module],
    make_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
    make_schedule: Callable | str | None = None,
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
    if isinstance(make_schedule, str):
        return _PLATEAU
    model = make_model()
    try:
        stacked = stack_models([model])
    except ValueError as err:
        return str(err)
    if isinstance(stacked, VmapModels) and any(True for _ in model.buffers()):
        return "the model has buffers (batch norm statistics?), which vmap cannot update"
    probe = make_optimizer(model.parameters())
    return coupling(probe, make_schedule(probe) if make_schedule is not None else None)


_PLATEAU = "ReduceLROnPlateau needs one learning rate per model"


def coupling(optimizer: torch.optim.Optimizer, lr_schedule: object) -> str:
    """What in this optimizer or schedule would couple stacked models (empty string: nothing).

    An optimizer in :data:`NOT_ELEMENTWISE` (or one wrapping it, as ``WeightEMA`` does), one
    with step pre-hooks (which rewrite the gradients as a whole: norm clipping), or a
    ``ReduceLROnPlateau`` schedule (one rate for all K models).

    Example:
        >>> model = nn.Linear(2, 1)
        >>> coupling(torch.optim.SGD(model.parameters(), lr=0.1), None)
        ''
        >>> coupling(torch.optim.LBFGS(model.parameters()), None)
        'LBFGS mixes values within a tensor'
    """
    for one in (optimizer, getattr(optimizer, "inner", None)):  # a wrapper (WeightEMA) too
        if type(one).__name__ in NOT_ELEMENTWISE:
            return f"{type(one).__name__} mixes values within a tensor"
    if getattr(optimizer, "_optimizer_step_pre_hooks", None):
        return "the optimizer rewrites the gradients before its step (norm clipping?)"
    if lr_schedule == "ReduceLROnPlateau" or isinstance(lr_schedule, ReduceLROnPlateau):
        return _PLATEAU
    return ""
