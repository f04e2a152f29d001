"""Shared fixtures: tiny configs and the location of the real sample data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def tiny_config(out_dir: Path, **trainer) -> dict:
    """A two-task experiment on synthetic shapes that trains in about a second."""
    return {
        "seed": 0,
        "data": {
            "train": {"type": "synthetic_shapes", "length": 16, "size": [16, 24], "channels": 3, "split": "train"},
            "val": {"type": "synthetic_shapes", "length": 8, "size": [16, 24], "channels": 3, "split": "val"},
            "batch_size": 4,
        },
        "model": {
            "backbone": {"type": "unet_encoder", "width": 4, "depth": 3, "norm": "group"},
            "decoder": {"type": "unet", "norm": "group"},
            "head": {"type": "conv", "norm": "group"},
        },
        "tasks": {
            "semantic": {"type": "segmentation", "num_classes": 3, "target": "semantic"},
            "height": {"type": "regression", "target": "height", "activation": "softplus", "loss": "l1",
                       "metrics": []},
        },
        "trainer": {"max_epochs": 2, "lr": 3e-3, "out_dir": str(out_dir), **trainer},
        "logging": {"loggers": [{"type": "csv"}]},
    }


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present next to the project")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster and robust to a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit_until_interrupted(trainer, stop_at: int) -> None:
    """Run ``trainer.fit()`` and stop it (KeyboardInterrupt) when ``stop_at`` optimizer steps are done."""
    original = trainer.train_step

    def interrupting(micro):
        if trainer.global_step == stop_at:
            raise KeyboardInterrupt
        return original(micro)

    trainer.train_step = interrupting
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
