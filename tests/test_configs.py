"""Every shipped experiment config resolves and assembles; every bench grid expands.
(Keeps configs/ true to the code.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import ROOT
from mtdense.bench.grid import load_grid
from mtdense.config import load_config
from mtdense.engine.builder import build_experiment

FRAGMENTS = {"base.yaml", "two_branch_tasks.yaml", "data.yaml", "semisup_teacher.yaml"}  # merged through defaults: only
CHANNELS = {"precip": [f"B{b:02d}" for b in range(8, 17)] + ["decoy_01"], "street": ["red", "green", "blue"],
            "examples": ["band0", "band1", "band2"]}
EXPERIMENTS = sorted(p for folder in CHANNELS for p in (ROOT / "configs" / folder).glob("*.yaml") if p.name not in FRAGMENTS)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_experiment_config_builds_and_runs_forward(path: Path):
    cfg = load_config(path)
    exp = build_experiment(cfg, channel_names=CHANNELS[path.parent.name])
    out = exp.model.eval()(torch.randn(1, len(exp.channel_names), 32, 64))
    assert set(out) == set(cfg.tasks)
    for name, task in exp.tasks.items():
        assert out[name].shape == (1, task.out_channels, 32, 64)
        task.build_metrics()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "bench").glob("*.yaml")), ids=lambda p: p.stem)
def test_bench_grid_expands(path: Path):
    grid = load_grid(path)
    assert grid.pairs and all(p.config.is_file() for p in grid.pairs)
