"""Per-pixel regression with an output activation and an optional target transform.

The loss compares ``activation(raw)`` with ``transform(target)``; ``predict`` returns
``inverse_transform(activation(raw))`` in the target's own units. ``log1p`` suits heavy-tailed
targets such as rain rate; ``softplus``/``relu`` keep predictions non-negative.
``gate`` multiplies the prediction by a classification task's event probability (``soft``) or
by 1[probability ≥ threshold] (``hard``): the final estimate of MTCF-style and two-stage
precipitation retrievals, e.g. ``gate: {task: rain_class, mode: hard, threshold: 0.5}``.
``max_value`` caps predictions (not the loss) at a physical limit, so that an input far outside
the training distribution cannot produce an absurd value through ``expm1``.
``loss_target_min`` restricts the loss to pixels whose target is ≥ that value (e.g. rainy
pixels only, as in two-stage precipitation retrievals).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from mtdense.registry import TASKS
from mtdense.errors import ConfigError
from mtdense.tasks.base import Task

ACTIVATIONS = {
    "none": lambda x: x,
    "softplus": F.softplus,
    "relu": F.relu,
    "exp": torch.exp,
    "sigmoid": torch.sigmoid,
}


def _expm1(x: torch.Tensor) -> torch.Tensor:
    """``expm1``, written as exp(x) − 1 inside an ONNX export (ONNX has no Expm1 operator); the
    two differ by float rounding only (≤ 1 ulp of exp(x))."""
    return torch.exp(x) - 1 if torch.onnx.is_in_onnx_export() else torch.expm1(x)


TRANSFORMS = {"none": (lambda x: x, lambda x: x), "log1p": (torch.log1p, _expm1)}
# inverse of each activation on its range (used to turn a prediction back into a raw output)
INVERSE_ACTIVATIONS = {
    "none": lambda y: y,
    "softplus": lambda y: y + torch.log(-torch.expm1(-y)),  # log(exp(y) - 1), stable for large y
    "relu": lambda y: y,
    "exp": torch.log,
    "sigmoid": torch.logit,
}


@TASKS.register("regression")
class RegressionTask(Task):
    """Per-pixel values: one output channel, ``activation`` and ``target_transform`` as in the module
    docstring; prediction in the target's units, optionally gated by a classification task."""

    out_channels = 1
    conformance_kwargs = {"target": "height", "target_transform": "log1p", "activation": "softplus",
                          "gate": {"task": "rain_class"}}

    def __init__(self, name: str, target: str, activation: str = "none", target_transform: str = "none",
                 loss: Mapping[str, Any] | str = "mse", metrics: list | None = None, loss_target_min: float | None = None,
                 gate: Mapping[str, Any] | None = None, max_value: float | None = None):
        super().__init__(name, target, loss, metrics)
        self.max_value = max_value
        self.gate = dict(gate) if gate else None
        if self.gate:
            unknown = set(self.gate) - {"task", "mode", "threshold", "level"}
            if unknown or "task" not in self.gate:
                raise ConfigError(f"needs 'task' and accepts mode (hard|soft), threshold, level; got {sorted(self.gate)}",
                                  key="gate")
            if self.gate.setdefault("mode", "hard") not in ("hard", "soft"):
                raise ConfigError(f"{self.gate['mode']!r} is not one of hard, soft", key="gate.mode")
            self.gate.setdefault("threshold", 0.5)
            self.gate.setdefault("level", 1)
        if activation not in ACTIVATIONS:
            raise ConfigError(f"{activation!r} is not one of {', '.join(ACTIVATIONS)}", key="activation")
        if target_transform not in TRANSFORMS:
            raise ConfigError(f"{target_transform!r} is not one of {', '.join(TRANSFORMS)}", key="target_transform")
        self.activation = activation
        self.target_transform = target_transform
        self.loss_target_min = loss_target_min

    def activated(self, raw: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.activation](raw.float()[:, 0])

    def loss(self, raw, target, valid):
        if self.loss_target_min is not None:
            valid = valid & (target >= self.loss_target_min)
        forward, _ = TRANSFORMS[self.target_transform]
        return self.loss_fn(self.activated(raw), forward(torch.where(valid, target, 0).float()), valid)

    def postprocessing(self):
        inverse = {"none": "none", "log1p": "expm1"}[self.target_transform]
        rule = "raw"
        for fn in (self.activation, inverse):
            rule = rule if fn == "none" else f"{fn}({rule})"
        if self.max_value is not None:
            rule = f"min({rule}, {self.max_value:g})"
        if self.gate:
            prob = f"P({self.gate['task']} class >= {self.gate['level']})"
            rule += f" * {prob}" if self.gate["mode"] == "soft" else f" * 1[{prob} >= {self.gate['threshold']:g}]"
        return {**super().postprocessing(), "output": "value in the target's units", "rule": rule,
                "activation": self.activation, "inverse_transform": inverse, "gate": self.gate,
                "max_value": self.max_value}

    def predict(self, raw: torch.Tensor) -> torch.Tensor:
        _, inverse = TRANSFORMS[self.target_transform]
        pred = inverse(self.activated(raw))
        return pred if self.max_value is None else pred.clamp(max=self.max_value)

    def raw_from_prediction(self, value: torch.Tensor) -> torch.Tensor:
        """The raw output (B×1×H×W) whose ``predict`` is ``value`` (B×H×W): lets a batch transform
        edit a teacher's raw output in the target's units (AffineMix's depth / s)."""
        forward, _ = TRANSFORMS[self.target_transform]
        return INVERSE_ACTIVATIONS[self.activation](forward(value.float()))[:, None]

    def predict_from(self, outputs, tasks):
        pred = self.predict(outputs[self.name])
        if not self.gate:
            return pred
        gate_task = tasks[self.gate["task"]] if self.gate["task"] in tasks else None
        if gate_task is None or not hasattr(gate_task, "event_probability"):
            raise ConfigError(f"{self.gate['task']!r} must be a threshold_classification task", key="gate.task")
        prob = gate_task.event_probability(outputs[gate_task.name], self.gate["level"])
        if self.gate["mode"] == "soft":
            return pred * prob
        return pred * (prob >= self.gate["threshold"])
