"""Per-pixel depth and class maps for the batch transforms: ground truth where it is valid,
else a teacher's prediction, else "unknown".

AffineMix orders pixels by depth and ColorAug picks pixels by class; both work supervised
(true labels and depth only) and semi-supervised (a teacher fills the unlabelled pixels).
The teacher's outputs are the raw outputs the trainer stores in ``batch["teacher"][name]``;
the task turns them into depth (metres) or class ids with its own ``predict``.
"""

from __future__ import annotations

from typing import Mapping

import torch

from mtdense.errors import ConfigError


def check_task(tasks: Mapping | None, name: str, key: str, needs: str) -> None:
    """Raise a ConfigError (at ``key``) unless ``name`` is a task with method ``needs``."""
    if tasks is None or name not in tasks:
        have = ", ".join(tasks) if tasks else "(none)"
        raise ConfigError(f"{name!r} is not a task; tasks: {have}", key=key)
    if not hasattr(tasks[name], needs):
        raise ConfigError(f"task {name!r} is a {type(tasks[name]).__name__}; this option needs one with "
                          f"{needs}()", key=key)


def teacher_output(batch: Mapping, teacher: str | None, task: str) -> torch.Tensor | None:
    """The teacher's raw output for ``task`` (B×K×H×W), or None without a teacher — none
    configured, or a batch without any teacher outputs (a supervised run reusing the same
    transform config), so one config serves supervised and semi-supervised runs."""
    if teacher is None or "teacher" not in batch:
        return None
    outputs = batch.get("teacher", {}).get(teacher)
    if outputs is None or task not in outputs:
        have = ", ".join(batch.get("teacher", {})) or "none"
        raise KeyError(f"batch has no output of teacher {teacher!r} for task {task!r} (teachers in the batch: "
                       f"{have}); add it under teachers: in the config")
    return outputs[task]


def depth_map(batch: Mapping, task, teacher: str | None, disparity: bool) -> torch.Tensor:
    """Depth per pixel (B×H×W, float): the target where valid, else the teacher's prediction,
    else +inf (unknown counts as far: sky and other pixels without depth never occlude).
    A disparity target d is turned into an order-preserving depth 1/d."""
    target, valid = task.target_from(batch)
    target = target.float()
    if disparity:
        target = 1.0 / target.clamp_min(1e-12)
    known = torch.where(valid, target, torch.full_like(target, float("inf")))
    raw = teacher_output(batch, teacher, task.name)
    if raw is None:
        return known
    predicted = task.predict(raw).float()
    if disparity:
        predicted = 1.0 / predicted.clamp_min(1e-12)
    return torch.where(valid, known, predicted)


def class_map(batch: Mapping, task, teacher: str | None) -> torch.Tensor:
    """Class id per pixel (B×H×W, int64): the label where valid, else the teacher's argmax,
    else -1 (unknown)."""
    target, valid = task.target_from(batch)
    raw = teacher_output(batch, teacher, task.name)
    fallback = torch.full_like(target, -1) if raw is None else task.predict(raw).to(target.dtype)
    return torch.where(valid, target, fallback).long()


def uniform(generator: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    """n draws from U(low, high) on the generator's device (float64 for exact reproducibility)."""
    u = torch.rand(n, generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * u
