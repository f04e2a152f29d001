"""Teachers: frozen or slowly-updated models whose outputs reach losses through the batch.

A teacher is a ``Hook`` and an ``nn.Module`` configured under the top-level section
``teachers: {name: {type: ...}}``. Before every micro-batch's forward the trainer stores
``teacher.predict(image)`` (raw outputs keyed by task, no gradient) in
``batch["teacher"][name]``; couplings (pseudo-label, distillation losses) and batch
transforms read them there. After ``request_features(strides)`` (called by the ``kd_feature``
coupling), ``predict`` also returns the network's encoder features at those strides as
``features@<stride>`` entries (for mtdense models: the backbone's outputs). Built-ins:

- ``ema``: the mean teacher of Tarvainen & Valpola (NeurIPS 2017): an exponential moving
  average of the student's weights (and floating-point buffers), updated after every
  optimizer step with decay ``min(decay, (1 + step) / (10 + step))`` during ``warmup_steps``
  (the ramp of the paper's reference code), ``decay`` afterwards. Its weights are part of the
  checkpoint's trainer state, so a resumed run continues exactly.
- ``checkpoint``: a frozen mtdense checkpoint (a run folder or checkpoint folder on a local
  path) — e.g. a large model to distil into a small one. Nothing is downloaded.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mtdense.engine.hooks import Hook
from mtdense.errors import ConfigError
from mtdense.registry import TEACHERS


FEATURE_KEY = "features@{}"  # predict's entry for the encoder features at a stride, once requested


class Teacher(nn.Module, Hook):
    """Base class: subclasses hold a network in ``self.net`` or override ``predict``."""

    net: nn.Module
    feature_strides: list[int] = []

    def request_features(self, strides: list[int]) -> dict[int, int]:
        """From now on ``predict`` also returns the encoder features at ``strides`` (entries
        ``features@<stride>``, for feature distillation); returns every encoder stage's width by
        stride. Here for mtdense models (a ``backbone`` with ``channels`` and ``reductions``)."""
        backbone = getattr(getattr(self, "net", None), "backbone", None)
        if not hasattr(backbone, "reductions"):
            raise ConfigError(f"{type(self).__name__} gives no encoder features (its network has no mtdense backbone)")
        self.feature_strides = [s for s in strides if s in backbone.reductions]
        return dict(zip(backbone.reductions, backbone.channels))

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs keyed by task (plus requested encoder features), in eval mode, without gradient."""
        self.net.eval()
        if not self.feature_strides:
            return {k: v.float() for k, v in self.net(image).items()}
        kept: list = []
        handle = self.net.backbone.register_forward_hook(lambda module, args, feats: kept.append(feats))
        try:
            out = {k: v.float() for k, v in self.net(image).items()}
        finally:
            handle.remove()
        for stride in self.feature_strides:
            out[FEATURE_KEY.format(stride)] = kept[0][self.net.backbone.reductions.index(stride)].float()
        return out

    def train(self, mode: bool = True) -> "Teacher":  # a teacher's network always stays in eval mode
        return super().train(False)


@TEACHERS.register("ema")
class EMATeacher(Teacher):
    """Mean teacher: EMA of the student's weights (Tarvainen & Valpola, NeurIPS 2017)."""

    def __init__(self, student: nn.Module, decay: float = 0.999, warmup_steps: int = 0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"must be in [0, 1), got {decay!r}", key="decay")
        if warmup_steps < 0:
            raise ConfigError(f"must be >= 0, got {warmup_steps!r}", key="warmup_steps")
        self.decay, self.warmup_steps = float(decay), int(warmup_steps)
        self.net = copy.deepcopy(student).requires_grad_(False).eval()
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        step = int(self.updates)
        return min(self.decay, (1.0 + step) / (10.0 + step)) if step < self.warmup_steps else self.decay

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        decay = self.current_decay()
        mine = self.net.state_dict()
        for key, value in student.state_dict().items():
            if mine[key].dtype.is_floating_point:
                mine[key].lerp_(value.to(mine[key].dtype), 1.0 - decay)
            else:
                mine[key].copy_(value)
        self.updates += 1

    def after_optimizer_step(self, trainer) -> None:
        self.update(trainer.model)


@TEACHERS.register("checkpoint")
class CheckpointTeacher(Teacher):
    """A frozen mtdense checkpoint (run folder, checkpoint folder or its model.safetensors)."""

    @staticmethod
    def conformance_kwargs(workdir):
        """An untrained tiny checkpoint of the kit's standard tasks (for ``mtdense.testing``)."""
        from mtdense.testing.fixtures import tiny_checkpoint

        return {"path": str(tiny_checkpoint(workdir))}

    def __init__(self, path: str):
        super().__init__()
        from mtdense.inference.predict import load_experiment  # inference builds on the engine

        self.path = str(path)
        exp = load_experiment(self.path)
        self.net = exp.model.requires_grad_(False).eval()
        self.tasks = list(exp.tasks)

    def state_dict(self, *args, **kwargs) -> dict:  # frozen: nothing to save with the run
        return {}

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        if state:
            raise ValueError("checkpoint teacher: unexpected saved state; it is frozen and keeps none")
