"""A run folder (``trainer.out_dir``) and what training writes into it.

``run.lock`` (one owner at a time, ``mtdense.engine.run_lock``), ``config.yaml`` (the resolved
config) and ``checkpoints/step_<N>/`` (``mtdense.engine.checkpoint``) with the pointer files
``last`` and ``best``. ``claim`` locks the folder, removes what interrupted saves left and refuses
to start a second run where one has checkpoints; ``save`` writes a new checkpoint folder, then
switches the pointers, then prunes all but the newest ``keep`` (never the new one or ``best``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtdense.engine.checkpoint import (clean_temporary, complete_checkpoints, prune_checkpoints, save_checkpoint,
                                       write_pointer)
from mtdense.engine.run_lock import RunLock
from mtdense.errors import ConfigError


class RunFolder:
    """``claim``/``release`` the folder at ``path``; ``write_config``; ``save`` checkpoints, keeping ``keep``."""

    def __init__(self, path: Path, keep: int):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.keep = keep
        self._lock: RunLock | None = None

    def claim(self, resuming: bool, notes: list[str]) -> None:
        """Lock the folder, clean what interrupted saves left, refuse to mix two runs; what the user
        should know is appended to ``notes``."""
        self._lock = RunLock(self.path)
        self._lock.acquire()
        if self._lock.note:
            notes.append(self._lock.note)
        for p in clean_temporary(self.checkpoints):
            notes.append(f"removed {p} (left by an interrupted save)")
        if not resuming and complete_checkpoints(self.checkpoints):
            raise ConfigError(f"{self.path} already holds the checkpoints of a run; continue it with "
                              f"`mtdense train --resume {self.path}` or choose a new trainer.out_dir",
                              key="trainer.out_dir")

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def write_config(self, config_yaml: str) -> None:
        (self.path / "config.yaml").write_text(config_yaml)

    def save(self, step: int, weights: dict[str, torch.Tensor], config_yaml: str, spec: dict[str, Any],
             trainer_state: dict[str, Any], is_best: bool) -> Path:
        """Write ``checkpoints/step_<step>`` (never over an existing folder), point ``last`` (and
        ``best``) at it, prune the old ones; return the folder."""
        folder = save_checkpoint(self.checkpoints / f"step_{step:08d}", weights, config_yaml, spec, trainer_state)
        write_pointer(self.checkpoints / "last", folder.name)
        if is_best:
            write_pointer(self.checkpoints / "best", folder.name)
        protect = {folder.name}
        best_ptr = self.checkpoints / "best"
        if best_ptr.is_file():
            protect.add(best_ptr.read_text(errors="replace").strip())
        prune_checkpoints(self.checkpoints, self.keep, protect)
        return folder
