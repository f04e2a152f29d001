"""Balancer base class (placeholder until the balancing branch lands; replaced at merge)."""
from __future__ import annotations
import torch
from torch import nn


class Balancer(nn.Module):
    reduces_gradients = False

    def __init__(self, tasks: list[str]):
        super().__init__()
        self.tasks = list(tasks)

    def backward(self, losses, shared_params):
        raise NotImplementedError

    def finalize(self, shared_params) -> None:
        return None

    def on_epoch_end(self, epoch_losses) -> None:
        return None
