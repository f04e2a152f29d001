"""Every shipped experiment config trains for one tiny step; every bench grid expands.
(Keeps configs/ true to the code.) Configs are found by globbing the shipped config folder, so a
new config is tested without editing this file; a file another config lists under ``defaults:``
is a fragment, not an experiment."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import tiny_data_overrides
from mtdense.bench.grid import load_grid
from mtdense.config import CONFIG_DIR, _load_yaml, load_config
from mtdense.engine.trainer import Trainer

BENCH = CONFIG_DIR / "bench"
ALL_YAML = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if BENCH not in p.parents)
FRAGMENTS = {(p.parent / str(d)).resolve() for p in ALL_YAML for d in _load_yaml(p).get("defaults", [])}
EXPERIMENTS = [p for p in ALL_YAML if p.resolve() not in FRAGMENTS]
TINY = ["trainer.max_epochs=1", "trainer.max_steps_per_epoch=1", "trainer.warmup_steps=0", "data.batch_size=2",
        "logging.loggers=[]"]


def test_the_glob_finds_every_domain_and_skips_fragments():
    assert {p.parent.name for p in EXPERIMENTS} >= {"precip", "street", "examples"}
    assert CONFIG_DIR / "precip" / "base.yaml" not in EXPERIMENTS
    assert CONFIG_DIR / "precip" / "mtcf.yaml" in EXPERIMENTS


@pytest.mark.slow
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_shipped_config_trains_one_tiny_step(path: Path, tiny_domain_data, tmp_path):
    data = tiny_data_overrides(load_config(path), tiny_domain_data)
    cfg = load_config(path, data + TINY + [f"trainer.out_dir={tmp_path}"])
    trainer = Trainer(cfg)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    metrics = trainer.fit()
    assert trainer.global_step == 1
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.model.parameters()))
    assert set(cfg.tasks) <= {k.split("/")[2] for k in metrics if k.startswith("val/loss/")}
    assert math.isfinite(metrics["val/loss"])
    assert (tmp_path / "checkpoints" / "last").is_file()


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.yaml")), ids=lambda p: p.stem)
def test_bench_grid_expands(path: Path):
    grid = load_grid(path)
    assert grid.pairs and all(p.config.is_file() for p in grid.pairs)
