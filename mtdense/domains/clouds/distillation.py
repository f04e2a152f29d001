"""Distillation couplings: a frozen teacher's outputs (``batch["teacher"][name][task]``) teach the student.

- ``kd_pixel``: Hinton et al., "Distilling the Knowledge in a Neural Network", NIPS DL Workshop
  2015, applied per pixel: T² · KL(softmax(t/T) ‖ softmax(s/T)) averaged over the pixels the task
  marks valid (``pixels: valid``) or over every pixel (``pixels: all``, e.g. unlabelled images).
  One-channel outputs are sigmoid logits (binary KL). Hinton's α·L_sup + (1 − α)·L_KD is the
  fixed balancer's ``weights: {task: α}`` with the coupling's own ``weight: 1 − α`` (couplings are
  added outside the balancer with their configured weight).
- ``kd_regression``: a regression output (e.g. rain rate) pulled to the teacher's raw output with
  an L2 (``mse``) or L1 loss on valid pixels — the multi-task counterpart for estimation heads
  (as in Chen et al., "Learning Efficient Object Detection Models with Knowledge Distillation",
  NeurIPS 2017, which distils regression outputs alongside class logits).

Both are 0 (not NaN) on a batch without valid pixels, and 0 on batches without teacher outputs
(validation: the evaluator runs no teachers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.errors import ConfigError
from mtdense.losses.masked import masked_mean
from mtdense.registry import COUPLINGS


class TeacherCoupling(nn.Module):
    """Shared checks: the task exists, its target key gives the validity mask."""

    def __init__(self, tasks, task: str, teacher: str, pixels: str = "valid"):
        super().__init__()
        if task not in tasks:
            raise ConfigError(f"{task!r} is not a task; tasks: {', '.join(tasks)}", key="task")
        if pixels not in ("valid", "all"):
            raise ConfigError(f"must be 'valid' or 'all', got {pixels!r}", key="pixels")
        self.task, self.teacher, self.pixels = task, teacher, pixels
        self.target = tasks[task].target

    def pair(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(student, teacher, mask) for this task; None when the batch carries no teacher outputs at
        all (evaluation batches: the evaluator runs no teachers, so the coupling reports 0)."""
        if "teacher" not in batch:
            return None
        try:
            teacher = batch["teacher"][self.teacher][self.task]
        except KeyError:
            raise ConfigError(f"no output of teacher {self.teacher!r} for task {self.task!r} in the batch; "
                              "configure it in the teachers section", key="teacher") from None
        student = outputs[self.task]
        if self.pixels == "all":
            mask = torch.ones(student.shape[0], *student.shape[-2:], dtype=torch.bool, device=student.device)
        else:
            mask = batch["valid"][self.target]
        return student.float(), teacher.float().detach(), mask


@COUPLINGS.register("kd_pixel")
class PixelKD(TeacherCoupling):
    conformance_kwargs = {"task": "semantic", "teacher": "teacher"}  # the kit's standard names

    def __init__(self, tasks, task: str, teacher: str, temperature: float = 4.0, pixels: str = "valid"):
        super().__init__(tasks, task, teacher, pixels)
        if not temperature > 0:
            raise ConfigError(f"must be > 0, got {temperature!r}", key="temperature")
        self.temperature = float(temperature)

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        pair = self.pair(outputs, batch)
        if pair is None:
            return outputs[self.task].new_zeros(())
        s, t, mask = pair
        T = self.temperature
        if s.shape[1] == 1:  # sigmoid logits → two-class distributions
            s, t = torch.cat([torch.zeros_like(s), s], 1), torch.cat([torch.zeros_like(t), t], 1)
        log_s = F.log_softmax(s / T, dim=1)
        log_t = F.log_softmax(t / T, dim=1)
        kl = (log_t.exp() * (log_t - log_s)).sum(1)
        return T * T * masked_mean(kl, mask)


@COUPLINGS.register("kd_regression")
class RegressionKD(TeacherCoupling):
    conformance_kwargs = {"task": "height", "teacher": "teacher"}

    def __init__(self, tasks, task: str, teacher: str, loss: str = "mse", pixels: str = "valid"):
        super().__init__(tasks, task, teacher, pixels)
        if loss not in ("mse", "l1"):
            raise ConfigError(f"must be 'mse' or 'l1', got {loss!r}", key="loss")
        self.loss = loss

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        pair = self.pair(outputs, batch)
        if pair is None:
            return outputs[self.task].new_zeros(())
        s, t, mask = pair
        diff = (s - t).pow(2) if self.loss == "mse" else (s - t).abs()
        return masked_mean(diff.mean(1), mask)
