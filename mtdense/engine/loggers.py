"""Logger plugins. The trainer calls, on rank 0 only, ``start(total_steps, first_step, best)``,
``advance(step)`` after every optimizer step, ``eval_progress(done, total)`` after every
validation batch, ``log(metrics, step)`` at each logging interval and after each evaluation,
and ``close()``. Every method but ``log`` is optional.

- ``console`` (``mtdense.engine.console``): a live progress display, or short lines off a terminal.
- ``csv``: ``metrics.csv`` in the run folder, one row per log call; rows are appended (the file
  is rewritten only when a new column appears or a resumed run drops rows after its checkpoint).
- ``tensorboard``: event files in ``<run>/tensorboard`` (``torch.utils.tensorboard``); a resumed
  run purges the steps after its checkpoint. View with ``tensorboard --logdir runs``.
- ``mlflow``: an MLflow run with the config as parameters and every metric; by default in a
  local file store ``<run>/mlruns`` (``mlflow ui --backend-store-uri <run>/mlruns``), or on
  ``tracking_uri`` when given. A resumed run continues the same MLflow run.
- ``wandb``: Weights & Biases, ``mode: offline`` by default (``disabled`` in tests); it never
  prompts for a key — ``online`` needs WANDB_API_KEY already set.

TensorBoard, MLflow and W&B are optional extras (``pip install 'mtdense[loggers]'``).
"""

from __future__ import annotations

import csv
import os
import re
import time
from pathlib import Path
from typing import Any

from mtdense.atomic_write import atomic_path
from mtdense.errors import ConfigError
from mtdense.registry import LOGGERS


class Logger:
    def __init__(self, run_dir: Path, config: dict[str, Any]):
        self.run_dir = Path(run_dir)

    def start(self, total_steps: int, first_step: int, best: float | None = None) -> None:
        pass

    def advance(self, step: int, info: dict[str, float] | None = None) -> None:
        pass

    def eval_progress(self, done: int, total: int) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def close(self) -> None:
        pass


def optional_import(module: str, logger: str, extra: str):
    """Import ``module`` for a logger, or a ConfigError saying which extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"the {logger} logger needs the {module.split('.')[0]} package: "
                          f"pip install 'mtdense[{extra}]' (or remove it from logging.loggers)", key="type") from None


@LOGGERS.register("csv")
class CSVLogger(Logger):
    def __init__(self, run_dir: Path, config: dict[str, Any], filename: str = "metrics.csv"):
        super().__init__(run_dir, config)
        self.path = self.run_dir / filename
        self.columns: list[str] = []
        if self.path.is_file():
            with open(self.path, newline="") as f:
                self.columns = next(csv.reader(f), [])

    def start(self, total_steps, first_step, best=None):
        """A resumed run re-logs everything after its checkpoint: drop those rows once."""
        if not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(r["step"]) <= first_step]
        if len(kept) != len(rows):
            self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        with atomic_path(self.path, durable=False) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            writer.writeheader()
            writer.writerows(rows)

    def log(self, metrics, step):
        row = {"step": step, **metrics}
        new = [k for k in row if k not in self.columns]
        if new or not self.path.is_file():  # a new column: rewrite once with the wider header
            old = []
            if self.path.is_file():
                with open(self.path, newline="") as f:
                    old = list(csv.DictReader(f))
            self.columns += new
            self._rewrite([*old, row])
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(row)


@LOGGERS.register("tensorboard")
class TensorBoardLogger(Logger):
    """Scalars to TensorBoard event files in ``<run>/<subdir>``; the config as text."""

    def __init__(self, run_dir: Path, config: dict[str, Any], subdir: str = "tensorboard"):
        super().__init__(run_dir, config)
        self._tb = optional_import("torch.utils.tensorboard", "tensorboard", "loggers")
        self.log_dir = self.run_dir / subdir
        self.config = config
        self.writer = None

    def start(self, total_steps, first_step, best=None):
        # events at steps >= purge_step are dropped: those a resumed run will write again
        self.writer = self._tb.SummaryWriter(str(self.log_dir), purge_step=first_step + 1 if first_step else None)
        if first_step == 0:
            import yaml

            self.writer.add_text("config", "```\n" + yaml.safe_dump(self.config, sort_keys=False) + "```", 0)

    def log(self, metrics, step):
        if self.writer is None:
            self.start(0, step)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()


def flatten(config: Any, prefix: str = "") -> dict[str, str]:
    """``{"trainer.lr": "0.003", ...}``: a nested config as dotted keys and string values."""
    if isinstance(config, dict):
        out: dict[str, str] = {}
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: str(config)}


def mlflow_key(key: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_-. /``): ``f1@2`` → ``f1_at_2``."""
    return re.sub(r"[^\w\-. /]", "_", key.replace("@", "_at_"))


@LOGGERS.register("mlflow")
class MLflowLogger(Logger):
    """An MLflow run: config as parameters, every metric with its step."""

    RUN_ID_FILE = "mlflow_run_id"

    def __init__(self, run_dir: Path, config: dict[str, Any], tracking_uri: str | None = None,
                 experiment: str = "mtdense", run_name: str | None = None):
        super().__init__(run_dir, config)
        if tracking_uri is None:  # local file store in the run folder (MLflow asks for an explicit opt-in)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            tracking_uri = (self.run_dir / "mlruns").absolute().as_uri()
        self._entities = optional_import("mlflow.entities", "mlflow", "loggers")
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.tracking_uri, self.experiment, self.config = tracking_uri, experiment, config
        self.run_name = run_name or self.run_dir.name
        self.run_id: str | None = None

    def start(self, total_steps, first_step, best=None):
        id_file = self.run_dir / self.RUN_ID_FILE
        if first_step > 0 and id_file.is_file():  # resumed: continue the same MLflow run
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment)
        self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(self.run_id + "\n")
        params = [self._entities.Param(k[:250], v[:6000]) for k, v in flatten(self.config).items()]
        for i in range(0, len(params), 100):  # MLflow accepts at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log(self, metrics, step):
        if self.run_id is None:
            self.start(0, 0)
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self._entities.Metric(mlflow_key(k), float(v), now, step)
                                                    for k, v in metrics.items()])

    def close(self):
        if self.run_id is not None:
            self.client.set_terminated(self.run_id)


@LOGGERS.register("wandb")
class WandbLogger(Logger):
    conformance_kwargs = {"mode": "disabled"}  # the kit never starts a wandb run

    def __init__(self, run_dir: Path, config: dict[str, Any], mode: str = "offline", project: str = "mtdense",
                 entity: str | None = None, tags: list[str] | None = None):
        super().__init__(run_dir, config)
        if mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"{mode!r} is not one of offline, online, disabled", key="mode")
        if mode == "online" and not os.environ.get("WANDB_API_KEY"):
            raise ConfigError("online needs WANDB_API_KEY set; use mode: offline and `wandb sync` later", key="mode")
        os.environ.setdefault("WANDB_SILENT", "true")
        wandb = optional_import("wandb", "wandb", "loggers")

        self.run = wandb.init(project=project, entity=entity, tags=tags, mode=mode, dir=str(self.run_dir),
                              config=config, name=self.run_dir.name, reinit="finish_previous", settings=wandb.Settings(console="off"))

    def log(self, metrics, step):
        self.run.log(metrics, step=step)

    def close(self):
        self.run.finish()
