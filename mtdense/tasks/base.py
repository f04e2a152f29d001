"""What every task knows: its target key, output channels, loss, metrics and prediction rule."""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from mtdense.errors import ConfigError
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
            raise ConfigError(f"the dataset provides no target {self.target!r}; it provides: {', '.join(targets)}",
                              key=f"tasks.{self.name}.target")
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

    def bind(self, tasks: Mapping[str, "Task"], target_keys: Sequence[str] | None = None) -> list[str]:
        """Check, when the experiment is built, everything that depends on the rest of it — the
        target among the dataset's ``target_keys`` (when known), metric configs, references to
        other tasks (gates) — and return the metric names this task will report. A dry run of
        the prediction and metrics on a 2×2 zero output does it, so a bad option fails before
        the first training step rather than after the first epoch."""
        if target_keys is not None and self.target not in target_keys:
            raise ConfigError(f"the dataset provides no target {self.target!r}; it provides: {', '.join(target_keys)}",
                              key=f"tasks.{self.name}.target")
        outputs = {name: torch.zeros(1, t.out_channels, 2, 2) for name, t in tasks.items()}
        pred = self.predict_from(outputs, tasks)
        names: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # metrics of a constant map may divide by zero
            for metric in self.build_metrics():
                metric.update(pred, pred, torch.ones(pred.shape, dtype=torch.bool))
                names += list(metric.compute())
        return names

    def build_metrics(self) -> nn.ModuleList:
        return nn.ModuleList(
            METRICS.build(m, f"tasks.{self.name}.metrics.{i}", **self.metric_args()) for i, m in enumerate(self.metric_cfgs)
        )
