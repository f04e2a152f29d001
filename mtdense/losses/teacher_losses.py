"""Couplings that learn from a teacher's outputs (``batch["teacher"][name]``): semi-supervised
pseudo-labels for segmentation and consistency for regression (e.g. depth).

``pseudo_label`` (mean-teacher self-training: Tarvainen & Valpola, NeurIPS 2017; confidence
threshold as in FixMatch, Sohn et al., NeurIPS 2020; confidence weighting as in DACS,
Tranheden et al., WACV 2021 / ClassMix, Olsson et al., WACV 2021). With teacher
probabilities p = softmax(z_T), confidence c = max_k p_k and pseudo-label ŷ = argmax_k p_k:

    L = Σ_{x ∈ P} w(x) · CE(z_S(x), ŷ(x)) / |P|
    w = 1[c ≥ threshold]   (``weighting: threshold``)   or   w = c   (``weighting: confidence``)

P is the set of pixels without a valid label for the task (``pixels: unlabelled``, default:
labelled pixels are already supervised) or every pixel (``pixels: all``). Dividing by |P|
rather than by the number of confident pixels follows FixMatch: the loss grows as the teacher
becomes confident.

``regression_consistency``: L = mean over P of |f(z_S) − f(z_T)|, f the task's activation
(the space its supervised loss works in, e.g. log(1 + depth)); the teacher side carries no
gradient. Both are 0 on a batch where P is empty, and on a batch without teacher outputs at
all (evaluation batches: the evaluator runs no teachers), so ``val/loss`` stays comparable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.losses.masked import masked_mean
from mtdense.errors import ConfigError
from mtdense.registry import COUPLINGS


def _check(tasks: nn.ModuleDict, task: str, needs: str, pixels: str) -> None:
    if task not in tasks:
        raise ConfigError(f"{task!r} is not a task; tasks: {', '.join(tasks)}", key="task")
    if not hasattr(tasks[task], needs):
        raise ConfigError(f"task {task!r} is a {type(tasks[task]).__name__}; this coupling needs one with {needs}()",
                          key="task")
    if pixels not in ("unlabelled", "all"):
        raise ConfigError(f"{pixels!r} is not one of unlabelled, all", key="pixels")


class TeacherCoupling(nn.Module):
    """Shared part: the teacher's raw output for the task and the pixels the loss covers."""

    def __init__(self, tasks: nn.ModuleDict, task: str, teacher: str, pixels: str, needs: str):
        super().__init__()
        _check(tasks, task, needs, pixels)
        self.task, self.task_name, self.teacher, self.pixels = tasks[task], task, teacher, pixels

    def teacher_output(self, batch: dict) -> torch.Tensor | None:
        """The teacher's raw output; None on a batch without any teacher outputs (evaluation)."""
        if "teacher" not in batch:
            return None
        outputs = batch["teacher"].get(self.teacher)
        if outputs is None or self.task_name not in outputs:
            raise ConfigError(f"the batch holds no output of teacher {self.teacher!r} for task {self.task_name!r}; "
                              f"configure it under teachers:", key="teacher")
        return outputs[self.task_name].detach().float()

    def covered(self, batch: dict, like: torch.Tensor) -> torch.Tensor:
        if self.pixels == "all":
            return torch.ones_like(like, dtype=torch.bool)
        return ~self.task.target_from(batch)[1]


@COUPLINGS.register("pseudo_label")
class PseudoLabelLoss(TeacherCoupling):
    conformance_kwargs = {"task": "semantic", "teacher": "teacher"}  # the kit's standard names

    def __init__(self, tasks: nn.ModuleDict, task: str, teacher: str, weighting: str = "threshold",
                 threshold: float = 0.9, pixels: str = "unlabelled"):
        super().__init__(tasks, task, teacher, pixels, needs="num_classes")
        if weighting not in ("threshold", "confidence"):
            raise ConfigError(f"{weighting!r} is not one of threshold, confidence", key="weighting")
        if not 0 <= threshold <= 1:
            raise ConfigError(f"{threshold!r} must be in [0, 1]", key="threshold")
        self.weighting, self.threshold = weighting, float(threshold)

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        raw = self.teacher_output(batch)
        if raw is None:
            return outputs[self.task_name].sum() * 0.0
        confidence, pseudo = raw.softmax(dim=1).max(dim=1)
        weight = (confidence >= self.threshold).float() if self.weighting == "threshold" else confidence
        ce = F.cross_entropy(outputs[self.task_name].float(), pseudo, reduction="none")
        return masked_mean(ce * weight, self.covered(batch, ce))


@COUPLINGS.register("regression_consistency")
class RegressionConsistency(TeacherCoupling):
    conformance_kwargs = {"task": "height", "teacher": "teacher"}

    def __init__(self, tasks: nn.ModuleDict, task: str, teacher: str, pixels: str = "unlabelled"):
        super().__init__(tasks, task, teacher, pixels, needs="activated")

    def forward(self, outputs: dict[str, torch.Tensor], batch: dict) -> torch.Tensor:
        raw = self.teacher_output(batch)
        if raw is None:
            return outputs[self.task_name].sum() * 0.0
        student = self.task.activated(outputs[self.task_name])
        teacher = self.task.activated(raw)
        diff = (student - teacher).abs()
        return masked_mean(diff, self.covered(batch, diff))
