"""Muon for the hidden weight matrices with AdamW for the rest, and weight decay by kind."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from idlmam.optim.scratch import _check_non_negative

# Muon for the hidden matrices, AdamW for the rest; weight decay by kind ------------------------


def _parameters(model: torch.nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list(model.parameters() if isinstance(model, torch.nn.Module) else model)


def muon_param_groups(
    model: torch.nn.Module | Iterable[torch.Tensor], *, first_layer: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Split the parameters into the hidden weight matrices (for Muon) and all the others.

    Muon is for the 2-D weights of hidden layers; the first layer (the input, where a language
    model has its embedding), the output layer, biases and normalization weights go to AdamW
    (Keller Jordan's Muon README). For a module the rule is: every parameter with
    ``p.ndim == 2`` except the weights of the first and the last ``nn.Linear`` and of any
    ``nn.Embedding``. Given only parameters (what ``make_optimizer`` receives from
    :func:`idlmam.experiments.run`), the first and the last 2-D parameters are taken as the input
    and output layers, which holds for models built from input to output like
    :func:`idlmam.models.mlp`; for a model with an embedding, pass the module. Convolution
    filters (4-D) go to AdamW, since ``torch.optim.Muon`` takes only 2-D parameters.

    Args:
        model: the network, or its parameters in the order of ``model.parameters()``.
        first_layer: give the first ``nn.Linear`` (or the first 2-D parameter) to Muon too; a
            model with an embedding keeps it on AdamW either way.

    Returns:
        ``(hidden, other)``: two lists in the order of ``model.parameters()``.

    Example:
        >>> from idlmam.models import mlp
        >>> hidden, other = muon_param_groups(mlp())  # 784 -> 128 -> 128 -> 128 -> 10
        >>> [tuple(p.shape) for p in hidden]
        [(128, 128), (128, 128)]
        >>> [tuple(p.shape) for p in other]  # the first layer, four biases and the output layer
        [(128, 784), (128,), (128,), (128,), (10, 128), (10,)]
        >>> [tuple(p.shape) for p in muon_param_groups(mlp(), first_layer=True)[0]]
        [(128, 784), (128, 128), (128, 128)]
    """
    params = _parameters(model)
    if isinstance(model, torch.nn.Module):
        linears = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
        embeddings = [m.weight for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    else:
        linears, embeddings = [p for p in params if p.ndim == 2], []
    ends = linears[-1:] if first_layer or embeddings else linears[:1] + linears[-1:]
    outside = ends + embeddings
    hidden = [p for p in params if p.ndim == 2 and not any(p is q for q in outside)]
    other = [p for p in params if not any(p is q for q in hidden)]
    return hidden, other


def decay_param_groups(
    model: torch.nn.Module | Iterable[torch.Tensor], weight_decay: float
) -> list[dict]:
    r"""Two parameter groups: weight decay for the weight matrices and filters, none for the rest.

    Only parameters with ``p.ndim >= 2`` (``Linear`` and convolution weights) are decayed;
    biases and normalization weights (1-D) are not, since pulling a bias or a batch-norm scale
    towards 0 does not make the model simpler (nanoGPT's ``configure_optimizers``; He et al.
    2018, arXiv:1812.01187). Both groups are always there, possibly empty, so a checkpoint of
    the optimizer loads into any model.

    Args:
        model: the network, or its parameters.
        weight_decay: :math:`\lambda` of the first group.

    Returns:
        ``[{"params": matrices, "weight_decay": weight_decay}, {"params": rest,
        "weight_decay": 0.0}]``, for any ``torch.optim`` optimizer.

    Example:
        >>> from idlmam.models import mlp
        >>> groups = decay_param_groups(mlp(layers=1, batch_norm=True), 0.1)
        >>> [[tuple(p.shape) for p in g["params"]] for g in groups]
        [[(128, 784), (10, 128)], [(128,), (128,), (128,), (10,)]]
        >>> optimizer = torch.optim.AdamW(groups, lr=1e-3)
    """
    _check_non_negative(weight_decay=weight_decay)
    params = _parameters(model)
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


class MuonWithAdamW(torch.optim.Optimizer):
    r"""One optimizer made of a ``torch.optim.Muon`` and a ``torch.optim.AdamW``.

    Muon steps the hidden weight matrices :math:`W` (:math:`A \times B`): momentum
    :math:`\mu`, then the update orthogonalized by five Newton-Schulz iterations
    (:math:`O \approx U V^T` for :math:`B_t = U S V^T`), then decoupled weight decay,

    .. math::
        B_t &= \mu B_{t-1} + G_t, \qquad
            O_t = \mathrm{NS}_5\left(G_t + \mu B_t\right) \quad \text{(Nesterov)} \\
        W_{t+1} &= W_t (1 - \eta \lambda) - 0.2 \sqrt{\max(A, B)} \cdot \eta \cdot O_t

    and AdamW steps everything else (:func:`muon_param_groups` splits a model). The factor
    :math:`0.2 \sqrt{\max(A, B)}` is ``adjust_lr_fn="match_rms_adamw"`` (Moonshot AI,
    arXiv:2502.16982): :math:`O` has all singular values near 1, so its values have a root mean
    square of about :math:`1 / \sqrt{\max(A, B)}`; the factor brings it to 0.2, about the size
    of an AdamW step. That is why one rate :math:`\eta` and one decay :math:`\lambda` tuned for
    AdamW serve both halves (the defaults are AdamW's), and why one schedule can drive both.

    ``param_groups`` is Muon's groups followed by AdamW's, the same dicts, so any
    ``torch.optim.lr_scheduler`` built on this object scales the rates of both; ``state``,
    ``zero_grad``, ``state_dict`` / ``load_state_dict`` (checkpoints) and step hooks cover both.
    Muon mixes the values of a matrix, so stacked training of several seeds refuses it
    (:func:`idlmam.train.why_not_stacked`).

    Args:
        muon_params: the 2-D hidden weights (or parameter groups of them).
        adamw_params: everything else (or parameter groups, e.g. :func:`decay_param_groups`).
        lr: learning rate :math:`\eta` of both.
        weight_decay: :math:`\lambda` of both (torch's AdamW default; Muon's own is 0.1).
        momentum: Muon's :math:`\mu`.
        nesterov: Muon's Nesterov momentum.
        ns_steps: Muon's Newton-Schulz iterations.
        adjust_lr_fn: Muon's rate adjustment per shape: ``"match_rms_adamw"``, ``"original"``
            (:math:`\sqrt{\max(1, A / B)}`, for Muon's own rates, about 0.02) or
            ``"spectral_unclamped"``.
        betas: AdamW's :math:`(\beta_1, \beta_2)`.
        eps: AdamW's :math:`\epsilon`.

    Raises:
        ValueError: what ``torch.optim.Muon`` and ``torch.optim.AdamW`` raise (a parameter of
            Muon that is not 2-D, a negative rate, ...), no parameter for Muon, or a parameter
            given to both.

    Example:
        >>> from idlmam.models import mlp
        >>> model = mlp()
        >>> optimizer = MuonWithAdamW(*muon_param_groups(model), lr=1e-3)
        >>> from idlmam.optim import warmup_cosine
        >>> schedule = warmup_cosine(optimizer, total_steps=100, warmup_steps=10)
        >>> [len(group["params"]) for group in optimizer.param_groups]  # Muon's, AdamW's
        [2, 6]
        >>> [group["lr"] for group in optimizer.param_groups]  # the first warmup step
        [0.0001, 0.0001]
    """

    def __init__(
        self,
        muon_params,
        adamw_params,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        *,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = "match_rms_adamw",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        muon_params = list(muon_params)
        if not muon_params:
            raise ValueError(
                "no parameters for Muon: the model has no hidden 2-D weight matrix "
                "(convolution filters are 4-D; see muon_param_groups)"
            )
        self.muon = torch.optim.Muon(
            muon_params,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        self.adamw = torch.optim.AdamW(
            adamw_params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
        )
        # the same group dicts (a parameter in both raises here); then one shared state
        groups = self.muon.param_groups + self.adamw.param_groups
        super().__init__(groups, dict(lr=lr, weight_decay=weight_decay))
        self._share()

    def _share(self) -> None:
        """Point both optimizers at this object's groups and state (after a load, a copy)."""
        n = len(self.muon.param_groups)
        self.muon.param_groups, self.adamw.param_groups = (
            self.param_groups[:n],
            self.param_groups[n:],
        )
        self.muon.state = self.adamw.state = self.state  # their parameters are disjoint

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "muon": self.muon, "adamw": self.adamw}

    def __setstate__(self, state: dict) -> None:
        # load_state_dict ends here too, with new group dicts and a new state
        super().__setstate__(state)
        if "muon" in self.__dict__:
            self._share()

    @torch.no_grad()
    def step(self, closure=None):
        """Step Muon, then AdamW; ``closure`` (re-evaluates the loss) is optional."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss
