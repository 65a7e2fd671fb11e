"""Schedules, gradient clipping, optimizers from scratch, Muon with AdamW: one module each.

- :mod:`idlmam.optim.schedules`: schedules stepped per epoch (exponential, step, cosine that ends
  on a dip), the book's floor ``eta_min_for``, and ``schedule_lrs`` to read any schedule;
- :mod:`idlmam.optim.batch_schedules`: schedules stepped per batch (warmup, decay to zero,
  warmup-stable-decay and its cooldowns);
- :mod:`idlmam.optim.clipping`: gradient-norm clipping on any optimizer, and the norms it saw;
- :mod:`idlmam.optim.scratch`: the chapter's SGD, Adam and AdamW, AlgoPerf's NAdamW
  and Lion, written from scratch;
- :mod:`idlmam.optim.shampoo`: Shampoo, weight matrices preconditioned on both sides, from scratch;
- :mod:`idlmam.optim.soap`: SOAP, Adam in the eigenbasis of Shampoo's preconditioners, from scratch;
- :mod:`idlmam.optim.tensorwise`: what those two share, a step that updates one tensor at a time;
- :mod:`idlmam.optim.averaging`: any optimizer plus a moving average of its weights, which
  evaluation sees;
- :mod:`idlmam.optim.muon`: Muon on the hidden matrices with AdamW on the rest, in one optimizer,
  and weight decay only where it belongs.

Everything is importable from ``idlmam.optim`` directly.
"""

from idlmam.optim.averaging import WeightEMA, ema_decay_for
from idlmam.optim.batch_schedules import (
    cooldown_factor,
    cooldown_schedule,
    warmup_constant,
    warmup_cosine,
    warmup_cosine_factor,
    warmup_factor,
    warmup_linear_decay,
    warmup_linear_factor,
    wsd_factor,
    wsd_schedule,
)
from idlmam.optim.clipping import clip_grad_norm_on_step, record_grad_norms
from idlmam.optim.muon import MuonWithAdamW, decay_param_groups, muon_param_groups
from idlmam.optim.schedules import (
    ETA_MIN_RATIO,
    cosine_extremes,
    cosine_schedule,
    cosine_t_max,
    eta_min_for,
    exponential_gamma,
    schedule_lrs,
)
from idlmam.optim.scratch import SGD, Adam, AdamW, Lion, NAdamW
from idlmam.optim.shampoo import Shampoo
from idlmam.optim.soap import SOAP
from idlmam.optim.tensorwise import TensorwiseOptimizer

__all__ = [
    "exponential_gamma",
    "ETA_MIN_RATIO",
    "eta_min_for",
    "cosine_t_max",
    "cosine_extremes",
    "cosine_schedule",
    "schedule_lrs",
    "warmup_factor",
    "cooldown_factor",
    "warmup_cosine_factor",
    "warmup_linear_factor",
    "wsd_factor",
    "warmup_cosine",
    "warmup_linear_decay",
    "wsd_schedule",
    "warmup_constant",
    "cooldown_schedule",
    "clip_grad_norm_on_step",
    "record_grad_norms",
    "SGD",
    "Adam",
    "AdamW",
    "NAdamW",
    "Lion",
    "Shampoo",
    "SOAP",
    "TensorwiseOptimizer",
    "muon_param_groups",
    "decay_param_groups",
    "MuonWithAdamW",
    "WeightEMA",
    "ema_decay_for",
]
