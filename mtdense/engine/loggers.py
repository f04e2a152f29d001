"""Logger plugins. Every logger gets ``log(metrics, step)`` and ``close()``; the console logger
also draws a rich progress bar through ``advance``. Only rank 0 logs.

- ``console``: rich progress bar and a line of metrics per evaluation.
- ``csv``: ``metrics.csv`` in the run folder, one row per log call, columns grow as needed.
- ``wandb``: Weights & Biases, ``mode: offline`` by default (``disabled`` in tests); it never
  prompts for a key — ``online`` needs WANDB_API_KEY already set.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from mtdense.atomic_write import atomic_path
from mtdense.registry import LOGGERS
from mtdense.errors import ConfigError


class Logger:
    def __init__(self, run_dir: Path, config: dict[str, Any]):
        self.run_dir = Path(run_dir)

    def start(self, total_steps: int, first_step: int) -> None:
        pass

    def advance(self, step: int, info: dict[str, float]) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def close(self) -> None:
        pass


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@LOGGERS.register("console")
class ConsoleLogger(Logger):
    def __init__(self, run_dir: Path, config: dict[str, Any], progress: bool = True, metrics: list[str] | None = None):
        super().__init__(run_dir, config)
        from rich.console import Console

        self.console = Console(stderr=True)
        self.show_progress = progress and self.console.is_terminal
        self.metrics = metrics
        self._progress = None

    def start(self, total_steps, first_step):
        if self.show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                      TextColumn("{task.fields[info]}"), console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("train", total=total_steps, completed=first_step, info="")

    def advance(self, step, info):
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=" ".join(f"{k}={_fmt(v)}" for k, v in info.items()))

    def log(self, metrics, step):
        keys = self.metrics or list(metrics)
        shown = {k: metrics[k] for k in keys if k in metrics}
        self.console.print(f"[bold]step {step}[/bold] " + "  ".join(f"{k}={_fmt(v)}" for k, v in shown.items()))

    def close(self):
        if self._progress is not None:
            self._progress.stop()


@LOGGERS.register("csv")
class CSVLogger(Logger):
    def __init__(self, run_dir: Path, config: dict[str, Any], filename: str = "metrics.csv"):
        super().__init__(run_dir, config)
        self.path = self.run_dir / filename
        self.rows: list[dict[str, Any]] = []
        if self.path.is_file():  # resumed run: keep what was logged before
            with open(self.path, newline="") as f:
                self.rows = list(csv.DictReader(f))

    def start(self, total_steps, first_step):
        # a resumed run re-logs everything after its checkpoint: drop the stale rows
        self.rows = [r for r in self.rows if int(r["step"]) <= first_step]

    def log(self, metrics, step):
        self.rows.append({"step": step, **metrics})
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        with atomic_path(self.path, durable=False) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(self.rows)


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
        import wandb

        self.run = wandb.init(project=project, entity=entity, tags=tags, mode=mode, dir=str(self.run_dir),
                              config=config, name=self.run_dir.name, reinit="finish_previous", settings=wandb.Settings(console="off"))

    def log(self, metrics, step):
        self.run.log(metrics, step=step)

    def close(self):
        self.run.finish()
