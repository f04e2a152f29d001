"""Semantic segmentation: C classes, argmax prediction (-1 where the logits are not finite),
ignore via the validity mask."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from mtdense.errors import ConfigError
from mtdense.registry import TASKS
from mtdense.tasks.base import Task


@TASKS.register("segmentation")
class SegmentationTask(Task):
    """Per-pixel classes: ``num_classes`` logits, loss on valid pixels (default cross-entropy),
    prediction = argmax, probabilities = softmax; ``class_names`` label per-class metrics."""

    conformance_kwargs = {"num_classes": 3}

    def __init__(self, name: str, num_classes: int, target: str = "semantic",
                 loss: Mapping[str, Any] | str = "ce", metrics: list | None = None,
                 class_names: list[str] | None = None):
        super().__init__(name, target, loss, metrics if metrics is not None else [{"type": "segmentation"}])
        if class_names is not None and len(class_names) != num_classes:
            raise ConfigError(f"{len(class_names)} names for {num_classes} classes; give one name per class",
                              key="class_names")
        self.num_classes = self.out_channels = num_classes
        self.class_names = list(class_names) if class_names is not None else None

    def loss(self, raw, target, valid):
        return self.loss_fn(raw, target, valid)

    def predict(self, raw: torch.Tensor) -> torch.Tensor:
        """Class ids; -1 (no prediction) where a logit is NaN/Inf, never a confident class 0."""
        ids = raw.argmax(dim=1)
        return torch.where(torch.isfinite(raw).all(dim=1), ids, torch.full_like(ids, -1))

    def probabilities(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.float().softmax(dim=1)

    def postprocessing(self):
        return {**super().postprocessing(), "output": "class index", "rule": "argmax over channels",
                "class_names": list(self.class_names) if self.class_names else None}

    def metric_args(self):
        return {"num_classes": self.num_classes, "class_names": self.class_names}
