"""What the kit builds plugins against: a standard set of tasks, a tiny student model and a
synthetic batch in the sample contract (from ``synthetic_shapes``), with teacher outputs.

Plugins that refer to tasks or teachers by name (couplings, teachers, batch transforms, hooks)
give ``conformance_kwargs`` using these names: tasks ``semantic`` (segmentation, 3 classes,
target ``semantic``), ``height`` (regression, softplus, target ``height``), ``rain_class``
(threshold_classification at 0.5 and 1.5 of ``height``), ``rain_rate`` (regression of ``height``
with log1p target transform); the teacher is ``teacher``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import default_collate

from mtdense.data.synth_shapes import SyntheticShapes
from mtdense.models.multitask import MultiTaskModel
from mtdense.registry import TASKS

TEACHER = "teacher"
IN_CHANNELS = 3
SIZE = (16, 24)
TASK_CONFIGS = {
    "semantic": {"type": "segmentation", "num_classes": 3, "target": "semantic"},
    "height": {"type": "regression", "target": "height", "activation": "softplus", "loss": "l1"},
    "rain_class": {"type": "threshold_classification", "target": "height", "thresholds": [0.5, 1.5]},
    "rain_rate": {"type": "regression", "target": "height", "activation": "softplus", "target_transform": "log1p"},
}


def standard_tasks() -> nn.ModuleDict:
    return nn.ModuleDict({name: TASKS.build(cfg, f"tasks.{name}", name=name) for name, cfg in TASK_CONFIGS.items()})


def tiny_student(tasks: nn.ModuleDict, seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    cfg = {"backbone": {"type": "unet_encoder", "width": 4, "depth": 2, "norm": "group"},
           "decoder": {"type": "unet", "norm": "group"}, "head": {"type": "conv", "norm": "group"}}
    return MultiTaskModel(cfg, {n: t.out_channels for n, t in tasks.items()}, IN_CHANNELS)


def sample_batch(tasks: nn.ModuleDict | None = None, batch: int = 2, seed: int = 0) -> dict:
    """A collated batch of synthetic shapes (image, targets, valid, meta); with ``tasks``, also
    ``batch["teacher"][TEACHER][task]``: random raw outputs B×K×H×W."""
    data = SyntheticShapes(length=batch, size=SIZE, channels=IN_CHANNELS, seed=seed)
    out = default_collate([data[i] for i in range(batch)])
    if tasks is not None:
        gen = torch.Generator().manual_seed(seed + 1)
        out["teacher"] = {TEACHER: {n: torch.randn(batch, t.out_channels, *SIZE, generator=gen) for n, t in tasks.items()}}
    return out


def raw_outputs(tasks: nn.ModuleDict, batch: int = 2, seed: int = 0, requires_grad: bool = False) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(batch, t.out_channels, *SIZE, generator=gen).requires_grad_(requires_grad)
            for n, t in tasks.items()}


def without_labels(batch: dict) -> dict:
    """The same batch as unlabelled data: every validity mask all-false."""
    return {**batch, "valid": {k: torch.zeros_like(v) for k, v in batch["valid"].items()}}


def tiny_checkpoint(folder: Path) -> Path:
    """An untrained checkpoint of ``tiny_student`` with the standard tasks, written to ``folder``."""
    from mtdense.config import from_dict, to_yaml
    from mtdense.engine.builder import build_experiment
    from mtdense.engine.checkpoint import save_checkpoint

    cfg = from_dict({"data": {"train": {"type": "synthetic_shapes", "length": 2, "size": list(SIZE)}},
                     "model": {"in_channels": IN_CHANNELS, "backbone": {"type": "unet_encoder", "width": 4, "depth": 2,
                                                                         "norm": "group"},
                               "decoder": {"type": "unet", "norm": "group"}, "head": {"type": "conv", "norm": "group"}},
                     "tasks": TASK_CONFIGS})
    exp = build_experiment(cfg, channel_names=[f"band{i}" for i in range(IN_CHANNELS)])
    return save_checkpoint(Path(folder) / "checkpoint", exp.model.state_dict(), to_yaml(cfg), exp.spec(), None)


def fake_trainer(model: nn.Module, tasks: nn.ModuleDict, step: int = 1) -> SimpleNamespace:
    """The trainer attributes hooks may read: model, tasks, global_step, epoch."""
    return SimpleNamespace(model=model, tasks=tasks, global_step=step, epoch=0)
