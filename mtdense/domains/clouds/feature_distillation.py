"""Feature distillation (``kd_feature``): student encoder features regressed onto the teacher's.

Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015: a learnable regressor — here a
1×1 convolution per selected stage — maps the student's (thin) feature map to the teacher's
width, and the mean squared error to the teacher's feature map (the hint) is added to the loss:

    L_feat = mean over stages s of  mean over channels and valid pixels of (A_s(S_s) − T_s)²

Stages are named by their stride (``stride2`` = the encoder output at 1/2 resolution) and must
be strides of the student's backbone (``backbone.reductions``); the teacher gives its encoder
features at the same strides. The adapters exist only for training: they are trained with the
student by the trainer's optimizer, saved in the trainer state, and are no part of the exported
student. The student's features are read by a forward hook on its backbone, the teacher's
arrive with its outputs (``features@<stride>`` entries of ``batch["teacher"][name]``, which
the teacher adds once ``request_features`` was called: ``nnunet_like``, and any teacher holding an mtdense
model, e.g. ``checkpoint`` or ``ema``) — so feature distillation needs the
teacher **on the fly**: the soft-target cache holds output logits only (feature maps at
several strides do not fit the per-pixel target contract the cache rides on). A hint-only
``nnunet_like`` teacher (``logits: false``) runs just the encoder stages the hints need, next to
logits from the cache (``configs/clouds/distill_features.yaml``).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from mtdense.engine.teachers import FEATURE_KEY
from mtdense.errors import ConfigError
from mtdense.losses.masked import masked_mean
from mtdense.registry import COUPLINGS


def stage_stride(name: str) -> int | None:
    match = re.fullmatch(r"stride(\d+)", name)
    return int(match.group(1)) if match else None


@COUPLINGS.register("kd_feature")
class FeatureKD(nn.Module):
    """FitNets hints through 1×1 adapters at the named encoder ``stages`` (Romero et al., ICLR 2015)."""

    conformance_skip = ("needs a student backbone and a teacher giving encoder features (built by the trainer's "
                        "connect); tests/test_clouds_feature_kd.py covers it")

    def __init__(self, tasks, teacher: str, stages: list = ("stride2",), task: str = "cloud", pixels: str = "valid"):
        super().__init__()
        if task not in tasks:
            raise ConfigError(f"{task!r} is not a task; tasks: {', '.join(tasks)}", key="task")
        if pixels not in ("valid", "all"):
            raise ConfigError(f"must be 'valid' or 'all', got {pixels!r}", key="pixels")
        stages = list(stages)
        if not stages:
            raise ConfigError("name at least one stage, e.g. [stride2]", key="stages")
        for i, name in enumerate(stages):
            if stage_stride(str(name)) is None:
                raise ConfigError(f"{name!r} is not a stage name; use stride<N>, e.g. stride2", key=f"stages.{i}")
        self.teacher, self.stages, self.pixels = teacher, [str(s) for s in stages], pixels
        self.target = tasks[task].target
        self.adapters = nn.ModuleDict()
        self._student: dict[int, torch.Tensor] = {}

    def connect(self, student: nn.Module, teachers) -> None:
        """Check the stages against the student's strides, ask the teacher for its features at them,
        build one 1×1 adapter per stage (student width → teacher width), hook the student's backbone."""
        backbone = getattr(student, "backbone", None)
        strides = list(getattr(backbone, "reductions", []))
        for i, name in enumerate(self.stages):
            if stage_stride(name) not in strides:
                raise ConfigError(f"{name!r} is not an encoder stage of the student; stages: "
                                  f"{', '.join(f'stride{s}' for s in strides)}", key=f"stages.{i}")
        if self.teacher not in teachers:
            raise ConfigError(f"no teacher {self.teacher!r} runs during training (teachers: {', '.join(teachers) or 'none'}); "
                              "feature distillation needs the teacher on the fly — the soft-target cache holds "
                              "output logits only", key="teacher")
        teacher = teachers[self.teacher]
        if not hasattr(teacher, "request_features"):
            raise ConfigError(f"teacher {self.teacher!r} ({type(teacher).__name__}) gives no encoder features; "
                              "use an nnunet_like teacher or one holding an mtdense model", key="teacher")
        wanted = [stage_stride(n) for n in self.stages]
        try:
            widths = teacher.request_features(wanted)
        except ConfigError as exc:
            raise ConfigError(f"teacher {self.teacher!r}: {exc.message}", key="teacher") from None
        for name, stride in zip(self.stages, wanted):
            if stride not in widths:
                raise ConfigError(f"teacher {self.teacher!r} has no encoder stage at {name}; its strides: "
                                  f"{', '.join(f'stride{s}' for s in sorted(widths))}", key="stages")
            width = backbone.channels[strides.index(stride)]
            self.adapters[name] = nn.Conv2d(width, widths[stride], kernel_size=1, bias=False)
        by_stride = dict(zip(strides, range(len(strides))))

        def keep(module, args, feats):
            self._student = {s: feats[by_stride[s]] for s in wanted}

        backbone.register_forward_hook(keep)

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        zero = outputs[next(iter(outputs))].new_zeros(())
        if "teacher" not in batch or not self._student:  # evaluation batches carry no teacher outputs
            return zero
        hints = batch["teacher"][self.teacher]
        valid = batch["valid"][self.target]
        losses = []
        for name in self.stages:
            stride = stage_stride(name)
            target = hints[FEATURE_KEY.format(stride)].float().detach()
            pred = self.adapters[name](self._student[stride].float())
            if pred.shape[-2:] != target.shape[-2:]:
                pred = F.interpolate(pred, size=target.shape[-2:], mode="bilinear", align_corners=False)
            mask = torch.ones_like(valid) if self.pixels == "all" else valid
            mask = F.interpolate(mask[:, None].float(), size=target.shape[-2:], mode="nearest")[:, 0] > 0.5
            losses.append(masked_mean((pred - target).pow(2).mean(1), mask))
        return torch.stack(losses).mean()
