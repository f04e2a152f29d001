"""What every task knows: its target key, output channels, loss, metrics and prediction rule."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from mtdense.registry import LOSSES, METRICS


class Task(nn.Module):
    """Base class. Subclasses set ``out_channels`` and implement ``loss`` and ``predict``.

    ``target`` names the entry of ``batch["targets"]`` the task learns from. ``metrics`` is a
    list of METRICS configs; each is built with the runtime arguments of ``metric_args``.
    A task is an ``nn.Module`` so that loss buffers (class weights) follow the model's device.
    """

    out_channels: int

    def __init__(self, name: str, target: str, loss: Mapping[str, Any] | str, metrics: list | None = None):
        super().__init__()
        self.name = name
        self.target = target
        self.loss_fn = LOSSES.build(loss, f"tasks.{name}.loss")
        self.metric_cfgs = list(metrics or [])

    def target_from(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(target, valid) for this task from a batch."""
        targets, valid = batch["targets"], batch["valid"]
        if self.target not in targets:
            raise KeyError(
                f"tasks.{self.name}.target: the dataset provides no target {self.target!r}; it provides: "
                f"{', '.join(targets)}"
            )
        return targets[self.target], valid[self.target]

    def compute_loss(self, raw: torch.Tensor, batch: Mapping[str, Any]) -> torch.Tensor:
        target, valid = self.target_from(batch)
        return self.loss(raw, target, valid)

    def loss(self, raw: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, raw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict_from(self, outputs: Mapping[str, torch.Tensor], tasks: Mapping[str, "Task"]) -> torch.Tensor:
        """Prediction given every task's raw output (a task may depend on another's, e.g. gating)."""
        return self.predict(outputs[self.name])

    def metric_args(self) -> dict[str, Any]:
        return {}

    def build_metrics(self) -> nn.ModuleList:
        return nn.ModuleList(
            METRICS.build(m, f"tasks.{self.name}.metrics.{i}", **self.metric_args()) for i, m in enumerate(self.metric_cfgs)
        )
