"""The ``console`` logger: what a person watching a run sees.

On a terminal, one live display (rich) that fits 80 columns:

    epoch 3/15 ━━━━━━━━━━━━━━━━  48/240 · ETA 0:01:20 · 210 img/s · loss 0.412
    val        ━━━━━━━━━━━━━━━━   3/5

after each evaluation one line with the *monitored* metric (and ``metrics`` chosen in the
config), the best so far marked with ``*``; at the end one line with the run folder and the
best checkpoint and its score. Off a terminal (a log file, SLURM), one short line per epoch
instead of the display. The full metric set goes to the file loggers (csv, tensorboard, mlflow).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from mtdense.engine.loggers import Logger
from mtdense.engine.monitor import Monitor
from mtdense.registry import LOGGERS


def _num(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@LOGGERS.register("console")
class ConsoleLogger(Logger):
    """Live progress on a terminal, short lines otherwise; ``metrics``: validation metrics to show
    next to the monitored one (``trainer.monitor``) after each evaluation."""

    def __init__(self, run_dir: Path, config: dict[str, Any], progress: bool = True, metrics: list[str] | None = None):
        super().__init__(run_dir, config)
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = progress and self.console.is_terminal
        trainer, data = config.get("trainer") or {}, config.get("data") or {}
        self.max_epochs = int(trainer.get("max_epochs") or 1)
        self.monitor = Monitor.from_config(trainer)
        self.samples_per_step = (int(data.get("batch_size") or 1) * int(trainer.get("accumulate") or 1)
                                 * int(os.environ.get("WORLD_SIZE", 1)))
        self.shown = [self.monitor.key, *[m for m in metrics or [] if m != self.monitor.key]]
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.loss: float | None = None
        self._progress = None

    # ------------------------------------------------------------ progress
    def start(self, total_steps, first_step, best=None):
        self.total, self.step = total_steps, first_step
        self.steps_per_epoch = max(1, total_steps // self.max_epochs)
        self.best = best
        self._t0, self._s0 = time.perf_counter(), first_step
        if self.live:
            from rich.progress import BarColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("{task.description:<10}"), BarColumn(bar_width=16),
                                      TextColumn("{task.fields[text]}"), console=self.console, transient=True)
            self._progress.start()
            self._train = self._progress.add_task(self._epoch_text(), total=total_steps, completed=first_step,
                                                  text=self._status())
            self._val = None

    def epoch_of(self, step: int) -> int:
        """The 1-based epoch a step belongs to (step ``k × steps_per_epoch`` ends epoch k)."""
        return min(self.max_epochs, max(1, math.ceil(step / self.steps_per_epoch)))

    def _epoch_text(self) -> str:
        return f"epoch {self.epoch_of(self.step + 1 if self.step < self.total else self.step)}/{self.max_epochs}"

    def _status(self) -> str:
        done = self.step - self._s0
        rate = done / max(time.perf_counter() - self._t0, 1e-9)
        eta = (self.total - self.step) / rate if rate > 0 else float("inf")
        parts = [f"{self.step}/{self.total}", f"ETA {_clock(eta)}"]
        if done:
            parts.append(f"{rate * self.samples_per_step:.0f} img/s")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        return " · ".join(parts)

    def advance(self, step, info=None):
        self.step = step
        if self._progress is not None:
            self._progress.update(self._train, completed=step, description=self._epoch_text(), text=self._status())
        elif step % self.steps_per_epoch == 0 or step == self.total:
            self.console.print(f"epoch {self.epoch_of(step)}/{self.max_epochs} · {self._status()}",
                               highlight=False, soft_wrap=True)

    def eval_progress(self, done, total):
        if self._progress is None:
            return
        if self._val is None:
            self._val = self._progress.add_task("val", total=total, text="")
        self._progress.update(self._val, completed=done, text=f"{done}/{total}")
        if done >= total:
            self._progress.remove_task(self._val)
            self._val = None

    # ------------------------------------------------------------ metrics
    def log(self, metrics, step):
        losses = [v for k, v in metrics.items() if k.startswith("train/loss/")]
        if losses:
            self.loss = float(sum(losses))
        if self.monitor.key not in metrics:
            return
        epoch = self.epoch_of(step)
        value = float(metrics[self.monitor.key])
        if self.monitor.improves(value, self.best):
            self.best, self.best_epoch = value, epoch
            mark = " *best"
        else:
            at = f", epoch {self.best_epoch}" if self.best_epoch else ""
            mark = f" (best {_num(self.best)}{at})" if self.best is not None else ""
        parts = [f"{self.monitor.key} {_num(value)}{mark}"]
        parts += [f"{k} {_num(float(metrics[k]))}" for k in self.shown[1:] if k in metrics]
        self.console.print(f"epoch {epoch}/{self.max_epochs} · " + " · ".join(parts), highlight=False, soft_wrap=True)

    def close(self):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        pointer = self.run_dir / "checkpoints" / "best"
        if pointer.is_file() and self.best is not None:
            where = f"best checkpoint {pointer.parent / pointer.read_text().strip()} ({self.monitor.key} {_num(self.best)})"
        else:
            where = "no validated checkpoint"
        self.console.print(f"run {self.run_dir} · {where}", highlight=False, soft_wrap=True)
