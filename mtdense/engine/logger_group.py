"""The configured loggers of a run (``logging.loggers``) as one.

Built on rank 0 only (other ranks have none); every call goes to each logger in config order.
What a logger receives and when is in ``mtdense.engine.loggers``.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtdense.config import plain
from mtdense.engine import distributed as dist_utils
from mtdense.engine.loggers import Logger
from mtdense.registry import LOGGERS


class LoggerGroup:
    """``start`` builds and starts the loggers; ``advance``, ``eval_progress``, ``log``, ``close`` fan out."""

    def __init__(self) -> None:
        self.loggers: list[Logger] = []

    def start(self, cfg: DictConfig, run_dir: Path, total_steps: int, first_step: int, best: float | None) -> None:
        if not dist_utils.is_main():
            return
        cfg_plain = OmegaConf.to_container(cfg, resolve=True)
        for i, lcfg in enumerate(plain(cfg.logging.get("loggers", [])) or []):
            self.loggers.append(LOGGERS.build(lcfg, f"logging.loggers.{i}", run_dir=run_dir, config=cfg_plain))
        for lg in self.loggers:
            lg.start(total_steps, first_step, best)

    def advance(self, step: int) -> None:
        for lg in self.loggers:
            lg.advance(step)

    def eval_progress(self, done: int, total: int) -> None:
        for lg in self.loggers:
            lg.eval_progress(done, total)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for lg in self.loggers:
            lg.log(metrics, step)

    def close(self) -> None:
        for lg in self.loggers:
            lg.close()
        self.loggers = []
