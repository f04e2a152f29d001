"""Optimizers (AdamW, SGD) and per-step learning-rate schedules with linear warm-up.

Schedules: ``cosine`` (Loshchilov & Hutter, ICLR 2017, no restarts), ``poly``
((1 − t/T)^p, as nnU-Net and DeepLab use), ``constant``; all decay to ``min_lr_ratio``·lr.
Weight decay applies only to weights with ≥ 2 dimensions (not to norms and biases).
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig


def build_optimizer(t: DictConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    seen, decay, no_decay = set(), [], []
    for p in params:
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": float(t.weight_decay)}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=float(t.lr), momentum=float(t.momentum), nesterov=bool(t.nesterov))
    return torch.optim.AdamW(groups, lr=float(t.lr))


def lr_factor(step: int, total: int, t: DictConfig) -> float:
    warm = int(t.warmup_steps)
    if warm and step < warm:
        return (step + 1) / warm
    floor = float(t.min_lr_ratio)
    progress = min(1.0, (step - warm) / max(1, total - warm))
    if t.schedule == "cosine":
        shape = 0.5 * (1 + math.cos(math.pi * progress))
    elif t.schedule == "poly":
        shape = (1 - progress) ** float(t.poly_power)
    else:
        shape = 1.0
    return floor + (1 - floor) * shape


def build_scheduler(t: DictConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total_steps, t))


def set_base_lr(optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR, lr: float) -> None:
    """A restored schedule continues from its step with base learning rate ``lr`` (the configured
    one, which may differ from the checkpoint's)."""
    scheduler.base_lrs = [lr] * len(optimizer.param_groups)
    factor = scheduler.lr_lambdas[0](scheduler.last_epoch)
    for group in optimizer.param_groups:
        group["lr"] = lr * factor
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
