"""Composite baselines: single-task models of one seed evaluated TOGETHER as one multi-task model.

The classic series two-stage retrieval is the standard example: an independently trained
classifier gates an independently trained estimator. A grid declares it per pair::

    composites:
      - {name: classic_two_stage, members: [rain_class, rain_rate], scored_as: gated}

For every seed, each member baseline's selected (best-on-val) checkpoint predicts the
evaluation split; their raw outputs are merged into one ``{task: output}`` dict and scored with
the tasks of the multi-task variant named by ``scored_as`` — so that variant's prediction
rules apply (e.g. ``gate: {task: rain_class}`` on the rain rate) and the composite is scored
exactly like that variant: same split, same metrics, gate-matched. Nothing is trained; it runs
in the bench's own process after the members of that seed have finished, and its record goes
to the same results store (``kind: composite``), with Δm and paired differences like a variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from mtdense.bench.scoring import split_metrics
from mtdense.engine.builder import build_experiment, make_loader
from mtdense.engine.evaluator import Evaluator
from mtdense.engine.runtime import Runtime


@dataclass
class CompositeRun:
    pair: str
    variant: str
    seed: int
    config: DictConfig  # the ``scored_as`` variant's config (tasks, data, trainer runtime)
    members: dict[str, Path]  # member baseline variant -> its run folder for this seed
    tasks: list[str]
    baselines: list[str]

    @property
    def key(self) -> str:
        return f"{self.pair}/{self.variant}/seed{self.seed}"


class MergedModels(nn.Module):
    """Runs every member model on the image and merges their ``{task: output}`` dicts."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for model in self.models:
            out.update(model(image))
        return out


def evaluate_composite(run: CompositeRun) -> dict[str, Any]:
    """Score ``run`` on ``test`` (``val`` when the config has no test split); returns its record."""
    from mtdense.inference.predict import load_experiment

    folders = {name: folder / "checkpoints" / ("best" if (folder / "checkpoints" / "best").is_file() else "last")
               for name, folder in run.members.items()}
    members = [load_experiment(path) for path in folders.values()]
    cfg = run.config
    exp = build_experiment(cfg, channel_names=members[0].channel_names)
    runtime = Runtime.from_trainer_config(cfg.trainer)
    merged = runtime.prepare_model(MergedModels([m.model for m in members]))
    merged.eval()
    split = "test" if "test" in cfg.data and cfg.data.test is not None else "val"
    tasks = exp.tasks.to(runtime.device)
    values = Evaluator(merged, tasks, nn.ModuleDict(), {}, runtime).run(
        make_loader(cfg, exp.dataset(split), split, shuffle=False), split)
    return {"key": run.key, "pair": run.pair, "variant": run.variant, "seed": run.seed, "kind": "composite",
            "tasks": run.tasks, "baselines": run.baselines, "labels": {}, "members": sorted(run.members),
            "metrics": split_metrics(values, run.tasks, split), "scored_split": split,
            "params": sum(p.numel() for p in merged.parameters()), "flops_per_image": None,
            "train_seconds": 0.0, "train_cpu_seconds": 0.0, "resumed_from_step": 0,
            "protocol": {}, "curve": [], "plateau": None, "machine": None, "run_dir": None}
