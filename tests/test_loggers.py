"""Logger plugins: CSV rows survive a resume without duplicates; W&B never prompts."""

from __future__ import annotations

import csv

import pytest

from mtdense.registry import LOGGERS
from mtdense.errors import ConfigError


def test_csv_logger_drops_rows_after_the_resumed_step(tmp_path):
    first = LOGGERS.build({"type": "csv"}, run_dir=tmp_path, config={})
    first.start(10, 0)
    for step in (2, 4, 6):
        first.log({"train/loss": float(step)}, step)
    resumed = LOGGERS.build({"type": "csv"}, run_dir=tmp_path, config={})
    resumed.start(10, 4)            # checkpoint was at step 4: step 6 will be logged again
    resumed.log({"train/loss": 6.5, "val/loss": 1.0}, 6)
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["2", "4", "6"]
    assert rows[-1]["train/loss"] == "6.5" and rows[-1]["val/loss"] == "1.0" and rows[0]["val/loss"] == ""


def test_wandb_disabled_runs_offline_and_online_needs_a_key(tmp_path, monkeypatch):
    logger = LOGGERS.build({"type": "wandb", "mode": "disabled"}, run_dir=tmp_path, config={"seed": 0})
    logger.log({"train/loss": 1.0}, 1)
    logger.close()
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="online needs WANDB_API_KEY"):
        LOGGERS.build({"type": "wandb", "mode": "online"}, run_dir=tmp_path, config={})
    with pytest.raises(ConfigError, match="'loud' is not one of offline, online, disabled"):
        LOGGERS.build({"type": "wandb", "mode": "loud"}, run_dir=tmp_path, config={})
