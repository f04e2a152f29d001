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


def test_csv_logger_appends_rows_instead_of_rewriting_the_file(tmp_path, monkeypatch):
    import mtdense.engine.loggers as loggers

    replaced = []
    real_replace = loggers.os.replace
    monkeypatch.setattr(loggers.os, "replace", lambda a, b: (replaced.append(b), real_replace(a, b)))
    logger = LOGGERS.build({"type": "csv"}, run_dir=tmp_path, config={})
    logger.start(10, 0)
    for step in (1, 2, 3, 4):
        logger.log({"train/loss": step / 10}, step)
    assert len(replaced) == 1  # the first row creates the file; the rest are appended
    logger.log({"train/loss": 0.5, "val/loss": 0.7}, 5)  # a new column widens the header once
    assert len(replaced) == 2
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["train/loss"] for r in rows] == ["0.1", "0.2", "0.3", "0.4", "0.5"]
    assert rows[0]["val/loss"] == "" and rows[-1]["val/loss"] == "0.7"


def test_tensorboard_logger_writes_scalars_and_a_resume_purges_later_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = LOGGERS.build({"type": "tensorboard"}, run_dir=tmp_path, config={"trainer": {"lr": 0.1}})
    first.start(10, 0)
    for step in (2, 4, 6):
        first.log({"train/loss": float(step)}, step)
    first.close()
    resumed = LOGGERS.build({"type": "tensorboard"}, run_dir=tmp_path, config={})
    resumed.start(10, 4)
    resumed.log({"train/loss": 6.5}, 6)
    resumed.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(2, 2.0), (4, 4.0), (6, 6.5)]


def test_mlflow_logger_uses_a_local_store_in_the_run_folder_and_continues_on_resume(tmp_path):
    from mlflow import MlflowClient

    config = {"trainer": {"lr": 0.003, "max_epochs": 2}, "seed": 0}
    first = LOGGERS.build({"type": "mlflow"}, run_dir=tmp_path / "run", config=config)
    first.start(10, 0)
    first.log({"val/loss": 1.5, "val/rain/f1@2": 0.25}, 5)
    first.close()
    run_id = (tmp_path / "run" / "mlflow_run_id").read_text().strip()
    resumed = LOGGERS.build({"type": "mlflow"}, run_dir=tmp_path / "run", config=config)
    resumed.start(10, 5)
    resumed.log({"val/loss": 1.25}, 10)
    resumed.close()
    assert resumed.run_id == run_id
    client = MlflowClient((tmp_path / "run" / "mlruns").as_uri())
    run = client.get_run(run_id)
    assert run.data.params["trainer.lr"] == "0.003" and run.info.status == "FINISHED"
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "val/loss")] == [(5, 1.5), (10, 1.25)]
    assert client.get_metric_history(run_id, "val/rain/f1_at_2")[0].value == 0.25
